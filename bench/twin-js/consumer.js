// BENCH ONLY (cargo xtask bench --consumer-path): the product's change-event consumer
// (consumers/change-events, shared/src/consumer, services/audit.rs, services/derived.rs,
// services/checkpoints.rs' head anchors) in plain JavaScript, consuming `change-events-twin`,
// which the twin's create (create.js) feeds when a request says `x-twin-consumer: 1`. Per batch
// it does the product's work with the same D1 calls, grouped the same way:
//   - each message decoded and checked (the closed set of types, canonical UUIDs, the envelope's
//     schema and bounds) with the product's reasons; refused ones are wrapped with their reason
//     and sent to the product's dead-letter queue (`change-events-dlq`), then acked;
//   - one account-D1 query for the batch's placements (`json_each` of the account ids), then
//     per account one shard batch: the chain head (with its receipt, verified with Ed25519) and,
//     per event id, its outbox row and whether it is recorded; what is recorded is the OUTBOX's
//     event;
//   - per account one R2 listing of the anchored heads above the trail's head (a cut trail);
//   - per account one D1 batch appending the run (each link `hash = SHA-256(prev_hash ||
//     canonical JSON)`, the run's last link signed) with the derived-field statements of each
//     event; a constraint (an event already recorded, a lost race) falls back to one event at a
//     time (head re-read, up to 5 attempts), then the derived fields (fan-outs' first chunk,
//     their follow-ups to `index-jobs`);
//   - the heads the batch moved anchored in R2 (`audit-heads/{account}/{seq:020}.json`,
//     create-only), and the head it started from again;
//   - ack / retry with the product's delays.
// Not done (bench tenants never reach them): the search for the last signed link below a head
// the writer did not sign (such an event is dead-lettered `unsealed_chain_head` at once), and
// the local fault injection's queue faults other than `duplicate_delivery` and
// `consumer_retry_rate`. tests/twin.rs compares its audit rows and derived fields with the
// product's.

const RACE_RETRY_SECONDS = 1;
const CHAIN_RACE_ATTEMPTS = 5;
const STORAGE_RETRY_SECONDS = 10;
const CHUNK = 500;
const ABOVE_LOOKED_AT = 10;
const MAX_CHANGED_FIELDS = 64;
const MAX_FIELD_NAME = 1024;
const MAX_CHANGES_BYTES = 16 * 1024;
const GENESIS_HASH = "0".repeat(64);
const UNSIGNED_LINKS_ACTION = "audit.unsigned_links";
const WRITER_ACTOR = "audit-writer";
const RECEIPT_DOMAIN = "clientdocs.audit-link.v1\n";
const SOURCE_QUEUE = "change-events-twin";

const EVENT_TYPES = [
  ["group", "groups", ["created", "updated", "deleted", "purged"]],
  ["user", "users", ["created", "updated", "deleted", "purged", "erased"]],
  ["client", "clients", ["created", "updated", "deleted", "purged", "erased", "restricted", "unrestricted"]],
  ["document", "documents", ["created", "updated", "deleted", "purged", "erased", "restricted", "unrestricted"]],
  ["account", "accounts", ["updated"]],
  ["erasure_request", "erasure_requests", ["created", "updated"]],
];

// ---- SQL: the product's statements as it binds them (integers CAST, as shared::ports::bind)
const PLACEMENTS =
  "SELECT a.id AS id, a.db_shard_id AS shard_id, a.body ->> '$.is_active' AS is_active, " +
  "a.body -> '$.faults' AS faults, s.body ->> '$.binding' AS binding " +
  "FROM accounts a LEFT JOIN shards s ON s.id = a.db_shard_id " +
  "WHERE a.id IN (SELECT value FROM json_each(?1))";
const HEAD =
  "SELECT (SELECT seq FROM audit_log WHERE account_id = ?1 AND event_id = ?2) AS existing, " +
  "seq, body ->> '$.hash' AS hash, body -> '$.receipt' AS receipt " +
  "FROM (SELECT 1) LEFT JOIN (SELECT seq, body FROM audit_log WHERE account_id = ?1 " +
  "ORDER BY seq DESC LIMIT 1)";
const EVIDENCE =
  "SELECT j.key AS i, " +
  "(SELECT o.body FROM outbox o WHERE o.account_id = ?1 AND o.id = j.value) AS outbox, " +
  "EXISTS (SELECT 1 FROM audit_log a WHERE a.account_id = ?1 AND a.event_id = j.value) " +
  "AS recorded " +
  "FROM json_each(?2) j ORDER BY j.key";
const INSERT_LINK = "INSERT INTO audit_log (account_id, seq, body) VALUES (?1, CAST(?2 AS INTEGER), ?3)";
const GROUP_NAME =
  "(SELECT g.body ->> '$.name' FROM groups g WHERE g.account_id = clients.account_id " +
  "AND g.id = clients.group_id AND g.deleted_at IS NULL)";
const ADVISER_NAME =
  "(SELECT u.body ->> '$.display_name' FROM users u WHERE u.account_id = clients.account_id " +
  "AND u.id = clients.adviser_id AND u.deleted_at IS NULL)";
const DOCUMENT_COUNT =
  "(SELECT count(*) FROM documents d WHERE d.account_id = clients.account_id " +
  "AND d.client_id = clients.id AND d.deleted_at IS NULL)";
