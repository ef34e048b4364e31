-- Account D1: routes every request to its tenant's data shard. No tenant data lives here.
-- Every table follows .cursor/rules/d1-sql-json-body.mdc: the document is `body`, generated
-- columns only for fields that are filtered, sorted or joined on.

-- Data shards (one D1 each). body: {id, binding, tier: shared|dedicated,
-- status: active|draining|readonly|provisioning, capacity_bytes, jurisdiction, deployment,
-- created_at, updated_at}
CREATE TABLE shards (
    id TEXT NOT NULL PRIMARY KEY,
    body TEXT NOT NULL CHECK (json_valid(body)),
    tier TEXT GENERATED ALWAYS AS (body ->> '$.tier') VIRTUAL,
    status TEXT GENERATED ALWAYS AS (body ->> '$.status') VIRTUAL,
    CHECK (body ->> '$.id' = id),
    CHECK (body ->> '$.tier' IN ('shared', 'dedicated')),
    CHECK (body ->> '$.status' IN ('active', 'draining', 'readonly', 'provisioning'))
);
-- Placement: "active shared shards".
CREATE INDEX shards_by_tier_status ON shards (tier, status);

-- Tenants. body: {id, name, slug, db_shard_id, is_active, tier, kind: production|training|test,
-- uk_only, cidr_allowlist: [..]|null, retention: {...}, created_at, updated_at, version}
CREATE TABLE accounts (
    id TEXT NOT NULL PRIMARY KEY,
    body TEXT NOT NULL CHECK (json_valid(body)),
    slug TEXT GENERATED ALWAYS AS (body ->> '$.slug') VIRTUAL,
    db_shard_id TEXT GENERATED ALWAYS AS (body ->> '$.db_shard_id') VIRTUAL
        REFERENCES shards (id),
    CHECK (body ->> '$.id' = id),
    CHECK (body ->> '$.tier' IN ('shared', 'dedicated')),
    CHECK (body ->> '$.kind' IN ('production', 'training', 'test')),
    CHECK (json_type(body, '$.is_active') IN ('true', 'false'))
);
CREATE UNIQUE INDEX accounts_by_slug ON accounts (slug);
-- Placement and rebalancing: "accounts on shard X".
CREATE INDEX accounts_by_shard ON accounts (db_shard_id);

-- Custom domains. body: {hostname, account_id, created_at}
CREATE TABLE domains (
    hostname TEXT NOT NULL PRIMARY KEY,
    body TEXT NOT NULL CHECK (json_valid(body)),
    account_id TEXT GENERATED ALWAYS AS (body ->> '$.account_id') VIRTUAL
        REFERENCES accounts (id),
    CHECK (body ->> '$.hostname' = hostname)
);
CREATE INDEX domains_by_account ON domains (account_id);

-- Scheduler runs, one row per job per invocation. body: {id, job, cron, started_at,
-- finished_at, outcome: ok|partial|failed, counts: {...}, detail}
CREATE TABLE job_runs (
    id TEXT NOT NULL PRIMARY KEY,
    body TEXT NOT NULL CHECK (json_valid(body)),
    job TEXT GENERATED ALWAYS AS (body ->> '$.job') VIRTUAL,
    started_at TEXT GENERATED ALWAYS AS (body ->> '$.started_at') VIRTUAL,
    CHECK (body ->> '$.id' = id)
);
-- "latest runs of job X".
CREATE INDEX job_runs_by_job ON job_runs (job, started_at);
