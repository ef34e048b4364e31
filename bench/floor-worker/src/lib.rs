//! The runtime + D1 floor of `cargo xtask bench`: `GET /v1/clients/{id}` with the account in
//! `x-account-id`, answered by exactly the product's GET-by-id D1 call and nothing else (no
//! auth, no routing, no cache): the same query in a `first-unconstrained` D1 session, its
//! bookmark returned in `x-d1-bookmark`, as the product does. Bound to the product's shard D1.
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
    let session = env.d1("SHARD")?.with_session(Some("first-unconstrained"))?;
    let result = session
        .prepare(GET_BY_ID)
        .bind(&[account.into(), id.into()])?
        .all()
        .await?;
    let rows: Vec<serde_json::Value> = result.results()?;
    let Some(row) = rows.into_iter().next() else {
        return Response::error("not found", 404);
    };
    let resp = Response::from_json(&row)?;
    if let Some(b) = session.get_bookmark()? {
        resp.headers().set("x-d1-bookmark", &b)?;
    }
    Ok(resp)
}