const BUMP = "'$.index_rev', coalesce(body ->> '$.index_rev', 0) + 1";
const SEARCH_TEXT =
  "lower(trim(coalesce(body ->> '$.surname', '') || ' ' || coalesce(body ->> '$.forenames', '') " +
  "|| ' ' || coalesce(body ->> '$.address.postcode', '')))";
const REFRESH_CLIENT =
  `UPDATE clients SET body = json_set(body, '$.group_name', ${GROUP_NAME}, ` +
  `'$.adviser_name', ${ADVISER_NAME}, '$.search_text', ${SEARCH_TEXT}, ` +
  `'$.document_count', ${DOCUMENT_COUNT}, ${BUMP}) ` +
  "WHERE account_id = ?1 AND id = ?2";
const RECOUNT_DOCUMENTS =
  "UPDATE clients SET body = json_set(body, '$.document_count', " +
  "(SELECT count(*) FROM documents d WHERE d.account_id = clients.account_id " +
  ` AND d.client_id = clients.id AND d.deleted_at IS NULL), ${BUMP}) ` +
  "WHERE account_id = ?1 AND id = (SELECT client_id FROM documents WHERE account_id = ?1 AND id = ?2)";
const FAN_OUT = {
  group_name: ["$.group_name", GROUP_NAME, "group_id", "clients WHERE deleted_at IS NULL AND"],
  adviser_name: ["$.adviser_name", ADVISER_NAME, "adviser_id", "clients INDEXED BY clients_all_by_adviser WHERE"],
};
const fanOutSql = (kind) => {
  const [field, value, column, from] = FAN_OUT[kind];
  return (
    `UPDATE clients SET body = json_set(body, '${field}', ${value}, ${BUMP}) WHERE rowid IN ` +
    `(SELECT rowid FROM ${from} account_id = ?1 AND ${column} = ?2 ` +
    " AND id > ?3 ORDER BY id LIMIT CAST(?4 AS INTEGER)) RETURNING id"
  );
};

const enc = new TextEncoder();

// ---- the writer's key (cached per isolate: WebCrypto's imports are async)
let sealCache = null; // {secret, published, seal}

function b64(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}
function unb64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
function unb64url(s) {
  return unb64(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
}

async function loadSeal(env) {
  const secret = env.AUDIT_SIGNING_KEY;
  const published = env.AUDIT_PUBLIC_KEYS;
  if (sealCache && sealCache.secret === secret && sealCache.published === published) return sealCache.seal;
  let seal = null;
  try {
    seal = await makeSeal(secret, published);
  } catch (e) {
    console.error(JSON.stringify({ level: "ERROR", message: "AUDIT_SIGNING_KEY is malformed", error: String(e) }));
  }
  sealCache = { secret, published, seal };
  return seal;
}

async function makeSeal(secret, published) {
  if (typeof secret !== "string") return null;
  const t = secret.trim();
  const at = t.indexOf(":");
  if (at < 0) throw new Error("no key id");
  const keyId = t.slice(0, at);
  const seed = unb64(t.slice(at + 1));
  if (seed.length !== 32 || !/^[A-Za-z0-9-]+$/.test(keyId)) throw new Error("malformed");
  // PKCS#8 of an Ed25519 seed (RFC 8410).
  const der = new Uint8Array(48);
  der.set([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
  der.set(seed, 16);
  const priv = await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, true, ["sign"]);
  // The signer's own public key (Seal::new adds it to the published ones).
  const jwk = await crypto.subtle.exportKey("jwk", priv);
  const own = b64(unb64url(jwk.x));
  let keys = [];
  if (published === undefined) {
    console.warn(JSON.stringify({ level: "WARN", message: "AUDIT_PUBLIC_KEYS is not set; only the signing key's own is used" }));
  } else {
    try {
      keys = JSON.parse(published);
      if (!Array.isArray(keys)) throw new Error("not an array");
    } catch (e) {
      console.error(JSON.stringify({ level: "ERROR", message: "AUDIT_PUBLIC_KEYS is not a JSON array of keys; only the signing key's own is used" }));
      keys = [];
    }
  }
  keys.push({ key_id: keyId, public_key: own });
  const ring = new Map();
  for (const k of keys) {
    const raw = unb64(k.public_key);
    if (raw.length !== 32) throw new Error("malformed public key");
    ring.set(k.key_id, await crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]));
  }
  return { keyId, priv, ring };
}

const receiptBytes = (account, seq, hash) => enc.encode(`${RECEIPT_DOMAIN}${account}\n${seq}\n${hash}`);

async function receipt(seal, account, seq, hash) {
  const sig = await crypto.subtle.sign("Ed25519", seal.priv, receiptBytes(account, seq, hash));
  return { key_id: seal.keyId, signature: b64(new Uint8Array(sig)) };
}

async function verifyReceipt(seal, account, seq, hash, r) {
  if (!r || typeof r.key_id !== "string" || typeof r.signature !== "string") return false;
  const key = seal.ring.get(r.key_id);
  if (!key) return false;
  let sig;
  try {
    sig = unb64(r.signature);
  } catch {
    return false;
  }
  if (sig.length !== 64) return false;
  return crypto.subtle.verify("Ed25519", key, sig, receiptBytes(account, seq, hash));
}

