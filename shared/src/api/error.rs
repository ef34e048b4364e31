//! The API layer's error type; mapped to problem+json only at the edge (`into_problem`).

use crate::api::http::Problem;
use crate::domain::auth::AuthError;
use crate::domain::entity::FieldError;
use crate::ports::{BlobError, StoreError};
use crate::services::tenancy::TenancyError;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// Carries the methods the path does allow (the `Allow` header).
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    #[error("{detail}")]
    BadRequest {
        detail: String,
        extra: Option<serde_json::Value>,
    },
    /// `x-d1-bookmark` that cannot be a D1 bookmark.
    #[error("{0}")]
    InvalidBookmark(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Conflict(String),
    /// The record is restricted (UK GDPR art. 18, or kept because a law requires it): it is not
    /// changed until the restriction is lifted. Carries the stored `restricted` object.
    #[error("{singular} {id} is restricted")]
    Restricted {
        singular: &'static str,
        id: String,
        restriction: serde_json::Value,
    },
    /// What the request refers to existed and has since been deleted or erased.
    #[error("{0}")]
    Gone(String),
    #[error("the resource changed: If-Match {0} does not match")]
    PreconditionFailed(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("account {account} lives on shard {shard}, served by deployment {deployment}")]
    Misdirected {
        account: String,
        shard: String,
        deployment: String,
    },
    #[error("{0}")]
    UnavailableForLegalReasons(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("{0}")]
    Internal(String),
    /// A deployment setting is missing or invalid: a 500 that names it.
    #[error("{0}")]
    Misconfigured(String),
}

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest {
            detail: detail.into(),
            extra: None,
        }
    }

    pub fn into_problem(self) -> Problem {
        use ApiError::*;
        match self {
            Auth(AuthError::NotConfigured) => {
                Problem::new(500, "auth-not-configured", "Authentication is not configured", "the deployment has no signing secret")
            }
            Auth(e) => Problem::new(401, "unauthorized", "Unauthorized", e.to_string()),
            Forbidden(d) => Problem::new(403, "forbidden", "Forbidden", d),
            NotFound(d) => Problem::new(404, "not-found", "Not Found", d),
            MethodNotAllowed(allow) => Problem::new(405, "method-not-allowed", "Method Not Allowed", format!("this path supports {allow}")),
            BadRequest { detail, extra } => {
                let p = Problem::new(400, "bad-request", "Bad Request", detail);
                match extra {
                    Some(x) => p.with_extra(x),
                    None => p,
                }
            }
            InvalidBookmark(d) => Problem::new(400, "invalid-bookmark", "Invalid Bookmark", d),
            Validation(errors) => Problem::new(400, "validation", "Validation Failed", "the request body is not valid; see `errors`")
                .with_extra(json!({ "errors": errors })),
            Unprocessable(d) => Problem::new(422, "unprocessable", "Unprocessable Content", d),
            Conflict(d) => Problem::new(409, "conflict", "Conflict", d),
            Restricted { singular, id, restriction } => {
                let reason = restriction["reason"].as_str().unwrap_or("no reason recorded");
                let until = restriction["until"].as_str().map_or("until it is lifted".to_string(), |u| format!("until {u}"));
                Problem::new(409, "restricted", "Restricted", format!("{singular} {id} is restricted ({reason}) {until}; it cannot be changed meanwhile"))
                    .with_extra(json!({ "restricted": {"reason": restriction["reason"], "until": restriction["until"]} }))
            }
            Gone(d) => Problem::new(410, "resource-gone", "Gone", d),
            PreconditionFailed(d) => Problem::new(412, "precondition-failed", "Precondition Failed", format!("If-Match {d} does not match the current version")),
            PayloadTooLarge(d) => Problem::new(413, "payload-too-large", "Payload Too Large", d),
            UnsupportedMediaType(d) => Problem::new(415, "unsupported-media-type", "Unsupported Media Type", d),
            e @ Misdirected { .. } => {
                let deployment = match &e {
                    Misdirected { deployment, .. } => deployment.clone(),
                    _ => String::new(),
                };
                Problem::new(421, "misdirected", "Misdirected Request", e.to_string())
                    .with_extra(json!({ "deployment": deployment }))
            }
            UnavailableForLegalReasons(d) => Problem::new(451, "unavailable-for-legal-reasons", "Unavailable For Legal Reasons", d),
            Unavailable(d) => Problem::new(503, "unavailable", "Service Unavailable", d),
            Store(StoreError::Fenced(_)) => Problem::new(503, "tenant-moving", "Service Unavailable", "the account is being moved to another shard: writes pause for a moment, reads go on; retry after the Retry-After delay"),
            // The documents' insert trigger (migration 0015): refused inside the insert itself.
            Store(StoreError::Constraint(d)) if d.contains("client_erasure") => Problem::new(409, "client-erased", "Conflict", "no document is created for this client: its erasure was requested (or it was erased)"),
            Store(StoreError::Constraint(d)) if d.contains("FOREIGN KEY") => Problem::new(422, "unprocessable", "Unprocessable Content", "a referenced id (for example group_id, adviser_id or client_id) does not exist in this account"),
            Store(StoreError::Constraint(d)) => Problem::new(409, "conflict", "Conflict", format!("the write conflicts with existing data ({})", constraint_hint(&d))),
            Store(e) => {
                tracing::error!(error = %e, "storage failure");
                Problem::new(503, "storage-unavailable", "Service Unavailable", "storage is unavailable; retry later")
            }
            Tenancy(e) => {
                tracing::error!(error = %e, "tenancy failure");
                Problem::new(503, "storage-unavailable", "Service Unavailable", "the account registry is unavailable; retry later")
            }
            Blob(e) => {
                tracing::error!(error = %e, "blob failure");
                Problem::new(503, "storage-unavailable", "Service Unavailable", "document storage is unavailable; retry later")
            }
            Internal(d) => {
                tracing::error!(detail = %d, "internal error");
                Problem::new(500, "internal", "Internal Server Error", "an unexpected error occurred")
            }
            Misconfigured(d) => {
                tracing::error!(detail = %d, "configuration error");
                Problem::new(500, "misconfigured", "Internal Server Error", d)
            }
        }
    }
}

/// SQLite's constraint text names tables and columns; keep only that part for the client.
fn constraint_hint(msg: &str) -> String {
    if msg.contains("FOREIGN KEY") {
        "a referenced id does not exist".into()
    } else if let Some(i) = msg.find("UNIQUE constraint failed: ") {
        let cols = &msg[i + 26..];
        format!(
            "duplicate value of {}",
            cols.split([':', ' ', ','])
                .next()
                .unwrap_or("a unique field")
        )
    } else {
        "constraint".into()
    }
}

impl From<crate::services::identity::IdentityError> for ApiError {
    fn from(e: crate::services::identity::IdentityError) -> Self {
        use crate::services::identity::IdentityError as E;
        match e {
            E::Auth(a) => ApiError::Auth(a),
            E::KeysUnavailable(d) => {
                tracing::warn!(detail = %d, "identity provider keys unavailable");
                ApiError::Unavailable(format!(
                    "the account's identity provider cannot be reached to verify the token ({d}); retry later"
                ))
            }
            E::Store(s) => ApiError::Store(s),
            E::Taken(d) => ApiError::Conflict(d),
        }
    }
}
