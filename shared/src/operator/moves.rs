//! `/admin/v1/moves`: start a tenant move (from a rebalancing proposal or an explicit account
//! and target; a dry run reports rows, bytes and an estimated time), read one or the latest,
//! cancel one (until cleanup starts), and drive them now (the scheduler's `moves` job through
//! its service binding). The scheduler carries moves out (`jobs::moves`).

use crate::api::error::ApiError;
use crate::api::http::{ApiRequest, ApiResponse};
use crate::api::{parse_id, Platform};
use crate::domain::clock::rfc3339;
use crate::domain::moves::{Move, UndoReason, DEFAULT_GRACE_SECONDS};
use crate::domain::tenancy::{Shard, ShardStatus};
use crate::operator::OperatorPlatform;
use crate::ports::*;
use crate::services::moves as svc;
use crate::store::moves as sql;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

/// Rows one run of the `moves` job carries through its passes (copy, catch-up, the fenced
/// final pass, verify) within an invocation's D1 calls: measured by `cargo xtask capacity
/// moves` (`bench/results/capacity/moves.json`: 200,000 rows in 14 runs; 60,000 in 5 before).
/// An xtask test keeps it within a factor of two of the measurement.
pub const ESTIMATED_ROWS_PER_RUN: f64 = 14_000.0;
/// The job's deployed interval (`bindings::CRON_MOVES`, every 2 minutes).
pub const MOVES_CRON_SECONDS: f64 = 120.0;

