// BENCH ONLY (cargo xtask bench --write-path): the product's `POST /v1/clients` in plain
// JavaScript, imported by index.js, which does the request's authentication and routing as for
// the GET. The same work as the product's create (shared/src/api/crud.rs `create`, the write
// protocol of services/changes.rs and store/changes.rs):
//   - the write checks (readonly role, the shard's schema check and status), the JSON body
//     (Content-Type, 256 KiB, strict: a key named twice is a 400, nesting at most 8), the
//     entity's validation with the product's pointers and messages, UUIDs lower-cased;
//   - `Idempotency-Key` (scoped to the user and route, stored as its SHA-256 digest; a replay
//     compares the body's canonical JSON, renders the created row as it is now, 410 once deleted);
//   - one read per reference set (group_id, adviser_id: live rows only, 422 otherwise);
//   - one D1 batch: the client row (version 1, timestamps, the event stamp), its outbox row
//     (the CloudEvents envelope) and the key's row; constraint failures mapped as the product;
//   - the change event sent to the `change-events` queue after the batch (the D1 bookmark in
//     it; `x-twin-consumer: 1`: to `change-events-twin`, the twin consumer's, consumer.js), its
//     outbox row marked published 2 s later with the isolate's other sent events;
//   - 201 with the row as the product renders it, `location`, `etag`.
// tests/twin.rs sends the same creates to the product and to this Worker and compares the
// answers and the rows each wrote.

import { Problem, canonical, present } from "./index.js";

const str = (max) => ({ t: "str", max });
const DATE = { t: "date" };
const UUIDK = { t: "uuid" };
const ADDRESS = [
  ["line1", str(200), false], ["line2", str(200), false], ["town", str(100), false],
  ["county", str(100), false], ["postcode", str(10), false],
];
const DEPENDANT = [["name", str(200), true], ["relationship", str(100), true], ["date_of_birth", DATE, false]];
const FIELDS = [
  ["title", str(20), false], ["forenames", str(200), true], ["surname", str(200), true],
  ["date_of_birth", DATE, false], ["email", { t: "email" }, false], ["phone", str(30), false],
  ["address", { t: "object", fields: ADDRESS }, false],
  ["status", { t: "enum", values: ["prospect", "active", "former"] }, true],
  ["group_id", UUIDK, false], ["adviser_id", UUIDK, false],
  ["dependants", { t: "array", item: { t: "object", fields: DEPENDANT }, max: 20 }, false],
  ["relationship_ended_on", DATE, false], ["notes", str(4000), false],
];
const READ_ONLY = ["group_name", "adviser_name", "search_text", "document_count", "legal_hold", "restricted", "erased_at"];
const COMMON_READ_ONLY = ["id", "account_id", "version", "created_at", "updated_at", "deleted_at", "index_rev", "last_event_id"];
const REFERENCES = [["group_id", "groups"], ["adviser_id", "users"]];
const MAX_BODY = 256 * 1024;
const MAX_DEPTH = 8;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
// Rust's char::is_whitespace (Unicode White_Space), and control characters (Cc).
const ONLY_WS = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;
const WS_OR_CONTROL = /[\u0000-\u001f\u007f-\u009f \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
const TRIM = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

const INSERT_CLIENT =
  "INSERT INTO clients (account_id, id, body) VALUES (?1, ?2, ?3) RETURNING body, CAST(body ->> '$.version' AS INTEGER) AS v";
const INSERT_OUTBOX = "INSERT INTO outbox (account_id, id, body) VALUES (?1, ?2, ?3)";
const INSERT_KEY = "INSERT INTO idempotency_keys (account_id, id, body) VALUES (?1, ?2, ?3)";
const FIND_KEY = "SELECT body FROM idempotency_keys WHERE account_id = ?1 AND id IN (?2, ?3) LIMIT 1";
const TABLES = new Set(["groups", "users", "clients", "documents"]);
const SINGULAR = { groups: "group", users: "user", clients: "client", documents: "document" };

const enc = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export class Fenced extends Error {}

const bad = (detail) => new Problem(400, "bad-request", "Bad Request", detail);

// ---- validation (domain/entity.rs)
function utf8Length(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdfff ? 2 : 3;
  }
  return n;
}

