//! The API's entities, declared once: fields with types and limits, the list filters that
//! have an index behind them, and the unknown-field policy. Validation, SQL and the OpenAPI
//! document all read these tables.

use serde_json::{Map, Value};

pub mod fold;
pub mod strict_json;

#[derive(Debug)]
pub enum Kind {
    Str {
        max: usize,
    },
    Email,
    Enum(&'static [&'static str]),
    Uuid,
    /// `YYYY-MM-DD`
    Date,
    Bool,
    Object(&'static [Field]),
    Array {
        item: &'static Field,
        max_items: usize,
    },
}

#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    /// Must be present on create.
    pub required: bool,
    pub description: &'static str,
}

const fn f(name: &'static str, kind: Kind, required: bool, description: &'static str) -> Field {
    Field {
        name,
        kind,
        required,
        description,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Eq,
    /// Case-insensitive prefix on a lower-cased generated column; orders by that column.
    Prefix,
}

#[derive(Debug)]
pub struct Filter {
    /// Query parameter name.
    pub param: &'static str,
    /// Generated column with a partial index `(account_id, column, id) WHERE deleted_at IS NULL`.
    pub column: &'static str,
    pub op: FilterOp,
    pub value: &'static Kind,
}

/// What happens to fields the entity does not declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownFields {
    /// 400 naming the fields: typos never silently drop data.
    Reject,
}

/// A field that names a row of another entity (a foreign key). The row must exist and be live
/// (not soft-deleted) when a create or patch sets it: a reference to a deleted parent is
/// refused like one to a missing parent.
#[derive(Debug)]
pub struct Reference {
    pub field: &'static str,
    pub target: &'static EntitySpec,
}

#[derive(Debug)]
pub struct EntitySpec {
    /// Table name and URL segment (`/v1/{table}`).
    pub table: &'static str,
    pub singular: &'static str,
    pub fields: &'static [Field],
    /// Fields the server maintains; present in responses, refused in requests.
    pub read_only: &'static [&'static str],
    pub filters: &'static [Filter],
    pub unknown_fields: UnknownFields,
    /// Only admins may create, update or delete (users and groups).
    pub admin_writes: bool,
    /// Fields set at creation that a patch may not change.
    pub immutable: &'static [&'static str],
    /// Fields that name a row of another entity.
    pub references: &'static [Reference],
}

/// Server-maintained fields of every entity.
pub const COMMON_READ_ONLY: &[&str] = &[
    "id",
    "account_id",
    "version",
    "created_at",
    "updated_at",
    "deleted_at",
    "index_rev",
    "last_event_id",
];

const NAME: Kind = Kind::Str { max: 200 };
const SHORT: Kind = Kind::Str { max: 100 };
const TEXT: Kind = Kind::Str { max: 4000 };
const UUID: Kind = Kind::Uuid;

pub const CLIENT_STATUS: &[&str] = &["prospect", "active", "former"];
pub const ROLES: &[&str] = &["admin", "member", "readonly"];
pub const DOCUMENT_KINDS: &[&str] = &[
    "identity",
    "aml_evidence",
    "fact_find",
    "suitability_report",
    "correspondence",
    "contract",
    "statement",
    "other",
];

static ADDRESS: [Field; 5] = [
    f("line1", Kind::Str { max: 200 }, false, "First address line"),
    f(
        "line2",
        Kind::Str { max: 200 },
        false,
        "Second address line",
    ),
    f("town", SHORT, false, "Post town"),
    f("county", SHORT, false, "County"),
    f("postcode", Kind::Str { max: 10 }, false, "UK postcode"),
];

static DEPENDANT_FIELDS: [Field; 3] = [
    f("name", NAME, true, "Full name"),
    f("relationship", SHORT, true, "For example child, spouse"),
    f("date_of_birth", Kind::Date, false, "Date of birth"),
];

static DEPENDANT: Field = f(
    "dependant",
    Kind::Object(&DEPENDANT_FIELDS),
    false,
    "A dependant",
);

