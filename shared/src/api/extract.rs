//! Request extractors shared by the handlers: ids, `limit`, JSON bodies within limits, and
//! the bookmark on the way out.

use crate::api::error::ApiError;
use crate::api::http::{ApiRequest, ApiResponse};
use crate::api::BOOKMARK_HEADER;
use crate::domain::entity;
use crate::ports::Database;
use serde_json::Value;
use uuid::Uuid;

pub fn parse_id(s: &str) -> Result<Uuid, ApiError> {
    if entity::is_uuid(s) {
        Uuid::parse_str(s).map_err(|_| ApiError::bad_request("ids are UUIDs"))
    } else {
        Err(ApiError::bad_request(format!("`{s}` is not a UUID")))
    }
}

/// The `limit` query parameter: `default` when absent, otherwise 1 to `max`.
pub fn query_limit(req: &ApiRequest, default: usize, max: usize) -> Result<usize, ApiError> {
    match req.query_param("limit") {
        None => Ok(default),
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::bad_request(format!("limit must be 1 to {max}"))),
    }
}

/// The `x-d1-bookmark` every tenant response carries (set in one place, `api::route`): the
/// shard session's latest bookmark, bound to `shard` (`{shard id}:{D1 bookmark}`), once it ran
/// a statement (reads and writes alike, errors included); otherwise the one the request sent,
/// echoed if it is this shard's (or a constraint), so a client that keeps the latest bookmark
/// it saw never loses its read-after-write floor on a response that read nothing.
pub fn set_bookmark(r: &mut ApiResponse, db: &impl Database, req: &ApiRequest, shard: &str) {
    let value = db
        .bookmark()
        .map(|b| crate::api::tenant::bound_bookmark(shard, &b))
        .or_else(|| sent_for(req, shard).map(str::to_owned));
    r.headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case(BOOKMARK_HEADER));
    if let Some(b) = value {
        r.headers.push((BOOKMARK_HEADER.into(), b));
    }
}

/// The request's bookmark if it is `shard`'s own, or a session constraint.
fn sent_for<'r>(req: &'r ApiRequest, shard: &str) -> Option<&'r str> {
    use crate::api::tenant::{parse_bookmark, Bookmark};
    let sent = req.header(BOOKMARK_HEADER)?;
    match parse_bookmark(sent)? {
        Bookmark::Constraint(_) => Some(sent),
        Bookmark::Bound { shard: s, .. } if s == shard => Some(sent),
        _ => None,
    }
}

/// For a response that needs no shard row (settings): one trivial statement on the shard
/// session when the client sent no bookmark of this shard, so the answer still carries one
/// (`set_bookmark`).
pub async fn touch_session(
    db: &impl Database,
    req: &ApiRequest,
    shard: &str,
) -> Result<(), ApiError> {
    if db.bookmark().is_none() && sent_for(req, shard).is_none() {
        db.query(crate::store::session_bookmark_stmt()).await?;
    }
    Ok(())
}

/// Parse a JSON request body within the size and depth limits.
pub fn json_body(req: &ApiRequest, allowed_types: &[&str]) -> Result<Value, ApiError> {
    let ct = req.header("content-type").unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !allowed_types.contains(&mime.as_str()) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type must be {}",
            allowed_types.join(" or ")
        )));
    }
    if req.body.len() > entity::MAX_JSON_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge(format!(
            "JSON bodies are limited to {} bytes",
            entity::MAX_JSON_BODY_BYTES
        )));
    }
    // Strict: a key named twice in one object is a 400 (serde_json alone keeps the last).
    let v: Value = entity::strict_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    if entity::json_depth(&v) > entity::MAX_JSON_DEPTH {
        return Err(ApiError::bad_request(format!(
            "JSON nesting is limited to {} levels",
            entity::MAX_JSON_DEPTH
        )));
    }
    Ok(v)
}

/// A JSON request body (limits as in `json_body`) decoded into a request type; a body that does
/// not fit the type is a 400 that says why.
pub fn typed_body<T: serde::de::DeserializeOwned>(req: &ApiRequest) -> Result<T, ApiError> {
    let v = json_body(req, &["application/json"])?;
    serde_json::from_value(v).map_err(|e| ApiError::bad_request(e.to_string()))
}
