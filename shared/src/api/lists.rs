//! `GET /v1/{collection}`: keyset pages, filtered on one indexed field at a time (any other
//! query parameter is a 400 listing the allowed filters). The cursor is opaque and bound to
//! the filter that made it.

use crate::api::error::ApiError;
use crate::api::http::ApiRequest;
use crate::api::http::ApiResponse;
use crate::api::render::present;
use crate::api::{query_limit, with_bookmark, Tenant, DEFAULT_PAGE, MAX_PAGE};
use crate::domain::entity::{self, EntitySpec};
use crate::ports::*;
use crate::store::entities::list_stmt;
use base64::Engine;
use serde_json::{json, Value};

/// Opaque keyset cursor: the last row's sort key and id, bound to the filter that made it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Cursor {
    f: String,
    k: Option<String>,
    id: String,
}

fn encode_cursor(c: &Cursor) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(c).unwrap_or_default())
}

fn decode_cursor(s: &str) -> Option<Cursor> {
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()?;
    serde_json::from_slice(&b).ok()
}

pub(crate) async fn list(
    t: &Tenant<impl Database>,
    spec: &'static EntitySpec,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let allowed: Vec<&str> = spec.filters.iter().map(|f| f.param).collect();
    let mut filter = None;
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
                    filter = Some((f, v.as_str()));
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
        .map(|(f, v)| format!("{}={}", f.param, v))
        .unwrap_or_default();
    let after = match cursor {
        None => None,
        Some(c) => {
            let c = decode_cursor(c)
                .filter(|c| c.f == fsig && entity::is_uuid(&c.id))
                .ok_or_else(|| {
                    ApiError::bad_request("cursor is invalid or belongs to another filter")
                })?;
            Some(c)
        }
    };
    let stmt = list_stmt(
        spec,
        t.account_id(),
        filter,
        after.as_ref().map(|c| (c.k.as_deref(), c.id.as_str())),
        limit,
    );
    let rows = t.db.query(stmt).await?;
    let mut items = Vec::new();
    let mut next = None;
    for (i, r) in rows.rows.iter().enumerate() {
        let id = col_str(r, "id").unwrap_or_default();
        if i == limit {
            let prev = &rows.rows[i - 1];
            next = Some(encode_cursor(&Cursor {
                f: fsig.clone(),
                k: col_str(prev, "k").map(str::to_owned),
                id: col_str(prev, "id").unwrap_or_default().into(),
            }));
            break;
        }
        items.push(present(
            t.claims.role,
            spec,
            id,
            &col_json(r, "body").unwrap_or(Value::Null),
        ));
    }
    Ok(with_bookmark(
        ApiResponse::json(200, json!({"items": items, "next_cursor": next})),
        &t.db,
    ))
}
