-- One lease per job and shard (`retention:shard-eu-01`), taken before a run touches the shard so
-- that two runs of one job never work on one shard at once. A lease expires (a crashed run does
-- not block for ever) and is then taken over with the next fencing token; the token only rises,
-- so the row is never deleted. Cursor writes (`job_cursors`) require the writer's token to be
-- the lease's current one: a run whose lease was taken over cannot move the cursor.
-- body: {id, job, shard_id, holder, token, acquired_at, expires_at}
-- No generated column or index: every statement reads one lease by its key.
CREATE TABLE job_leases (
    id TEXT NOT NULL PRIMARY KEY,
    body TEXT NOT NULL CHECK (json_valid(body)),
    CHECK (body ->> '$.id' = id),
    CHECK (json_type(body, '$.token') = 'integer')
);
