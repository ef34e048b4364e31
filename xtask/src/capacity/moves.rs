//! `cargo xtask capacity moves [--clients N]`: the tenant-move throughput the capacity model
//! uses, measured on the local stack (one `wrangler dev`, fresh state): a tenant of N clients
//! and N documents (the bench's seed SQL) on shard-eu-01 moves to shard-eu-02, driven by the
//! product's own driver, the scheduler's `moves` job (`POST /admin/v1/jobs/moves/run`, back to
//! back), from the first run until the route flips.
//!
//! Bytes are D1 bytes, as the model counts a tenant's size: the same seed on native SQLite with
//! every shard migration, `dbstat` of its tables and indexes (`measure::table_bytes`). Two
//! rates: stepping (those bytes over the back-to-back wall time) and deployed (the job runs
//! once per cron tick, every 2 minutes, and a run ends when its budget is spent or the move
//! waits: the same bytes over `job_runs` ticks). The model takes the lower. Written to
//! `bench/results/capacity/moves.json`; `capacity measure` carries it into `inputs.json`.

use crate::bench::data;
use crate::http::Client;
use crate::stack::{self, Stack};
use crate::{root, step, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ACCOUNT: &str = "ca000000-0000-4000-8000-00000000e0e1";
/// The deployed cron of the `moves` job (wrangler/scheduler.jsonc `*/2 * * * *`).
pub const CRON_INTERVAL_S: f64 = shared::operator::moves::MOVES_CRON_SECONDS;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoveRun {
    pub clients: u64,
    pub rows: u64,
    /// Body bytes of the tenant's rows on the source (the dry run's estimate).
    pub body_bytes: u64,
    /// D1 bytes of those rows, indexes included (dbstat of the same seed on native SQLite).
    pub d1_bytes: u64,
    /// Job runs from the first to the one that flipped the route.
    pub job_runs: u64,
    /// Wall time of those runs, back to back.
    pub seconds: f64,
    pub fenced_ms: i64,
    /// The most D1 calls one run made (the job keeps it under Cloudflare's 1,000 per invocation).
    pub max_d1_calls_per_run: u64,
    /// d1_bytes / seconds: what the runtime sustains when the job runs back to back.
    pub stepping_bytes_per_s: f64,
    /// d1_bytes / (job_runs x CRON_INTERVAL_S): the deployed driver, one run per tick.
    pub cron_bytes_per_s: f64,
    /// The lower of the two: the model's `move_bytes_per_s`.
    pub bytes_per_s: f64,
    pub loadavg: String,
    pub measured_on: String,
}

impl MoveRun {
    /// The recorded measurement, `bench/results/capacity/moves.json`.
    pub fn committed() -> Result<Self> {
        let p = root().join("bench/results/capacity/moves.json");
        let text = std::fs::read_to_string(&p)
            .map_err(|e| format!("{}: {e} (run `cargo xtask capacity moves`)", p.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
    }
}

/// (stepping, deployed, the model's): pure, so the rule has a test.
pub fn rates(d1_bytes: u64, seconds: f64, job_runs: u64) -> (f64, f64, f64) {
    let stepping = d1_bytes as f64 / seconds.max(1e-3);
    let cron = d1_bytes as f64 / (job_runs.max(1) as f64 * CRON_INTERVAL_S);
    (stepping, cron, stepping.min(cron))
}

/// D1 bytes (tables and indexes) of `clients` clients and documents of the bench's seed.
fn d1_bytes(clients: u64) -> Result<u64> {
    let total = |n| -> Result<i64> {
        Ok(
            super::measure::table_bytes(&super::measure::seeded_shard(n)?)?
                .values()
                .sum(),
        )
    };
    Ok((total(clients)? - total(0)?).max(0) as u64)
}

/// What both move benches start from: the Workers built, one stack on fresh state, and a
/// tenant `account` with `clients` clients and as many documents (the bench's seed SQL) on
/// shard-eu-01. `f` runs against it (a client and the stack's URL); the stack stops either way,
/// and an error carries the stack's log tail.
pub(super) fn on_seeded_stack<T>(
    state: &str,
    account: &str,
    slug: &str,
    clients: u64,
    f: impl FnOnce(&Client, &str) -> Result<T>,
) -> Result<T> {
    crate::toolchain::ensure()?;
    crate::toolchain::build_workers()?;
    let persist = stack::fresh_state_dir(state)?;
    stack::prepare(&persist)?;
    let mut s = Stack::start(stack::Options {
        port: stack::free_port()?,
        log: Some(persist.join("wrangler.log")),
        persist: persist.clone(),
        vars: vec![],
        local_traces: false,
    })?;
    let res = (|| -> Result<T> {
        s.wait_healthy(Duration::from_secs(90))?;
        let url = s.url();
        let c = Client::new(&url);
        data::account(&c, account, slug, "shard-eu-01")?;
        step(&format!(
            "seeding {clients} clients and {clients} documents on shard-eu-01"
        ));
        let sql = data::clients_sql(account, clients) + &data::documents_sql(account, clients);
        data::execute(
            &persist,
            &persist.join("sql"),
            &format!("{slug}.sql"),
            "SHARD_EU_01",
            &sql,
        )?;
        f(&c, &url)
    })();
    let res = res.map_err(|e| format!("{e}{}", s.log_tail()));
    s.stop();
    res
}

/// An operator call on the operator host with the local dev credential; a non-2xx is an error.
pub(super) fn admin(c: &Client, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
    let r = c.json(
        method,
        path,
        Some(crate::LOCAL_ADMIN_SECRET),
        body,
        &[("host", crate::OPERATOR_HOST)],
    )?;
    if r.status / 100 != 2 {
        return Err(format!("{method} {path}: HTTP {} {}", r.status, r.text()));
    }
    Ok(r.json())
}

pub fn run(args: &[String]) -> Result<()> {
    let clients: u64 = args
        .windows(2)
        .find(|w| w[0] == "--clients")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(30_000);
    let run = on_seeded_stack("capacity-moves", ACCOUNT, "move-bench", clients, |c, _| {
        let plan = admin(
            c,
            "POST",
            "/admin/v1/moves",
            Some(&json!({"account_id": ACCOUNT, "target_shard": "shard-eu-02", "dry_run": true})),
        )?["plan"]
            .clone();
        let (rows, body_bytes) = (
            plan["rows"].as_u64().unwrap_or(0),
            plan["bytes"].as_u64().unwrap_or(0),
        );
        let d1 = d1_bytes(clients)?;
        step(&format!(
            "moving {rows} rows, {body_bytes} body bytes, {d1} D1 bytes"
        ));
        let m = admin(
            c,
            "POST",
            "/admin/v1/moves",
            Some(&json!({"account_id": ACCOUNT, "target_shard": "shard-eu-02"})),
        )?;
        let id = m["id"]
            .as_str()
            .or(m["move"]["id"].as_str())
            .unwrap_or_default()
            .to_string();
        let started = Instant::now();
        let (mut runs, mut most) = (0u64, 0u64);
        let deadline = started + Duration::from_secs(1800);
        let flipped = loop {
            let run = admin(c, "POST", "/admin/v1/jobs/moves/run", None)?;
            most = most.max(run["counts"]["d1_calls"].as_u64().unwrap_or(0));
            runs += 1;
            let m = admin(c, "GET", &format!("/admin/v1/moves/{id}"), None)?;
            let m = if m["move"].is_object() {
                m["move"].clone()
            } else {
                m
            };
            match m["phase"].as_str() {
                Some("cleanup" | "done") => break m,
                Some("failed" | "cancelled") => return Err(format!("the move ended: {m}")),
                _ if Instant::now() > deadline => return Err(format!("move not done: {m}")),
                _ => {}
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        let (stepping, cron, rate) = rates(d1, seconds, runs);
        Ok(MoveRun {
            clients,
            rows,
            body_bytes,
            d1_bytes: d1,
            job_runs: runs,
            seconds,
            fenced_ms: flipped["fenced_ms"].as_i64().unwrap_or(0),
            max_d1_calls_per_run: most,
            stepping_bytes_per_s: stepping,
            cron_bytes_per_s: cron,
            bytes_per_s: rate,
            loadavg: std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
                .to_string(),
            measured_on: crate::run_quiet(std::process::Command::new("date").arg("-u").arg("+%F"))
                .unwrap_or_default()
                .trim()
                .to_string(),
        })
    })?;
    let dir = root().join("bench/results/capacity");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let out = serde_json::to_string_pretty(&run).map_err(|e| e.to_string())? + "\n";
    std::fs::write(dir.join("moves.json"), out).map_err(|e| e.to_string())?;
    step(&format!(
        "{} rows ({:.1} MB of D1) moved in {:.1} s ({:.0} rows/s) over {} job runs, fenced {} ms: stepping {:.2} MB/s, \
         one run per 2-minute tick {:.2} MB/s, model {:.2} MB/s: bench/results/capacity/moves.json",
        run.rows,
        run.d1_bytes as f64 / 1e6,
        run.seconds,
        run.rows as f64 / run.seconds.max(1e-3),
        run.job_runs,
        run.fenced_ms,
        run.stepping_bytes_per_s / 1e6,
        run.cron_bytes_per_s / 1e6,
        run.bytes_per_s / 1e6
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_takes_the_lower_of_the_stepping_rate_and_one_run_per_tick() {
        // 12 MB in 2 s over 3 runs: stepping 6 MB/s, deployed 12 MB per 360 s.
        let (stepping, cron, rate) = rates(12_000_000, 2.0, 3);
        assert_eq!(stepping, 6_000_000.0);
        assert_eq!(cron, 12_000_000.0 / 360.0);
        assert_eq!(rate, cron);
        // A runtime slower than the ticks: stepping binds.
        let (stepping, _, slow) = rates(12_000_000, 1000.0, 1);
        assert_eq!(slow, stepping);
    }

    #[test]
    fn d1_bytes_of_the_seed_grow_with_it_and_include_the_indexes() {
        let (a, b) = (d1_bytes(500).unwrap(), d1_bytes(1000).unwrap());
        assert!(a > 0 && b > a);
        // More than the bodies alone: a client body of the seed is about 300 bytes.
        assert!(b as f64 / 2000.0 > 300.0, "{b} bytes for 2000 rows");
    }

    #[test]
    fn the_committed_measurement_is_consistent_with_its_own_figures() {
        let m = MoveRun::committed().unwrap();
        let (stepping, cron, rate) = rates(m.d1_bytes, m.seconds, m.job_runs);
        assert!(m.rows == 2 * m.clients && m.d1_bytes > m.body_bytes && m.job_runs > 0);
        assert!(
            m.max_d1_calls_per_run > 0
                && m.max_d1_calls_per_run <= shared::jobs::moves::D1_CALLS_PER_INVOCATION,
            "{} D1 calls in one run",
            m.max_d1_calls_per_run
        );
        assert_eq!(
            m.d1_bytes,
            d1_bytes(m.clients).unwrap(),
            "the seed's D1 bytes moved"
        );
        assert!((stepping - m.stepping_bytes_per_s).abs() < 1e-6 * stepping);
        assert!((cron - m.cron_bytes_per_s).abs() < 1e-6 * cron);
        assert!((rate - m.bytes_per_s).abs() < 1e-6 * rate);
    }

    #[test]
    fn the_operators_dry_run_estimate_follows_the_measurement() {
        use shared::operator::moves::{estimated_seconds, ESTIMATED_ROWS_PER_RUN};
        let m = MoveRun::committed().unwrap();
        let per_run = m.rows as f64 / m.job_runs as f64;
        assert!(
            ESTIMATED_ROWS_PER_RUN / per_run < 2.0 && per_run / ESTIMATED_ROWS_PER_RUN < 2.0,
            "estimate {ESTIMATED_ROWS_PER_RUN} rows per run, measured {per_run:.0}"
        );
        // The measured move: its runs plus the wait for the first tick, within one tick.
        let measured = (m.job_runs as f64 + 1.0) * CRON_INTERVAL_S;
        assert!((estimated_seconds(m.rows) - measured).abs() <= CRON_INTERVAL_S);
        // A tiny move still waits for a tick and takes a run.
        assert_eq!(estimated_seconds(10), 2.0 * CRON_INTERVAL_S);
    }
}
