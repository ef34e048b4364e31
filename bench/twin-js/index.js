// BENCH ONLY (cargo xtask bench --read-path): the product's `GET /v1/clients/{id}` as a
// competent team would write it in plain JavaScript (no framework), doing all of the product's
// work for that request, so the read-path table can compare the product with it:
//   - the bearer token: HS256 verified with WebCrypto, the same claim checks (required claims,
//     iss, aud, exp/iat/nbf against the clock with 60 s leeway) and the same error texts;
//   - the account's route (account + shard) from the account D1 in a `first-unconstrained`
//     session, cached in the isolate for 30 s with the account's version probed every 5 s;
//   - the custom-domain, active, UK-only and CIDR checks, the bookmark's shape, the shard
//     binding this deployment serves (421 otherwise);
//   - the row in a `first-unconstrained` session (or the request's bookmark), rendered as the
//     product renders it (server fields left out, keys in the product's order, restricted
//     records' personal data for admins only), with `etag`, `x-request-id`, `x-d1-bookmark`,
//     and locally `x-d1-cost`; problem+json errors with the product's types, titles, details
//     and `www-authenticate` challenge;
//   - the usage meter: per account and 15-minute period in the isolate, flushed to the shard's
//     `account_usage` every 10 s (the product's upsert) after the response.
// tests/twin.rs sends the same requests to the product and to this Worker and compares them.
// `POST /v1/clients` is create.js (cargo xtask bench --write-path).

import { Fenced, createClient, scheduleMarks } from "./create.js";

const GET_BY_ID =
  "SELECT id, body FROM clients WHERE account_id = ?1 AND id = ?2 AND deleted_at IS NULL";
const ROUTE =
  "SELECT a.body AS account, s.body AS shard FROM accounts a JOIN shards s ON s.id = a.db_shard_id WHERE a.id = ?1";
const VERSION = "SELECT body ->> '$.version' AS version FROM accounts WHERE id = ?1";
const DOMAIN = "SELECT body ->> '$.account_id' AS account_id FROM domains WHERE hostname = ?1";
const COUNTERS = ["requests", "writes", "calls", "statements", "rows_read", "rows_written"];
const UPSERT =
  "INSERT INTO account_usage (account_id, id, body) VALUES (?1, ?2, ?3) ON CONFLICT (account_id, id) DO UPDATE SET body = json_set(body, " +
  COUNTERS.map((k) => `'$.${k}', (body ->> '$.${k}') + (excluded.body ->> '$.${k}')`).join(", ") +
  ")";

const HIDDEN = new Set(["index_rev", "last_event_id", "client_ended_on", "client_restricted"]);
const PERSONAL = [
  "title", "forenames", "surname", "date_of_birth", "email", "phone", "address", "dependants",
  "notes", "search_text", "adviser_name",
];
const LEEWAY = 60;
const ROUTE_TTL = 30_000;
const CHECK_EVERY = 5_000;
const FLUSH_EVERY = 10_000;
const PERIOD = 900;
const MAX_ENTRIES = 10_000;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const BOOKMARK = /^[0-9a-f-]{1,256}$/;
const BOUND_BOOKMARK = /^([a-z0-9-]{1,100}):([0-9a-f-]{1,256})$/;
const PREFIX = "/v1/clients/";

// ---- isolate state
let settings = null;
let hmacKey = null;
const routes = new Map(); // account id -> {loadedAt, checkedAt, route}
const domains = new Map(); // hostname -> {at, owner}
const usage = new Map(); // binding -> Map("account|periodStart" -> counts)
let lastFlush = null;

export class Problem extends Error {
  constructor(status, kind, title, detail, extra, challenge) {
    super(detail);
    Object.assign(this, { status, kind, title, detail, extra, challenge });
  }
}
const unauthorized = (detail, error = "invalid_token") =>
  new Problem(401, "unauthorized", "Unauthorized", detail, null, error);
