-- Restrictions end (issue 12): a record's own `restricted.until` is indexed, so the retention
-- sweep finds the restrictions whose end has passed (an index range of one account that reads
-- nothing when there are none) and lifts them with their `*.unrestricted` events. A restriction
-- with no end (`until` null) is not in these indexes: it never ends by itself.
ALTER TABLE clients ADD COLUMN restricted_until TEXT
    GENERATED ALWAYS AS (body ->> '$.restricted.until') VIRTUAL;
CREATE INDEX clients_restriction_ends ON clients (account_id, restricted_until, id)
    WHERE restricted_until IS NOT NULL;
ALTER TABLE documents ADD COLUMN restricted_until TEXT
    GENERATED ALWAYS AS (body ->> '$.restricted.until') VIRTUAL;
CREATE INDEX documents_restriction_ends ON documents (account_id, restricted_until, id)
    WHERE restricted_until IS NOT NULL;

-- No document is created for a client whose erasure was requested (pending, kept restricted or
-- completed) or who was erased (pseudonymised): refused inside the INSERT's own statement, so a
-- create that raced the request cannot slip in between a check and the insert. The message is
-- the typed refusal (ports::StoreError::Constraint, `client_erasure`). A tenant move fills a
-- target shard behind its fence (`tenant_fences`): the rows it copies were created before.
ALTER TABLE erasure_requests ADD COLUMN subject_id TEXT
    GENERATED ALWAYS AS (body ->> '$.subject_id') VIRTUAL;
CREATE INDEX erasure_requests_by_subject ON erasure_requests (account_id, subject_id);
CREATE TRIGGER documents_refuse_erased_client BEFORE INSERT ON documents
WHEN (EXISTS (SELECT 1 FROM erasure_requests WHERE account_id = NEW.account_id
              AND subject_id = NEW.body ->> '$.client_id' AND body ->> '$.subject_type' = 'client')
      OR EXISTS (SELECT 1 FROM clients WHERE account_id = NEW.account_id
                 AND id = NEW.body ->> '$.client_id' AND body ->> '$.erased_at' IS NOT NULL))
     AND NOT EXISTS (SELECT 1 FROM tenant_fences WHERE account_id = NEW.account_id)
BEGIN
    SELECT RAISE(ABORT, 'client_erasure: an erasure of this client was requested; constraint failed');
END;
