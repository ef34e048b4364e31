-- The retention sweep reads each candidate row once and deletes it by key, no joins (D1
-- bills every row a join touches):
-- * every document carries its client's relationship end (`client_ended_on`), written by the
--   API in the same batch as the document's creation or the client's change;
-- * client legal holds get a partial index, so "is this client held?" is a probe that reads
--   nothing when the answer is no (the common case).
ALTER TABLE documents ADD COLUMN client_ended_on TEXT
    GENERATED ALWAYS AS (body ->> '$.client_ended_on') VIRTUAL;
CREATE INDEX documents_client_ended ON documents (account_id, client_ended_on, id)
    WHERE client_ended_on IS NOT NULL;
ALTER TABLE clients ADD COLUMN legal_hold INTEGER
    GENERATED ALWAYS AS (body ->> '$.legal_hold') VIRTUAL;
CREATE INDEX clients_on_hold ON clients (account_id, id) WHERE legal_hold = 1;
-- Existing documents (json_patch with a null member leaves no key: bodies never hold nulls).
UPDATE documents SET body = json_patch(body, json_object('client_ended_on',
    (SELECT c.relationship_ended_on FROM clients c
      WHERE c.account_id = documents.account_id AND c.id = documents.client_id)))
WHERE EXISTS (SELECT 1 FROM clients c WHERE c.account_id = documents.account_id
    AND c.id = documents.client_id AND c.relationship_ended_on IS NOT NULL);
