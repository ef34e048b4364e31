//! `GET/PUT /v1/settings/retention`: the account's retention policy (UK presets by default).
//! Everyone in the account may read it; only admins change it. Stored in the account D1.

use crate::api::error::ApiError;
use crate::api::http::{ApiRequest, ApiResponse};
use crate::api::{
    admins_only, change_setting, json_body, settings_route, ApiConfig, Platform, Tenant,
};
use crate::domain::retention::Policy;
use serde_json::json;

pub async fn get<P: Platform>(
    p: &P,
    t: &Tenant<P::Db>,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let route = settings_route(p, t, req).await?;
    let policy = Policy::from_stored(&route.account.retention);
    Ok(ApiResponse::json(
        200,
        serde_json::to_value(policy).unwrap_or_default(),
    ))
}

pub async fn put<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    t: &Tenant<P::Db>,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    admins_only(t, "change retention settings")?;
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
    let value = serde_json::to_value(&policy).unwrap_or_default();
    change_setting(p, cfg, t, req, "retention", value).await?;
    Ok(ApiResponse::json(
        200,
        serde_json::to_value(policy).unwrap_or_default(),
    ))
}