const invalid = (why) => unauthorized(`token is invalid: ${why}`);
const forbidden = (detail) => new Problem(403, "forbidden", "Forbidden", detail);

function configure(env) {
  const list = (v) => (v || "").split(",").map((s) => s.trim()).filter(Boolean);
  return {
    local: env.ENVIRONMENT === "local",
    deployment: env.DEPLOYMENT || "api",
    secret: env.JWT_SECRET || "",
    issuer: env.JWT_ISSUER || "",
    audience: env.JWT_AUDIENCE || "",
    apiHosts: list(env.API_HOSTS).map((h) => h.toLowerCase()),
    served: list(env.SHARD_BINDINGS),
  };
}

// ---- the token
const dec = new TextDecoder();
const enc = new TextEncoder();
function b64url(s) {
  const b = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
  return out;
}

function bearer(h) {
  if (h === null) throw unauthorized("missing bearer token", "invalid_request");
  const t = h.trim();
  const sp = t.indexOf(" ");
  const malformed = unauthorized(
    "malformed Authorization header (expected `Bearer <jwt>`)",
    "invalid_request",
  );
  if (sp < 0) throw malformed;
  const token = t.slice(sp + 1).trim();
  if (t.slice(0, sp).toLowerCase() !== "bearer" || token === "") throw malformed;
  return token;
}