pub static GROUPS: EntitySpec = EntitySpec {
    table: "groups",
    singular: "group",
    fields: &[
        f("name", NAME, true, "Group (team or office) name"),
        f("description", TEXT, false, "Free text"),
    ],
    read_only: &[],
    filters: &[Filter {
        param: "name_prefix",
        column: "name_fold",
        op: FilterOp::Prefix,
        value: &SHORT,
    }],
    unknown_fields: UnknownFields::Reject,
    admin_writes: true,
    immutable: &[],
    references: &[],
};

pub static USERS: EntitySpec = EntitySpec {
    table: "users",
    singular: "user",
    fields: &[
        f(
            "email",
            Kind::Email,
            true,
            "Login email, unique per account",
        ),
        f(
            "display_name",
            NAME,
            true,
            "Name shown to colleagues and on clients",
        ),
        f("role", Kind::Enum(ROLES), true, "Access role"),
        f("group_id", UUID, false, "Group the user belongs to"),
    ],
    read_only: &[],
    filters: &[
        Filter {
            param: "role",
            column: "role",
            op: FilterOp::Eq,
            value: &Kind::Enum(ROLES),
        },
        Filter {
            param: "group_id",
            column: "group_id",
            op: FilterOp::Eq,
            value: &UUID,
        },
    ],
    unknown_fields: UnknownFields::Reject,
    admin_writes: true,
    immutable: &[],
    references: &[Reference {
        field: "group_id",
        target: &GROUPS,
    }],
};

pub static CLIENTS: EntitySpec = EntitySpec {
    table: "clients",
    singular: "client",
    fields: &[
        f("title", Kind::Str { max: 20 }, false, "Mr, Mrs, Dr, ..."),
        f("forenames", NAME, true, "Forenames"),
        f("surname", NAME, true, "Surname"),
        f("date_of_birth", Kind::Date, false, "Date of birth"),
        f("email", Kind::Email, false, "Contact email"),
        f("phone", Kind::Str { max: 30 }, false, "Contact phone"),
        f("address", Kind::Object(&ADDRESS), false, "Postal address"),
        f(
            "status",
            Kind::Enum(CLIENT_STATUS),
            true,
            "Relationship status",
        ),
        f("group_id", UUID, false, "Owning group"),
        f("adviser_id", UUID, false, "Adviser (a user)"),
        f(
            "dependants",
            Kind::Array {
                item: &DEPENDANT,
                max_items: 20,
            },
            false,
            "Dependants, nested in the client",
        ),
        f(
            "relationship_ended_on",
            Kind::Date,
            false,
            "Set when the client relationship ends; retention counts from here",
        ),
        f("notes", TEXT, false, "Free text"),
    ],
    read_only: &[
        "group_name",
        "adviser_name",
        "search_text",
        "document_count",
        "legal_hold",
        // {reason, until, since}: processing restricted (see domain::personal_data)
        "restricted",
        // set by erasure on a pseudonymised client that kept records still refer to
        "erased_at",
    ],
    filters: &[
        Filter {
            param: "status",
            column: "status",
            op: FilterOp::Eq,
            value: &Kind::Enum(CLIENT_STATUS),
        },
        Filter {
            param: "group_id",
            column: "group_id",
            op: FilterOp::Eq,
            value: &UUID,
        },
        Filter {
            param: "adviser_id",
            column: "adviser_id",
            op: FilterOp::Eq,
            value: &UUID,
        },
        Filter {
            param: "surname_prefix",
            column: "surname_fold",
            op: FilterOp::Prefix,
            value: &SHORT,
        },
        Filter {
            param: "search_prefix",
            column: "search_fold",
            op: FilterOp::Prefix,
            value: &SHORT,
        },
    ],
    unknown_fields: UnknownFields::Reject,
    admin_writes: false,
    immutable: &[],
    references: &[
        Reference {
            field: "group_id",
            target: &GROUPS,
        },
        Reference {
            field: "adviser_id",
            target: &USERS,
        },
    ],
};

