//! `GET /v1/{collection}`: keyset pages, filtered on one indexed field at a time (any other
//! query parameter is a 400 listing the allowed filters). The cursor is opaque and bound to
//! the filter that made it.

use crate::api::error::ApiError;
use crate::api::http::ApiRequest;
use crate::api::http::ApiResponse;
use crate::api::render::{present, render_plain};
use crate::api::{cursor, query_limit, ApiConfig, Tenant, DEFAULT_PAGE, MAX_PAGE};
use crate::domain::auth::Role;
use crate::domain::entity::{self, EntitySpec};
use crate::domain::personal_data;
use crate::ports::*;
use crate::store::entities::list_stmt;
use serde_json::{json, Map, Value};

/// A keyset position: the last row's sort key and id. The cursor carrying it is MAC'd and
/// bound to the account and the query (`api::cursor`).
#[derive(serde::Serialize, serde::Deserialize)]
struct Position {
    k: Option<String>,
    id: String,
}

pub(crate) async fn list(
    cfg: &ApiConfig,
    t: &Tenant<impl Database>,
    spec: &'static EntitySpec,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let allowed: Vec<&str> = spec.filters.iter().map(|f| f.param).collect();
    let mut filter: Option<(&entity::Filter, String)> = None;
    let mut limit = DEFAULT_PAGE;
    let mut cursor = None;
    for (k, v) in &req.query {
        match k.as_str() {
            "limit" => limit = query_limit(req, DEFAULT_PAGE, MAX_PAGE)?,
            "cursor" => cursor = Some(v.as_str()),
            other => match spec.filters.iter().find(|f| f.param == other) {
                Some(f) => {
                    if filter.is_some() {
                        return Err(ApiError::BadRequest {
                            detail: format!(
                                "filter on one indexed field at a time; allowed: {}",
                                allowed.join(", ")
                            ),
                            extra: Some(json!({"allowed_filters": allowed})),
                        });
                    }
                    let errs = entity::check(f.value, &json!(v));
                    if let Some(e) = errs.first() {
                        return Err(ApiError::bad_request(format!("filter {}: {}", f.param, e.message)));
                    }
                    // UUIDs in any case, compared in the stored lower-case spelling.
                    let v = match f.value {
                        entity::Kind::Uuid => v.to_ascii_lowercase(),
                        _ => v.clone(),
                    };
                    filter = Some((f, v));
                }
                None => {
                    return Err(ApiError::BadRequest {
                        detail: format!(
                            "cannot filter {} on `{other}`: only indexed fields are filterable; allowed: {}",
                            spec.table,
                            if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") }
                        ),
                        extra: Some(json!({"allowed_filters": allowed})),
                    })
                }
            },
        }
    }
    let fsig = filter
        .as_ref()
        .map(|(f, v)| format!("{}={}", f.param, v))
        .unwrap_or_default();
    // The query a cursor belongs to: the collection and its one filter.
    let scope = format!("{}?{fsig}", spec.table);
    let after = match cursor {
        None => None,
        Some(c) => {
            let c: Position = cursor::open(&cfg.cursor_secret, t.account_id(), &scope, c)?;
            if !entity::is_uuid(&c.id) {
                return Err(ApiError::bad_request("cursor is invalid"));
            }
            Some(c)
        }
    };
    // A filter (and sort) on a personal-data column would show a non-admin which restricted
    // rows match and put their sort key in the cursor: such a list leaves restricted rows
    // out, so a cursor only ever carries keys of rows the caller may see. The default order
    // and the other filters are on ids, enums and foreign keys, none personal.
    let now = crate::domain::clock::rfc3339(t.now);
    let unrestricted_at = (t.claims.role != Role::Admin
        && filter
            .as_ref()
            .is_some_and(|(f, _)| personal_data::is_personal_column(spec.table, f.column)))
    .then_some(now.as_str());
    let stmt = list_stmt(
        spec,
        t.account_id(),
        filter.as_ref().map(|(f, v)| (*f, v.as_str())),
        after.as_ref().map(|c| (c.k.as_deref(), c.id.as_str())),
        limit,
        unrestricted_at,
    );
    let rows = t.db.query(stmt).await?;
    // The page is written as text: each plain row rendered from its stored text, any other
    // presented (as `crud::get` does).
    let mut page = String::with_capacity(64 + rows.rows.iter().map(row_len).sum::<usize>());
    page.push_str("{\"items\":[");
    let mut next = None;
    for (i, r) in rows.rows.iter().enumerate() {
        if i == limit {
            let prev = &rows.rows[i - 1];
            next = Some(cursor::seal(
                &cfg.cursor_secret,
                t.account_id(),
                &scope,
                &Position {
                    k: col_str(prev, "k").map(str::to_owned),
                    id: col_str(prev, "id").unwrap_or_default().into(),
                },
            )?);
            break;
        }
        if i > 0 {
            page.push(',');
        }
        let id = col_str(r, "id").unwrap_or_default();
        let body = col_str(r, "body").unwrap_or_default();
        match render_plain(id, body) {
            Some(plain) => page.push_str(&plain.doc),
            None => {
                let body = serde_json::from_str(body).unwrap_or(Value::Null);
                page.push_str(&present(t.claims.role, spec, id, &body, t.now).to_string());
            }
        }
    }
    page.push_str("],\"next_cursor\":");
    page.push_str(&Value::from(next).to_string());
    page.push('}');
    Ok(ApiResponse::json_text(200, page))
}

/// Length of a row's rendering, to size the page once.
fn row_len(r: &Map<String, Value>) -> usize {
    col_str(r, "body").map_or(0, str::len) + 48
}
