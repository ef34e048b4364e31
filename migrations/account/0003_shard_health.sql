-- Shard health time series (every 15 minutes) and the rebalancing proposals made from it.
-- body: {id, shard_id, at, size_bytes, capacity_bytes, accounts: [{account_id, rows, bytes}],
--        outbox_backlog, oldest_unpublished_seconds, probe_ms}
CREATE TABLE shard_health (
    id TEXT NOT NULL PRIMARY KEY,
    body TEXT NOT NULL CHECK (json_valid(body)),
    shard_id TEXT GENERATED ALWAYS AS (body ->> '$.shard_id') VIRTUAL,
    at TEXT GENERATED ALWAYS AS (body ->> '$.at') VIRTUAL,
    CHECK (body ->> '$.id' = id)
);
-- "latest samples of shard X" and growth over a window.
CREATE INDEX shard_health_by_shard ON shard_health (shard_id, at);

-- body: {id, created_at, run_id, proposal: {kind, ...}, status: open|superseded}
CREATE TABLE rebalance_proposals (
    id TEXT NOT NULL PRIMARY KEY,
    body TEXT NOT NULL CHECK (json_valid(body)),
    created_at TEXT GENERATED ALWAYS AS (body ->> '$.created_at') VIRTUAL,
    status TEXT GENERATED ALWAYS AS (body ->> '$.status') VIRTUAL,
    CHECK (body ->> '$.id' = id)
);
CREATE INDEX rebalance_proposals_by_status ON rebalance_proposals (status, created_at);