// ---- JSON as serde_json writes a Value (object keys sorted)
function sorted(v) {
  if (Array.isArray(v)) return v.map(sorted);
  if (v && typeof v === "object") {
    const out = {};
    for (const k of Object.keys(v).sort()) out[k] = sorted(v[k]);
    return out;
  }
  return v;
}

async function sha256hex(text) {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(text)));
  let s = "";
  for (const b of d) s += b.toString(16).padStart(2, "0");
  return s;
}

// ---- decoding and the checks (domain::event::decode, consumer::validate)
class Refused extends Error {
  constructor(kind, text) {
    super(text);
    this.kind = kind;
  }
}
const undecodable = (detail) => new Refused("undecodable", `not a change event: not a change event: ${detail}`);
const schema = (ev, detail) => new Refused("schema", `malformed ${ev.type}: ${detail}`);

const HEX32 = /^[0-9a-fA-F]{32}$/;
// uuid::Uuid::parse_str's spellings (hyphenated, simple, braced, urn), canonical out; null if none.
function parseUuid(s) {
  if (typeof s !== "string") return null;
  let t = s;
  if (t.length === 45 && t.slice(0, 9).toLowerCase() === "urn:uuid:") t = t.slice(9);
  else if (t.length === 38 && t[0] === "{" && t[37] === "}") t = t.slice(1, 37);
  let hex;
  if (t.length === 36) {
    if (t[8] !== "-" || t[13] !== "-" || t[18] !== "-" || t[23] !== "-") return null;
    hex = t.slice(0, 8) + t.slice(9, 13) + t.slice(14, 18) + t.slice(19, 23) + t.slice(24);
  } else if (t.length === 32) hex = t;
  else return null;
  if (!HEX32.test(hex)) return null;
  hex = hex.toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
const isCanonicalUuid = (s) => typeof s === "string" && parseUuid(s) === s;

function field(v, key, check, what) {
  if (!(key in v)) throw undecodable(`missing field \`${key}\``);
  const x = check(v[key]);
  if (x === undefined) throw undecodable(`invalid type for \`${key}\`, expected ${what}`);
  return x;
}
const asStr = (x) => (typeof x === "string" ? x : undefined);
const asUuid = (x) => parseUuid(x) ?? undefined;
const asInt = (x) => (typeof x === "number" && Number.isInteger(x) ? x : undefined);

function decodeActor(a) {
  if (!a || typeof a !== "object" || Array.isArray(a)) return undefined;
  if (a.type === "user") {
    const id = parseUuid(a.id);
    return id && typeof a.role === "string" ? { type: "user", id, role: a.role } : undefined;
  }
  if (a.type === "system") return typeof a.id === "string" ? { type: "system", id: a.id } : undefined;
  return undefined;
}

function decode(v) {
  if (!v || typeof v !== "object" || Array.isArray(v)) throw undecodable("invalid type: expected struct ChangeEvent");
  const sv = v.schema_version;
  if (typeof sv === "number" && Number.isInteger(sv) && sv >= 0 && sv !== 1) {
    throw new Refused("undecodable", `not a change event: unsupported schema_version ${sv} (this build knows 1)`);
  }
  const ev = {
    specversion: field(v, "specversion", asStr, "a string"),
    id: field(v, "id", asUuid, "a UUID"),
    source: field(v, "source", asStr, "a string"),
    type: field(v, "type", asStr, "a string"),
    time: field(v, "time", asStr, "a string"),
    subject: field(v, "subject", asStr, "a string"),
    account_id: field(v, "account_id", asUuid, "a UUID"),
    shard_id: field(v, "shard_id", asStr, "a string"),
    actor: field(v, "actor", decodeActor, "an actor"),
    request_id: field(v, "request_id", asStr, "a string"),
    entity_version: field(v, "entity_version", (x) => (typeof x === "number" && Number.isInteger(x) ? x : undefined), "an integer"),
    changed_fields: field(v, "changed_fields", (x) => (Array.isArray(x) && x.every((f) => typeof f === "string") ? x : undefined), "a sequence of strings"),
    changes: v.changes === undefined || v.changes === null ? null : v.changes,
    bookmark: v.bookmark === undefined || v.bookmark === null ? null : asStr(v.bookmark),
    schema_version: field(v, "schema_version", (x) => (asInt(x) !== undefined && x >= 0 && x <= 0xffffffff ? x : undefined), "u32"),
  };
  if (ev.bookmark === undefined) throw undecodable("invalid type for `bookmark`, expected a string");
  if (ev.specversion !== "1.0") throw new Refused("undecodable", `not a change event: unsupported specversion ${ev.specversion}`);
  if (!ev.subject.includes("/") || !ev.type.includes(".")) throw undecodable("subject or type lacks its separator");
  return ev;
}

const target = (ev) => {
  const at = ev.subject.indexOf("/");
  return [ev.subject.slice(0, at), ev.subject.slice(at + 1)];
};
const actionOf = (ev) => ev.type.slice(ev.type.lastIndexOf(".") + 1);

function isKnownType(type, collection) {
  const at = type.lastIndexOf(".");
  if (at < 0) return false;
  const entity = type.slice(0, at);
  const action = type.slice(at + 1);
  return EVENT_TYPES.some(([s, c, actions]) => s === entity && c === collection && actions.includes(action));
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))$/;
function isRfc3339(s) {
  const m = RFC3339.exec(s);
  if (!m) return false;
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number);
  const days = [31, y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  if (mo < 1 || mo > 12 || d < 1 || d > days[mo - 1] || h > 23 || mi > 59 || se > 59) return false;
  return m[9] === undefined || (Number(m[9]) <= 23 && Number(m[10]) <= 59);
}

