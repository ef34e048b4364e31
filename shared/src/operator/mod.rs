//! Layer 3, the operator plane (the operator Worker, `producers/operator`): every tenant's
//! accounts, holds, shards, dead letters and job runs, on its own hostname, never routed from a
//! tenant host. Platform-free like the API: the Worker only adapts.
//!
//! - Who: deployed, Cloudflare Access sits in front of the hostname and every request carries
//!   its assertion (`Cf-Access-Jwt-Assertion`, else the `CF_Authorization` cookie; RS256,
//!   the team's JWKS, the application's audience tag), verified here (`domain::operator::verify_access`, keys through
//!   `services::identity::KeyCache`); the operator is its email (or a service token's common
//!   name). Locally the dev credential (`ADMIN_SECRET` as a bearer) stands in, attributed to a
//!   fixed local operator. Nothing else is accepted: 401 problem+json.
//! - What: every action (any route but the reads) is first appended to the platform audit
//!   trail (`services::platform_audit`, account D1) with that operator; an action the trail
//!   cannot record is not carried out (503). Once answered, its outcome (status, `done` /
//!   `refused` / `failed`, problem type, summary) is appended as a later link naming it.
//!
//! It builds on the API layer's HTTP toolkit (requests, errors, extractors, the account-change
//! protocol) and on nothing else of L3; the API never imports it. Job runs are the
//! scheduler's: this Worker calls it through a service binding ([`OperatorPlatform::run_job`]),
//! and `jobs.rs` is the scheduler's side of that call (the one place importing `jobs`).

#![allow(async_fn_in_trait)]

pub mod handlers;
pub mod jobs;
pub mod moves;
pub mod openapi;
pub mod routes;

use crate::api::error::ApiError;
use crate::api::http::{ApiRequest, ApiResponse};
use crate::api::{error_response, ApiConfig, Platform};
use crate::domain::auth::{self, AuthError};
use crate::domain::operator::{self as op, AccessApp, Operator};
use crate::services::platform_audit::{self, PlatformAuditError};
use serde_json::{json, Value};

/// The operator Worker's platform: the API's (accounts, shards, queue, route cache, JWKS
/// cache, fetch) plus the scheduler behind its service binding.
pub trait OperatorPlatform: Platform {
    /// `POST /admin/v1/jobs/{job}/run` on the scheduler (`steps`: the `moves` job's steps per
    /// move, `jobs::run_path`); its answer as it gave it.
    async fn run_job(
        &self,
        job: &str,
        steps: Option<usize>,
        request_id: &str,
    ) -> Result<ApiResponse, String>;
}

#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// What the account-change protocol needs (deployment name, local flag, the HS256 config
    /// for local demo tokens).
    pub api: ApiConfig,
    /// The Access application (deployed; required outside the local environment), or why the
    /// deployment's configuration of it is unusable (`domain::operator::access_config`): then
    /// every request is a 500 `misconfigured` problem, logged.
    pub access: Result<Option<AccessApp>, String>,
    /// Locally: the dev credential (bearer). Ignored outside the local environment.
    pub dev_secret: String,
}

pub async fn handle<P: OperatorPlatform>(
    p: &P,
    cfg: &OperatorConfig,
    req: ApiRequest,
) -> ApiResponse {
    let r = if let Err(why) = &cfg.access {
        tracing::error!(problem = %why, "the operator Worker refuses to serve: Cloudflare Access is misconfigured");
        error_response(ApiError::Misconfigured(why.clone()), &req.request_id)
    } else {
        match route(p, cfg, &req).await {
            Ok(r) if r.header("x-request-id").is_some() => r,
            Ok(r) => r.with_header("x-request-id", req.request_id.clone()),
            Err(e) => error_response(e, &req.request_id),
        }
    };
    if req.method == crate::api::http::Method::Head {
        crate::api::without_body(r)
    } else {
        r
    }
}

/// The operator behind a request: a valid Access assertion, or locally the dev credential.
pub async fn authenticate<P: Platform>(
    p: &P,
    cfg: &OperatorConfig,
    req: &ApiRequest,
) -> Result<Operator, ApiError> {
    if cfg.api.local {
        if let Some(h) = req.header("authorization") {
            auth::authorize_secret(&cfg.dev_secret, Some(h))?;
            return Ok(Operator::local());
        }
    }
    let Ok(Some(app)) = &cfg.access else {
        return Err(if cfg.api.local {
            ApiError::Auth(AuthError::Missing)
        } else {
            ApiError::Unavailable("Cloudflare Access is not configured for the operator".into())
        });
    };
    let assertion = op::access_assertion(req.header(op::ACCESS_ASSERTION_HEADER), req.header("cookie"))
        .ok_or_else(|| {
            ApiError::Auth(AuthError::Invalid(
                "no Cloudflare Access assertion (Cf-Access-Jwt-Assertion or the CF_Authorization cookie)".into(),
            ))
        })?;
    let u = crate::domain::identity::inspect(assertion)?;
    let kid = u
        .kid
        .ok_or_else(|| AuthError::Invalid("the assertion names no key (kid)".into()))?;
    let issuer = app.issuer();
    let now = p.now();
    let keys = p
        .keys()
        .keys(p.key_store(), p.fetcher(), &issuer.jwks_uri, &kid, now)
        .await?;
    Ok(op::verify_access(app, assertion, &keys, now)?)
}

