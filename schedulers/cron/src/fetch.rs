//! `fetch` entrypoint: a job run on demand, called only by the operator Worker through its
//! service binding (the scheduler has no route).

use crate::WorkerPlatform;
use platform::logging;
use shared::bindings as b;
use shared::http::{ApiRequest, ApiResponse, Problem};
use worker::{event, web_sys, Context, Env, Result};

#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, _ctx: Context) -> Result<web_sys::Response> {
    let deployment = platform::var(&env, b::DEPLOYMENT_VAR).unwrap_or_default();
    let resp = logging::in_request_span(
        req,
        64 * 1024,
        &deployment,
        shared::http::RequestLog::ALL,
        |req| serve(env, req),
    )
    .await;
    platform::to_worker_response(resp)
}

async fn serve(env: Env, req: ApiRequest) -> ApiResponse {
    let secret = platform::secret(&env, b::ADMIN_SECRET).unwrap_or_default();
    let Some(p) = WorkerPlatform::new(env) else {
        tracing::error!("scheduler bindings missing");
        return Problem::new(
            503,
            "misconfigured",
            "Service Unavailable",
            "scheduler bindings missing",
        )
        .into_response(&req.request_id);
    };
    shared::operator::jobs::handle_scheduler(&p, &secret, &req).await
}
