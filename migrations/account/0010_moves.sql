-- Tenant moves (issue 15): one row per move of an account from one shard to another.
-- body: {id, account_id, source_shard, target_shard, phase, proposal_id, created_at, updated_at,
--        rev, tables: {name: {cursor, copied, deleted, ...}}, passes, verify: {...}, timings,
--        fenced_at, flipped_at, fenced_ms, error, detail}
-- phase: planned | copying | catching_up | verifying | cutover | cleanup | done | failed | cancelled
CREATE TABLE moves (
    id TEXT NOT NULL PRIMARY KEY,
    body TEXT NOT NULL CHECK (json_valid(body)),
    account_id TEXT GENERATED ALWAYS AS (body ->> '$.account_id') VIRTUAL,
    phase TEXT GENERATED ALWAYS AS (body ->> '$.phase') VIRTUAL,
    CHECK (body ->> '$.id' = id),
    CHECK (body ->> '$.phase' IN ('planned', 'copying', 'catching_up', 'verifying', 'cutover',
                                  'cleanup', 'done', 'failed', 'cancelled'))
);
-- A tenant has at most one move in flight.
CREATE UNIQUE INDEX moves_active_by_account ON moves (account_id)
    WHERE phase NOT IN ('done', 'failed', 'cancelled');
-- The scheduler's step: "moves in flight".
CREATE INDEX moves_by_phase ON moves (phase, id);
