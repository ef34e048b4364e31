-- Account versions written as REAL by the old D1 binding (see the shard migration of the same
-- name); the value does not change (2.0 -> 2).
UPDATE accounts SET body = json_set(body, '$.version', CAST(body ->> '$.version' AS INTEGER))
  WHERE json_type(body, '$.version') = 'real';
