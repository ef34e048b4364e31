//! `Idempotency-Key` on creates: the key is scoped to the caller and the route; the same key
//! with the same body replays the first outcome, with another body it is 422.

use crate::api::error::ApiError;
use crate::api::http::{ApiRequest, ApiResponse};
use crate::api::{with_bookmark, Tenant};
use crate::ports::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub(crate) fn request_hash(req: &ApiRequest) -> String {
    let mut h = Sha256::new();
    h.update(req.path.as_bytes());
    h.update([0]);
    h.update(&req.body);
    hex::encode(h.finalize())
}

pub(crate) fn idempotency_key(
    t: &Tenant<impl Database>,
    req: &ApiRequest,
) -> Result<Option<String>, ApiError> {
    let Some(k) = req.header("idempotency-key") else {
        return Ok(None);
    };
    let k = k.trim();
    if k.is_empty() || k.len() > 200 || !k.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be 1 to 200 printable ASCII characters",
        ));
    }
    Ok(Some(format!("{}:POST {}:{}", t.claims.sub, req.path, k)))
}

pub(crate) async fn replay(
    t: &Tenant<impl Database>,
    key: &str,
    req: &ApiRequest,
) -> Result<Option<ApiResponse>, ApiError> {
    let rows =
        t.db.query(crate::store::idempotency::find(t.account_id(), key))
            .await?;
    let Some(stored) = rows.first().and_then(|r| col_json(r, "body")) else {
        return Ok(None);
    };
    if stored.get("request_hash").and_then(Value::as_str) != Some(request_hash(req).as_str()) {
        return Err(ApiError::Unprocessable(
            "this Idempotency-Key was used with a different request body".into(),
        ));
    }
    let status = stored.get("status").and_then(Value::as_u64).unwrap_or(201) as u16;
    let mut r = ApiResponse::json(
        status,
        stored.get("response").cloned().unwrap_or(Value::Null),
    )
    .with_header("idempotent-replayed", "true");
    for h in ["location", "etag"] {
        if let Some(v) = stored.get(h).and_then(Value::as_str) {
            r = r.with_header(h, v);
        }
    }
    Ok(Some(with_bookmark(r, &t.db)))
}
