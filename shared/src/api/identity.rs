//! `GET/PUT /v1/settings/identity` (admins): the account's trusted identity providers. A PUT is
//! an account change like the retention settings (versioned, audited with before and after);
//! the (issuer, audience) pairs it adds are claimed in the account D1's index first (one
//! account per pair: 409 if another account has it) and the ones it drops are released after.
//! A PUT that would drop the issuer its own token came from is refused (409): an admin cannot
//! lock the account out of itself.
//!
//! Tenant-side, not operator-side: the firm owns its IdP configuration (client ids, role
//! mappings, key rotation all change on its side) and every change lands in its own audit
//! trail. The first issuer of a production account (which accepts no HS256 token) is set by
//! the operator through the same service (`services::identity`).

use crate::api::error::ApiError;
use crate::api::http::{ApiRequest, ApiResponse};
use crate::api::tenant::Via;
use crate::api::{
    admins_only, change_setting, settings_route, typed_body, ApiConfig, Platform, Tenant,
};
use crate::domain::clock::rfc3339;
use crate::domain::identity::IdentitySettings;
use crate::services::identity as service;

const WHO: &str = "read or change identity settings";

fn answer(s: &IdentitySettings) -> ApiResponse {
    ApiResponse::json(200, serde_json::to_value(s).unwrap_or_default())
}

pub async fn get<P: Platform>(
    p: &P,
    t: &Tenant<P::Db>,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    admins_only(t, WHO)?;
    Ok(answer(&settings_route(p, t, req).await?.identity))
}

pub async fn put<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    t: &Tenant<P::Db>,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    admins_only(t, WHO)?;
    let settings: IdentitySettings = typed_body(req)?;
    settings
        .validate(cfg.local)
        .map_err(ApiError::bad_request)?;
    if let Via::Issuer { issuer, audience } = &t.via {
        if settings
            .find(issuer, std::slice::from_ref(audience))
            .is_none()
        {
            return Err(ApiError::Conflict(format!(
                "these settings drop {issuer} (audience {audience}), the issuer of your own token: \
                 keep it, or change it signed in through another trusted issuer"
            )));
        }
    }
    let account = t.account_id();
    service::claim_issuers(p.accounts(), account, &settings, &rfc3339(p.now())).await?;
    let value = serde_json::to_value(&settings).map_err(|e| ApiError::Internal(e.to_string()))?;
    change_setting(p, cfg, t, req, "identity", value).await?;
    service::release_issuers(p.accounts(), account, &settings).await?;
    Ok(answer(&settings))
}