function codePoints(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xdc00 || c > 0xdfff) n++;
  }
  return n;
}

function isEmail(s) {
  const at = s.indexOf("@");
  if (at < 0) return false;
  const domain = s.slice(at + 1);
  return at > 0 && domain.includes(".") && !domain.startsWith(".") && !domain.endsWith(".") &&
    !WS_OR_CONTROL.test(s) && !domain.includes("@");
}

function isDate(s) {
  const m = DATE_RE.exec(s);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (mo < 1 || mo > 12 || d < 1) return false;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1];
  return d <= days;
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

function checkValue(kind, v, ptr, out) {
  switch (kind.t) {
    case "str":
      if (typeof v !== "string") out.push({ message: "must be a string", pointer: ptr });
      else if (codePoints(v) > kind.max) out.push({ message: `at most ${kind.max} characters`, pointer: ptr });
      else if (CONTROL.test(v)) out.push({ message: "control characters are not allowed", pointer: ptr });
      break;
    case "email":
      if (!(typeof v === "string" && utf8Length(v) <= 254 && isEmail(v)))
        out.push({ message: "must be an email address (at most 254 characters)", pointer: ptr });
      break;
    case "enum":
      if (!(typeof v === "string" && kind.values.includes(v)))
        out.push({ message: `must be one of ${kind.values.join(", ")}`, pointer: ptr });
      break;
    case "uuid":
      if (!(typeof v === "string" && UUID.test(v))) out.push({ message: "must be a UUID", pointer: ptr });
      break;
    case "date":
      if (!(typeof v === "string" && isDate(v))) out.push({ message: "must be a date YYYY-MM-DD", pointer: ptr });
      break;
    case "object":
      if (isObject(v)) checkObject(kind.fields, [], v, ptr, out);
      else out.push({ message: "must be an object", pointer: ptr });
      break;
    case "array":
      if (!Array.isArray(v)) out.push({ message: "must be an array", pointer: ptr });
      else if (v.length > kind.max) out.push({ message: `at most ${kind.max} items`, pointer: ptr });
      else v.forEach((x, i) => checkValue(kind.item, x, `${ptr}/${i}`, out));
      break;
  }
}

// A create is complete: required fields are checked at every level.
function checkObject(fields, readOnly, o, ptr, out) {
  for (const k of Object.keys(o).sort()) {
    const p = `${ptr}/${k}`;
    const v = o[k];
    if ((ptr === "" && COMMON_READ_ONLY.includes(k)) || readOnly.includes(k)) {
      out.push({ message: "is read-only", pointer: p });
      continue;
    }
    const fd = fields.find((f) => f[0] === k);
    if (!fd) out.push({ message: "is not a known field", pointer: p });
    else if (v === null) continue;
    else if (fd[1].t === "str" && fd[2] && typeof v === "string" && ONLY_WS.test(v))
      out.push({ message: "must not be empty or whitespace only", pointer: p });
    else checkValue(fd[1], v, p, out);
  }
  for (const [name, , required] of fields)
    if (required && (!Object.prototype.hasOwnProperty.call(o, name) || o[name] === null))
      out.push({ message: "is required", pointer: `${ptr}/${name}` });
}

function depth(v) {
  if (v === null || typeof v !== "object") return 0;
  let d = 0;
  for (const x of Array.isArray(v) ? v : Object.values(v)) d = Math.max(d, depth(x));
  return d + 1;
}

function stripNulls(v) {
  if (Array.isArray(v)) v.forEach(stripNulls);
  else if (isObject(v))
    for (const k of Object.keys(v)) {
      if (v[k] === null) delete v[k];
      else stripNulls(v[k]);
    }
}

