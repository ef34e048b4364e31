//! `GET /openapi.json`: OpenAPI 3.1, generated from the entity specs that validation uses, so
//! the document and the API cannot drift apart.

use crate::domain::entity::{self, EntitySpec, Field, FilterOp, Kind};
use serde_json::{json, Map, Value};

/// Strings may not hold control characters other than tab and newline.
const NO_CONTROL: &str = "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*$";

fn kind_schema(kind: &Kind, nullable: bool) -> Value {
    let mut s = match kind {
        Kind::Str { max } => json!({"type": "string", "maxLength": max, "pattern": NO_CONTROL}),
        Kind::Email => json!({"type": "string", "format": "email", "maxLength": 254}),
        Kind::Enum(values) => json!({"type": "string", "enum": values}),
        Kind::Uuid => json!({"type": "string", "format": "uuid"}),
        Kind::Date => json!({"type": "string", "format": "date"}),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::Object(fields) => object_schema(fields, true, &[], false),
        Kind::Array { item, max_items } => {
            json!({"type": "array", "maxItems": max_items, "items": kind_schema(&item.kind, false)})
        }
    };
    if nullable {
        if let Some(t) = s.get("type").cloned() {
            s["type"] = json!([t, "null"]);
        }
        if let Some(Value::Array(e)) = s.get_mut("enum") {
            e.push(Value::Null);
        }
    }
    s
}

fn object_schema(
    fields: &[Field],
    with_required: bool,
    extra: &[(&str, Value)],
    nullable_optional: bool,
) -> Value {
    let mut props = Map::new();
    for f in fields {
        let mut s = kind_schema(&f.kind, nullable_optional && !f.required);
        s["description"] = json!(f.description);
        props.insert(f.name.into(), s);
    }
    for (k, v) in extra {
        props.insert((*k).into(), v.clone());
    }
    let mut o = json!({"type": "object", "additionalProperties": false, "properties": props});
    if with_required {
        let req: Vec<&str> = fields
            .iter()
            .filter(|f| f.required)
            .map(|f| f.name)
            .collect();
        if !req.is_empty() {
            o["required"] = json!(req);
        }
    }
    o
}

fn title(spec: &EntitySpec) -> String {
    let mut c = spec.singular.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn read_only_props(spec: &EntitySpec) -> Vec<(&'static str, Value)> {
    let ts = json!({"type": "string", "format": "date-time", "readOnly": true});
    let mut v = vec![
        (
            "id",
            json!({"type": "string", "format": "uuid", "readOnly": true}),
        ),
        (
            "version",
            json!({"type": "integer", "minimum": 1, "readOnly": true, "description": "Increments on every change; the ETag is \"v{version}\""}),
        ),
        ("created_at", ts.clone()),
        ("updated_at", ts.clone()),
        (
            "deleted_at",
            json!({"type": ["string", "null"], "format": "date-time", "readOnly": true}),
        ),
    ];
    if !crate::domain::personal_data::fields(spec.table).is_empty() {
        v.push((
            "redacted",
            json!({"type": "array", "readOnly": true, "items": {"type": "string"},
                   "description": "Present only when a restricted record is shown to a non-admin: the personal-data \
                       fields left out of the response"}),
        ));
    }
    for name in spec.read_only {
        let s = match *name {
            "content" => json!({
                "type": ["object", "null"], "readOnly": true, "additionalProperties": false,
                "description": "Set by PUT /v1/documents/{id}/content",
                "properties": {
                    "content_type": {"type": "string"},
                    "size": {"type": "integer", "minimum": 0},
                    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "uploaded_at": {"type": "string", "format": "date-time"}
                }
            }),
            "document_count" => json!({"type": "integer", "minimum": 0, "readOnly": true}),
            "restricted" => json!({
                "type": ["object", "null"], "readOnly": true, "additionalProperties": false,
                "description": "Set while processing is restricted (PUT /v1/clients/{id}/restriction; a document shows its \
                    client's): the record refuses changes (409 urn:clientdocs:problem:restricted) and only admins see its \
                    personal data",
                "required": ["reason", "until", "since"],
                "properties": {
                    "reason": {"type": "string", "enum": crate::domain::restriction::REASONS},
                    "until": {"type": ["string", "null"], "format": "date-time"},
                    "since": {"type": "string", "format": "date-time"}
                }
            }),
            "legal_hold" => {
                json!({"type": "boolean", "readOnly": true, "description": "Set by PUT /v1/clients/{id}/legal-hold"})
            }
            _ => {
                json!({"type": ["string", "null"], "readOnly": true, "description": "Denormalised by the change-event pipeline"})
            }
        };
        v.push((name, s));
    }
    v
}

fn problem_ref() -> Value {
    json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}})
}