function checkSpelling(ev, body) {
  for (const key of ["id", "account_id"]) {
    if (!isCanonicalUuid(body[key])) throw schema(ev, `${key} is not a canonical UUID`);
  }
}

function checkEnvelope(ev) {
  const [collection, id] = target(ev);
  if (!isKnownType(ev.type, collection)) {
    throw new Refused("unknown_type", `unknown event type ${ev.type} for subject collection ${collection}`);
  }
  if (!isCanonicalUuid(id)) throw schema(ev, "subject id is not a canonical UUID");
  const action = actionOf(ev);
  const least = action === "purged" || action === "erased" ? 0 : 1;
  if (ev.entity_version < least) throw schema(ev, `entity_version must be at least ${least}`);
  if (ev.changed_fields.length === 0 && action !== "created") throw schema(ev, "changed_fields names no field");
  if (ev.changed_fields.length > MAX_CHANGED_FIELDS) throw schema(ev, `changed_fields names more than ${MAX_CHANGED_FIELDS} fields`);
  if (ev.changed_fields.some((f) => f.trim() === "")) throw schema(ev, "changed_fields holds an empty name");
  if (ev.changed_fields.some((f) => enc.encode(f).length > MAX_FIELD_NAME)) {
    throw schema(ev, `a changed field is longer than ${MAX_FIELD_NAME} bytes`);
  }
  if (!isRfc3339(ev.time)) throw schema(ev, "time is not an RFC 3339 instant");
  let shardSource = false;
  if (ev.source.startsWith("/deployments/")) {
    const rest = ev.source.slice("/deployments/".length);
    const at = rest.indexOf("/shards/");
    if (at >= 0) {
      const d = rest.slice(0, at);
      const s = rest.slice(at + "/shards/".length);
      shardSource = d !== "" && s !== "" && !s.includes("/");
    }
  }
  if (!shardSource || ev.shard_id === "") throw schema(ev, "source does not name a shard");
  if (collection === "accounts" && id !== ev.account_id) throw schema(ev, "an account event concerns its own account");
  const c = ev.changes;
  if (c === null) return;
  if (typeof c !== "object" || Array.isArray(c)) throw schema(ev, "changes is not an object");
  if (enc.encode(JSON.stringify(sorted(c))).length > MAX_CHANGES_BYTES) {
    throw schema(ev, `changes is larger than ${MAX_CHANGES_BYTES} bytes`);
  }
  for (const k of Object.keys(c).sort()) {
    const v = c[k];
    if (!(v && typeof v === "object" && !Array.isArray(v) && "before" in v && "after" in v)) {
      throw schema(ev, `changes.${k} is not {before, after}`);
    }
  }
}

// ---- derived fields (services/derived.rs)
function workFor(ev) {
  const [ty, id] = target(ev);
  const action = actionOf(ev);
  const changed = (f) => ev.changed_fields.includes(f);
  if (ty === "clients" && (action === "created" || action === "updated" || action === "erased")) return [{ refresh: id }];
  if (ty === "documents" && (action === "created" || action === "deleted")) return [{ recount: id }];
  if (ty === "groups" && (action === "deleted" || (action === "updated" && changed("name")))) return [{ fanOut: "group_name", id }];
  if (ty === "users" && (action === "deleted" || action === "erased" || (action === "updated" && changed("display_name")))) {
    return [{ fanOut: "adviser_name", id }];
  }
  return [];
}
const workStmt = (db, account, w) =>
  w.refresh !== undefined ? db.prepare(REFRESH_CLIENT).bind(account, w.refresh) : db.prepare(RECOUNT_DOCUMENTS).bind(account, w.recount);
// The event's index work as plain statements, or null when it fans out.
function derivedStatements(db, ev) {
  const work = workFor(ev);
  if (work.some((w) => w.fanOut)) return null;
  return work.map((w) => workStmt(db, ev.account_id, w));
}

async function runChunk(db, job) {
  const r = await db.prepare(fanOutSql(job.kind)).bind(job.account_id, job.target_id, job.after, CHUNK).all();
  if (r.results.length < CHUNK) return null;
  let last = "";
  for (const row of r.results) if (typeof row.id === "string" && row.id > last) last = row.id;
  return { ...job, after: last };
}

async function applyDerived(db, ev) {
  const follow = [];
  for (const w of workFor(ev)) {
    if (!w.fanOut) {
      await workStmt(db, ev.account_id, w).all();
      continue;
    }
    const job = { index_job: 1, kind: w.fanOut, account_id: ev.account_id, shard_id: ev.shard_id, target_id: w.id, after: "" };
    const next = await runChunk(db, job);
    if (next) follow.push(next);
  }
  return follow;
}

