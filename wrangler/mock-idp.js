// LOCAL ONLY. A mock OIDC identity provider for the local stack and its tests: per realm
// (`/mock-idp/<realm>`, the issuer `<origin>/mock-idp/<realm>`) it holds signing keys made with
// WebCrypto (RS256: RSASSA-PKCS1-v1_5 2048, ES256: ECDSA P-256), serves their JWKS, counts
// fetches of it, and mints tokens, including forged ones for tests. State lives in the isolate
// (one isolate in `wrangler dev`). It is never deployed.
//
//   POST   /mock-idp/<realm>/keys          {"alg": "RS256"|"ES256"} -> {"kid"}     add a key
//   DELETE /mock-idp/<realm>/keys/<kid>                                            retire a key
//   GET    /mock-idp/<realm>/jwks                                                  the JWKS
//   GET    /mock-idp/<realm>/stats         -> {"jwks_fetches"}
//   POST   /mock-idp/<realm>/token         {"kid", "claims", "header_kid"?, "forge"?} -> {"token"}
//          forge: "hs256-public-key" signs HS256 with the key's public SPKI PEM as the secret;
//          "none" makes an unsigned `alg: none` token.
const realms = new Map();

function realm(name) {
  if (!realms.has(name)) realms.set(name, { keys: new Map(), fetches: 0, next: 1 });
  return realms.get(name);
}

const enc = new TextEncoder();
function b64url(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
function json(status, body, headers = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

async function addKey(r, alg) {
  const params =
    alg === "ES256"
      ? { name: "ECDSA", namedCurve: "P-256" }
      : { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" };
  const pair = await crypto.subtle.generateKey(params, true, ["sign", "verify"]);
  const kid = `${alg.toLowerCase()}-${r.next++}-${crypto.randomUUID().slice(0, 8)}`;
  const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
  const spki = await crypto.subtle.exportKey("spki", pair.publicKey);
  const pem = `-----BEGIN PUBLIC KEY-----\n${btoa(String.fromCharCode(...new Uint8Array(spki))).match(/.{1,64}/g).join("\n")}\n-----END PUBLIC KEY-----\n`;
  const pub = { kty: jwk.kty, kid, use: "sig", alg, ...(alg === "ES256" ? { crv: jwk.crv, x: jwk.x, y: jwk.y } : { n: jwk.n, e: jwk.e }) };
  r.keys.set(kid, { alg, privateKey: pair.privateKey, pub, pem });
  return kid;
}

async function mint(r, body) {
  const key = r.keys.get(body.kid);
  if (!key) return json(404, { error: `no key ${body.kid}` });
  const forge = body.forge || null;
  const alg = forge === "hs256-public-key" ? "HS256" : forge === "none" ? "none" : key.alg;
  const header = { alg, typ: "JWT", kid: body.header_kid || body.kid };
  const input = `${b64url(enc.encode(JSON.stringify(header)))}.${b64url(enc.encode(JSON.stringify(body.claims || {})))}`;
  let sig;
  if (forge === "none") {
    return json(200, { token: `${input}.` });
  } else if (forge === "hs256-public-key") {
    const hmac = await crypto.subtle.importKey("raw", enc.encode(key.pem), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    sig = await crypto.subtle.sign("HMAC", hmac, enc.encode(input));
  } else if (key.alg === "ES256") {
    sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key.privateKey, enc.encode(input));
  } else {
    sig = await crypto.subtle.sign("RSASSA-PKCS1-v1_5", key.privateKey, enc.encode(input));
  }
  return json(200, { token: `${input}.${b64url(sig)}` });
}

export default {
  async fetch(request) {
    const url = new URL(request.url);
    const parts = url.pathname.split("/").filter(Boolean); // ["mock-idp", realm, action, kid?]
    if (parts[0] !== "mock-idp" || parts.length < 3) return json(404, { error: "no such path" });
    const r = realm(parts[1]);
    const action = parts[2];
    if (action === "jwks" && request.method === "GET") {
      r.fetches += 1;
      return json(200, { keys: [...r.keys.values()].map((k) => k.pub) }, { "cache-control": "public, max-age=300" });
    }
    if (action === "stats") return json(200, { jwks_fetches: r.fetches });
    if (action === "keys" && request.method === "POST") {
      const body = await request.json().catch(() => ({}));
      return json(201, { kid: await addKey(r, body.alg === "ES256" ? "ES256" : "RS256") });
    }
    if (action === "keys" && request.method === "DELETE" && parts[3]) {
      return json(r.keys.delete(parts[3]) ? 200 : 404, { kid: parts[3] });
    }
    if (action === "token" && request.method === "POST") return mint(r, await request.json());
    return json(404, { error: "no such path" });
  },
};