pub static DOCUMENTS: EntitySpec = EntitySpec {
    table: "documents",
    singular: "document",
    fields: &[
        f(
            "client_id",
            UUID,
            true,
            "The client the document belongs to",
        ),
        f("kind", Kind::Enum(DOCUMENT_KINDS), true, "Document kind"),
        f("title", NAME, true, "Title"),
        f("description", TEXT, false, "Free text"),
    ],
    // client_ended_on, client_restricted: the client's relationship end and restriction,
    // copied onto its documents by the write protocol.
    read_only: &[
        "content",
        "client_ended_on",
        "client_restricted",
        "restricted",
    ],
    filters: &[
        Filter {
            param: "client_id",
            column: "client_id",
            op: FilterOp::Eq,
            value: &UUID,
        },
        Filter {
            param: "kind",
            column: "kind",
            op: FilterOp::Eq,
            value: &Kind::Enum(DOCUMENT_KINDS),
        },
    ],
    unknown_fields: UnknownFields::Reject,
    admin_writes: false,
    immutable: &["client_id"],
    references: &[Reference {
        field: "client_id",
        target: &CLIENTS,
    }],
};

pub static ALL: [&EntitySpec; 4] = [&GROUPS, &USERS, &CLIENTS, &DOCUMENTS];

/// The top-level field names a JSON object sets (a create's body, a patch): the event's
/// `changed_fields`.
pub fn field_names(body: &Value) -> Vec<String> {
    body.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

pub fn by_table(table: &str) -> Option<&'static EntitySpec> {
    ALL.iter().copied().find(|e| e.table == table)
}

/// Limits on request bodies.
pub const MAX_JSON_BODY_BYTES: usize = 256 * 1024;
pub const MAX_JSON_DEPTH: usize = 8;

/// One validation failure, with a JSON pointer to the field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub pointer: String,
    pub message: String,
}

fn err(pointer: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        pointer: pointer.into(),
        message: message.into(),
    }
}

pub fn json_depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(json_depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

pub fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::parse_str(s).is_ok()
}

fn is_date(s: &str) -> bool {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    s.len() == 10 && time::Date::parse(s, &fmt).is_ok()
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
}

fn check_value(kind: &Kind, v: &Value, ptr: &str, out: &mut Vec<FieldError>) {
    match kind {
        Kind::Str { max } => match v.as_str() {
            Some(s) if s.chars().count() > *max => {
                out.push(err(ptr, format!("at most {max} characters")))
            }
            Some(s) if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
                out.push(err(ptr, "control characters are not allowed"))
            }
            Some(_) => {}
            None => out.push(err(ptr, "must be a string")),
        },
        Kind::Email => match v.as_str() {
            Some(s) if s.len() <= 254 && is_email(s) => {}
            _ => out.push(err(
                ptr,
                "must be an email address (at most 254 characters)",
            )),
        },
        Kind::Enum(values) => match v.as_str() {
            Some(s) if values.contains(&s) => {}
            _ => out.push(err(ptr, format!("must be one of {}", values.join(", ")))),
        },
        Kind::Uuid => match v.as_str() {
            Some(s) if is_uuid(s) => {}
            _ => out.push(err(ptr, "must be a UUID")),
        },
        Kind::Date => match v.as_str() {
            Some(s) if is_date(s) => {}
            _ => out.push(err(ptr, "must be a date YYYY-MM-DD")),
        },
        Kind::Bool => {
            if !v.is_boolean() {
                out.push(err(ptr, "must be true or false"))
            }
        }
        Kind::Object(fields) => match v.as_object() {
            Some(o) => check_object(fields, &[], o, ptr, true, out),
            None => out.push(err(ptr, "must be an object")),
        },
        Kind::Array { item, max_items } => match v.as_array() {
            Some(a) if a.len() > *max_items => {
                out.push(err(ptr, format!("at most {max_items} items")))
            }
            Some(a) => {
                for (i, x) in a.iter().enumerate() {
                    check_value(&item.kind, x, &format!("{ptr}/{i}"), out);
                }
            }
            None => out.push(err(ptr, "must be an array")),
        },
    }
}