/// The dry run's estimate of a move of `rows` until its route flips, deployed: one run per
/// tick, the runs its rows need (at least one), and the wait for the first tick.
pub fn estimated_seconds(rows: u64) -> f64 {
    MOVES_CRON_SECONDS * (1.0 + (rows as f64 / ESTIMATED_ROWS_PER_RUN).ceil().max(1.0))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMove {
    /// Assigned by `operator::route` (the audit record names it).
    id: Uuid,
    #[serde(default)]
    proposal_id: Option<String>,
    #[serde(default)]
    account_id: Option<Uuid>,
    #[serde(default)]
    target_shard: Option<String>,
    #[serde(default)]
    grace_seconds: Option<i64>,
    #[serde(default)]
    dry_run: bool,
}

async fn shard<P: Platform>(p: &P, id: &str) -> Result<Shard, ApiError> {
    p.accounts()
        .query(crate::store::registry::shard_stmt(id))
        .await?
        .first()
        .and_then(|r| col_json(r, "body"))
        .and_then(|b| serde_json::from_value(b).ok())
        .ok_or_else(|| ApiError::Unprocessable(format!("no shard {id}")))
}

/// (account, target) of an open proposal.
async fn from_proposal<P: Platform>(p: &P, id: &str) -> Result<(Uuid, String), ApiError> {
    let rows = p
        .accounts()
        .query(crate::store::operations::open_proposals())
        .await?;
    let body = rows
        .rows
        .iter()
        .filter_map(|r| col_json(r, "body"))
        .find(|b| b["id"] == id)
        .ok_or_else(|| ApiError::Unprocessable(format!("no open proposal {id}")))?;
    let pr = &body["proposal"];
    let target = match pr["kind"].as_str() {
        Some("move") => pr["to_shard"].as_str(),
        Some("dedicated") => pr["shard_id"].as_str(),
        _ => None,
    }
    .ok_or_else(|| ApiError::Unprocessable(format!("proposal {id} does not move a tenant")))?;
    let account = pr["account_id"]
        .as_str()
        .and_then(|a| Uuid::parse_str(a).ok())
        .ok_or_else(|| ApiError::Unprocessable(format!("proposal {id} names no account")))?;
    Ok((account, target.to_string()))
}

pub async fn create<P: Platform>(p: &P, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let input: NewMove = crate::api::typed_body(req)?;
    let (account, target_id) = match (&input.proposal_id, input.account_id, &input.target_shard) {
        (Some(pid), None, None) => from_proposal(p, pid).await?,
        (None, Some(a), Some(t)) => (a, t.clone()),
        _ => {
            return Err(ApiError::bad_request(
                "name either proposal_id, or account_id and target_shard",
            ))
        }
    };
    let acct = p
        .accounts()
        .query(crate::store::accounts::body_stmt(account))
        .await?
        .first()
        .and_then(|r| col_json(r, "body"))
        .ok_or_else(|| ApiError::Unprocessable(format!("no account {account}")))?;
    let source_id = acct["db_shard_id"].as_str().unwrap_or_default().to_string();
    if source_id == target_id {
        return Err(ApiError::Conflict(format!(
            "account {account} is on {target_id} already"
        )));
    }
    let (source, target) = (shard(p, &source_id).await?, shard(p, &target_id).await?);
    if !matches!(
        target.status,
        ShardStatus::Active | ShardStatus::Provisioning
    ) {
        return Err(ApiError::Conflict(format!(
            "shard {target_id} is {:?}: it takes no tenants",
            target.status
        )));
    }
    let db = p
        .shard(&source.binding, Some("first-primary"))
        .ok_or_else(|| {
            ApiError::Unavailable(format!("the operator does not bind shard {source_id}"))
        })?;
    let estimate = svc::estimate(&db, account).await?;
    let bytes = estimate["bytes"].as_u64().unwrap_or(0);
    let rows = estimate["rows"].as_u64().unwrap_or(0);
    // The target's soft cap: its size in the latest health sample plus what the move adds.
    let (loads, accounts) = crate::store::shard_health::loads(p.accounts()).await?;
    let policy = crate::domain::planner::Policy::default();
    if let Some(load) = loads.iter().find(|l| l.id == target_id) {
        let adds = accounts
            .iter()
            .find(|a| a.account_id == account.to_string())
            .map(|a| a.size_bytes)
            .unwrap_or(0)
            .max(bytes);
        let cap = crate::domain::planner::soft_cap(load, &policy);
        if load.size_bytes + adds > cap {
            return Err(ApiError::Conflict(format!(
                "shard {target_id} would pass its soft cap ({} + {adds} bytes > {cap})",
                load.size_bytes
            )));
        }
    }
    let plan = json!({
        "account_id": account,
        "source_shard": source_id,
        "target_shard": target_id,
        "rows": rows,
        "bytes": bytes,
        "tables": estimate["tables"],
        "estimated_seconds": estimated_seconds(rows),
    });
    if input.dry_run {
        return Ok(ApiResponse::json(
            200,
            json!({"dry_run": true, "plan": plan}),
        ));
    }
    let now = rfc3339(p.now());
    let grace = input
        .grace_seconds
        .unwrap_or(DEFAULT_GRACE_SECONDS)
        .clamp(svc::MIN_GRACE_SECONDS, 7 * 86400);
    let mut m = Move::new(input.id, account, &source_id, &target_id, grace, &now);
    m.proposal_id = input.proposal_id;
    match p.accounts().query(sql::insert_move(&m)).await {
        Ok(_) => {}
        Err(StoreError::Constraint(_)) => {
            return Err(ApiError::Conflict(format!(
                "account {account} already has a move in flight (or move {} exists)",
                m.id
            )))
        }
        Err(e) => return Err(e.into()),
    }
    let mut body = serde_json::to_value(&m).unwrap_or_default();
    body["plan"] = plan;
    Ok(ApiResponse::json(201, body).with_header("location", format!("/admin/v1/moves/{}", m.id)))
}

async fn load<P: Platform>(p: &P, id: Uuid) -> Result<Move, ApiError> {
    svc::load(p.accounts(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no move {id}")))
}

pub async fn get<P: Platform>(p: &P, param: &str) -> Result<ApiResponse, ApiError> {
    let m = load(p, parse_id(param)?).await?;
    Ok(ApiResponse::json(
        200,
        serde_json::to_value(&m).unwrap_or_default(),
    ))
}

pub async fn list<P: Platform>(p: &P) -> Result<ApiResponse, ApiError> {
    let rows = p.accounts().query(sql::list_moves(100)).await?;
    let items: Vec<Value> = rows
        .rows
        .iter()
        .filter_map(|r| col_json(r, "body"))
        .collect();
    Ok(ApiResponse::json(200, json!({ "items": items })))
}

/// Cancel: the move rolls back (route, fences, the target's copy) on its next steps.
pub async fn cancel<P: Platform>(p: &P, param: &str) -> Result<ApiResponse, ApiError> {
    let mut m = load(p, parse_id(param)?).await?;
    m.roll_back(UndoReason::Cancel, None)
        .map_err(|e| ApiError::Conflict(e.to_string()))?;
    match svc::save(p.accounts(), &mut m, &rfc3339(p.now())).await {
        Ok(()) => Ok(ApiResponse::json(
            202,
            serde_json::to_value(&m).unwrap_or_default(),
        )),
        Err(svc::MoveError::Lost(_)) => Err(ApiError::Conflict(
            "the move changed meanwhile; read it and cancel again".into(),
        )),
        Err(svc::MoveError::Store(e)) => Err(e.into()),
        Err(e) => Err(ApiError::Conflict(e.to_string())),
    }
}

/// Drive the moves now: the scheduler's `moves` job (`?steps=n`: at most n steps per move, one
/// at a time for an operator watching each), then the move as it stands.
pub async fn step<P: OperatorPlatform>(
    p: &P,
    param: &str,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let id = parse_id(param)?;
    let steps = crate::operator::jobs::move_steps(req)?;
    load(p, id).await?;
    let run = p
        .run_job("moves", steps, &req.request_id)
        .await
        .map_err(ApiError::Unavailable)?;
    if run.status / 100 != 2 {
        return Err(ApiError::Unavailable(format!(
            "the scheduler answered HTTP {} to the moves run: {}",
            run.status,
            String::from_utf8_lossy(&run.body_bytes())
        )));
    }
    let m = load(p, id).await?;
    let run_body: Value = serde_json::from_slice(&run.body_bytes()).unwrap_or(Value::Null);
    Ok(ApiResponse::json(
        200,
        json!({"move": serde_json::to_value(&m).unwrap_or_default(), "run": run_body}),
    ))
}

/// `POST /admin/v1/shards/{id}/activate`: a `provisioning` shard (a new dedicated shard,
/// `cargo xtask dedicated new`) becomes `active` once the migration check recorded its schema
/// as current (its D1 exists, is bound to the scheduler and has every migration). Until then a
/// move into it copies and catches up but does not fence the source or cut over
/// (`services::moves`), and no account is placed on it.
pub async fn activate_shard<P: Platform>(p: &P, id: &str) -> Result<ApiResponse, ApiError> {
    let s = match shard(p, id).await {
        Ok(s) => s,
        Err(ApiError::Unprocessable(d)) => return Err(ApiError::NotFound(d)),
        Err(e) => return Err(e),
    };
    if s.status != ShardStatus::Provisioning {
        return Err(ApiError::Conflict(format!(
            "shard {id} is {:?}, not provisioning",
            s.status
        )));
    }
    let current = s
        .schema
        .as_ref()
        .is_some_and(|c| c.status == crate::domain::tenancy::SchemaStatus::Current);
    if !current {
        return Err(ApiError::Conflict(format!(
            "shard {id}: the migration check has not found its schema current ({:?}); \
             apply the shard migrations, bind it to the scheduler and run the migration_check job",
            s.schema.as_ref().map(|c| c.status)
        )));
    }
    let r = p
        .accounts()
        .query(crate::store::registry::activate_shard(
            id,
            &rfc3339(p.now()),
        ))
        .await?;
    if r.meta.changes == 0 {
        return Err(ApiError::Conflict(format!(
            "shard {id} changed meanwhile; read it again"
        )));
    }
    let s = shard(p, id).await?;
    Ok(ApiResponse::json(
        200,
        serde_json::to_value(&s).unwrap_or_default(),
    ))
}
