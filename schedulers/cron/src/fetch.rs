//! `fetch` entrypoint: the operator API that runs a job on demand.

use crate::WorkerPlatform;
use shared::bindings as b;
use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let secret = platform::secret(&env, b::ADMIN_SECRET).unwrap_or_default();
    let req = match platform::to_api_request(req, 64 * 1024).await {
        Ok(r) => r,
        Err(resp) => return platform::to_worker_response(resp),
    };
    let Some(p) = WorkerPlatform::new(env) else {
        return platform::to_worker_response(
            shared::http::Problem::new(
                503,
                "misconfigured",
                "Service Unavailable",
                "scheduler bindings missing",
            )
            .into_response(&req.request_id),
        );
    };
    platform::to_worker_response(shared::api::admin::jobs::handle_operator(&p, &secret, &req).await)
}
