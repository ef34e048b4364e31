//! Retention sweep: `POST /admin/v1/jobs/retention/run` repeated until a run's outcome is `ok`
//! (the cycle is complete). Each run's `counts` are kept as they come (read generically); the
//! totals of `deleted` and, when the job reports it, `rows_read` give the figures.

use crate::{Result, LOCAL_ADMIN_SECRET};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

pub fn run(base: &str, max_runs: usize, shard: &str) -> Result<Value> {
    crate::step("retention sweep: job runs until the outcome is ok");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(900)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut runs = Vec::new();
    let mut totals = Map::new();
    // The retention tenant's shard on its own (the job reports each shard's figures).
    let mut on_shard = Map::new();
    let t0 = Instant::now();
    let mut complete = false;
    for i in 0..max_runs {
        let t = Instant::now();
        let mut res = agent
            .post(format!("{base}/admin/v1/jobs/retention/run"))
            .header("authorization", format!("Bearer {LOCAL_ADMIN_SECRET}"))
            .header("host", crate::OPERATOR_HOST)
            .send_empty()
            .map_err(|e| format!("retention run: {e}"))?;
        let status = res.status().as_u16();
        let body = res.body_mut().read_to_string().map_err(|e| e.to_string())?;
        let secs = t.elapsed().as_secs_f64();
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            return Err(format!("retention run: HTTP {status} {body}"));
        }
        // The run may be the body itself or wrapped (e.g. {"run": {...}}).
        let run = if v.get("outcome").is_some() {
            v.clone()
        } else {
            v["run"].clone()
        };
        let outcome = run["outcome"].as_str().unwrap_or("?").to_string();
        let counts = run["counts"].as_object().cloned().unwrap_or_default();
        if let Some(sh) = counts
            .get("by_shard")
            .and_then(|b| b.get(shard))
            .and_then(Value::as_object)
        {
            for (k, c) in sh {
                let cur = on_shard.get(k).and_then(Value::as_f64).unwrap_or(0.0);
                on_shard.insert(k.clone(), json!(cur + c.as_f64().unwrap_or(0.0)));
            }
        }
        for (k, c) in &counts {
            if let Some(n) = c.as_f64() {
                let cur = totals.get(k).and_then(Value::as_f64).unwrap_or(0.0);
                totals.insert(k.clone(), json!(cur + n));
            }
        }
        eprintln!(
            "    run {}: {outcome} in {secs:.1} s, deleted {}, counts {}",
            i + 1,
            counts.get("deleted").cloned().unwrap_or(json!(0)),
            Value::Object(counts.clone())
        );
        runs.push(json!({"run": i + 1, "seconds": secs, "outcome": outcome, "counts": counts}));
        if outcome == "ok" {
            complete = true;
            break;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let deleted = totals.get("deleted").and_then(Value::as_f64).unwrap_or(0.0);
    let rows_read = totals.get("rows_read").and_then(Value::as_f64);
    let shard_deleted = on_shard
        .get("deleted")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let shard_read = on_shard.get("rows_read").and_then(Value::as_f64);
    Ok(json!({
        "complete": complete,
        "runs": runs,
        "totals": totals,
        "seconds": secs,
        "deleted": deleted,
        "deleted_per_s": if secs > 0.0 { deleted / secs } else { 0.0 },
        // Every shard's reads (idle shards' probes included) over every deletion.
        "rows_read_per_deleted": rows_read.filter(|_| deleted > 0.0).map(|r| r / deleted),
        "shard": shard,
        "on_shard": on_shard,
        "shard_rows_read_per_deleted": shard_read.filter(|_| shard_deleted > 0.0).map(|r| r / shard_deleted),
    }))
}
