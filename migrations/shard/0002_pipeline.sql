-- Change-event pipeline: transactional outbox, audit trail, idempotency keys.

-- One row per change event, written in the same D1 batch as the change itself.
-- body: the event envelope (shared::event::ChangeEvent) plus `published_at` (null until sent).
CREATE TABLE outbox (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL CHECK (json_valid(body)),
    created_at TEXT GENERATED ALWAYS AS (body ->> '$.time') VIRTUAL,
    published_at TEXT GENERATED ALWAYS AS (body ->> '$.published_at') VIRTUAL,
    PRIMARY KEY (account_id, id)
);
-- System-job indexes (not tenant-led, by the rule's documented exception): the relay scans
-- unpublished rows of all tenants oldest first; the purge scans published rows by age.
CREATE INDEX outbox_unpublished ON outbox (created_at) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Append-only, hash-chained per account. seq is assigned at append (prev seq + 1); the
-- primary key makes a concurrent second append of the same seq fail, and the unique event
-- index makes a redelivered event append nothing.
-- body: {seq, event_id, actor: {...}, action, target: {type, id}, event_time, recorded_time,
-- request_id, outcome, prev_hash, hash}
CREATE TABLE audit_log (
    account_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL CHECK (json_valid(body)),
    event_id TEXT GENERATED ALWAYS AS (body ->> '$.event_id') VIRTUAL,
    target_type TEXT GENERATED ALWAYS AS (body ->> '$.target.type') VIRTUAL,
    target_id TEXT GENERATED ALWAYS AS (body ->> '$.target.id') VIRTUAL,
    actor_id TEXT GENERATED ALWAYS AS (body ->> '$.actor.id') VIRTUAL,
    event_time TEXT GENERATED ALWAYS AS (body ->> '$.event_time') VIRTUAL,
    PRIMARY KEY (account_id, seq),
    CHECK (body ->> '$.seq' = seq)
);
CREATE UNIQUE INDEX audit_by_event ON audit_log (account_id, event_id);
CREATE INDEX audit_by_target ON audit_log (account_id, target_type, target_id, seq);
CREATE INDEX audit_by_actor ON audit_log (account_id, actor_id, seq);
CREATE INDEX audit_by_time ON audit_log (account_id, event_time, seq);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- Idempotency-Key replay. id = "{user}:{method} {path}:{key}".
-- body: {request_hash, status, location, etag, response, created_at}
CREATE TABLE idempotency_keys (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL CHECK (json_valid(body)),
    created_at TEXT GENERATED ALWAYS AS (body ->> '$.created_at') VIRTUAL,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX idempotency_by_age ON idempotency_keys (created_at);
