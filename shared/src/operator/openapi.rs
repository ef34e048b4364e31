//! The operator Worker's OpenAPI 3.1 document (served at its `/openapi.json`); a test checks
//! it names exactly the (path, method) pairs of `operator::routes::ROUTES`.

use serde_json::{json, Map, Value};

fn err(desc: &str) -> Value {
    json!({"description": desc, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
}

fn admin_errors(extra: &[(&str, &str)]) -> Map<String, Value> {
    let mut m = Map::new();
    for (code, desc) in [
        ("400", "Bad request"),
        ("401", "Not an operator credential"),
        ("404", "Not found"),
        ("503", "The registry is unavailable"),
    ]
    .iter()
    .chain(extra)
    {
        m.insert((*code).into(), err(desc));
    }
    m
}

fn admin_op(
    id: &str,
    summary: &str,
    body: Option<Value>,
    ok: (&str, Value),
    extra: &[(&str, &str)],
) -> Value {
    let mut r = admin_errors(extra);
    r.insert(
        ok.0.into(),
        json!({"description": "OK", "content": {"application/json": {"schema": ok.1}}}),
    );
    let mut op = json!({"operationId": id, "tags": ["operator"], "summary": summary,
                        "security": [{"accessAuth": []}, {"devCredential": []}], "responses": r});
    if let Some(b) = body {
        op["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": b}}});
    }
    op
}

