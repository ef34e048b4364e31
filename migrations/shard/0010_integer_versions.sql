-- Versions (and the derived-field revision) written as REAL by the old D1 binding: every JS
-- number reached D1 as a double, so `json_set(body, '$.version', ?n)` stored `2.0` and the row
-- became uneditable (ETag "v0", every conditional write refused). Numbers now keep their type
-- on the way to D1 (shared::ports::bind); this repairs the rows already stored. The value does
-- not change (2.0 -> 2), so no change event is written for it.
UPDATE groups SET body = json_set(body, '$.version', CAST(body ->> '$.version' AS INTEGER))
  WHERE json_type(body, '$.version') = 'real';
UPDATE users SET body = json_set(body, '$.version', CAST(body ->> '$.version' AS INTEGER))
  WHERE json_type(body, '$.version') = 'real';
UPDATE clients SET body = json_set(body, '$.version', CAST(body ->> '$.version' AS INTEGER))
  WHERE json_type(body, '$.version') = 'real';
UPDATE documents SET body = json_set(body, '$.version', CAST(body ->> '$.version' AS INTEGER))
  WHERE json_type(body, '$.version') = 'real';
UPDATE erasure_requests SET body = json_set(body, '$.version', CAST(body ->> '$.version' AS INTEGER))
  WHERE json_type(body, '$.version') = 'real';
UPDATE clients SET body = json_set(body, '$.index_rev', CAST(body ->> '$.index_rev' AS INTEGER))
  WHERE json_type(body, '$.index_rev') = 'real';
UPDATE clients SET body = json_set(body, '$.document_count', CAST(body ->> '$.document_count' AS INTEGER))
  WHERE json_type(body, '$.document_count') = 'real';
-- Outbox rows whose event copied such a version (`"entity_version": 2.0`).
UPDATE outbox SET body = json_set(body, '$.entity_version', CAST(body ->> '$.entity_version' AS INTEGER))
  WHERE json_type(body, '$.entity_version') = 'real';
