//! Pipeline: client writes through the API (paced, then a burst) on a fresh tenant, then its
//! audit rows (one per event, with the consumer's `recorded_time`) read back through
//! `GET /v1/audit`. Lag = recorded_time - the client's clock when the write's response arrived.
//! Backlog(t) = writes answered by t - audit rows recorded by t (no sampling during the run).

use super::stats::{now_ms, percentile, rfc3339_ms};
use crate::http::Client;
use crate::Result;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Write {
    pub id: String,
    /// Epoch ms when the 201 arrived.
    pub answered_ms: f64,
}

/// `total` client creations, at `rate` per second overall (None: as fast as `threads` allow),
/// each with the `headers` given (a Host, the twin's `x-twin-consumer`).
pub fn writes(
    base: &str,
    token: &str,
    total: usize,
    rate: Option<f64>,
    threads: usize,
    headers: &[(&'static str, &'static str)],
) -> Result<(Vec<Write>, usize)> {
    let t0 = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|k| {
            let (base, token) = (base.to_string(), token.to_string());
            let headers = headers.to_vec();
            std::thread::spawn(move || {
                let c = Client::new(&base);
                let (mut ok, mut failed) = (Vec::new(), 0usize);
                let mut i = k;
                while i < total {
                    if let Some(r) = rate {
                        let due = Duration::from_secs_f64(i as f64 / r);
                        if let Some(wait) = due.checked_sub(t0.elapsed()) {
                            std::thread::sleep(wait);
                        }
                    }
                    let body = json!({"forenames": "Pipe", "surname": format!("Line{i}"), "status": "prospect"});
                    match c.json("POST", "/v1/clients", Some(&token), Some(&body), &headers) {
                        Ok(r) if r.status == 201 => ok.push(Write {
                            id: r.json()["id"].as_str().unwrap_or_default().to_string(),
                            answered_ms: now_ms(),
                        }),
                        _ => failed += 1,
                    }
                    i += threads;
                }
                (ok, failed)
            })
        })
        .collect();
    let (mut all, mut failed) = (Vec::new(), 0);
    for h in handles {
        let (ok, f) = h.join().map_err(|_| "writer thread panicked")?;
        all.extend(ok);
        failed += f;
    }
    all.sort_by(|a, b| a.answered_ms.total_cmp(&b.answered_ms));
    Ok((all, failed))
}

/// Every audit row of the tenant: target id -> recorded epoch ms. Polls until `want` rows are
/// there or `timeout` passes.
pub fn audit_rows(
    c: &Client,
    token: &str,
    want: usize,
    timeout: Duration,
) -> Result<HashMap<String, f64>> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut out = HashMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(cur) => format!("/v1/audit?limit=200&cursor={cur}"),
                None => "/v1/audit?limit=200".to_string(),
            };
            let r = c.json("GET", &path, Some(token), None, &[])?;
            if r.status != 200 {
                return Err(format!("GET /v1/audit: HTTP {} {}", r.status, r.text()));
            }
            let v = r.json();
            for it in v["items"].as_array().into_iter().flatten() {
                if let (Some(id), Some(t)) = (
                    it["target"]["id"].as_str(),
                    it["recorded_time"].as_str().and_then(rfc3339_ms),
                ) {
                    out.entry(id.to_string()).or_insert(t);
                }
            }
            match v["next_cursor"].as_str() {
                Some(n) => cursor = Some(n.to_string()),
                None => break,
            }
        }
        if out.len() >= want || Instant::now() > deadline {
            return Ok(out);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Summary of one phase: lags, events/s through the consumer, backlog trend.
pub fn summarize(
    writes: &[Write],
    recorded: &HashMap<String, f64>,
) -> (Value, Vec<f64>, Vec<(f64, f64)>) {
    let lags: Vec<f64> = writes
        .iter()
        .filter_map(|w| recorded.get(&w.id).map(|r| r - w.answered_ms))
        .collect();
    let times: Vec<f64> = writes
        .iter()
        .filter_map(|w| recorded.get(&w.id).copied())
        .collect();
    let first_write = writes.first().map(|w| w.answered_ms).unwrap_or(0.0);
    let last_write = writes.last().map(|w| w.answered_ms).unwrap_or(0.0);
    let (rmin, rmax) = times
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), t| (a.min(*t), b.max(*t)));
    let span_s = ((rmax - rmin) / 1000.0).max(0.001);
    let backlog = backlog_series(writes, recorded, 1000.0);
    let q = |lo: f64, hi: f64| {
        let w: Vec<f64> = backlog
            .iter()
            .filter(|(t, _)| *t >= lo && *t < hi)
            .map(|(_, b)| *b)
            .collect();
        if w.is_empty() {
            0.0
        } else {
            w.iter().sum::<f64>() / w.len() as f64
        }
    };
    let dur = (last_write - first_write) / 1000.0;
    let (early, late) = (q(dur * 0.25, dur * 0.5), q(dur * 0.75, dur + 0.001));
    let write_rate = writes.len() as f64 / dur.max(0.001);
    let v = json!({
        "writes": writes.len(),
        "audited": times.len(),
        "write_rate": write_rate,
        "events_per_s": times.len() as f64 / span_s,
        "lag_ms": {"p50": percentile(&lags, 50.0), "p95": percentile(&lags, 95.0), "p99": percentile(&lags, 99.0), "max": percentile(&lags, 100.0)},
        "backlog": {"mean_2nd_quarter": early, "mean_4th_quarter": late, "max": backlog.iter().map(|b| b.1).fold(0.0, f64::max),
                    "grows": late > early * 2.0 + write_rate},
    });
    (v, lags, backlog)
}