async function verify(token, cfg, nowMs) {
  const parts = token.split(".");
  if (parts.length !== 3) throw invalid("InvalidToken");
  let header, claims;
  try {
    header = JSON.parse(dec.decode(b64url(parts[0])));
    claims = JSON.parse(dec.decode(b64url(parts[1])));
  } catch (e) {
    throw invalid("InvalidToken");
  }
  if (claims === null || typeof claims !== "object" || Array.isArray(claims))
    throw invalid("the payload is not a JSON object");
  if (header.alg !== "HS256") throw invalid(`algorithm ${header.alg} is not accepted`);
  if (!cfg.secret) throw new Problem(500, "auth-not-configured", "Authentication is not configured", "the deployment has no signing secret");
  if (hmacKey === null) {
    hmacKey = await crypto.subtle.importKey("raw", enc.encode(cfg.secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  }
  let sig;
  try {
    sig = b64url(parts[2]);
  } catch (e) {
    throw invalid("InvalidSignature");
  }
  const ok = await crypto.subtle.verify("HMAC", hmacKey, sig, enc.encode(`${parts[0]}.${parts[1]}`));
  if (!ok) throw invalid("InvalidSignature");
  for (const c of ["exp", "iat", "iss", "aud", "sub"])
    if (!(c in claims)) throw invalid(`Missing required claim: ${c}`);
  if (claims.iss !== cfg.issuer) throw invalid("InvalidIssuer");
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.includes(cfg.audience)) throw invalid("InvalidAudience");
  if (!UUID.test(claims.sub) || !UUID.test(claims.account_id || "") ||
      !["readonly", "member", "admin"].includes(claims.role) ||
      !Number.isInteger(claims.exp) || !Number.isInteger(claims.iat) ||
      (claims.nbf != null && !Number.isInteger(claims.nbf)) || typeof claims.aud !== "string")
    throw invalid("JSON error: the claims are not the API's");
  const t = Math.floor(nowMs / 1000);
  if (claims.exp + LEEWAY < t) throw unauthorized("token has expired");
  if (claims.iat - LEEWAY > t || (claims.nbf != null && claims.nbf - LEEWAY > t))
    throw unauthorized("token is not valid yet");
  claims.account_id = claims.account_id.toLowerCase();
  claims.sub = claims.sub.toLowerCase();
  return claims;
}

// ---- routing (account D1, in-isolate cache)
function meter(cost, meta) {
  cost.calls += 1;
  cost.statements += 1;
  cost.rows_read += (meta && meta.rows_read) || 0;
  cost.rows_written += (meta && meta.rows_written) || 0;
}

async function route(env, state, account, nowMs) {
  const c = routes.get(account);
  const cached = c && nowMs - c.loadedAt < ROUTE_TTL ? c : null;
  if (cached && nowMs - cached.checkedAt < CHECK_EVERY) return cached.route;
  const db = state.accounts();
  if (cached) {
    const r = await db.prepare(VERSION).bind(account).all();
    const v = r.results.length ? r.results[0].version : null;
    if (v !== null && Number(v) === cached.route.account.version) {
      cached.checkedAt = nowMs;
      return cached.route;
    }
  }
  const r = await db.prepare(ROUTE).bind(account).all();
  if (r.results.length === 0) {
    routes.delete(account); // unknown accounts are not cached
    return null;
  }
  let accountBody, shard;
  try {
    accountBody = JSON.parse(r.results[0].account);
    shard = JSON.parse(r.results[0].shard);
  } catch (e) {
    throw new Problem(503, "storage-unavailable", "Service Unavailable", "the account registry is unavailable; retry later");
  }
  accountBody.version = Number(accountBody.version || 0);
  const got = { account: accountBody, shard };
  if (routes.size >= MAX_ENTRIES) routes.clear();
  routes.set(account, { loadedAt: nowMs, checkedAt: nowMs, route: got });
  return got;
}

async function domainOwner(state, host, nowMs) {
  const c = domains.get(host);
  if (c && nowMs - c.at < ROUTE_TTL) return c.owner;
  const r = await state.accounts().prepare(DOMAIN).bind(host).all();
  const owner = r.results.length && r.results[0].account_id ? String(r.results[0].account_id).toLowerCase() : null;
  if (domains.size >= MAX_ENTRIES) domains.clear();
  domains.set(host, { at: nowMs, owner });
  return owner;
}

function hostname(host) {
  if (host.startsWith("[")) return host.slice(1).split("]")[0];
  const i = host.lastIndexOf(":");
  return i < 0 ? host : host.slice(0, i);
}

// ---- CIDR allowlists (IPv4 and IPv6)
function parseIp(s) {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(s)) {
    const p = s.split(".").map(Number);
    if (p.some((x) => x > 255)) return null;
    return { v6: false, n: BigInt(((p[0] << 24) >>> 0) + (p[1] << 16) + (p[2] << 8) + p[3]) };
  }
  if (!s.includes(":")) return null;
  let [head, tail] = s.split("::");
  if (s.split("::").length > 2) return null;
  const groups = (x) => (x ? x.split(":") : []);
  const h = groups(head), t = groups(tail);
  if (tail !== undefined ? h.length + t.length > 7 : h.length !== 8) return null;
  const all = tail !== undefined ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t] : h;
  let n = 0n;
  for (const g of all) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    n = (n << 16n) | BigInt(parseInt(g, 16));
  }
  return { v6: true, n };
}

function ipAllowed(ip, list) {
  const a = parseIp(ip.trim());
  if (!a) return false;
  return list.some((cidr) => {
    const [net, len] = cidr.includes("/") ? cidr.split("/") : [cidr, cidr.includes(":") ? "128" : "32"];
    const n = parseIp(net);
    const l = /^\d+$/.test(len) ? Number(len) : NaN;
    const bits = n && n.v6 ? 128 : 32;
    if (!n || !(l <= bits) || n.v6 !== a.v6) return false;
    const mask = l === 0 ? 0n : ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - l)) - 1n);
    return (n.n & mask) === (a.n & mask);
  });
}

// ---- rendering (the product's: keys in its order, server fields left out)
export function canonical(v) {
  if (Array.isArray(v)) return v.map(canonical);
  if (v === null || typeof v !== "object") return v;
  const out = {};
  for (const k of Object.keys(v).sort()) out[k] = canonical(v[k]);
  return out;
}

