//! The runtime + D1 floor of `cargo xtask bench`: `GET /v1/clients/{id}` with the account in
//! `x-account-id`, answered by exactly the product's GET-by-id query and nothing else (no
//! auth, no routing, no cache). Bound to the same local D1 as the product's shard.
#![cfg(target_arch = "wasm32")]

use worker::{event, Context, Env, Request, Response, Result};

const GET_BY_ID: &str =
    "SELECT id, body FROM clients WHERE account_id = ?1 AND id = ?2 AND deleted_at IS NULL";

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    let Some(id) = path.strip_prefix("/v1/clients/") else {
        return Response::error("not found", 404);
    };
    let account = req.headers().get("x-account-id")?.unwrap_or_default();
    let row: Option<serde_json::Value> = env
        .d1("SHARD")?
        .prepare(GET_BY_ID)
        .bind(&[account.into(), id.into()])?
        .first(None)
        .await?;
    match row {
        Some(r) => Response::from_json(&r),
        None => Response::error("not found", 404),
    }
}
