-- Account versions written as REAL by the old D1 binding (see the shard migration of the same
-- name); the value does not change (2.0 -> 2).
UPDATE accounts SET body = json_set(body, '$.version', CAST(body ->> '$.version' AS INTEGER))
  WHERE json_type(body, '$.version') = 'real';

-- Accounts whose own changes wait to be forwarded to their shard's outbox (the relay looks
-- every minute; the partial index holds only them, so the look costs nothing when none wait).
CREATE INDEX accounts_pending_events ON accounts (db_shard_id)
  WHERE body -> '$.pending_events' IS NOT NULL;