fn err(desc: &str) -> Value {
    json!({"description": desc, "content": problem_ref()})
}

/// Error responses every tenant operation may give.
fn tenant_errors(extra: &[(&str, &str)]) -> Map<String, Value> {
    let mut m = Map::new();
    for (code, desc) in [
        ("400", "Bad request (invalid id, query, or body; `errors` lists fields)"),
        ("401", "Missing, invalid or expired token"),
        ("403", "Role may not do this, account deactivated, address not allowed, or token not valid on this domain"),
        ("404", "Not found in this account"),
        ("421", "The account is served by another deployment (named in `deployment`)"),
        ("451", "The account may only be used from the United Kingdom"),
        ("503", "Storage unavailable or the shard is read-only; retry later"),
    ]
    .iter()
    .chain(extra)
    {
        m.insert((*code).into(), err(desc));
    }
    m
}

fn bookmark_header() -> Value {
    json!({"description": "D1 Sessions bookmark; send it back in `x-d1-bookmark` to read your own writes", "schema": {"type": "string"}})
}

fn id_param() -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}})
}

fn bookmark_param() -> Value {
    json!({"name": "x-d1-bookmark", "in": "header", "required": false,
           "description": "A bookmark from an earlier response: the read sees at least that write",
           "schema": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[!-~]+$"}})
}

fn entity_paths(spec: &EntitySpec, paths: &mut Map<String, Value>) {
    let t = title(spec);
    let item = format!("#/components/schemas/{t}");
    let ok_item = |code: &str, desc: &str| {
        json!({code: {"description": desc,
            "headers": {"ETag": {"schema": {"type": "string"}}, "x-d1-bookmark": bookmark_header()},
            "content": {"application/json": {"schema": {"$ref": item}}}}})
    };
    let mut filters: Vec<Value> = vec![
        json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}}),
        json!({"name": "cursor", "in": "query", "description": "`next_cursor` of the previous page (same filter)", "schema": {"type": "string"}}),
        bookmark_param(),
    ];
    for f in spec.filters {
        let desc = match f.op {
            FilterOp::Eq => format!(
                "Only rows whose `{}` equals this value (indexed). One filter at a time.",
                f.param
            ),
            FilterOp::Prefix => {
                "Case-insensitive prefix (indexed); results ordered by it. One filter at a time."
                    .to_string()
            }
        };
        filters.push(json!({"name": f.param, "in": "query", "description": desc, "schema": kind_schema(f.value, false)}));
    }
    let writes = if spec.admin_writes {
        "Admins only."
    } else {
        "Admins and members."
    };
    let mut create_responses = ok_item("201", "Created");
    create_responses["201"]["headers"]["Location"] = json!({"schema": {"type": "string"}});
    create_responses["201"]["headers"]["Idempotent-Replayed"] =
        json!({"schema": {"type": "string"}});
    let mut cr = tenant_errors(&[
        ("409", "Conflicts with existing data (for example a duplicate email); a document for a restricted client (urn:clientdocs:problem:restricted) or for a client whose erasure was requested (urn:clientdocs:problem:client-erased)"),
        ("413", "Body over 256 KB"),
        ("415", "Content-Type must be application/json"),
        ("410", "Idempotency-Key replay: the resource the first request created has since been deleted or erased (urn:clientdocs:problem:resource-gone)"),
        ("422", "A referenced id does not exist in this account, or the Idempotency-Key was used with another body"),
    ]);
    for (k, v) in create_responses.as_object().cloned().unwrap_or_default() {
        cr.insert(k, v);
    }
    let mut list_responses = tenant_errors(&[]);
    list_responses.insert(
        "200".into(),
        json!({"description": "A page", "headers": {"x-d1-bookmark": bookmark_header()},
               "content": {"application/json": {"schema": {
                   "type": "object", "additionalProperties": false, "required": ["items", "next_cursor"],
                   "properties": {"items": {"type": "array", "items": {"$ref": item}},
                                  "next_cursor": {"type": ["string", "null"]}}}}}}),
    );
    paths.insert(
        format!("/v1/{}", spec.table),
        json!({
            "get": {"operationId": format!("list_{}", spec.table), "tags": [spec.table],
                    "summary": format!("List {} (keyset pages; filter only on indexed fields)", spec.table),
                    "parameters": filters, "responses": list_responses},
            "post": {"operationId": format!("create_{}", spec.singular), "tags": [spec.table],
                     "summary": format!("Create a {}. {writes}", spec.singular),
                     "parameters": [
                         {"name": "Idempotency-Key", "in": "header", "required": false,
                          "description": "Same key and body replays the first outcome: the created resource as it is now (410 if since deleted or erased); same key and another body is 422",
                          "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"}}],
                     "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": format!("{item}Create")}}}},
                     "responses": cr}
        }),
    );
    let mut get_r = tenant_errors(&[]);
    get_r.extend(
        ok_item("200", "The current version")
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    let mut patch_r = tenant_errors(&[
        (
            "409",
            "Conflicts with existing data, changed concurrently, or restricted (urn:clientdocs:problem:restricted)",
        ),
        ("412", "If-Match does not match the current version"),
        ("413", "Body over 256 KB"),
        (
            "415",
            "Content-Type must be application/merge-patch+json or application/json",
        ),
        ("422", "A referenced id does not exist in this account"),
    ]);
    patch_r.extend(
        ok_item("200", "Updated")
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    let mut del_r = tenant_errors(&[
        (
            "409",
            "Changed concurrently, or restricted (urn:clientdocs:problem:restricted)",
        ),
        ("412", "If-Match does not match the current version"),
    ]);
    del_r.insert("204".into(), json!({"description": "Soft-deleted (kept for retention)", "headers": {"x-d1-bookmark": bookmark_header()}}));
    let if_match = json!({"name": "If-Match", "in": "header", "required": false, "schema": {"type": "string"}});
    paths.insert(
        format!("/v1/{}/{{id}}", spec.table),
        json!({
            "parameters": [id_param()],
            "get": {"operationId": format!("get_{}", spec.singular), "tags": [spec.table],
                    "parameters": [bookmark_param()], "responses": get_r},
            "patch": {"operationId": format!("update_{}", spec.singular), "tags": [spec.table],
                      "summary": format!("JSON merge patch (RFC 7396). {writes}"),
                      "parameters": [if_match.clone()],
                      "requestBody": {"required": true, "content": {
                          "application/merge-patch+json": {"schema": {"$ref": format!("{item}Patch")}},
                          "application/json": {"schema": {"$ref": format!("{item}Patch")}}}},
                      "responses": patch_r},
            "delete": {"operationId": format!("delete_{}", spec.singular), "tags": [spec.table],
                       "summary": format!("Soft delete. {writes}"),
                       "parameters": [if_match], "responses": del_r}
        }),
    );
}

fn schemas() -> Map<String, Value> {
    let mut s = Map::new();
    for spec in entity::ALL {
        let t = title(spec);
        s.insert(
            format!("{t}Create"),
            object_schema(spec.fields, true, &[], true),
        );
        let mut patch = object_schema(spec.fields, false, &[], true);
        // Immutable fields are set at creation only: a patch may not name them.
        if let Some(props) = patch["properties"].as_object_mut() {
            for f in spec.immutable {
                props.remove(*f);
            }
        }
        s.insert(format!("{t}Patch"), patch);
        let mut full = object_schema(spec.fields, false, &read_only_props(spec), false);
        full["required"] = json!(["id", "version", "created_at", "updated_at"]);
        s.insert(t, full);
    }
    s.insert(
        "Problem".into(),
        json!({"type": "object", "required": ["type", "title", "status", "detail", "request_id"],
               "description": "RFC 9457 problem details",
               "properties": {
                   "type": {"type": "string", "description": "Stable: urn:clientdocs:problem:<kind>"},
                   "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
                   "request_id": {"type": "string"},
                   "errors": {"type": "array", "items": {"type": "object", "required": ["pointer", "message"],
                              "properties": {"pointer": {"type": "string"}, "message": {"type": "string"}}}},
                   "allowed_filters": {"type": "array", "items": {"type": "string"}},
                   "deployment": {"type": "string"}}}),
    );
    s
}

pub fn document(server: Option<&str>) -> Value {
    let mut paths = Map::new();
    for spec in entity::ALL {
        entity_paths(spec, &mut paths);
    }
    let binary_types: Map<String, Value> = crate::domain::content::ALLOWED_CONTENT_TYPES
        .iter()
        .map(|t| {
            (
                (*t).to_string(),
                json!({"schema": {"type": "string", "format": "binary", "minLength": 1}}),
            )
        })
        .collect();
    let bin_ok = |desc: &str| json!({"description": desc, "content": binary_types.clone()});
    let mut put_r = tenant_errors(&[
        (
            "409",
            "The document changed during the upload, or is restricted",
        ),
        ("412", "If-Match does not match"),
        ("413", "Over the configured content limit (25 MB)"),
        ("415", "Content-Type is not an allowed document type"),
    ]);
    put_r.insert(
        "200".into(),
        json!({"description": "Stored", "content": {"application/json": {"schema": {
            "type": "object", "additionalProperties": false,
            "required": ["content_type", "size", "sha256", "uploaded_at"],
            "properties": {"content_type": {"type": "string"}, "size": {"type": "integer"},
                           "sha256": {"type": "string"}, "uploaded_at": {"type": "string", "format": "date-time"}}}}}}),
    );
    let mut get_c = tenant_errors(&[]);
    get_c.insert(
        "200".into(),
        bin_ok("The stored bytes with their content type"),
    );
    paths.insert(
        "/v1/documents/{id}/content".into(),
        json!({
            "parameters": [id_param()],
            "put": {"operationId": "put_document_content", "tags": ["documents"],
                    "summary": "Upload the document's content to R2 (records type, size, SHA-256)",
                    "parameters": [{"name": "If-Match", "in": "header", "required": false, "schema": {"type": "string"}}],
                    "requestBody": {"required": true, "content": binary_types},
                    "responses": put_r},
            "get": {"operationId": "get_document_content", "tags": ["documents"], "responses": get_c}
        }),
    );
    let mut verify_r = tenant_errors(&[]);
    verify_r.insert(
        "200".into(),
        json!({"description": "One bounded step of verifying the account's audit trail: the hash chain and the \
                   writer's signed receipts (resume with `next`; after a range the writer recorded as unsigned, `next` \
                   is its record), and one week of the signed checkpoints kept outside D1, checked against the trail: the \
                   most recent by default (every period due by now, and the writer's anchored heads), older weeks with \
                   `checkpoints_before` = `checkpoints.next_before`. `ok` is false on any finding; `first_broken` and \
                   `checkpoints.findings` name where (period and sequence).",
               "content": {"application/json": {"schema": {"type": "object",
                   "required": ["ok", "checked", "first_broken_seq", "reason", "head_seq", "head_hash", "checkpoints"],
                   "properties": {"ok": {"type": "boolean"}, "checked": {"type": "integer"},
                       "started_after": {"type": "integer"},
                       "from_start": {"type": "boolean", "description": "The walk began at the chain's own start, not at a cursor: a whole verification is a run of calls from one without a cursor"},
                       "last_good": {"type": ["object", "null"], "properties": {"seq": {"type": "integer"}, "hash": {"type": "string"}}},
                       "first_broken": {"type": ["object", "null"], "properties": {"seq": {"type": "integer"}, "reason": {"type": "string"}}},
                       "next": {"type": ["object", "null"], "properties": {"after_seq": {"type": "integer"}, "after_hash": {"type": "string"}}},
                       "first_broken_seq": {"type": ["integer", "null"]}, "reason": {"type": ["string", "null"]},
                       "head_seq": {"type": "integer"}, "head_hash": {"type": "string"}, "complete": {"type": "boolean"},
                       "checkpoints": {"type": "object", "properties": {"ok": {"type": "boolean"}, "checked": {"type": "integer"},
                           "from": {"type": "string", "format": "date-time"}, "to": {"type": ["string", "null"], "format": "date-time"},
                           "findings": {"type": "array", "items": {"type": "object", "required": ["period", "seq", "problem"],
                               "properties": {"period": {"type": "string"}, "seq": {"type": "integer"}, "problem": {"type": "string",
                                   "enum": ["unknown_key", "bad_signature", "wrong_account", "chain_broken", "missing_period",
                                            "head_went_back", "truncated", "rewritten", "head_cut", "corrupt"]}}}},
                           "next_before": {"type": ["string", "null"]}}}}}}}}),
    );
    let checkpoint_schema = json!({"type": "object", "description": "A signed checkpoint (Ed25519 over its canonical JSON; \
        verify with the keys at /.well-known/audit-keys, or offline with audit-verify)",
        "required": ["account_id", "period", "kind", "head_seq", "head_hash", "previous", "key_id", "time", "signature"],
        "properties": {"account_id": {"type": "string", "format": "uuid"}, "period": {"type": "string", "format": "date-time"},
            "kind": {"type": "string", "enum": ["periodic", "disposal"]}, "head_seq": {"type": "integer"},
            "head_hash": {"type": "string"}, "disposed_through": {"type": "integer"}, "disposed_hash": {"type": "string"},
            "previous": {"type": "string"}, "key_id": {"type": "string"}, "time": {"type": "string", "format": "date-time"},
            "signature": {"type": "string", "contentEncoding": "base64"}}});
    let mut checkpoints_r = tenant_errors(&[]);
    checkpoints_r.insert("200".into(), json!({"description": "The account's signed checkpoints, oldest first",
        "content": {"application/json": {"schema": {"type": "object", "required": ["items", "next_after", "head"],
            "properties": {"items": {"type": "array", "items": checkpoint_schema},
                "next_after": {"type": ["string", "null"]},
                "head": {"type": ["object", "null"], "description": "The writer's latest head anchored outside D1 \
                    (its receipt signs account, seq and hash): an exported trail must reach it",
                    "properties": {"account_id": {"type": "string", "format": "uuid"}, "seq": {"type": "integer"},
                        "hash": {"type": "string"}, "receipt": {"type": "object"}}}}}}}}));
    let audit_params = json!([
        {"name": "target_type", "in": "query", "schema": {"type": "string", "enum": ["groups", "users", "clients", "documents"]}},
        {"name": "target_id", "in": "query", "schema": {"type": "string", "format": "uuid"}},
        {"name": "actor_id", "in": "query", "schema": {"type": "string", "maxLength": 100}},
        {"name": "from", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "to", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
        bookmark_param()
    ]);
    let entry = json!({"type": "object", "required": ["seq", "event_id", "actor", "action", "target", "event_time", "recorded_time", "request_id", "outcome", "prev_hash", "hash"],
        "properties": {"seq": {"type": "integer"}, "event_id": {"type": "string", "format": "uuid"}, "account_id": {"type": "string", "format": "uuid"},
            "actor": {"type": "object"}, "action": {"type": "string"}, "target": {"type": "object"},
            "event_time": {"type": "string"}, "recorded_time": {"type": "string"}, "request_id": {"type": "string"},
            "outcome": {"type": "string"}, "entity_version": {"type": "integer"}, "changed_fields": {"type": "array", "items": {"type": "string"}},
            "prev_hash": {"type": "string"}, "hash": {"type": "string"}}});
    let mut list_r = tenant_errors(&[]);
    list_r.insert("200".into(), json!({"description": "A page of audit entries (admins only), oldest first",
        "content": {"application/json": {"schema": {"type": "object", "required": ["items", "next_cursor"],
            "properties": {"items": {"type": "array", "items": entry}, "next_cursor": {"type": ["string", "null"]}}}}}}));
    let mut lp = audit_params.as_array().cloned().unwrap_or_default();
    lp.push(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}}));
    paths.insert("/v1/audit".into(), json!({"get": {"operationId": "list_audit", "tags": ["audit"],
        "summary": "The audit trail; filter by one of: target_type+target_id, actor_id, from+to", "parameters": lp, "responses": list_r}}));
    let mut ex_r = tenant_errors(&[]);
    ex_r.insert(
        "200".into(),
        json!({"description": "JSON Lines, one entry per line; `x-next-cursor` when more remain",
        "headers": {"x-next-cursor": {"schema": {"type": "string"}}},
        "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}),
    );
    let mut ep = audit_params.as_array().cloned().unwrap_or_default();
    ep.push(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}));
    paths.insert("/v1/audit/export".into(), json!({"get": {"operationId": "export_audit", "tags": ["audit"],
        "summary": "Export the audit trail as JSON Lines (admins only)", "parameters": ep, "responses": ex_r}}));
    let days =
        |d: &str| json!({"type": "integer", "minimum": 0, "maximum": 36525, "description": d});
    let years =
        |d: &str| json!({"type": "integer", "minimum": 1, "maximum": 100, "description": d});
    let years_min = |min: u32, d: &str| json!({"type": "integer", "minimum": min, "maximum": 100, "description": d});
    let days1 =
        |d: &str| json!({"type": "integer", "minimum": 1, "maximum": 36525, "description": d});
    let policy = json!({"type": "object", "additionalProperties": false,
        "required": ["client_years_after_end", "aml_years_after_end", "document_years_after_end", "soft_delete_grace_days",
                     "audit_years", "outbox_days", "idempotency_days", "dead_letter_days"],
        "properties": {
            "client_years_after_end": years_min(crate::domain::retention::MIN_CLIENT_YEARS, "Client records after the relationship ends (HMRC: at least 6)"),
            "aml_years_after_end": years_min(crate::domain::retention::MIN_AML_YEARS, "AML evidence after the relationship ends (MLR 2017 reg 40: at least 5)"),
            "document_years_after_end": years_min(crate::domain::retention::MIN_DOCUMENT_YEARS, "Other documents after the relationship ends (FCA SYSC 9: at least 5)"),
            "soft_delete_grace_days": days1("Soft-deleted rows are purged after this many days (at least 1)"),
            "audit_years": years("Audit trail"),
            "outbox_days": days("Published outbox rows"),
            "idempotency_days": days1("Idempotency keys (at least 1)"),
            "dead_letter_days": days1("Dead letters (at least 1)")}});
    let mut rs_get = tenant_errors(&[]);
    rs_get.insert(
        "200".into(),
        json!({"description": "The account's retention policy (UK presets unless changed)",
        "content": {"application/json": {"schema": policy.clone()}}}),
    );
    let mut rs_put = tenant_errors(&[("415", "Content-Type must be application/json")]);
    rs_put.insert("200".into(), json!({"description": "Saved", "content": {"application/json": {"schema": policy.clone()}}}));
    let erasure = json!({"type": "object", "required": ["id", "subject_type", "subject_id", "received_at", "due_by", "status"],
        "properties": {"id": {"type": "string", "format": "uuid"}, "subject_type": {"type": "string", "enum": ["client", "user"]},
            "subject_id": {"type": "string", "format": "uuid"}, "requested_by": {"type": "string"},
            "received_at": {"type": "string", "format": "date-time"}, "due_by": {"type": "string", "format": "date-time"},
            "status": {"type": "string", "enum": ["pending", "completed", "restricted"]},
            "completed_at": {"type": ["string", "null"]}, "outcome": {}}});
    let mut er_post = tenant_errors(&[
        ("415", "Content-Type must be application/json"),
        ("422", "No such client or user in this account"),
    ]);
    er_post.insert("202".into(), json!({"description": "Recorded; carried out by the retention sweep before `due_by` (one calendar month)",
        "headers": {"Location": {"schema": {"type": "string"}}}, "content": {"application/json": {"schema": erasure.clone()}}}));
    paths.insert("/v1/erasure-requests".into(), json!({"post": {"operationId": "create_erasure_request", "tags": ["gdpr"],
        "summary": "Record a GDPR erasure request for a client or user (admins only)",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false,
            "required": ["subject_type", "subject_id"], "properties": {
                "subject_type": {"type": "string", "enum": ["client", "user"]}, "subject_id": {"type": "string", "format": "uuid"}}}}}},
        "responses": er_post}}));
    let mut er_get = tenant_errors(&[]);
    er_get.insert("200".into(), json!({"description": "The request and its outcome", "content": {"application/json": {"schema": erasure}}}));
    paths.insert(
        "/v1/erasure-requests/{id}".into(),
        json!({"parameters": [id_param()],
        "get": {"operationId": "get_erasure_request", "tags": ["gdpr"], "responses": er_get}}),
    );
    let hold_body = json!({"required": true, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false,
        "required": ["hold"], "properties": {"hold": {"type": "boolean"}}}}}});
    let mut hold_r = tenant_errors(&[
        ("409", "Changed concurrently, or restricted"),
        ("415", "Content-Type must be application/json"),
    ]);
    hold_r.insert("200".into(), json!({"description": "The client", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Client"}}}}));
    paths.insert("/v1/clients/{id}/legal-hold".into(), json!({"parameters": [id_param()],
        "put": {"operationId": "set_client_legal_hold", "tags": ["clients"],
            "summary": "Place or lift a legal hold (admins only), also on a soft-deleted client not yet purged: the retention sweep deletes nothing of a held client",
            "requestBody": hold_body, "responses": hold_r}}));
    let restriction_body = json!({"required": true, "content": {"application/json": {"schema": {"type": "object",
        "additionalProperties": false, "required": ["reason"], "properties": {
            "reason": {"type": "string", "enum": crate::domain::restriction::REASONS,
                "description": "UK GDPR art. 18(1)(a)-(d) (accuracy_contested, unlawful_processing, legal_claims, \
                    objection_pending), or legal_obligation: kept because a law requires it. Codes only: the reason \
                    goes into the append-only audit trail"},
            "until": {"type": ["string", "null"], "format": "date-time",
                "description": "When the restriction ends (in the future), or null: until lifted"}}}}}});
    let mut restrict_r = tenant_errors(&[
        ("409", "Changed concurrently"),
        ("415", "Content-Type must be application/json"),
    ]);
    restrict_r.insert("200".into(), json!({"description": "The client", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Client"}}}}));
    paths.insert("/v1/clients/{id}/restriction".into(), json!({"parameters": [id_param()],
        "put": {"operationId": "restrict_client", "tags": ["clients"],
            "summary": "Restrict processing (admins only; a client.restricted event): changes are refused and \
                personal data is shown to admins only, until it is lifted",
            "requestBody": restriction_body, "responses": restrict_r.clone()},
        "delete": {"operationId": "lift_client_restriction", "tags": ["clients"],
            "summary": "Lift the restriction (admins only; a client.unrestricted event)", "responses": restrict_r}}));
    paths.insert("/v1/settings/retention".into(), json!({
        "get": {"operationId": "get_retention_settings", "tags": ["settings"], "responses": rs_get},
        "put": {"operationId": "put_retention_settings", "tags": ["settings"], "summary": "Admins only",
                "requestBody": {"required": true, "content": {"application/json": {"schema": policy}}},
                "responses": rs_put}}));
    let issuer = json!({"type": "object", "additionalProperties": false,
        "required": ["issuer", "audience", "jwks_uri", "algorithms"],
        "properties": {
            "issuer": {"type": "string", "format": "uri", "description": "The tokens' `iss`, exactly (https)"},
            "audience": {"type": "string", "description": "The tokens' `aud` must contain it (the application's client id)"},
            "jwks_uri": {"type": "string", "format": "uri", "description": "The issuer's JWKS (its discovery document's `jwks_uri`)"},
            "algorithms": {"type": "array", "minItems": 1, "uniqueItems": true, "items": {"type": "string", "enum": ["RS256", "ES256"]}},
            "role_claim": {"type": "string", "description": "The claim carrying the role (string or array); absent: the matched user's role"},
            "role_values": {"type": "object", "additionalProperties": false, "description": "Claim values granting each role (the highest present wins)",
                "properties": {"admin": {"type": "array", "items": {"type": "string"}}, "member": {"type": "array", "items": {"type": "string"}},
                    "readonly": {"type": "array", "items": {"type": "string"}}}},
            "user_claim": {"type": "string", "default": "email", "description": "The claim naming the user"},
            "user_match": {"type": "string", "enum": ["email", "user_id"], "default": "email",
                "description": "How the user claim names one of the account's users"}}});
    let identity = json!({"type": "object", "additionalProperties": false, "properties": {
        "issuers": {"type": "array", "maxItems": crate::domain::identity::MAX_ISSUERS, "items": issuer}}});
    let mut id_get = tenant_errors(&[]);
    id_get.insert(
        "200".into(),
        json!({"description": "The account's trusted identity providers",
        "content": {"application/json": {"schema": identity.clone()}}}),
    );
    let mut id_put = tenant_errors(&[
        ("409", "Another account trusts this issuer and audience, or the change would drop the issuer of the caller's own token"),
        ("415", "Content-Type must be application/json"),
    ]);
    id_put.insert("200".into(), json!({"description": "Saved", "content": {"application/json": {"schema": identity.clone()}}}));
    paths.insert("/v1/settings/identity".into(), json!({
        "get": {"operationId": "get_identity_settings", "tags": ["settings"], "summary": "Admins only", "responses": id_get},
        "put": {"operationId": "put_identity_settings", "tags": ["settings"], "summary": "Admins only (an account change, audited)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": identity}}},
                "responses": id_put}}));
    let cors = json!({"type": "object", "additionalProperties": false,
        "properties": {
            "allowed_origins": {"type": "array", "maxItems": crate::domain::cors::MAX_ORIGINS,
                "items": {"type": "string", "description": "An exact https origin: scheme://host[:port], lower-case, no path or wildcard"}},
            "max_age_seconds": {"type": "integer", "minimum": 0, "maximum": crate::domain::cors::MAX_MAX_AGE_SECONDS,
                "default": crate::domain::cors::DEFAULT_MAX_AGE_SECONDS}}});
    let mut cors_get = tenant_errors(&[]);
    cors_get.insert(
        "200".into(),
        json!({"description": "The origins browsers may call this account's custom domains from",
        "content": {"application/json": {"schema": cors.clone()}}}),
    );
    let mut cors_put = tenant_errors(&[("415", "Content-Type must be application/json")]);
    cors_put.insert(
        "200".into(),
        json!({"description": "Saved", "content": {"application/json": {"schema": cors.clone()}}}),
    );
    paths.insert("/v1/settings/cors".into(), json!({
        "get": {"operationId": "get_cors_settings", "tags": ["settings"], "summary": "Admins only", "responses": cors_get},
        "put": {"operationId": "put_cors_settings", "tags": ["settings"],
                "summary": "Admins only (an account change, audited). CORS headers are sent on the account's custom domains only: a preflight carries no credentials, so the domain names the account",
                "requestBody": {"required": true, "content": {"application/json": {"schema": cors}}},
                "responses": cors_put}}));
    paths.insert(
        "/v1/audit/verify".into(),
        json!({"get": {"operationId": "verify_audit_chain", "tags": ["audit"], "summary": "Admins only",
            "parameters": [
                {"name": "after_seq", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                {"name": "after_hash", "in": "query", "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
                {"name": "checkpoints_before", "in": "query", "schema": {"type": "string", "format": "date-time"}}],
            "responses": verify_r}}),
    );
    paths.insert(
        "/v1/audit/checkpoints".into(),
        json!({"get": {"operationId": "list_audit_checkpoints", "tags": ["audit"], "summary": "Admins only",
            "parameters": [
                {"name": "after", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": crate::api::audit_api::MAX_CHECKPOINT_PAGE}}],
            "responses": checkpoints_r}}),
    );
    paths.insert(
        "/.well-known/audit-keys".into(),
        json!({"get": {"operationId": "audit_keys", "security": [], "tags": ["audit"],
            "summary": "The audit writer's Ed25519 public keys, old ones included",
            "responses": {"200": {"description": "Keys by id",
                "content": {"application/json": {"schema": {"type": "object", "required": ["keys"],
                    "properties": {"keys": {"type": "array", "items": {"type": "object", "required": ["key_id", "public_key", "fingerprint"],
                        "properties": {"key_id": {"type": "string"}, "public_key": {"type": "string", "contentEncoding": "base64"},
                            "fingerprint": {"type": "string", "description": "SHA-256 of the public key, hex: compare with the one received out of band"}}}}}}}}},
                "500": {"description": "AUDIT_PUBLIC_KEYS is missing or invalid (problem type misconfigured)"}}}}),
    );
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
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "clientdocs API",
            "version": "1.0.0",
            "description": "Multi-tenant client and document management. Every request is authenticated with a JWT \
                bearer token: the account's own identity provider's (its issuer and audience select the tenant), or for test accounts an HS256 token whose `account_id` does; a tenant only ever sees its own rows.\n\n\
                **Read-after-write:** every response carries `x-d1-bookmark`. Send it back as the `x-d1-bookmark` \
                request header and the read is served by a D1 session at least as fresh as that write. Without \
                it, reads may be served by any replica (`first-unconstrained`).\n\n\
                **Errors** are `application/problem+json` with a stable `type` and the `request_id`.\n\n\
                **Lists** filter on one indexed field at a time; any other query parameter is a 400 that lists \
                the allowed filters. Pages are keyset pages: pass `next_cursor` as `cursor`."
        },
        "servers": [{"url": server.unwrap_or("/")}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "An RS256/ES256 JWT of one of the account's identity providers (`/v1/settings/identity`: issuer, audience, role claim, user claim), verified against the issuer's JWKS; or, for test accounts and the local stack only, an HS256 JWT with claims sub, account_id, role (admin|member|readonly), exp, iat, iss, aud. 60 s clock skew"}
            },
            "schemas": schemas()
        }
    });
    if server.is_none() {
        if let Some(o) = doc.as_object_mut() {
            o.remove("servers");
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_every_entity_operation_and_error_schema() {
        let d = document(None);
        assert_eq!(d["openapi"], "3.1.0");
        for spec in entity::ALL {
            let p = &d["paths"][format!("/v1/{}", spec.table)];
            assert!(p["get"].is_object() && p["post"].is_object());
            let item = &d["paths"][format!("/v1/{}/{{id}}", spec.table)];
            for m in ["get", "patch", "delete"] {
                assert!(
                    item[m]["responses"]["401"].is_object(),
                    "{} {m}",
                    spec.table
                );
            }
            for f in spec.filters {
                assert!(p["get"]["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x["name"] == f.param));
            }
        }
        assert!(d["components"]["schemas"]["Problem"].is_object());
    }

    #[test]
    fn create_schema_rejects_unknown_fields_like_the_api() {
        let d = document(None);
        let c = &d["components"]["schemas"]["ClientCreate"];
        assert_eq!(c["additionalProperties"], false);
        assert_eq!(c["required"], json!(["forenames", "surname", "status"]));
        assert_eq!(c["properties"]["surname"]["maxLength"], 200);
        let dp = &d["components"]["schemas"]["DocumentPatch"]["properties"];
        assert!(
            dp.get("client_id").is_none() && dp.get("title").is_some(),
            "immutable fields are not patchable"
        );
    }
}