// As the product: a record that is not restricted is its body without the server fields, then
// its id (SQLite's rendering); a restricted one is re-rendered (keys sorted), its personal data
// for admins only.
export function present(role, id, body) {
  const out = {};
  for (const k of Object.keys(body)) if (!HIDDEN.has(k)) out[k] = body[k];
  if (!("id" in out)) out.id = id;
  const own = body.restricted == null ? null : body.restricted;
  const restriction = own !== null ? own : body.client_restricted == null ? null : body.client_restricted;
  if (restriction === null) return out;
  out.id = id;
  if (own === null) out.restricted = restriction;
  if (role !== "admin") {
    const redacted = PERSONAL.filter((f) => f in out);
    for (const f of redacted) delete out[f];
    out.redacted = redacted;
  }
  return canonical(out);
}

function integral(v) {
  return typeof v === "number" && Number.isInteger(v) ? v : 0;
}

// ---- usage
function record(binding, account, nowMs, cost, writes) {
  const start = Math.floor(nowMs / 1000) - (Math.floor(nowMs / 1000) % PERIOD);
  let periods = usage.get(binding);
  if (!periods) usage.set(binding, (periods = new Map()));
  const key = `${account}|${start}`;
  let u = periods.get(key);
  if (!u) periods.set(key, (u = { requests: 0, writes: 0, calls: 0, statements: 0, rows_read: 0, rows_written: 0 }));
  u.requests += 1;
  u.writes += writes;
  u.calls += cost.calls;
  u.statements += cost.statements;
  u.rows_read += cost.rows_read;
  u.rows_written += cost.rows_written;
  if (lastFlush === null) lastFlush = nowMs;
}

async function flush(env, due) {
  for (const [binding, periods] of due) {
    const db = env[binding];
    if (!db) continue;
    const stmts = [];
    for (const [key, u] of periods) {
      const [account, start] = key.split("|");
      const period_start = new Date(Number(start) * 1000).toISOString();
      stmts.push(db.prepare(UPSERT).bind(account, period_start, JSON.stringify({ period_start, ...u })));
    }
    try {
      await db.withSession().batch(stmts);
    } catch (e) {
      // kept for the next flush, as the product does
      const now = usage.get(binding) || new Map();
      for (const [k, u] of periods) {
        const n = now.get(k);
        if (n) for (const c of COUNTERS) n[c] += u[c];
        else now.set(k, u);
      }
      usage.set(binding, now);
    }
  }
}