// ---- the audit trail's links (domain/audit.rs)
function linkOf(ev, head, recorded) {
  const [ty, id] = target(ev);
  const e = {
    seq: head.seq + 1,
    event_id: ev.id,
    account_id: ev.account_id,
    actor: ev.actor.type === "user" ? { type: "user", id: ev.actor.id, role: ev.actor.role } : { type: "system", id: ev.actor.id },
    action: ev.type,
    target: { type: ty, id },
    event_time: ev.time,
    recorded_time: recorded,
    request_id: ev.request_id,
    outcome: "success",
    entity_version: ev.entity_version,
    changed_fields: ev.changed_fields,
  };
  if (ev.changes !== null) e.changes = sorted(ev.changes);
  e.prev_hash = head.hash;
  return e;
}

// SHA-256 over prev_hash and the canonical entry (keys sorted, without hash and receipt).
async function hashed(e) {
  e.hash = await sha256hex(e.prev_hash + JSON.stringify(sorted({ ...e, hash: undefined })));
  return e;
}

async function unsignedLinks(account, head, from, cutHead, recorded) {
  const d = new Uint8Array(
    await crypto.subtle.digest("SHA-256", enc.encode(`${UNSIGNED_LINKS_ACTION}\n${account}\n${from}\n${head.seq}`)),
  ).slice(0, 16);
  d[6] = (d[6] & 0x0f) | 0x80;
  d[8] = (d[8] & 0x3f) | 0x80;
  let hex = "";
  for (const b of d) hex += b.toString(16).padStart(2, "0");
  const changes = { unsigned_from: from, unsigned_to: head.seq };
  if (cutHead !== null) changes.cut_head = cutHead;
  return hashed({
    seq: head.seq + 1,
    event_id: parseUuid(hex),
    account_id: account,
    actor: { type: "system", id: WRITER_ACTOR },
    action: UNSIGNED_LINKS_ACTION,
    target: { type: "audit_log", id: `${from}..=${head.seq}` },
    event_time: recorded,
    recorded_time: recorded,
    request_id: "",
    outcome: "success",
    entity_version: 0,
    changed_fields: [],
    changes: sorted(changes),
    prev_hash: head.hash,
  });
}

const insertLink = (db, e) => db.prepare(INSERT_LINK).bind(e.account_id, e.seq, JSON.stringify(e));

// The chain head as the head statement reads it.
async function readHead(rows, account, seal) {
  const row = rows[0];
  if (!row) return { kind: "head", head: { seq: 0, hash: GENESIS_HASH } };
  if (typeof row.existing === "number") return { kind: "recorded" };
  if (typeof row.seq !== "number" || typeof row.hash !== "string") return { kind: "head", head: { seq: 0, hash: GENESIS_HASH } };
  const head = { seq: row.seq, hash: row.hash };
  let r = null;
  try {
    r = typeof row.receipt === "string" ? JSON.parse(row.receipt) : null;
  } catch {
    r = null;
  }
  const sealed = await verifyReceipt(seal, account, head.seq, head.hash, r);
  return { kind: sealed ? "head" : "unsealed", head };
}

const isConstraint = (e) => {
  const m = String(e && e.message ? e.message : e);
  return m.includes("constraint failed") || m.includes("SQLITE_CONSTRAINT");
};

// ---- R2 anchors (services/checkpoints.rs)
const headsPrefix = (account) => `audit-heads/${account}/`;
const headKey = (account, seq) => `${headsPrefix(account)}${String(seq).padStart(20, "0")}.json`;

async function anchorsAbove(bucket, seal, account, headSeq) {
  const start = headKey(account, Math.max(headSeq, 0));
  let signed = null;
  const keys = [];
  let cursor;
  while (keys.length < ABOVE_LOOKED_AT) {
    const l = await bucket.list({
      prefix: headsPrefix(account),
      limit: Math.min(Math.max(ABOVE_LOOKED_AT - keys.length, 1), 1000),
      ...(cursor ? { cursor } : { startAfter: start }),
    });
    for (const o of l.objects) keys.push(o.key);
    if (!(l.truncated && l.cursor)) break;
    cursor = l.cursor;
  }
  for (const key of keys) {
    const o = await bucket.get(key);
    if (!o) continue;
    let a;
    try {
      a = JSON.parse(await o.text());
    } catch {
      continue;
    }
    if (a.account_id === account && key === headKey(account, a.seq) && (await verifyReceipt(seal, account, a.seq, a.hash, a.receipt))) {
      signed = a;
    }
  }
  return signed;
}

async function anchorHead(bucket, seal, account, head) {
  if (head.seq <= 0) return false;
  const anchor = { account_id: account, seq: head.seq, hash: head.hash, receipt: await receipt(seal, account, head.seq, head.hash) };
  const put = await bucket.put(headKey(account, head.seq), JSON.stringify(anchor), {
    httpMetadata: { contentType: "application/json" },
    onlyIf: { etagDoesNotMatch: "*" },
  });
  return put !== null;
}

// ---- the batch (shared/src/consumer/mod.rs)
const ACK = { d: "ack" };
const STORAGE_RETRY = { d: "retry", delay: STORAGE_RETRY_SECONDS };
const deadLetter = (kind, text) => ({ d: "dead", kind, text });

function sessionOf(env, served, binding) {
  if (!served.includes(binding) || !env[binding]) return null;
  return env[binding].withSession("first-primary");
}

