-- The platform audit trail (issue 14): one link per operator action (account create,
-- deactivate, reactivate, holds, faults, replay, domains, identity providers, token minting,
-- message injection, job runs), with the operator's identity from Cloudflare Access (locally
-- the dev credential's fixed identity), hash-chained from the genesis hash like the tenants'
-- audit_log (domain::operator::PlatformEntry: hash = SHA-256(prev_hash || canonical entry)).
-- Keyed on its sequence number (one chain for the whole platform); append-only like the
-- shard's audit_log: no update, no delete, no insert that collides with a row (INSERT OR
-- REPLACE would delete without firing a delete trigger). A concurrent append of the same seq
-- fails on the key (SQLite's wording kept, so it is classified as a constraint) and is retried.
-- body: {seq, operator: {email, sub, via}, action, target: {type, id}, details, request_id,
--        time, prev_hash, hash}
CREATE TABLE platform_audit (
    seq INTEGER NOT NULL PRIMARY KEY,
    body TEXT NOT NULL CHECK (json_valid(body)),
    CHECK (body ->> '$.seq' IS seq)
);
CREATE TRIGGER platform_audit_no_collision BEFORE INSERT ON platform_audit
WHEN EXISTS (SELECT 1 FROM platform_audit WHERE seq = NEW.seq)
BEGIN
    SELECT RAISE(ABORT, 'UNIQUE constraint failed: platform_audit (append-only: a row is never replaced)');
END;
CREATE TRIGGER platform_audit_no_update BEFORE UPDATE ON platform_audit
BEGIN
    SELECT RAISE(ABORT, 'platform_audit is append-only');
END;
CREATE TRIGGER platform_audit_no_delete BEFORE DELETE ON platform_audit
BEGIN
    SELECT RAISE(ABORT, 'platform_audit is append-only');
END;
