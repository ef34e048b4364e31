-- Retention sweep support: candidates are found by index, so rows read stay close to rows deleted.
ALTER TABLE clients ADD COLUMN relationship_ended_on TEXT
    GENERATED ALWAYS AS (body ->> '$.relationship_ended_on') VIRTUAL;
CREATE INDEX clients_ended ON clients (account_id, relationship_ended_on, id)
    WHERE relationship_ended_on IS NOT NULL;
-- Soft-deleted rows by deletion time, per account.
CREATE INDEX groups_deleted ON groups (account_id, deleted_at, id) WHERE deleted_at IS NOT NULL;
CREATE INDEX users_deleted ON users (account_id, deleted_at, id) WHERE deleted_at IS NOT NULL;
CREATE INDEX clients_deleted ON clients (account_id, deleted_at, id) WHERE deleted_at IS NOT NULL;
CREATE INDEX documents_deleted ON documents (account_id, deleted_at, id) WHERE deleted_at IS NOT NULL;
-- All documents of a client, deleted or not (hard-deleting a client checks its foreign keys).
CREATE INDEX documents_all_by_client ON documents (account_id, client_id);
-- Foreign-key checks when groups or users are hard-deleted.
CREATE INDEX clients_all_by_group ON clients (account_id, group_id);
CREATE INDEX clients_all_by_adviser ON clients (account_id, adviser_id);
CREATE INDEX users_all_by_group ON users (account_id, group_id);