async function checkBatch(env, served, seal, bodies, faultsOut) {
  const out = bodies.map((b) => {
    try {
      const ev = decode(b);
      checkSpelling(ev, b);
      checkEnvelope(ev);
      return { ev, binding: "" };
    } catch (e) {
      if (e instanceof Refused) return deadLetter(e.kind, e.message);
      throw e;
    }
  });
  const learned = { heads: new Map(), recordedFirst: new Set(), tails: new Map() };
  const accounts = [...new Set(out.filter((c) => c.ev).map((c) => c.ev.account_id))].sort();
  if (accounts.length === 0) return { out, learned };
  let placements;
  try {
    const r = await env.ACCOUNTS_DB.withSession("first-primary").prepare(PLACEMENTS).bind(JSON.stringify(accounts)).all();
    placements = new Map();
    for (const row of r.results) {
      const id = parseUuid(row.id);
      if (!id || typeof row.shard_id !== "string") continue;
      let faults = null;
      try {
        faults = typeof row.faults === "string" ? JSON.parse(row.faults) : null;
      } catch {
        faults = null;
      }
      placements.set(id, { shard_id: row.shard_id, binding: typeof row.binding === "string" ? row.binding : null, faults });
    }
  } catch (e) {
    console.warn(JSON.stringify({ level: "WARN", message: "registry unavailable; retrying the batch", error: String(e) }));
    return { out: out.map((c) => (c.ev ? STORAGE_RETRY : c)), learned };
  }
  if (env.ENVIRONMENT === "local") {
    for (const [a, p] of placements) if (p.faults) faultsOut.set(a, p.faults);
  }
  const groups = []; // [binding, account, [index]]
  out.forEach((c, i) => {
    if (!c.ev) return;
    const p = placements.get(c.ev.account_id);
    if (!p) {
      out[i] = deadLetter("unknown_account", `account ${c.ev.account_id} is not registered`);
      return;
    }
    if (p.shard_id !== c.ev.shard_id) {
      out[i] = deadLetter("wrong_shard", `account lives on shard ${p.shard_id}, the event names shard ${c.ev.shard_id}`);
      return;
    }
    if (p.binding === null || !served.includes(p.binding) || !env[p.binding]) {
      console.error(JSON.stringify({ level: "ERROR", message: "shard not bound by this consumer; retrying its events", shard: c.ev.shard_id }));
      out[i] = STORAGE_RETRY;
      return;
    }
    c.binding = p.binding;
    const g = groups.find(([b, a]) => b === p.binding && a === c.ev.account_id);
    if (g) g[2].push(i);
    else groups.push([p.binding, c.ev.account_id, [i]]);
  });
  for (const [binding, account, members] of groups) {
    const db = sessionOf(env, served, binding);
    const ids = members.map((i) => out[i].ev.id);
    let results;
    try {
      results = await db.batch([db.prepare(HEAD).bind(account, ids[0]), db.prepare(EVIDENCE).bind(account, JSON.stringify(ids))]);
    } catch (e) {
      console.warn(JSON.stringify({ level: "WARN", message: "shard unavailable; retrying its events", error: String(e) }));
      for (const i of members) out[i] = STORAGE_RETRY;
      continue;
    }
    const h = await readHead(results[0].results, account, seal);
    if (h.kind === "head") {
      learned.tails.set(account, h.head.seq);
      learned.heads.set(account, h.head);
    } else if (h.kind === "unsealed") learned.tails.set(account, h.head.seq);
    else learned.recordedFirst.add(account);
    const evidence = new Array(ids.length).fill(null).map(() => ({ outbox: null, recorded: false }));
    for (const r of results[1].results) {
      if (typeof r.i !== "number" || !evidence[r.i]) continue;
      let ob = null;
      try {
        ob = typeof r.outbox === "string" ? JSON.parse(r.outbox) : null;
      } catch {
        ob = null;
      }
      evidence[r.i] = { outbox: ob, recorded: r.recorded === 1 };
    }
    members.forEach((i, k) => {
      const c = out[i];
      const e = evidence[k];
      if (e.recorded) {
        out[i] = ACK;
        return;
      }
      if (e.outbox === null) {
        out[i] = deadLetter("not_in_outbox", `event ${c.ev.id} is not in its shard's outbox`);
        return;
      }
      try {
        const row = decode(e.outbox);
        if (row.id === c.ev.id && row.account_id === c.ev.account_id) c.ev = row;
        else out[i] = deadLetter("not_in_outbox", `event ${c.ev.id} is not in its shard's outbox`);
      } catch (err) {
        if (!(err instanceof Refused)) throw err;
        out[i] = deadLetter("undecodable", `not a change event: outbox row: ${err.message}`);
      }
    });
  }
  return { out, learned };
}

async function cutTrails(env, seal, learned) {
  const cut = new Map();
  const bucket = env.AUDIT_CHECKPOINTS;
  if (!bucket) return cut;
  for (const [account, tail] of learned.tails) {
    try {
      const a = await anchorsAbove(bucket, seal, account, tail);
      if (a) {
        console.error(JSON.stringify({ level: "ERROR", message: "the audit trail's head is below a head the writer anchored: the trail was cut", account, head: tail, anchored: a.seq }));
        cut.set(account, a.seq);
      }
    } catch (e) {
      console.warn(JSON.stringify({ level: "WARN", message: "listing anchored heads failed", account, error: String(e) }));
    }
  }
  return cut;
}

