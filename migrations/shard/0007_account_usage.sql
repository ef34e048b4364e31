-- Per-account D1 usage metered by the API from D1's result meta, in 15-minute periods.
-- id = the period's start (RFC 3339, UTC, e.g. 2026-11-26T08:15:00Z).
-- body: {period_start, requests, writes, calls, statements, rows_read, rows_written}
-- Each API isolate adds its counts every few seconds (one upsert per account); the shard
-- health job reads the previous complete period of every account.
CREATE TABLE account_usage (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL CHECK (json_valid(body)),
    PRIMARY KEY (account_id, id)
);
-- System job (shard health, retention purge): one period across all tenants of the shard.
CREATE INDEX account_usage_by_period ON account_usage (id);
