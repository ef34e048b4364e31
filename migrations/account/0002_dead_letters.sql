-- Messages the pipeline could not process, recorded by the dead-letter queue's consumer.
-- They are operator data (envelopes carry ids, not personal data) and may concern any shard,
-- so they live in the account D1. Never silently dropped: listed and replayed by operators.
-- body: {id, queue, reason, message, received_at, replayed_at|null, replay_count}
CREATE TABLE dead_letters (
    id TEXT NOT NULL PRIMARY KEY,
    body TEXT NOT NULL CHECK (json_valid(body)),
    received_at TEXT GENERATED ALWAYS AS (body ->> '$.received_at') VIRTUAL,
    replayed_at TEXT GENERATED ALWAYS AS (body ->> '$.replayed_at') VIRTUAL,
    CHECK (body ->> '$.id' = id)
);
-- Operator listing (newest first) and the retention purge, both by age.
CREATE INDEX dead_letters_by_received ON dead_letters (received_at, id);