// serde_json's position of an error: the line, and the byte offset of the next unread byte in it.
function position(text, at) {
  const lineStart = text.lastIndexOf("\n", at - 1) + 1;
  let line = 1;
  for (let i = text.indexOf("\n"); i >= 0 && i < lineStart; i = text.indexOf("\n", i + 1)) line++;
  return `line ${line} column ${utf8Length(text.slice(lineStart, at))}`;
}

// A key named twice in one object (JSON.parse keeps the last one silently): the product refuses
// the body. `text` is valid JSON.
function duplicateKey(text) {
  const stack = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b) stack.push(new Set());
    else if (c === 0x5b) stack.push(null);
    else if (c === 0x7d || c === 0x5d) stack.pop();
    else if (c === 0x22) {
      const start = i;
      let escaped = false;
      for (i++; ; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) {
          escaped = true;
          i++;
        } else if (d === 0x22) break;
      }
      const keys = stack[stack.length - 1];
      if (!keys) continue;
      let j = i + 1;
      for (let d = text.charCodeAt(j); d === 0x20 || d === 0x0a || d === 0x0d || d === 0x09; d = text.charCodeAt(++j));
      if (text.charCodeAt(j) !== 0x3a) continue;
      const key = escaped ? JSON.parse(text.slice(start, i + 1)) : text.slice(start + 1, i);
      if (keys.has(key)) return `duplicate key \`${key}\` at ${position(text, j)}`;
      keys.add(key);
    }
  }
  return null;
}

function jsonBody(request, bytes) {
  const ct = request.headers.get("content-type") || "";
  if (ct.split(";")[0].trim().toLowerCase() !== "application/json")
    throw new Problem(415, "unsupported-media-type", "Unsupported Media Type", "Content-Type must be application/json");
  if (bytes.byteLength > MAX_BODY)
    throw new Problem(413, "payload-too-large", "Payload Too Large", `JSON bodies are limited to ${MAX_BODY} bytes`);
  let text, v;
  try {
    text = strictUtf8.decode(bytes);
    v = JSON.parse(text);
  } catch (e) {
    throw bad(`the body is not valid JSON: ${e.message}`);
  }
  const dup = duplicateKey(text);
  if (dup !== null) throw bad(`the body is not valid JSON: ${dup}`);
  if (depth(v) > MAX_DEPTH) throw bad(`JSON nesting is limited to ${MAX_DEPTH} levels`);
  return { input: v, text };
}

// ---- ids, digests, the event
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const hex = (bytes) => {
  let s = "";
  for (const b of bytes) s += HEX[b];
  return s;
};

async function sha256(text) {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(text))));
}