async function appendRuns(env, served, seal, checked, learned, oneByOne) {
  const done = new Array(checked.length).fill(null);
  const groups = []; // [binding, account, [[i, ev, extra]]]
  const dbs = new Map();
  checked.forEach((c, i) => {
    if (!c.ev || oneByOne(c)) return;
    let db = dbs.get(c.binding);
    if (!db) dbs.set(c.binding, (db = sessionOf(env, served, c.binding)));
    const extra = derivedStatements(db, c.ev);
    if (!extra) return;
    const g = groups.find(([b, a]) => b === c.binding && a === c.ev.account_id);
    if (g) g[2].push([i, c.ev, extra]);
    else groups.push([c.binding, c.ev.account_id, [[i, c.ev, extra]]]);
  });
  for (const [binding, account, group] of groups) {
    if (learned.recordedFirst.has(account)) continue;
    const db = dbs.get(binding);
    let head = learned.heads.get(account);
    if (!head) {
      try {
        const h = await readHead((await db.prepare(HEAD).bind(account, group[0][1].id).all()).results, account, seal);
        if (h.kind !== "head") continue;
        head = h.head;
      } catch {
        continue;
      }
    }
    const now = new Date().toISOString();
    const links = [];
    let at = head;
    for (const [, ev] of group) {
      const e = await hashed(linkOf(ev, at, now));
      at = { seq: e.seq, hash: e.hash };
      links.push(e);
    }
    const last = links[links.length - 1];
    last.receipt = await receipt(seal, account, last.seq, last.hash);
    const stmts = [];
    links.forEach((e, k) => {
      stmts.push(insertLink(db, e));
      stmts.push(...group[k][2]);
    });
    try {
      await db.batch(stmts);
      learned.heads.set(account, at);
      for (const [i] of group) done[i] = ACK;
    } catch (e) {
      learned.heads.delete(account);
      if (!isConstraint(e)) {
        console.warn(JSON.stringify({ level: "WARN", message: "appending a run failed; retrying its events", error: String(e) }));
        for (const [i] of group) done[i] = STORAGE_RETRY;
      }
    }
  }
  return done;
}

// services::audit::append: one event, its link signed.
async function appendOne(db, seal, ev, knownHead, cut) {
  const lookup = async () => readHead((await db.prepare(HEAD).bind(ev.account_id, ev.id).all()).results, ev.account_id, seal);
  const known = cut === null ? knownHead : null;
  let head;
  let unsigned = null;
  if (known) head = known;
  else {
    const h = await lookup();
    if (h.kind === "recorded") return { kind: "duplicate" };
    if (h.kind === "unsealed") return { kind: "unsealed", seq: h.head.seq };
    head = h.head;
    if (cut !== null && cut > head.seq) unsigned = head.seq + 1;
  }
  const cutAbove = cut !== null && cut > head.seq ? cut : null;
  const now = new Date().toISOString();
  const links = [];
  let at = head;
  if (unsigned !== null) {
    const own = await unsignedLinks(ev.account_id, head, unsigned, cutAbove, now);
    own.receipt = await receipt(seal, ev.account_id, own.seq, own.hash);
    at = { seq: own.seq, hash: own.hash };
    links.push(own);
  }
  const e = await hashed(linkOf(ev, at, now));
  e.receipt = await receipt(seal, ev.account_id, e.seq, e.hash);
  links.push(e);
  try {
    if (links.length === 1) await insertLink(db, e).all();
    else await db.batch(links.map((l) => insertLink(db, l)));
  } catch (err) {
    if (isConstraint(err) && known) {
      const h = await lookup();
      if (h.kind === "recorded") return { kind: "duplicate" };
      throw new Error("constraint failed: audit chain moved");
    }
    throw err;
  }
  const newHead = { seq: e.seq, hash: e.hash };
  if (unsigned !== null) {
    console.error(JSON.stringify({ level: "ERROR", message: "audit links without the writer's receipt (or a cut trail) recorded by the writer; the trail carries on", account: ev.account_id, from: unsigned, to: head.seq, cut: cutAbove }));
  }
  return { kind: "new", head: newHead };
}

async function processOne(env, served, seal, c, heads, cut) {
  const ev = c.ev;
  const db = sessionOf(env, served, c.binding);
  if (!db) return STORAGE_RETRY;
  let attempt = 0;
  let r;
  for (;;) {
    try {
      r = await appendOne(db, seal, ev, heads.get(ev.account_id) || null, cut.has(ev.account_id) ? cut.get(ev.account_id) : null);
      break;
    } catch (e) {
      if (isConstraint(e) && attempt < CHAIN_RACE_ATTEMPTS) {
        heads.delete(ev.account_id);
        attempt += 1;
        continue;
      }
      heads.delete(ev.account_id);
      if (isConstraint(e)) return { d: "retry", delay: RACE_RETRY_SECONDS };
      console.warn(JSON.stringify({ level: "WARN", message: "audit append failed", event: ev.id, error: String(e) }));
      return STORAGE_RETRY;
    }
  }
  if (r.kind === "new") {
    cut.delete(ev.account_id);
    heads.set(ev.account_id, r.head);
  } else if (r.kind === "unsealed") {
    heads.delete(ev.account_id);
    console.error(JSON.stringify({ level: "ERROR", message: "audit chain ends in a link the writer did not sign; event dead-lettered for replay", account: ev.account_id, seq: r.seq }));
    return deadLetter("unsealed_chain_head", `audit chain head ${r.seq} is not signed by the audit writer: appended outside the service`);
  }
  // Index fields after the audit row: a retry finds the event recorded and redoes only this.
  let jobs;
  try {
    jobs = await applyDerived(db, ev);
  } catch (e) {
    console.warn(JSON.stringify({ level: "WARN", message: "index update failed", event: ev.id, error: String(e) }));
    return STORAGE_RETRY;
  }
  if (jobs.length === 0) return ACK;
  if (!env.INDEX_JOBS) return STORAGE_RETRY;
  try {
    await env.INDEX_JOBS.sendBatch(jobs.map((j) => ({ body: j, contentType: "json" })));
    return ACK;
  } catch (e) {
    console.warn(JSON.stringify({ level: "WARN", message: "sending index follow-ups failed", error: String(e) }));
    return { d: "retry", delay: STORAGE_RETRY_SECONDS };
  }
}