fn audit_error(e: PlatformAuditError) -> ApiError {
    match e {
        PlatformAuditError::Store(s) => ApiError::Store(s),
        other => ApiError::Unavailable(format!(
            "{other}; the action was not carried out (it could not be recorded)"
        )),
    }
}

async fn route<P: OperatorPlatform>(
    p: &P,
    cfg: &OperatorConfig,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    use routes::{find, Found, Handler as H};
    // OPTIONS: the path's `Allow`, to an operator only (like a 404 or 405 here, it says which
    // paths exist), except on the public paths.
    if req.method == crate::api::http::Method::Options {
        let public = matches!(find(&crate::api::http::Method::Get, &req.path), Found::Route(r, _) if r.public);
        if !public {
            authenticate(p, cfg, req).await?;
        }
        return match routes::allow(&req.path) {
            Some(allow) => Ok(ApiResponse::empty(204).with_header("allow", allow)),
            None => Err(ApiError::NotFound(format!(
                "no operator route for {}",
                req.path
            ))),
        };
    }
    let (r, params) = match find(&req.method, &req.path) {
        Found::Route(r, params) => (r, params),
        // Refused before a path is answered 404 or 405, exactly as a served one would be.
        Found::MethodNotAllowed(allow) => {
            authenticate(p, cfg, req).await?;
            return Err(ApiError::MethodNotAllowed(allow));
        }
        Found::NotFound => {
            authenticate(p, cfg, req).await?;
            return Err(ApiError::NotFound(format!(
                "no operator route for {}",
                req.path
            )));
        }
    };
    if r.public {
        return Ok(match r.handler {
            H::OpenApi => ApiResponse::json(200, openapi::document()),
            _ => ApiResponse::json(
                200,
                json!({"status": "ok", "deployment": cfg.api.deployment}),
            ),
        });
    }
    let operator = authenticate(p, cfg, req).await?;
    let mut param = params.first().copied().unwrap_or_default().to_string();
    // A new account's (or move's) id is chosen here (unless the operator names it), so that
    // the trail records what the action created.
    let assigned;
    let req = match (r.handler, serde_json::from_slice::<Value>(&req.body)) {
        (H::CreateAccount | H::CreateMove, Ok(Value::Object(mut body))) => {
            let id = body
                .entry("id")
                .or_insert_with(|| json!(crate::domain::clock::uuid_v4(p.entropy())));
            param = id.as_str().unwrap_or_default().to_string();
            assigned = ApiRequest {
                body: serde_json::to_vec(&body).unwrap_or_default(),
                ..req.clone()
            };
            &assigned
        }
        _ => req,
    };
    let Some(a) = r.audited else {
        return handlers::dispatch(p, cfg, req, r.handler, &param, &operator).await;
    };
    let details: Value = if req.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&req.body)
            .unwrap_or_else(|_| json!({"unparsed_bytes": req.body.len()}))
    };
    let action = op::Action {
        operator: operator.clone(),
        action: a.action.into(),
        target: op::Target {
            kind: a.target.into(),
            id: param.chars().take(128).collect(),
        },
        details,
        request_id: req.request_id.clone(),
    };
    let entry = platform_audit::append(p.accounts(), &action, p.now())
        .await
        .map_err(audit_error)?;
    tracing::info!(
        operator = %operator.email,
        action = a.action,
        target = %param,
        platform_audit_seq = entry.seq,
        "operator action"
    );
    let resp = match handlers::dispatch(p, cfg, req, r.handler, &param, &operator).await {
        Ok(r) => r,
        Err(e) => error_response(e, &req.request_id),
    };
    record_outcome(p, &entry, &resp).await;
    Ok(resp)
}

/// Append the outcome of the action recorded as `entry`: the response's status, and for a
/// refusal or failure its problem type and detail (a success: the created resource's
/// location). The action already happened (or was refused), so a failure to record it is
/// logged, not answered: verify lists the action among those `without_outcome`.
async fn record_outcome<P: Platform>(p: &P, entry: &op::PlatformEntry, resp: &ApiResponse) {
    let body = resp.body_json();
    let text = |k: &str| body.and_then(|b| b.get(k)).and_then(Value::as_str);
    let outcome = if resp.status < 400 {
        op::Outcome::new(entry.seq, resp.status, None, resp.header("location"))
    } else {
        op::Outcome::new(entry.seq, resp.status, text("type"), text("detail"))
    };
    match platform_audit::append_outcome(p.accounts(), entry, outcome, p.now()).await {
        Ok(o) => tracing::info!(
            action = %entry.action,
            platform_audit_seq = o.seq,
            of_seq = entry.seq,
            status = resp.status,
            "operator action outcome"
        ),
        Err(e) => tracing::error!(
            action = %entry.action,
            of_seq = entry.seq,
            status = resp.status,
            error = %e,
            "the outcome of an operator action could not be recorded"
        ),
    }
}