function uuidV7(ms) {
  const r = crypto.getRandomValues(new Uint8Array(10));
  const t = ms.toString(16).padStart(12, "0");
  const s = t + "7" + HEX[r[0]][1] + HEX[r[1]] + HEX[0x80 | (r[2] & 0x3f)] + hex(r.subarray(3));
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

const RAY = /^[0-9a-f]{16}-[A-Z]{3}$/;
const LOWER_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const HEX16 = /^[0-9a-f]{16}$/;

// An event records a caller's free-text request id only as a digest (personal_data.rs).
async function recordedRequestId(id) {
  if (RAY.test(id) || LOWER_UUID.test(id) || HEX16.test(id)) return id;
  return `sha256:${(await sha256(id)).slice(0, 16)}`;
}

// ---- Idempotency-Key (api/idempotency.rs)
async function idempotencyKey(request, sub) {
  const raw = request.headers.get("idempotency-key");
  if (raw === null) return null;
  const k = raw.replace(TRIM, "");
  if (k === "" || k.length > 200 || !/^[!-~]+$/.test(k))
    throw bad("Idempotency-Key must be 1 to 200 printable ASCII characters");
  const scope = `${sub}:POST /v1/clients:`;
  return { id: `${scope}#${await sha256(k)}`, legacy: `${scope}${k}` };
}

// The body as sent (before its UUIDs are lower-cased), canonical: keys sorted, no whitespace.
const requestHash = (text) => sha256(`canonical-v1\0/v1/clients\0${JSON.stringify(canonical(JSON.parse(text)))}`);

async function replay(t, key, path, text, cost) {
  const r = await query(t, FIND_KEY, [t.claims.account_id, key.id, key.legacy], cost);
  if (r.length === 0) return null;
  const stored = JSON.parse(r[0].body);
  const hash = stored.request_hash;
  if (hash !== (await requestHash(text)) && hash !== (await sha256(`${path}\0${text}`)))
    throw new Problem(422, "unprocessable", "Unprocessable Content", "this Idempotency-Key was used with a different request body");
  const location = typeof stored.location === "string" ? stored.location : "";
  const from = location.startsWith("/v1/") ? location.slice(4).split("/") : [];
  const table = typeof stored.table === "string" ? stored.table : from[0];
  const id = typeof stored.entity_id === "string" ? stored.entity_id : from[1];
  if (!TABLES.has(table) || !UUID.test(id || "")) {
    console.error(JSON.stringify({ level: "ERROR", message: "internal error", detail: `idempotency row ${key.id} names no resource` }));
    throw new Problem(500, "internal", "Internal Server Error", "an unexpected error occurred");
  }
  const rows = await query(t, `SELECT id, body FROM ${table} WHERE account_id = ?1 AND id = ?2`, [t.claims.account_id, id.toLowerCase()], cost);
  const body = rows.length ? JSON.parse(rows[0].body) : null;
  if (!body || body.deleted_at != null || body.erased_at != null)
    throw new Problem(410, "resource-gone", "Gone",
      `the ${SINGULAR[table]} this Idempotency-Key created (${id.toLowerCase()}) has since been deleted or erased; its first response is not replayed`);
  return new Response(JSON.stringify(canonical(present(t.claims.role, id.toLowerCase(), body))), {
    status: Number.isInteger(stored.status) ? stored.status : 201,
    headers: {
      "content-type": "application/json", "idempotent-replayed": "true", location,
      etag: `"v${Number.isInteger(body.version) ? body.version : 0}"`,
    },
  });
}

// ---- D1
function meter(cost, metas) {
  cost.calls += 1;
  for (const m of metas) {
    cost.statements += 1;
    cost.rows_read += (m && m.rows_read) || 0;
    cost.rows_written += (m && m.rows_written) || 0;
  }
}

function storeError(e) {
  const msg = String((e && e.message) || e);
  if (msg.includes("tenant_fenced")) return new Fenced(msg);
  if (msg.includes("constraint failed") || msg.includes("SQLITE_CONSTRAINT")) return { constraint: msg };
  console.error(JSON.stringify({ level: "ERROR", message: "storage failure", error: msg }));
  return new Problem(503, "storage-unavailable", "Service Unavailable", "storage is unavailable; retry later");
}

function constraintProblem(msg) {
  if (msg.includes("FOREIGN KEY"))
    return new Problem(422, "unprocessable", "Unprocessable Content", "a referenced id (for example group_id, adviser_id or client_id) does not exist in this account");
  const i = msg.indexOf("UNIQUE constraint failed: ");
  const hint = i >= 0 ? `duplicate value of ${msg.slice(i + 26).split(/[: ,]/)[0] || "a unique field"}` : "constraint";
  return new Problem(409, "conflict", "Conflict", `the write conflicts with existing data (${hint})`);
}

async function query(t, sql, params, cost) {
  let r;
  try {
    r = await t.session.prepare(sql).bind(...params).all();
  } catch (e) {
    const err = storeError(e);
    throw err.constraint ? constraintProblem(err.constraint) : err;
  }
  meter(cost, [r.meta]);
  return r.results;
}

// ---- the write checks (api/tenant.rs `require_write`)
const debugName = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

function requireWrite(t) {
  if (t.claims.role === "readonly") throw new Problem(403, "forbidden", "Forbidden", "the readonly role cannot write");
  const shard = t.route.shard;
  if (shard.schema && shard.schema.status !== "current")
    throw new Problem(503, "unavailable", "Service Unavailable",
      `shard ${shard.id} schema is ${debugName(shard.schema.status)} (${shard.schema.detail || "see the migration check"}); writes are paused until migrations are applied`);
  if (shard.status === "readonly" || shard.status === "provisioning")
    throw new Problem(503, "unavailable", "Service Unavailable", `shard ${shard.id} is ${debugName(shard.status)}; writes are paused`);
}

// ---- sent events' outbox rows, marked published a moment later (services/marks.rs)
const FLUSH_AFTER = 2_000;
const SCHEDULED_EXPIRES = 30_000;
const MAX_RESTORED = 10_000;
const pending = new Map(); // binding -> Map(account -> [event ids])
let scheduled = null;

function addMark(binding, account, id) {
  let m = pending.get(binding);
  if (!m) pending.set(binding, (m = new Map()));
  const ids = m.get(account);
  if (ids) ids.push(id);
  else m.set(account, [id]);
}

const MARK = (n) =>
  `UPDATE outbox SET body = json_set(body, '$.published_at', ?1) WHERE account_id = ?2 AND id IN (${Array.from({ length: n }, (_, i) => `?${i + 3}`).join(", ")})`;

async function flushMarks(env) {
  await new Promise((r) => setTimeout(r, FLUSH_AFTER));
  scheduled = null;
  const due = Array.from(pending.entries());
  pending.clear();
  const now = new Date().toISOString();
  for (const [binding, accounts] of due) {
    const db = env[binding];
    if (!db) continue; // the relay resends them
    const stmts = [];
    for (const [account, ids] of accounts)
      for (let i = 0; i < ids.length; i += 90) {
        const chunk = ids.slice(i, i + 90);
        stmts.push(db.prepare(MARK(chunk.length)).bind(now, account, ...chunk));
      }
    try {
      await db.withSession().batch(stmts);
    } catch (e) {
      console.warn(JSON.stringify({ level: "WARN", message: "marking outbox rows published failed; kept for the next flush", binding }));
      let room = MAX_RESTORED - Array.from(pending.values()).reduce((n, m) => n + Array.from(m.values()).reduce((k, v) => k + v.length, 0), 0);
      for (const [account, ids] of accounts)
        for (const id of ids.slice(0, Math.max(0, room))) {
          addMark(binding, account, id);
          room--;
        }
    }
  }
}

/// After a request: schedule the marks flush if events were sent and none is scheduled.
export function scheduleMarks(env, ctx, nowMs) {
  if (pending.size === 0 || (scheduled !== null && nowMs < scheduled + SCHEDULED_EXPIRES)) return;
  scheduled = nowMs;
  ctx.waitUntil(flushMarks(env));
}

// ---- the create
export async function createClient(request, env, cfg, t, bytes, path, rid, cost) {
  requireWrite(t);
  const { input, text } = jsonBody(request, bytes);
  const errors = [];
  if (isObject(input)) checkObject(FIELDS, READ_ONLY, input, "", errors);
  else errors.push({ message: "the body must be a JSON object", pointer: "" });
  if (errors.length)
    throw new Problem(400, "validation", "Validation Failed", "the request body is not valid; see `errors`", { errors });
  for (const f of ["group_id", "adviser_id"]) if (typeof input[f] === "string") input[f] = input[f].toLowerCase();
  const account = t.claims.account_id;
  const key = await idempotencyKey(request, t.claims.sub);
  if (key) {
    const r = await replay(t, key, path, text, cost);
    if (r) return r;
  }
  for (const [field, table] of REFERENCES) {
    const ref = input[field];
    if (typeof ref !== "string") continue;
    const rows = await query(t, `SELECT id, body FROM ${table} WHERE account_id = ?1 AND id = ?2 AND deleted_at IS NULL`, [account, ref], cost);
    if (rows.length === 0)
      throw new Problem(422, "unprocessable", "Unprocessable Content", `${field} ${ref} does not exist in this account (or has been deleted)`);
  }
  const id = uuidV7(Date.now());
  const changed = Object.keys(input).sort();
  const nowMs = Date.now();
  const evId = uuidV7(nowMs);
  const time = new Date(nowMs).toISOString();
  // Stored as the product stores it: keys sorted at every level, nulls left out, the server's
  // fields (read-only in a request, so never in `input`).
  const body = canonical(Object.assign({}, input, { created_at: time, last_event_id: evId, updated_at: time, version: 1 }));
  stripNulls(body);
  const event = {
    account_id: account,
    actor: { id: t.claims.sub, role: t.claims.role, type: "user" },
    bookmark: null,
    changed_fields: changed,
    entity_version: 1,
    id: evId,
    published_at: null,
    request_id: await recordedRequestId(rid),
    schema_version: 1,
    shard_id: t.shard,
    source: `/deployments/${cfg.deployment}/shards/${t.shard}`,
    specversion: "1.0",
    subject: `clients/${id}`,
    time,
    type: "client.created",
  };
  const location = `/v1/clients/${id}`;
  const stmts = [
    t.session.prepare(INSERT_CLIENT).bind(account, id, JSON.stringify(body)),
    t.session.prepare(INSERT_OUTBOX).bind(account, evId, JSON.stringify(event)),
  ];
  if (key) {
    const outcome = { created_at: time, entity_id: id, location, request_hash: await requestHash(text), status: 201, table: "clients" };
    stmts.push(t.session.prepare(INSERT_KEY).bind(account, key.id, JSON.stringify(outcome)));
  }
  let results;
  try {
    results = await t.session.batch(stmts);
  } catch (e) {
    const err = storeError(e);
    if (!err.constraint) throw err;
    // A concurrent request with the same key won the race: answer as it did.
    if (key) {
      const r = await replay(t, key, path, text, cost);
      if (r) return r;
    }
    throw constraintProblem(err.constraint);
  }
  meter(cost, results.map((r) => r.meta));
  const row = results[0].results[0];
  if (!row) {
    console.error(JSON.stringify({ level: "ERROR", message: "internal error", detail: "the insert returned no row" }));
    throw new Problem(500, "internal", "Internal Server Error", "an unexpected error occurred");
  }
  await publish(env, cfg, t, event, request.headers.get("x-twin-consumer"));
  return new Response(JSON.stringify(canonical(present(t.claims.role, id, JSON.parse(row.body)))), {
    status: 201,
    headers: { "content-type": "application/json", location, etag: `"v${row.v}"` },
  });
}

// After the batch committed: the event to the queue (its D1 bookmark in it); on success its
// outbox row waits for the marks flush, a failed send leaves it for the relay. With
// `x-twin-consumer: 1` (bench --consumer-path, tests/twin.rs) to the twin's own queue, consumed
// by consumer.js, so the pipeline is JavaScript end to end; with `x-twin-consumer: none` (bench
// --consumer-path only: the create's own CPU) to a queue nothing consumes.
async function publish(env, cfg, t, event, twinConsumer) {
  const faults = t.route.account.faults;
  if (cfg.local && faults && faults.queue_send_rate > 0 && Math.random() < faults.queue_send_rate) {
    console.warn(JSON.stringify({ level: "WARN", message: "fault injection: skipping the queue send; the relay will publish" }));
    return;
  }
  delete event.published_at;
  event.bookmark = t.session.getBookmark() || null;
  try {
    const queue =
      (twinConsumer === "1" && env.CHANGE_EVENTS_TWIN) || (twinConsumer === "none" && env.CHANGE_EVENTS_UNCONSUMED) || env.CHANGE_EVENTS;
    await queue.sendBatch([{ body: event, contentType: "json" }]);
    addMark(t.binding, event.account_id, event.id);
  } catch (e) {
    console.warn(JSON.stringify({ level: "WARN", message: "queue send failed; the outbox relay will publish", error: String(e) }));
  }
}