async function anchorHeads(env, seal, read, heads) {
  const moved = [...heads].filter(([a, h]) => {
    const r = read.get(a);
    return !r || r.seq !== h.seq || r.hash !== h.hash;
  });
  if (moved.length === 0) return;
  const bucket = env.AUDIT_CHECKPOINTS;
  if (!bucket) {
    console.error(JSON.stringify({ level: "ERROR", message: "the checkpoint bucket (AUDIT_CHECKPOINTS) is not bound: heads not anchored" }));
    return;
  }
  for (const [account, head] of moved) {
    const earlier = read.get(account);
    const list = earlier && earlier.seq > 0 && earlier.seq < head.seq ? [earlier, head] : [head];
    for (const h of list) {
      try {
        await anchorHead(bucket, seal, account, h);
      } catch (e) {
        console.warn(JSON.stringify({ level: "WARN", message: "anchoring the audit head failed; retried with the next run", account, seq: h.seq, error: String(e) }));
      }
    }
  }
}

async function processBatch(env, bodies) {
  const seal = await loadSeal(env);
  if (!seal) {
    console.error(JSON.stringify({ level: "ERROR", message: "the audit writer's key (AUDIT_SIGNING_KEY) is missing or malformed; the batch is retried" }));
    return bodies.map(() => STORAGE_RETRY);
  }
  const served = String(env.SHARD_BINDINGS || "").split(",").map((s) => s.trim()).filter(Boolean);
  const faults = new Map();
  const { out: checked, learned } = await checkBatch(env, served, seal, bodies, faults);
  const cut = await cutTrails(env, seal, learned);
  const read = new Map(learned.heads);
  const done = await appendRuns(env, served, seal, checked, learned, (c) => faults.has(c.ev.account_id) || cut.has(c.ev.account_id));
  const heads = learned.heads;
  const out = [];
  for (let i = 0; i < checked.length; i++) {
    const c = checked[i];
    if (done[i]) out.push(done[i]);
    else if (!c.ev) out.push(c);
    else {
      let d = await processOne(env, served, seal, c, heads, cut);
      const f = faults.get(c.ev.account_id);
      if (f) {
        if (f.duplicate_delivery && d.d === "ack") d = await processOne(env, served, seal, c, heads, cut);
        if (d.d === "ack" && typeof f.consumer_retry_rate === "number" && Math.random() < f.consumer_retry_rate) d = { d: "retry", delay: 0 };
      }
      out.push(d);
    }
  }
  await anchorHeads(env, seal, read, heads);
  return out;
}

export default {
  async queue(batch, env) {
    const started = Date.now();
    const messages = batch.messages;
    const bodies = messages.map((m) => m.body);
    let decisions;
    if (!env.ACCOUNTS_DB) {
      console.error(JSON.stringify({ level: "ERROR", message: "binding missing; the batch is retried", binding: "ACCOUNTS_DB" }));
      batch.retryAll();
      return;
    }
    try {
      decisions = await processBatch(env, bodies);
    } catch (e) {
      console.error(JSON.stringify({ level: "ERROR", message: "batch failed; retried", error: String(e && e.stack ? e.stack : e) }));
      decisions = bodies.map(() => STORAGE_RETRY);
    }
    const tally = { acked: 0, retried: 0, dead_lettered: 0 };
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      const d = decisions[i];
      if (d.d === "ack") {
        m.ack();
        tally.acked++;
      } else if (d.d === "retry") {
        m.retry({ delaySeconds: d.delay });
        tally.retried++;
      } else {
        console.warn(JSON.stringify({ level: "WARN", message: "dead letter", message_id: m.id, reason: d.kind }));
        tally.dead_lettered++;
        let sent = false;
        if (env.CHANGE_EVENTS_DLQ) {
          try {
            const wrapped = { dead_letter: 1, reason: d.text, kind: d.kind, source_queue: SOURCE_QUEUE, message: bodies[i] ?? null };
            await env.CHANGE_EVENTS_DLQ.sendBatch([{ body: wrapped, contentType: "json" }]);
            sent = true;
          } catch {
            sent = false;
          }
        }
        if (sent) m.ack();
        else m.retry();
      }
    }
    const ok = tally.retried === 0 && tally.dead_lettered === 0;
    console.log(JSON.stringify({ level: ok ? "INFO" : "WARN", message: "queue batch done", outcome: ok ? "ok" : "partial", ...tally, messages: messages.length, duration_ms: Date.now() - started }));
  },
};
