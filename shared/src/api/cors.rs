//! Per-account CORS (`domain::cors`): `GET/PUT /v1/settings/cors` (admins; a PUT is an account
//! change, versioned and audited with before and after, like the other settings), and the
//! headers every answer on one of the account's custom domains carries for a browser's `Origin`.

use crate::api::error::ApiError;
use crate::api::http::{ApiRequest, ApiResponse};
use crate::api::{
    admins_only, change_setting, settings_route, typed_body, ApiConfig, Platform, Tenant,
};
use crate::domain::cors::CorsSettings;
use crate::services::tenancy;

const WHO: &str = "read or change CORS settings";

fn answer(s: &CorsSettings) -> ApiResponse {
    ApiResponse::json(200, serde_json::to_value(s).unwrap_or_default())
}

pub async fn get<P: Platform>(
    p: &P,
    t: &Tenant<P::Db>,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    admins_only(t, WHO)?;
    Ok(answer(&settings_route(p, t, req).await?.cors))
}

pub async fn put<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    t: &Tenant<P::Db>,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    admins_only(t, WHO)?;
    let settings: CorsSettings = typed_body(req)?;
    settings
        .validate(cfg.local)
        .map_err(ApiError::bad_request)?;
    let value = serde_json::to_value(&settings).map_err(|e| ApiError::Internal(e.to_string()))?;
    change_setting(p, cfg, t, req, "cors", value).await?;
    Ok(answer(&settings))
}

/// The CORS settings of the account whose custom domain this request came to: none on the
/// shared API hosts, for a request without `Origin`, or when the lookup fails (no CORS header
/// is the safe answer). Cached with the route.
pub async fn of_host<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    req: &ApiRequest,
) -> Option<CorsSettings> {
    req.header("origin")?;
    let host = req.host().map(tenancy::hostname)?.to_ascii_lowercase();
    if cfg.api_hosts.iter().any(|h| h.eq_ignore_ascii_case(&host)) {
        return None;
    }
    let now = p.now();
    let account = p
        .routes()
        .domain(|| p.accounts(), &host, now)
        .await
        .ok()??;
    let route = p
        .routes()
        .route(|| p.accounts(), account, now)
        .await
        .ok()??;
    // A deactivated account's domain serves nobody, browsers included.
    Some(route.cors.clone()).filter(|c| !c.allowed_origins.is_empty() && route.account.is_active)
}
