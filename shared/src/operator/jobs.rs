//! The scheduler Worker's side of job runs: `POST /admin/v1/jobs/{job}/run` runs a job now and
//! answers with its recorded run. The scheduler has no route of its own: only the operator
//! Worker reaches it, through its service binding, after authenticating the operator and
//! recording the run in the platform audit trail; the call carries `ADMIN_SECRET` as a bearer
//! (defence in depth should a route ever be added). The one place the operator layer reaches
//! the jobs layer.

use crate::api::error::ApiError;
use crate::api::error_response;
use crate::api::http::{ApiRequest, ApiResponse, Method};
use crate::domain::auth;
use crate::jobs::{run_limited, Job, SchedulerPlatform};

/// Whether the scheduler runs a job of this name.
pub fn known(name: &str) -> bool {
    Job::parse(name).is_some()
}

/// The path of a job run, as the operator Worker calls it (`steps`: the `moves` job's steps
/// per move, see [`move_steps`]).
pub fn run_path(job: &str, steps: Option<usize>) -> String {
    match steps {
        Some(n) => format!("/admin/v1/jobs/{job}/run?steps={n}"),
        None => format!("/admin/v1/jobs/{job}/run"),
    }
}

/// The most steps per move a `moves` run takes (the default).
pub const MAX_MOVE_STEPS: usize = crate::jobs::moves::STEPS_PER_RUN;

/// The `steps` query parameter: steps per move of a `moves` run, 1 to [`MAX_MOVE_STEPS`] (an
/// operator stepping a move one step at a time).
pub fn move_steps(req: &ApiRequest) -> Result<Option<usize>, ApiError> {
    let max = MAX_MOVE_STEPS;
    req.query_param("steps")
        .map(|s| {
            s.parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| ApiError::bad_request(format!("steps must be 1 to {max}")))
        })
        .transpose()
}

pub async fn handle_scheduler<P: SchedulerPlatform>(
    p: &P,
    secret: &str,
    req: &ApiRequest,
) -> ApiResponse {
    match scheduler_route(p, secret, req).await {
        Ok(r) => r.with_header("x-request-id", req.request_id.clone()),
        Err(e) => error_response(e, &req.request_id),
    }
}

async fn scheduler_route<P: SchedulerPlatform>(
    p: &P,
    secret: &str,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    auth::authorize_secret(secret, req.header("authorization"))?;
    let segs: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["admin", "v1", "jobs", name, "run"] => {
            if req.method != Method::Post {
                return Err(ApiError::MethodNotAllowed("POST"));
            }
            let job = Job::parse(name).ok_or_else(|| {
                ApiError::NotFound(format!(
                    "no job {name}; jobs: outbox_relay, shard_health, migration_check, retention, audit_checkpoints, moves"
                ))
            })?;
            let run = run_limited(p, job, None, move_steps(req)?).await;
            Ok(ApiResponse::json(
                200,
                serde_json::to_value(run).unwrap_or_default(),
            ))
        }
        _ => Err(ApiError::NotFound(format!("no route for {}", req.path))),
    }
}