// ---- the request
function problemResponse(p, requestId) {
  const body = { detail: p.detail, request_id: requestId, status: p.status, title: p.title, type: `urn:clientdocs:problem:${p.kind}` };
  if (p.extra) Object.assign(body, p.extra);
  const headers = { "content-type": "application/problem+json", "x-request-id": requestId };
  if (p.retryAfter) headers["retry-after"] = String(p.retryAfter);
  if (p.challenge) {
    const d = p.detail.replace(/["\\]/g, "'").replace(/[^ -~]/g, "?");
    headers["www-authenticate"] = `Bearer realm="clientdocs", error="${p.challenge}", error_description="${d}"`;
  }
  return new Response(JSON.stringify(p.extra ? canonical(body) : body), { status: p.status, headers });
}

function requestId(request) {
  const h = request.headers.get("cf-ray") || request.headers.get("x-request-id");
  if (h) return h.slice(0, 64);
  const b = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

async function tenant(request, env, cfg, state, nowMs, withBookmark = true) {
  const token = bearer(request.headers.get("authorization"));
  const claims = await verify(token, cfg, nowMs);
  const r = await route(env, state, claims.account_id, nowMs);
  if (!r) throw invalid("unknown subject");
  if (!cfg.local && r.account.kind !== "test")
    throw invalid("HS256 tokens are accepted only for test accounts; sign in through the account's identity provider");
  // Bookmarks name their shard (`{shard id}:{D1 bookmark}`); another shard's, or one naming
  // none, starts a fresh first-primary session instead of reaching this database.
  const bookmark = withBookmark ? request.headers.get("x-d1-bookmark") : null;
  let start = "first-unconstrained";
  let echo = null;
  if (bookmark !== null) {
    const bound = BOUND_BOOKMARK.exec(bookmark);
    if (bookmark === "first-primary" || bookmark === "first-unconstrained") {
      start = bookmark;
      echo = bookmark;
    } else if (bound) {
      start = bound[1] === r.shard.id ? bound[2] : "first-primary";
      echo = bound[1] === r.shard.id ? bookmark : null;
    } else if (BOOKMARK.test(bookmark)) {
      start = "first-primary";
    } else {
      throw new Problem(400, "invalid-bookmark", "Invalid Bookmark",
        `x-d1-bookmark \`${bookmark.slice(0, 256)}\` cannot be a D1 bookmark: send back the x-d1-bookmark of an earlier response (<shard id>:<lower-case hex digits and hyphens, at most 256>), or first-primary / first-unconstrained`);
    }
  }
  const binding = r.shard.binding;
  if (!cfg.served.includes(binding) || !env[binding]) {
    throw new Problem(421, "misdirected", "Misdirected Request",
      `account ${claims.account_id} lives on shard ${r.shard.id}, served by deployment ${r.shard.deployment}`,
      { deployment: r.shard.deployment });
  }
  const session = env[binding].withSession(start);
  const hostHeader = request.headers.get("host");
  if (hostHeader !== null) {
    const host = hostname(hostHeader).toLowerCase();
    if (!cfg.apiHosts.includes(host)) {
      const owner = await domainOwner(state, host, nowMs);
      if (owner !== null && owner !== claims.account_id) throw forbidden("this token is not valid on this domain");
    }
  }
  const a = r.account;
  if (!a.is_active) throw forbidden("the account is deactivated");
  if (a.uk_only) {
    const simulated = cfg.local ? request.headers.get("x-simulated-country") : null;
    const country = simulated !== null ? simulated : (request.cf && request.cf.country) || null;
    if (!country || country.toUpperCase() !== "GB")
      throw new Problem(451, "unavailable-for-legal-reasons", "Unavailable For Legal Reasons", "this account may only be used from the United Kingdom");
  }
  if (Array.isArray(a.cidr_allowlist) && a.cidr_allowlist.length > 0) {
    if (!ipAllowed(request.headers.get("cf-connecting-ip") || "", a.cidr_allowlist))
      throw forbidden("the client address is not on the account's allowlist");
  }
  return { claims, binding, shard: r.shard.id, session, echo, route: r };
}

async function getClient(t, id, cost) {
  if (!UUID.test(id))
    throw new Problem(400, "bad-request", "Bad Request", `\`${id}\` is not a UUID`);
  const key = id.toLowerCase();
  let r;
  try {
    r = await t.session.prepare(GET_BY_ID).bind(t.claims.account_id, key).all();
  } catch (e) {
    throw new Problem(503, "storage-unavailable", "Service Unavailable", "storage is unavailable; retry later");
  }
  meter(cost, r.meta);
  if (r.results.length === 0) throw new Problem(404, "not-found", "Not Found", `no client with id ${key}`);
  const body = JSON.parse(r.results[0].body);
  return new Response(JSON.stringify(present(t.claims.role, key, body)), {
    status: 200,
    headers: { "content-type": "application/json", etag: `"v${integral(body.version)}"` },
  });
}

export default {
  async fetch(request, env, ctx) {
    if (settings === null) settings = configure(env);
    const cfg = settings;
    const nowMs = Date.now();
    const rid = requestId(request);
    const path = new URL(request.url).pathname;
    // Local only (tests/twin.rs): a raw message onto the twin consumer's queue, as the operator
    // API's POST /admin/v1/change-events puts one on the product's.
    if (cfg.local && request.method === "POST" && path === "/bench/twin-consumer/messages" && env.CHANGE_EVENTS_TWIN) {
      await env.CHANGE_EVENTS_TWIN.sendBatch([{ body: await request.json(), contentType: "json" }]);
      return new Response(null, { status: 202 });
    }
    const get = request.method === "GET" && path.startsWith(PREFIX) && path.indexOf("/", PREFIX.length) < 0;
    const create = request.method === "POST" && path.replace(/^\/+|\/+$/g, "") === "v1/clients";
    if (!get && !create) {
      return problemResponse(new Problem(404, "not-found", "Not Found", `the twin serves only GET ${PREFIX}{id} and POST /v1/clients`), rid);
    }
    const bytes = create ? await request.arrayBuffer() : null;
    let accounts = null;
    const state = { accounts: () => accounts || (accounts = env.ACCOUNTS_DB.withSession("first-unconstrained")) };
    let t;
    try {
      t = await tenant(request, env, cfg, state, nowMs);
    } catch (e) {
      if (e instanceof Problem) return problemResponse(e, rid);
      throw e;
    }
    let cost = { calls: 0, statements: 0, rows_read: 0, rows_written: 0 };
    const serve = (t, cost) =>
      get ? getClient(t, path.slice(PREFIX.length), cost) : createClient(request, env, cfg, t, bytes, path, rid, cost);
    let response;
    try {
      try {
        response = await serve(t, cost);
      } catch (e) {
        if (!(e instanceof Fenced)) throw e;
        // The tenant is fenced on the shard the cached route names: re-resolve it; on another
        // shard retry once there (without the old shard's bookmark), else 503 while it moves.
        routes.delete(t.claims.account_id);
        let fresh = null;
        try {
          fresh = await tenant(request, env, cfg, state, Date.now(), false);
        } catch (ignored) {}
        if (!fresh || fresh.shard === t.shard) {
          throw Object.assign(new Problem(503, "tenant-moving", "Service Unavailable",
            "the account is being moved to another shard: writes pause for a moment, reads go on; retry after the Retry-After delay"), { retryAfter: 1 });
        }
        t = fresh;
        cost = { calls: 0, statements: 0, rows_read: 0, rows_written: 0 };
        response = await serve(t, cost);
      }
    } catch (e) {
      if (e instanceof Fenced) {
        e = Object.assign(new Problem(503, "tenant-moving", "Service Unavailable",
          "the account is being moved to another shard: writes pause for a moment, reads go on; retry after the Retry-After delay"), { retryAfter: 1 });
      }
      if (!(e instanceof Problem)) throw e;
      response = problemResponse(e, rid);
    }
    record(t.binding, t.claims.account_id, nowMs, cost, create ? 1 : 0);
    const d1 = t.session.getBookmark();
    const bookmark = d1 ? `${t.shard}:${d1}` : t.echo;
    if (bookmark) response.headers.set("x-d1-bookmark", bookmark);
    if (cfg.local)
      response.headers.set("x-d1-cost", `calls=${cost.calls};statements=${cost.statements};rows_read=${cost.rows_read};rows_written=${cost.rows_written}`);
    response.headers.set("x-request-id", rid);
    // Bench only (`x-bench-log: 1`): the product's per-request log line, to measure its cost.
    if (request.headers.get("x-bench-log") === "1") {
      const line = JSON.stringify({ level: response.status >= 400 ? "WARN" : "INFO", message: "request done",
        status: response.status, duration_ms: Date.now() - nowMs, request_id: rid, route: `${request.method} ${path}`,
        deployment: cfg.deployment, account: t.claims.account_id, shard: t.binding, d1_calls: cost.calls,
        d1_statements: cost.statements, d1_rows_read: cost.rows_read, d1_rows_written: cost.rows_written,
        span: "request", target: "platform::logging" });
      if (response.status >= 400) console.warn(line); else console.log(line);
    }
    scheduleMarks(env, ctx, Date.now());
    if (lastFlush !== null && Date.now() - lastFlush >= FLUSH_EVERY) {
      lastFlush = Date.now();
      const due = Array.from(usage.entries());
      usage.clear();
      ctx.waitUntil(flush(env, due));
    }
    return response;
  },
};