fn admin_paths(paths: &mut Map<String, Value>) {
    let account = json!({"$ref": "#/components/schemas/Account"});
    let items = json!({"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {"type": "object"}}}});
    let id = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}]);
    paths.insert("/admin/v1/shards".into(), json!({"get": admin_op("list_shards", "Shards with their account counts", None, ("200", items.clone()), &[])}));
    paths.insert("/admin/v1/shards/{id}/health".into(), json!({
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 100}}],
        "get": {"operationId": "shard_health", "tags": ["operator"], "security": [{"accessAuth": []}, {"devCredential": []}],
            "summary": "Health samples of a shard, newest first (size, per-account usage, outbox backlog, probe latency)",
            "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}}],
            "responses": admin_op("x", "", None, ("200", json!({"type": "object", "required": ["shard_id", "items"],
                "properties": {"shard_id": {"type": "string"}, "items": {"type": "array", "items": {"type": "object"}}}})), &[])["responses"].clone()}}));
    paths.insert(
        "/admin/v1/rebalance-proposals".into(),
        json!({"get": admin_op(
        "list_rebalance_proposals", "Open rebalancing proposals from the latest health data",
        None, ("200", items.clone()), &[])}),
    );
    paths.insert("/admin/v1/platform-events".into(), json!({"get": {
        "operationId": "list_platform_events", "tags": ["operator"], "security": [{"accessAuth": []}, {"devCredential": []}],
        "summary": "Platform events (CloudEvents), newest first: rebalancing proposals and other operator news",
        "parameters": [{"name": "type", "in": "query", "schema": {"type": "string", "maxLength": 200}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}}],
        "responses": admin_op("x", "", None, ("200", items.clone()), &[])["responses"].clone()}}));
    paths.insert("/admin/v1/job-runs".into(), json!({"get": {
        "operationId": "list_job_runs", "tags": ["operator"], "security": [{"accessAuth": []}, {"devCredential": []}],
        "parameters": [{"name": "job", "in": "query", "schema": {"type": "string", "enum": ["outbox_relay", "shard_health", "migration_check", "retention"]}}],
        "responses": admin_op("x", "", None, ("200", items), &[])["responses"].clone()}}));
    paths.insert("/admin/v1/accounts".into(), json!({"post": admin_op(
        "create_account",
        "Create an account on the least-full active shared shard, or on the named dedicated shard",
        Some(json!({"type": "object", "additionalProperties": false, "required": ["name", "slug"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "slug": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"},
                "kind": {"type": "string", "enum": ["production", "training", "test"]},
                "shard_id": {"type": "string"},
                "uk_only": {"type": "boolean"},
                "cidr_allowlist": {"type": ["array", "null"], "items": {"type": "string"}}}})),
        ("201", account.clone()),
        &[("409", "Slug or id already used"), ("415", "Content-Type must be application/json"), ("422", "No such shard, or not active")],
    )}));
    paths.insert("/admin/v1/accounts/{id}".into(), json!({"parameters": id, "get": admin_op("get_account", "An account", None, ("200", account.clone()), &[])}));
    for (action, summary) in [
        (
            "deactivate",
            "Deactivate: every request of the account gets 403",
        ),
        ("reactivate", "Reactivate"),
    ] {
        paths.insert(format!("/admin/v1/accounts/{{id}}/{action}"), json!({"parameters": id, "post": admin_op(&format!("{action}_account"), summary, None, ("200", account.clone()), &[])}));
    }
    paths.insert("/admin/v1/accounts/{id}/domains".into(), json!({"parameters": id, "post": admin_op(
        "add_domain", "Register a custom domain (its requests must carry this account's tokens)",
        Some(json!({"type": "object", "additionalProperties": false, "required": ["hostname"], "properties": {"hostname": {"type": "string", "maxLength": 253}}})),
        ("201", json!({"type": "object"})),
        &[("409", "Hostname already registered"), ("415", "Content-Type must be application/json")],
    )}));
    let dl_items = json!({"type": "object", "required": ["items", "next_cursor"], "properties": {
        "items": {"type": "array", "items": {"type": "object"}}, "next_cursor": {"type": ["string", "null"]}}});
    paths.insert("/admin/v1/dead-letters".into(), json!({"get": {
        "operationId": "list_dead_letters", "tags": ["operator"], "security": [{"accessAuth": []}, {"devCredential": []}],
        "summary": "Messages the pipeline could not process, newest first, with the reason",
        "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                       {"name": "cursor", "in": "query", "schema": {"type": "string"}}],
        "responses": admin_op("x", "", None, ("200", dl_items), &[])["responses"].clone()}}));
    paths.insert("/admin/v1/dead-letters/{id}/replay".into(), json!({
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 128}}],
        "post": admin_op("replay_dead_letter", "Send the original message to the change-event queue again", None, ("200", json!({"type": "object"})), &[])}));
    paths.insert("/admin/v1/accounts/{id}/legal-hold".into(), json!({"parameters": id, "put": admin_op(
        "set_account_legal_hold", "Place or lift a legal hold on everything of an account",
        Some(json!({"type": "object", "additionalProperties": false, "required": ["hold"], "properties": {"hold": {"type": "boolean"}}})),
        ("200", account.clone()), &[("415", "Content-Type must be application/json")])}));
    paths.insert(
        "/admin/v1/accounts/{id}/faults".into(),
        json!({"parameters": id, "put": admin_op(
        "set_faults", "Fault injection for this account (local environment only; 404 elsewhere)",
        Some(json!({"type": "object", "additionalProperties": false, "properties": {
            "queue_send_rate": {"type": "number", "minimum": 0, "maximum": 1},
            "consumer_retry_rate": {"type": "number", "minimum": 0, "maximum": 1},
            "duplicate_delivery": {"type": "boolean"}}})),
        ("200", account.clone()), &[("415", "Content-Type must be application/json")])}),
    );
    let mut inject = admin_op(
        "inject_change_event",
        "Put a raw message on the change-event queue (local environment only; 404 elsewhere)",
        Some(json!({})),
        ("202", json!({})),
        &[("415", "Content-Type must be application/json")],
    );
    inject["responses"]["202"] = json!({"description": "Queued"});
    paths.insert("/admin/v1/change-events".into(), json!({"post": inject}));
    paths.insert("/admin/v1/accounts/{id}/tokens".into(), json!({"parameters": id, "post": admin_op(
        "mint_demo_token", "Mint a tenant token (local environment only; 404 elsewhere)",
        Some(json!({"type": "object", "additionalProperties": false, "required": ["sub", "role"], "properties": {
            "sub": {"type": "string", "format": "uuid"}, "role": {"type": "string", "enum": ["admin", "member", "readonly"]},
            "ttl_seconds": {"type": "integer", "minimum": 60, "maximum": 2592000}}})),
        ("201", json!({"type": "object", "required": ["token", "claims"], "properties": {"token": {"type": "string"}, "claims": {"type": "object"}}})),
        &[("415", "Content-Type must be application/json")],
    )}));
}

fn account_schema() -> Value {
    json!({"type": "object", "required": ["id", "name", "slug", "db_shard_id", "is_active", "tier", "kind", "created_at", "updated_at"],
        "properties": {
            "id": {"type": "string", "format": "uuid"}, "name": {"type": "string"}, "slug": {"type": "string"},
            "db_shard_id": {"type": "string"}, "is_active": {"type": "boolean"},
            "tier": {"type": "string", "enum": ["shared", "dedicated"]},
            "kind": {"type": "string", "enum": ["production", "training", "test"]},
            "uk_only": {"type": "boolean"}, "cidr_allowlist": {"type": ["array", "null"], "items": {"type": "string"}},
            "retention": {}, "created_at": {"type": "string"}, "updated_at": {"type": "string"}, "version": {"type": "integer"},
            "legal_hold": {"type": "boolean"}}})
}