/// One side of the consumer path: whose create, whose consumer, and the headers that choose them.
pub type PipelineSide = (&'static str, &'static [(&'static str, &'static str)], bool);

/// The sides of `--consumer-path` (name, create headers, whether its events are consumed).
pub const CONSUMER_SIDES: [PipelineSide; 4] = [
    (
        "product pipeline (product create, product consumer)",
        &[],
        true,
    ),
    (
        "twin pipeline (twin-js create, twin-js consumer)",
        &[("host", "twin-js.localhost"), ("x-twin-consumer", "1")],
        true,
    ),
    (
        "twin-js create, product consumer",
        &[("host", "twin-js.localhost")],
        true,
    ),
    (
        "twin-js create only (its events to a queue nothing consumes)",
        &[("host", "twin-js.localhost"), ("x-twin-consumer", "none")],
        false,
    ),
];

/// A fresh, empty tenant of the consumer path: side `side` of round `round` (0 = warm-up).
fn consumer_tenant(round: u32, side: usize) -> String {
    format!("be000000-0000-4000-8000-000000005{round:02}{side:01}")
}

/// The consumer against its JS twin: per round and side (alternated, each from an idle
/// stack), a burst of `n` creates on a fresh tenant, then the wait until the stack is idle
/// again (every event recorded): workerd CPU from the burst's start to idle per event, and
/// events/s (audit rows / the time from the burst's first request to the last row's
/// `recorded_time`). The consumers alone are compared on the same create (the twin's feeding
/// each); the create-only side's events go to a queue nothing consumes, which local queues do
/// not make free, so it is shown but subtracted from nothing.
pub fn consumer_path(
    c: &Client,
    pids: &[u32],
    rounds: u32,
    n: usize,
    idle: Duration,
) -> Result<Vec<Value>> {
    // (cpu seconds, writes, audited, events/s) per side and round
    let mut runs: Vec<Vec<(f64, usize, usize, f64)>> = vec![Vec::new(); CONSUMER_SIDES.len()];
    for round in 0..=rounds {
        for (k, (name, headers, consumed)) in CONSUMER_SIDES.iter().enumerate() {
            let tenant = consumer_tenant(round, k);
            super::data::account(
                c,
                &tenant,
                &format!("bench-consumer-{round}-{k}"),
                "shard-eu-01",
            )?;
            let token = super::data::token(c, &tenant, super::data::BIG_USER, 86_400)?;
            // The warm-up round (0) is small and not recorded: isolates and compiles warm.
            let total = if round == 0 { n / 4 } else { n };
            crate::step(&format!(
                "consumer path {}: {name}, {total} creates",
                if round == 0 {
                    "warm-up".to_string()
                } else {
                    format!("#{round}")
                }
            ));
            super::load::settle(pids, idle);
            let cpu0 = super::load::cpu_seconds(pids);
            let started_ms = now_ms();
            let (ws, failed) = writes(&c.base, &token, total, None, 16, headers)?;
            super::load::settle(pids, idle);
            let cpu = super::load::cpu_seconds(pids) - cpu0;
            let (audited, eps) = if *consumed {
                // Events through the whole pipeline: the burst's events over the time from its
                // first request until the last of them was recorded (one batch's events share
                // one recorded_time, so their own span says nothing of a small burst).
                let rec = audit_rows(c, &token, ws.len(), Duration::from_secs(120))?;
                let last = rec.values().copied().fold(started_ms, f64::max);
                let secs = ((last - started_ms) / 1000.0).max(0.001);
                (rec.len(), rec.len() as f64 / secs)
            } else {
                (0, 0.0)
            };
            eprintln!(
                "    {} written ({failed} failed), {audited} audited, {eps:.0} events/s, workerd CPU {:.2} ms/event",
                ws.len(),
                cpu * 1000.0 / ws.len().max(1) as f64
            );
            if round > 0 {
                runs[k].push((cpu, ws.len(), audited, eps));
            }
        }
    }
    let per = |cpu: f64, n: usize| if n > 0 { cpu * 1000.0 / n as f64 } else { 0.0 };
    let out: Vec<Value> = CONSUMER_SIDES
        .iter()
        .zip(&runs)
        .map(|((name, _, consumed), rs)| {
            let cpu: f64 = rs.iter().map(|r| r.0).sum();
            let written: usize = rs.iter().map(|r| r.1).sum();
            let audited: usize = rs.iter().map(|r| r.2).sum();
            json!({
                "name": name,
                "consumed": consumed,
                "creates_per_round": n,
                "writes": written,
                "audited": audited,
                "cpu_ms_per_event": per(cpu, written),
                "round_cpu_ms_per_event": rs.iter().map(|r| per(r.0, r.1)).collect::<Vec<_>>(),
                "events_per_s": if *consumed {
                    json!(rs.iter().map(|r| r.3).sum::<f64>() / rs.len().max(1) as f64)
                } else {
                    Value::Null
                },
                "round_events_per_s": rs.iter().map(|r| r.3).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(out)
}

/// (seconds since the first answered write, writes answered - events recorded) every `step_ms`.
pub fn backlog_series(
    writes: &[Write],
    recorded: &HashMap<String, f64>,
    step_ms: f64,
) -> Vec<(f64, f64)> {
    let Some(t0) = writes.first().map(|w| w.answered_ms) else {
        return vec![];
    };
    let mut rec: Vec<f64> = recorded.values().copied().collect();
    rec.sort_by(f64::total_cmp);
    let end = writes
        .last()
        .map(|w| w.answered_ms)
        .unwrap_or(t0)
        .max(rec.last().copied().unwrap_or(t0));
    let mut out = Vec::new();
    let mut t = t0;
    while t <= end + step_ms {
        let answered = writes.partition_point(|w| w.answered_ms <= t) as f64;
        let done = rec.partition_point(|r| *r <= t) as f64;
        out.push(((t - t0) / 1000.0, (answered - done).max(0.0)));
        t += step_ms;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_counts_answered_but_unrecorded_writes() {
        let writes: Vec<Write> = (0..4)
            .map(|i| Write {
                id: format!("w{i}"),
                answered_ms: 1000.0 * f64::from(i),
            })
            .collect();
        let rec: HashMap<String, f64> = [
            ("w0", 500.0),
            ("w1", 2500.0),
            ("w2", 2600.0),
            ("w3", 3100.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let b = backlog_series(&writes, &rec, 1000.0);
        assert_eq!(b[..4], [(0.0, 1.0), (1.0, 1.0), (2.0, 2.0), (3.0, 1.0)]);
        let (v, lags, _) = summarize(&writes, &rec);
        assert_eq!(v["audited"], 4);
        assert_eq!(lags, vec![500.0, 1500.0, 600.0, 100.0]);
    }
}
