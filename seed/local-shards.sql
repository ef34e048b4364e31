-- Shard registry of the LOCAL environment (environment configuration, not schema). Idempotent.
-- Deployed environments register shards through their own provisioning; bindings must match
-- wrangler/*.jsonc.
INSERT OR REPLACE INTO shards (id, body) VALUES
  ('shard-eu-01', json('{"id":"shard-eu-01","binding":"SHARD_EU_01","tier":"shared","status":"active","capacity_bytes":10000000000,"jurisdiction":"eu","deployment":"clientdocs-api","created_at":"2026-11-01T00:00:00.000Z","updated_at":"2026-11-01T00:00:00.000Z"}')),
  ('shard-eu-02', json('{"id":"shard-eu-02","binding":"SHARD_EU_02","tier":"shared","status":"active","capacity_bytes":10000000000,"jurisdiction":"eu","deployment":"clientdocs-api","created_at":"2026-11-01T00:00:00.000Z","updated_at":"2026-11-01T00:00:00.000Z"}')),
  ('shard-ded-01', json('{"id":"shard-ded-01","binding":"SHARD_DED_01","tier":"dedicated","status":"active","capacity_bytes":10000000000,"jurisdiction":"eu","deployment":"clientdocs-api-ded-01","created_at":"2026-11-01T00:00:00.000Z","updated_at":"2026-11-01T00:00:00.000Z"}'));