fn audit_paths(paths: &mut Map<String, Value>) {
    let entries = json!({"type": "object", "required": ["items", "next_after_seq"], "properties": {
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/PlatformAuditEntry"}},
        "next_after_seq": {"type": ["integer", "null"]}}});
    paths.insert("/admin/v1/audit".into(), json!({"get": {
        "operationId": "list_platform_audit", "tags": ["operator"], "security": [{"accessAuth": []}, {"devCredential": []}],
        "summary": "The platform audit trail: every operator action with the operator, oldest first",
        "parameters": [{"name": "after_seq", "in": "query", "schema": {"type": "integer", "minimum": 0}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
        "responses": admin_op("x", "", None, ("200", entries), &[])["responses"].clone()}}));
    paths.insert("/admin/v1/audit/verify".into(), json!({"get": {
        "operationId": "verify_platform_audit", "tags": ["operator"], "security": [{"accessAuth": []}, {"devCredential": []}],
        "summary": "Recompute the platform audit trail's hash chain from genesis",
        "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 50000}}],
        "responses": admin_op("x", "", None, ("200", json!({"type": "object", "required": ["links", "head_seq", "head_hash", "first_broken", "complete"],
            "properties": {"links": {"type": "integer"}, "head_seq": {"type": "integer"}, "head_hash": {"type": "string"},
                "first_broken": {"type": ["object", "null"]}, "complete": {"type": "boolean"}}})), &[])["responses"].clone()}}));
    paths.insert("/admin/v1/jobs/{job}/run".into(), json!({
        "parameters": [{"name": "job", "in": "path", "required": true, "schema": {"type": "string",
            "enum": ["outbox_relay", "shard_health", "migration_check", "retention", "audit_checkpoints", "moves"]}}],
        "post": admin_op("run_job", "Run a scheduled job now (on the scheduler, through its service binding); answers with the recorded run",
            None, ("200", json!({"type": "object"})), &[])}));
    let id = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}]);
    paths.insert("/admin/v1/accounts/{id}/identity".into(), json!({"parameters": id, "put": admin_op(
        "set_account_identity",
        "Set the account's trusted identity providers (the bootstrap of a production account, which accepts no HS256 token); an account change in its audit trail",
        Some(json!({"type": "object", "additionalProperties": false, "properties": {"issuers": {"type": "array", "maxItems": 5, "items": {"type": "object"}}}})),
        ("200", json!({"type": "object", "description": "The settings as stored"})),
        &[("409", "Another account trusts this issuer and audience"), ("415", "Content-Type must be application/json")])}));
}

fn move_paths(paths: &mut Map<String, Value>) {
    let mv = json!({"$ref": "#/components/schemas/Move"});
    paths.insert("/admin/v1/moves".into(), json!({
        "get": admin_op("list_moves", "The latest tenant moves, newest first", None,
            ("200", json!({"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": mv}}})), &[]),
        "post": admin_op("create_move",
            "Move a tenant to another shard: from an open rebalancing proposal (`proposal_id`) or an explicit `account_id` and `target_shard`; `dry_run` reports rows, bytes and the estimated time and starts nothing. Refused (409) if the target would pass its soft cap or the tenant has a move in flight. The scheduler's `moves` job carries it out.",
            Some(json!({"type": "object", "additionalProperties": false, "properties": {
                "proposal_id": {"type": "string"}, "account_id": {"type": "string", "format": "uuid"},
                "target_shard": {"type": "string"}, "grace_seconds": {"type": "integer", "minimum": 0, "default": 300, "description": "Seconds between the flip and the first delete on the source; below 15 (the route cache's bound on a stale read) it is raised to 15"},
                "dry_run": {"type": "boolean"}}})),
            ("201", mv.clone()),
            &[("200", "Dry run: the plan"), ("409", "Target above its soft cap, not active, or a move in flight"), ("415", "Content-Type must be application/json"), ("422", "Unknown account, shard or proposal")])}));
    let id = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}]);
    paths.insert("/admin/v1/moves/{id}".into(), json!({"parameters": id, "get": admin_op("get_move",
        "A move: phase, cursors, counts and digests, timings (the fenced window in `fenced_ms`), error and differing rows",
        None, ("200", mv.clone()), &[("404", "No such move")])}));
    paths.insert("/admin/v1/moves/{id}/cancel".into(), json!({"parameters": id, "post": admin_op("cancel_move",
        "Cancel a move until its cleanup starts: it rolls back (route, fences, the target's copy) on its next steps",
        None, ("202", mv.clone()), &[("404", "No such move"), ("409", "Too late (cleanup started) or already ended")])}));
    let step_params = json!([id[0].clone(), {"name": "steps", "in": "query", "required": false,
        "description": "At most this many steps per move in this run (default and most: 40)",
        "schema": {"type": "integer", "minimum": 1, "maximum": crate::operator::jobs::MAX_MOVE_STEPS}}]);
    paths.insert("/admin/v1/moves/{id}/step".into(), json!({"parameters": step_params, "post": admin_op("step_move",
        "Drive the moves now (the scheduler's `moves` job, through its service binding); answers with the move and the run",
        None, ("200", json!({"type": "object", "required": ["move", "run"], "properties": {"move": mv, "run": {"type": "object"}}})),
        &[("400", "steps out of range"), ("404", "No such move")])}));
    paths.insert("/admin/v1/shards/{id}/activate".into(), json!({
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 100}}],
        "post": admin_op("activate_shard",
        "Activate a `provisioning` shard (a new dedicated shard from `cargo xtask dedicated new`) once the migration check found its schema current: moves into it may then cut over, and its tenants write",
        None, ("200", json!({"type": "object"})),
        &[("404", "No such shard"), ("409", "Not provisioning, or its schema is not (yet) checked current")])}));
}

