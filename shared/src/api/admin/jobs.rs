//! The scheduler Worker's operator API: `POST /admin/v1/jobs/{job}/run` runs a job now. The one
//! place the API layer reaches the jobs layer.

use super::authorize_secret;
use crate::api::error::ApiError;
use crate::api::error_response;
use crate::api::http::{ApiRequest, ApiResponse, Method};
use crate::jobs::{run, Job, SchedulerPlatform};

/// The scheduler's operator API: `POST /admin/v1/jobs/{job}/run` runs a job now and answers with
/// its recorded run. Authenticated by the operator secret, like `/admin/v1` on the API.
pub async fn handle_operator<P: SchedulerPlatform>(
    p: &P,
    admin_secret: &str,
    req: &ApiRequest,
) -> ApiResponse {
    match operator_route(p, admin_secret, req).await {
        Ok(r) => r.with_header("x-request-id", req.request_id.clone()),
        Err(e) => error_response(e, &req.request_id),
    }
}

async fn operator_route<P: SchedulerPlatform>(
    p: &P,
    admin_secret: &str,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    authorize_secret(admin_secret, req)?;
    let segs: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["admin", "v1", "jobs", name, "run"] => {
            if req.method != Method::Post {
                return Err(ApiError::MethodNotAllowed("POST"));
            }
            let job = Job::parse(name).ok_or_else(|| {
                ApiError::NotFound(format!(
                    "no job {name}; jobs: outbox_relay, shard_health, migration_check, retention"
                ))
            })?;
            let run = run(p, job, None).await;
            Ok(ApiResponse::json(
                200,
                serde_json::to_value(run).unwrap_or_default(),
            ))
        }
        _ => Err(ApiError::NotFound(format!("no route for {}", req.path))),
    }
}
