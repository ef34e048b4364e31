//! `GET/PUT /v1/settings/retention`: the account's retention policy (UK presets by default).
//! Everyone in the account may read it; only admins change it. Stored in the account D1.

use crate::api::{json_body, Platform, Tenant};
use crate::auth::Role;
use crate::clock::rfc3339;
use crate::error::ApiError;
use crate::http::{ApiRequest, ApiResponse};
use crate::ports::{Database, Stmt};
use crate::retention::Policy;
use serde_json::json;

/// The stored policy, or the UK preset when none (or an older shape) is stored.
pub fn policy_of(stored: &serde_json::Value) -> Policy {
    serde_json::from_value(stored.clone()).unwrap_or_else(|_| Policy::uk_preset())
}

pub async fn get<D: Database>(t: &Tenant<D>) -> Result<ApiResponse, ApiError> {
    let policy = policy_of(&t.route.account.retention);
    Ok(ApiResponse::json(
        200,
        serde_json::to_value(policy).unwrap_or_default(),
    ))
}

pub async fn put<P: Platform>(
    p: &P,
    t: &Tenant<P::Db>,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    if t.claims.role != Role::Admin {
        return Err(ApiError::Forbidden(
            "only admins change retention settings".into(),
        ));
    }
    let mut v = json_body(req, &["application/json"])?;
    // JSON Schema's integer admits 76.0; so does this endpoint.
    if let Some(o) = v.as_object_mut() {
        for x in o.values_mut() {
            if let Some(f) = x
                .as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u32::MAX as f64)
            {
                if !x.is_u64() {
                    *x = json!(f as u64);
                }
            }
        }
    }
    let policy: Policy =
        serde_json::from_value(v).map_err(|e| ApiError::bad_request(e.to_string()))?;
    policy.validate().map_err(ApiError::bad_request)?;
    let r = p
        .accounts()
        .query(Stmt::new(
            "UPDATE accounts SET body = json_set(body, '$.retention', json(?2), '$.updated_at', ?3) WHERE id = ?1",
            vec![
                json!(t.account_id()),
                json!(serde_json::to_string(&policy).unwrap_or_default()),
                json!(rfc3339(p.now())),
            ],
        ))
        .await?;
    if r.meta.changes == 0 {
        return Err(ApiError::NotFound("the account is gone".into()));
    }
    p.routes().forget(t.account_id());
    Ok(ApiResponse::json(
        200,
        serde_json::to_value(policy).unwrap_or_default(),
    ))
}