fn check_object(
    fields: &[Field],
    read_only: &[&str],
    o: &Map<String, Value>,
    ptr: &str,
    complete: bool,
    out: &mut Vec<FieldError>,
) {
    for (k, v) in o {
        let p = format!("{ptr}/{k}");
        if (COMMON_READ_ONLY.contains(&k.as_str()) && ptr.is_empty())
            || read_only.contains(&k.as_str())
        {
            out.push(err(&p, "is read-only"));
            continue;
        }
        match fields.iter().find(|f| f.name == k) {
            None => out.push(err(&p, "is not a known field")),
            Some(_) if v.is_null() => {} // null clears an optional field; required checked below
            // A required text (a name, a title) must say something.
            Some(Field {
                kind: Kind::Str { .. },
                required: true,
                ..
            }) if v.as_str().is_some_and(|s| s.trim().is_empty()) => {
                out.push(err(&p, "must not be empty or whitespace only"))
            }
            Some(fd) => check_value(&fd.kind, v, &p, out),
        }
    }
    if complete {
        for fd in fields.iter().filter(|f| f.required) {
            if o.get(fd.name).is_none_or(Value::is_null) {
                out.push(err(&format!("{ptr}/{}", fd.name), "is required"));
            }
        }
    }
}

/// Check one value against a kind (list filter values).
pub fn check(kind: &Kind, v: &Value) -> Vec<FieldError> {
    let mut out = Vec::new();
    check_value(kind, v, "", &mut out);
    out
}

/// Validate a full document (a create, or the result of a merge patch).
pub fn validate(spec: &EntitySpec, doc: &Value) -> Result<(), Vec<FieldError>> {
    let mut out = Vec::new();
    match doc.as_object() {
        Some(o) => check_object(spec.fields, spec.read_only, o, "", true, &mut out),
        None => out.push(err("", "the body must be a JSON object")),
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(out)
    }
}

/// Validate a merge patch before applying it: only declared, writable fields.
pub fn validate_patch(spec: &EntitySpec, patch: &Value) -> Result<(), Vec<FieldError>> {
    let mut out = Vec::new();
    match patch.as_object() {
        Some(o) => check_object(spec.fields, spec.read_only, o, "", false, &mut out),
        None => out.push(err("", "a merge patch must be a JSON object")),
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(out)
    }
}

/// UUIDs of a valid body (a create or a merge patch) in their canonical lower-case spelling:
/// any case is accepted (as in paths), one spelling is stored, so equality, foreign keys and
/// filters agree.
pub fn lowercase_uuids(spec: &EntitySpec, body: &mut Value) {
    fn walk(fields: &[Field], o: &mut Map<String, Value>) {
        for fd in fields {
            if let Some(v) = o.get_mut(fd.name) {
                lower_value(&fd.kind, v);
            }
        }
    }
    fn lower_value(kind: &Kind, v: &mut Value) {
        match (kind, v) {
            (Kind::Uuid, Value::String(s)) => s.make_ascii_lowercase(),
            (Kind::Object(fields), Value::Object(o)) => walk(fields, o),
            (Kind::Array { item, .. }, Value::Array(a)) => {
                a.iter_mut().for_each(|x| lower_value(&item.kind, x))
            }
            _ => {}
        }
    }
    if let Value::Object(o) = body {
        walk(spec.fields, o);
    }
}

/// Remove `null` members at every level (a stored document never holds nulls).
pub fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.retain(|_, x| !x.is_null());
            o.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// A merge patch's nulls inside arrays (values, not deletions: RFC 7396 replaces arrays whole)
/// stripped as a create strips them; nulls of object members stay, they delete.
pub fn strip_nulls_in_arrays(patch: &mut Value) {
    match patch {
        Value::Object(o) => o.values_mut().for_each(strip_nulls_in_arrays),
        Value::Array(_) => strip_nulls(patch),
        _ => {}
    }
}

/// RFC 7396 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Top-level field names whose values differ between two documents.
pub fn changed_fields(before: &Value, after: &Value) -> Vec<String> {
    let empty = Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| b.get(*k) != a.get(*k))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests;
