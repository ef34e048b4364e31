-- Data shard: many tenants' rows, every row keyed by (account_id, id).
-- Every table follows .cursor/rules/d1-sql-json-body.mdc. Soft-deleted rows keep their key
-- (so foreign keys stay valid) and drop out of the partial list indexes.

-- body: {name, description, version, created_at, updated_at, deleted_at}
CREATE TABLE groups (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL CHECK (json_valid(body)),
    name_lc TEXT GENERATED ALWAYS AS (lower(body ->> '$.name')) VIRTUAL,
    deleted_at TEXT GENERATED ALWAYS AS (body ->> '$.deleted_at') VIRTUAL,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX groups_live ON groups (account_id, id) WHERE deleted_at IS NULL;
CREATE INDEX groups_by_name ON groups (account_id, name_lc, id) WHERE deleted_at IS NULL;

-- body: {email, display_name, role: admin|member|readonly, group_id, version, ...}
CREATE TABLE users (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL CHECK (json_valid(body)),
    email_lc TEXT GENERATED ALWAYS AS (lower(body ->> '$.email')) VIRTUAL,
    role TEXT GENERATED ALWAYS AS (body ->> '$.role') VIRTUAL,
    group_id TEXT GENERATED ALWAYS AS (body ->> '$.group_id') VIRTUAL,
    deleted_at TEXT GENERATED ALWAYS AS (body ->> '$.deleted_at') VIRTUAL,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, group_id) REFERENCES groups (account_id, id)
);
CREATE UNIQUE INDEX users_by_email ON users (account_id, email_lc) WHERE deleted_at IS NULL;
CREATE INDEX users_live ON users (account_id, id) WHERE deleted_at IS NULL;
CREATE INDEX users_by_role ON users (account_id, role, id) WHERE deleted_at IS NULL;
CREATE INDEX users_by_group ON users (account_id, group_id, id) WHERE deleted_at IS NULL;

-- body: {title, forenames, surname, date_of_birth, email, phone, address: {...}, status:
-- prospect|active|former, group_id, adviser_id, dependants: [...], relationship_ended_on,
-- group_name, adviser_name (denormalised), version, created_at, updated_at, deleted_at}
CREATE TABLE clients (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL CHECK (json_valid(body)),
    status TEXT GENERATED ALWAYS AS (body ->> '$.status') VIRTUAL,
    group_id TEXT GENERATED ALWAYS AS (body ->> '$.group_id') VIRTUAL,
    adviser_id TEXT GENERATED ALWAYS AS (body ->> '$.adviser_id') VIRTUAL,
    surname_lc TEXT GENERATED ALWAYS AS (lower(body ->> '$.surname')) VIRTUAL,
    deleted_at TEXT GENERATED ALWAYS AS (body ->> '$.deleted_at') VIRTUAL,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, group_id) REFERENCES groups (account_id, id),
    FOREIGN KEY (account_id, adviser_id) REFERENCES users (account_id, id)
);
CREATE INDEX clients_live ON clients (account_id, id) WHERE deleted_at IS NULL;
CREATE INDEX clients_by_status ON clients (account_id, status, id) WHERE deleted_at IS NULL;
CREATE INDEX clients_by_group ON clients (account_id, group_id, id) WHERE deleted_at IS NULL;
CREATE INDEX clients_by_adviser ON clients (account_id, adviser_id, id) WHERE deleted_at IS NULL;
CREATE INDEX clients_by_surname ON clients (account_id, surname_lc, id) WHERE deleted_at IS NULL;

-- body: {client_id, kind, title, content: {content_type, size, sha256, uploaded_at}|null,
-- version, created_at, updated_at, deleted_at}. Contents live in R2 under
-- accounts/{account_id}/documents/{id}.
CREATE TABLE documents (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL CHECK (json_valid(body)),
    client_id TEXT GENERATED ALWAYS AS (body ->> '$.client_id') VIRTUAL,
    kind TEXT GENERATED ALWAYS AS (body ->> '$.kind') VIRTUAL,
    deleted_at TEXT GENERATED ALWAYS AS (body ->> '$.deleted_at') VIRTUAL,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, client_id) REFERENCES clients (account_id, id)
);
CREATE INDEX documents_live ON documents (account_id, id) WHERE deleted_at IS NULL;
CREATE INDEX documents_by_client ON documents (account_id, client_id, id) WHERE deleted_at IS NULL;
CREATE INDEX documents_by_kind ON documents (account_id, kind, id) WHERE deleted_at IS NULL;