pub fn document() -> Value {
    let mut paths = Map::new();
    admin_paths(&mut paths);
    audit_paths(&mut paths);
    move_paths(&mut paths);
    paths.insert(
        "/health".into(),
        json!({"get": {"operationId": "health", "security": [], "responses": {"200": {"description": "Up",
            "content": {"application/json": {"schema": {"type": "object", "required": ["status", "deployment"],
                "properties": {"status": {"type": "string"}, "deployment": {"type": "string"}}}}}}}}}),
    );
    paths.insert(
        "/openapi.json".into(),
        json!({"get": {"operationId": "openapi", "security": [], "responses": {"200": {"description": "This document",
            "content": {"application/json": {"schema": {"type": "object"}}}}}}}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "clientdocs operator API",
            "version": "1.0.0",
            "description": "The platform team's control plane: every tenant's accounts, holds, shards, dead letters \
                and job runs. Served on its own hostname behind Cloudflare Access, never on a tenant host. Every \
                action (any non-GET) is recorded first, with the operator's identity, in the hash-chained platform \
                audit trail (`/admin/v1/audit`); an action that cannot be recorded is not carried out (503)."
        },
        "security": [{"accessAuth": []}, {"devCredential": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "accessAuth": {"type": "apiKey", "in": "header", "name": "Cf-Access-Jwt-Assertion",
                    "description": "Deployed: the Cloudflare Access assertion (RS256 JWT of the team domain, audience = the application's AUD tag); the operator is its email"},
                "devCredential": {"type": "http", "scheme": "bearer",
                    "description": "Local environment only: the local ADMIN_SECRET, attributed to local-operator@ops.localhost"}
            },
            "schemas": {
                "Account": account_schema(),
                "Move": {"type": "object", "required": ["id", "account_id", "source_shard", "target_shard", "phase", "rev", "created_at", "updated_at"],
                    "properties": {"id": {"type": "string", "format": "uuid"}, "account_id": {"type": "string", "format": "uuid"},
                        "source_shard": {"type": "string"}, "target_shard": {"type": "string"},
                        "phase": {"type": "string", "enum": ["planned", "copying", "catching_up", "verifying", "cutover", "cleanup", "done", "failed", "cancelled"]},
                        "rev": {"type": "integer"}, "fenced_ms": {"type": ["integer", "null"]}, "error": {"type": ["string", "null"]},
                        "differences": {"type": "array", "items": {"type": "string"}}, "tables": {"type": "object"}}},
                "PlatformAuditEntry": {"type": "object",
                    "required": ["seq", "operator", "action", "target", "details", "request_id", "time", "prev_hash", "hash"],
                    "properties": {"seq": {"type": "integer"},
                        "operator": {"type": "object", "required": ["email", "sub", "via"], "properties": {
                            "email": {"type": "string"}, "sub": {"type": "string"},
                            "via": {"type": "string", "enum": ["cloudflare_access", "local_dev_credential", "system"]}}},
                        "action": {"type": "string"}, "target": {"type": "object"}, "details": {},
                        "request_id": {"type": "string"}, "time": {"type": "string"},
                        "prev_hash": {"type": "string"}, "hash": {"type": "string"}}},
                "Problem": {"type": "object", "required": ["type", "title", "status", "detail", "request_id"],
                    "description": "RFC 9457 problem details",
                    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                        "detail": {"type": "string"}, "request_id": {"type": "string"}}}
            }
        }
    })
}
