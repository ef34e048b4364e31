-- Where a bounded job stopped, so its next invocation resumes there (one row per job and
-- shard, e.g. `retention:shard-eu-01`). Deleted when a cycle completes.
-- body: {id, job, shard_id, cursor: {...}, cycle_started_at, updated_at, invocations}
CREATE TABLE job_cursors (
    id TEXT NOT NULL PRIMARY KEY,
    body TEXT NOT NULL CHECK (json_valid(body)),
    CHECK (body ->> '$.id' = id)
);
