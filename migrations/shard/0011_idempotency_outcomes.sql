-- Idempotency rows kept the whole first response (personal data) for a day, so a replay after
-- an erasure answered with the erased name. Rows now name their outcome (table, entity id) and
-- a replay renders the row as it is now. This scrubs the responses already stored, keeping
-- what identifies the outcome (taken from `location`, `/v1/{table}/{uuid}`), and indexes the
-- entity so erasure can delete a subject's rows (`store::idempotency::delete_for_entity`).
UPDATE idempotency_keys SET body = json_set(json_remove(body, '$.response'),
    '$.table', substr(body ->> '$.location', 5, length(body ->> '$.location') - 41),
    '$.entity_id', substr(body ->> '$.location', -36))
  WHERE json_type(body, '$.response') IS NOT NULL;
ALTER TABLE idempotency_keys ADD COLUMN entity_id TEXT
    GENERATED ALWAYS AS (body ->> '$.entity_id') VIRTUAL;
CREATE INDEX idempotency_by_entity ON idempotency_keys (account_id, entity_id);
