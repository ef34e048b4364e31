//! `cargo xtask bench [--quick]`: the benchmarks of issue 6 on this machine, in one run, on a
//! stack of its own (free port, fresh persist dir under target/bench/). Raw results (JSON, CSV)
//! and SVG plots go to bench/results/ (`--quick`: bench/results/quick/). See README
//! "Benchmarks". Never part of `cargo xtask test`: nothing here asserts a speed.

pub mod cost;
pub mod data;
pub mod floors;
pub mod load;
pub mod pipeline;
pub mod plot;
pub mod report;
pub mod size;
pub mod stack;
pub mod stats;
pub mod sweep;

use crate::http::Client;
use crate::{root, step, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Scale {
    pub name: &'static str,
    pub big_rows: u64,
    pub small_tenants: usize,
    pub small_rows: u64,
    /// Clients (and as many documents) of the retention tenant.
    pub sweep_rows: u64,
    pub vus: u32,
    pub vu_seconds: u32,
    pub think_ms: (u32, u32),
    pub sat_connections: u32,
    pub sat_seconds: u32,
    pub floor_seconds: u32,
    /// Alternated rounds of the read path against its floors.
    pub read_rounds: u32,
    pub pipe_seconds: u32,
    pub burst_writes: usize,
    pub native_queries: u64,
    pub max_sweep_runs: usize,
}

pub const FULL: Scale = Scale {
    name: "full",
    big_rows: 100_000,
    small_tenants: 20,
    small_rows: 500,
    sweep_rows: 500_000,
    vus: 4000,
    vu_seconds: 60,
    // The target's 10 s think time, jittered so VUs do not move in lockstep.
    think_ms: (9000, 11000),
    sat_connections: 50,
    sat_seconds: 20,
    floor_seconds: 10,
    read_rounds: 3,
    pipe_seconds: 30,
    burst_writes: 2000,
    native_queries: 200_000,
    max_sweep_runs: 60,
};

pub const QUICK: Scale = Scale {
    name: "quick",
    big_rows: 10_000,
    small_tenants: 4,
    small_rows: 100,
    sweep_rows: 25_000,
    vus: 200,
    vu_seconds: 10,
    think_ms: (1000, 2000),
    sat_connections: 50,
    sat_seconds: 5,
    floor_seconds: 5,
    read_rounds: 3,
    pipe_seconds: 8,
    burst_writes: 300,
    native_queries: 50_000,
    max_sweep_runs: 20,
};

/// Rows of the big tenant beyond `big_rows`, never touched by the load runs.
const SPARE: u64 = 10;

fn timed<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let t = Instant::now();
    let v = f()?;
    let s = t.elapsed().as_secs_f64();
    eprintln!("    ({what}: {s:.1} s)");
    Ok((v, s))
}

/// /proc/loadavg (other work on the machine skews every figure: it is recorded with them).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Latency of one request (ms) and its status.
fn probe(c: &Client, path: &str, headers: &[(&str, &str)]) -> (f64, u16) {
    let t = Instant::now();
    let status = c
        .send("GET", path, headers, None)
        .map(|r| r.status)
        .unwrap_or(0);
    (t.elapsed().as_secs_f64() * 1000.0, status)
}

/// The record of a one-path run (`--read-path`, `--write-path`, `--consumer-path`), kept in
/// bench/results/ (quick or not: it is small and committed): `{path}_path_{scale}.json` with
/// the rounds under `key`, and `.md` with its table, which is also printed.
fn one_path_results(
    path: &str,
    key: &str,
    scale: &str,
    loadavg_start: &str,
    rows: &[Value],
    table: &str,
) -> Result<()> {
    let raw = json!({"scale": scale, "machine": {"loadavg_at_start": loadavg_start,
        "loadavg_at_end": loadavg()}, key: rows});
    let dir = root().join("bench/results");
    for (file, text) in [
        (
            format!("{path}_path_{scale}.json"),
            serde_json::to_string_pretty(&raw).unwrap_or_default(),
        ),
        (format!("{path}_path_{scale}.md"), table.to_string()),
    ] {
        std::fs::write(dir.join(&file), text).map_err(|e| format!("{file}: {e}"))?;
    }
    println!("{table}");
    Ok(())
}

pub fn run(args: &[String]) -> Result<()> {
    let scale = if args.iter().any(|a| a == "--quick") {
        QUICK
    } else {
        FULL
    };
    let t_all = Instant::now();
    let loadavg_start = loadavg();
    let out_dir = match scale.name {
        "quick" => root().join("bench/results/quick"),
        _ => root().join("bench/results"),
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let work = root().join(format!("target/bench/run-{stamp}"));
    let persist = work.join("state");
    let sql_dir = work.join("sql");
    std::fs::create_dir_all(&persist).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    step(&format!(
        "bench ({}): work dir {}",
        scale.name,
        work.display()
    ));

    crate::toolchain::ensure()?;
    crate::toolchain::build_workers()?;
    floors::build_floor_worker()?;
    load::ensure_wrk()?;
    let nofile = load::raise_nofile();
    step(&format!("open-files limit {nofile}"));

    // ---- data: migrations, then rows straight into the local D1s (before the stack runs)
    step("migrations and the shard registry");
    crate::stack::prepare(&persist)?;
    let mut seeded = Vec::new();
    let (eu01_files, seed_secs) =
        timed("seeding", || seed(&scale, &persist, &sql_dir, &mut seeded))?;
    let native = floors::native(
        &work,
        data::BIG,
        scale.big_rows,
        scale.native_queries,
        &eu01_files,
    )?;

    // ---- stack with the floors and the batch-100 consumer
    let b100 = stack::consumer_variant(&work, 100)?;
    let b10 = stack::consumer_variant(&work, 10)?;
    step("starting the bench stack (one wrangler dev: product, floors, consumer batch 100)");
    let mut s = stack::BenchStack::start(&persist, &b100, work.join("wrangler-b100.log"))?;
    let base = s.url();
    eprintln!(
        "    healthy after {:.2} s at {base}",
        s.start_to_healthy.as_secs_f64()
    );
    let c = Client::new(&base);
    let mut startup =
        json!({"stack_start_to_first_200_ms": s.start_to_healthy.as_secs_f64() * 1000.0});
    accounts(&c, &scale)?;
    let token = data::token(&c, data::BIG, data::BIG_USER, 86_400)?;
    let big_get = format!("/v1/clients/{}{:012}", data::CLIENT_PREFIX, 7);
    let auth = format!("Bearer {token}");
    for (name, host) in [
        ("api", None),
        ("floor-rs", Some("floor-rs.localhost")),
        ("floor-js", Some("floor-js.localhost")),
        ("twin-js", Some("twin-js.localhost")),
    ] {
        let mut h: Vec<(&str, &str)> = vec![("authorization", &auth), ("x-account-id", data::BIG)];
        if let Some(host) = host {
            h.push(("host", host));
        }
        let first = probe(&c, &big_get, &h);
        let warm: Vec<f64> = (0..5).map(|_| probe(&c, &big_get, &h).0).collect();
        eprintln!(
            "    {name}: first request {:.1} ms (HTTP {}), then {:.1} ms",
            first.0,
            first.1,
            stats::percentile(&warm, 50.0).unwrap_or(0.0)
        );
        startup[format!("{name}_first_request_ms")] = json!(first.0);
        startup[format!("{name}_warm_request_ms")] = json!(stats::percentile(&warm, 50.0));
        if first.1 != 200 {
            return Err(format!("{name}: GET {big_get} answered HTTP {}", first.1));
        }
    }

    // ---- load: many VUs with think time, then saturation, then read path vs the floors
    let url = base.clone();
    let target = load::Target {
        url: &url,
        token: &token,
        account: data::BIG,
        clients: scale.big_rows,
        docs: scale.big_rows,
    };
    let pids = s.workerd_pids();
    let idle = Duration::from_secs(90);
    let read_path = || {
        load::read_path(
            &target,
            &pids,
            scale.read_rounds,
            scale.sat_connections,
            scale.floor_seconds,
            idle,
        )
    };
    // Iterating on one path only: product vs its twin (and the floors), alternated. Kept in
    // bench/results/ (quick or not: the record is small and committed): the rounds of this
    // run, and its table.
    if args.iter().any(|a| a == "--consumer-path") {
        let rows = pipeline::consumer_path(&c, &pids, scale.read_rounds, scale.burst_writes, idle)?;
        let table = report::consumer_path_markdown(&rows);
        one_path_results(
            "consumer",
            "consumer",
            scale.name,
            &loadavg_start,
            &rows,
            &table,
        )?;
        s.stop();
        return Ok(());
    }
    let only = ["read", "write"]
        .into_iter()
        .find(|p| args.iter().any(|a| *a == format!("--{p}-path")));
    if let Some(path) = only {
        let rows = if path == "read" {
            read_path()?
        } else {
            load::write_path(
                &target,
                &pids,
                scale.read_rounds,
                scale.sat_connections,
                scale.floor_seconds,
                idle,
            )?
        };
        let table = if path == "read" {
            report::read_path_markdown(&rows)
        } else {
            report::write_path_markdown(&rows)
        };
        let key = if path == "read" { "reads" } else { "writes" };
        one_path_results(path, key, scale.name, &loadavg_start, &rows, &table)?;
        s.stop();
        return Ok(());
    }
    load::settle(&pids, idle);
    let sampler = load::RssSampler::start(pids.clone());
    let mut runs = Vec::new();
    let vu = load::wrk(
        &target,
        &load::Run {
            name: format!(
                "mix, {} VUs, think {}-{} s",
                scale.vus,
                scale.think_ms.0 / 1000,
                scale.think_ms.1 / 1000
            ),
            mode: "mix",
            connections: scale.vus,
            seconds: scale.vu_seconds,
            think_ms: scale.think_ms,
            host: None,
            floor_session: false,
            log_line: false,
        },
    )?;
    let rss = sampler.finish();
    runs.push(vu.clone());
    load::settle(&pids, idle);
    runs.push(load::wrk(
        &target,
        &load::Run {
            name: format!(
                "mix, saturation ({} conns, no think)",
                scale.sat_connections
            ),
            mode: "mix",
            connections: scale.sat_connections,
            seconds: scale.sat_seconds,
            think_ms: (0, 0),
            host: None,
            floor_session: false,
            log_line: false,
        },
    )?);
    // The VU count this machine serves: three quarters of the saturated mix throughput, each
    // VU asking every 10 s (the same think time as the 4000-VU run).
    let sat_rps = runs.last().and_then(|r| r["rps"].as_f64()).unwrap_or(0.0);
    let think_s = f64::from(scale.think_ms.0 + scale.think_ms.1) / 2000.0;
    let fit = ((0.75 * sat_rps * think_s) as u32 / 50 * 50).clamp(50, scale.vus);
    load::settle(&pids, idle);
    runs.push(load::wrk(
        &target,
        &load::Run {
            name: format!(
                "mix, {fit} VUs (3/4 of the saturated mix), think {}-{} s",
                scale.think_ms.0 / 1000,
                scale.think_ms.1 / 1000
            ),
            mode: "mix",
            connections: fit,
            seconds: scale.vu_seconds,
            think_ms: scale.think_ms,
            host: None,
            floor_session: false,
            log_line: false,
        },
    )?);
    load::settle(&pids, idle);
    let reads = read_path()?;
    let ops = &vu["ops"];
    let total_ops = [
        "gets",
        "lists",
        "created",
        "patched_ifmatch",
        "patched_plain",
    ]
    .iter()
    .map(|k| ops[k].as_f64().unwrap_or(0.0))
    .sum::<f64>();
    let write_ops = ["created", "patched_ifmatch", "patched_plain"]
        .iter()
        .map(|k| ops[k].as_f64().unwrap_or(0.0))
        .sum::<f64>();
    let write_rate =
        (vu["rps"].as_f64().unwrap_or(0.0) * write_ops / total_ops.max(1.0)).clamp(5.0, 300.0);

    // ---- D1 cost per operation: single requests after the load (the audit log has rows),
    // on rows the load never touched
    load::settle(&pids, idle);
    let cost = cost::measure(&base, &token, scale.big_rows + 1)?;

    // ---- pipeline, batch 100 then batch 10 (a second stack start with the other consumer)
    let mut pipe = Vec::new();
    let mut lag_rows = Vec::new();
    let mut backlog_plot = Vec::new();
    load::settle(&pids, idle);
    pipe.push(pipeline_phase(
        &c,
        &persist,
        &scale,
        100,
        write_rate,
        1,
        &mut lag_rows,
        &mut backlog_plot,
    )?);
    s.stop();
    step("restarting the bench stack with the batch-10 consumer");
    let mut s = stack::BenchStack::start(&persist, &b10, work.join("wrangler-b10.log"))?;
    startup["stack_restart_to_first_200_ms"] = json!(s.start_to_healthy.as_secs_f64() * 1000.0);
    let c = Client::new(&s.url());
    let pids10 = s.workerd_pids();
    pipe.push(pipeline_phase(
        &c,
        &persist,
        &scale,
        10,
        write_rate,
        3,
        &mut lag_rows,
        &mut backlog_plot,
    )?);

    // ---- retention sweep on the 1M-row shard
    load::settle(&pids10, idle);
    let sweep = sweep::run(&s.url(), scale.max_sweep_runs, "shard-eu-02")?;
    s.stop();

    // ---- sizes
    let sizes = size::measure()?;

    let peak_rss = rss.iter().map(|r| r.1).max().unwrap_or(0);
    let peak_hwm = rss.iter().map(|r| r.2).max().unwrap_or(0);
    let results = json!({
        "scale": scale.name,
        "machine": {"loadavg_at_start": loadavg_start, "loadavg_at_end": loadavg(), "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), "nofile": nofile},
        "seed": {"seconds": seed_secs, "tenants": seeded},
        "startup": startup,
        "load": runs,
        "reads": reads,
        "native_floor": native,
        "rss": {"workerd_processes": pids.len(), "peak_rss_kib": peak_rss, "peak_hwm_kib": peak_hwm,
                "samples": rss.iter().map(|r| json!([r.0, r.1, r.2])).collect::<Vec<_>>()},
        "pipeline": pipe,
        "sweep": sweep,
        "cost": cost,
        "sizes": sizes,
        "total_seconds": t_all.elapsed().as_secs_f64(),
    });
    report::write(&out_dir, &results, &lag_rows, &backlog_plot)?;
    step(&format!(
        "bench done in {:.0} s; results in {}",
        t_all.elapsed().as_secs_f64(),
        out_dir.display()
    ));
    println!("{}", report::summary_markdown(&results));
    Ok(())
}

/// Rows for every tenant; returns the eu-01 seed files (the database floor replays them).
fn seed(
    scale: &Scale,
    persist: &Path,
    dir: &Path,
    seeded: &mut Vec<Value>,
) -> Result<Vec<PathBuf>> {
    step(&format!(
        "seeding: big tenant {} clients + {} documents on shard-eu-01",
        scale.big_rows, scale.big_rows
    ));
    let mut eu01 = Vec::new();
    // SPARE more rows than the load runs address: the cost probes read them with a cold cache.
    let n = scale.big_rows + SPARE;
    let sql = data::clients_sql(data::BIG, n) + &data::documents_sql(data::BIG, n);
    eu01.push(data::execute(persist, dir, "big.sql", "SHARD_EU_01", &sql)?);
    seeded.push(json!({"account": data::BIG, "shard": "shard-eu-01", "clients": scale.big_rows, "documents": scale.big_rows}));
    step(&format!(
        "seeding: {} small tenants of {} clients + documents",
        scale.small_tenants, scale.small_rows
    ));
    let (mut s01, mut s02) = (String::new(), String::new());
    for i in 0..scale.small_tenants {
        let id = data::small(i);
        let sql =
            data::clients_sql(&id, scale.small_rows) + &data::documents_sql(&id, scale.small_rows);
        let shard = if i % 2 == 0 { &mut s01 } else { &mut s02 };
        shard.push_str(&sql);
        seeded.push(json!({"account": id, "shard": if i % 2 == 0 { "shard-eu-01" } else { "shard-eu-02" }, "clients": scale.small_rows, "documents": scale.small_rows}));
    }
    if !s01.is_empty() {
        eu01.push(data::execute(
            persist,
            dir,
            "small-eu01.sql",
            "SHARD_EU_01",
            &s01,
        )?);
    }
    if !s02.is_empty() {
        data::execute(persist, dir, "small-eu02.sql", "SHARD_EU_02", &s02)?;
    }
    step(&format!(
        "seeding: retention tenant {} clients + {} documents (10% due) on shard-eu-02",
        scale.sweep_rows, scale.sweep_rows
    ));
    // In chunks: one statement per 100k rows keeps each well inside any local query limit.
    let chunk = 100_000u64;
    let mut done = 0u64;
    let mut sql = String::new();
    while done < scale.sweep_rows {
        let n = chunk.min(scale.sweep_rows - done);
        sql += &data::sweep_sql(data::SWEEP, done + 1, done + n);
        done += n;
    }
    data::execute(persist, dir, "sweep.sql", "SHARD_EU_02", &sql)?;
    seeded.push(json!({"account": data::SWEEP, "shard": "shard-eu-02", "clients": scale.sweep_rows, "documents": scale.sweep_rows, "due": scale.sweep_rows / 10 * 2}));
    Ok(eu01)
}

fn accounts(c: &Client, scale: &Scale) -> Result<()> {
    step("accounts through the operator API");
    data::account(c, data::BIG, "bench-big", "shard-eu-01")?;
    data::account(c, data::SWEEP, "bench-retention", "shard-eu-02")?;
    for i in 0..scale.small_tenants {
        data::account(
            c,
            &data::small(i),
            &format!("bench-small-{i}"),
            if i % 2 == 0 {
                "shard-eu-01"
            } else {
                "shard-eu-02"
            },
        )?;
    }
    for i in 1..=4 {
        data::account(
            c,
            &data::pipeline(i),
            &format!("bench-pipeline-{i}"),
            "shard-eu-01",
        )?;
    }
    Ok(())
}

/// Sustained writes at `rate`/s (lag, backlog) on pipeline tenant `first`, then a burst on
/// tenant `first + 1` (events/s through the consumer).
#[allow(clippy::too_many_arguments)]
fn pipeline_phase(
    c: &Client,
    persist: &Path,
    scale: &Scale,
    batch: u32,
    rate: f64,
    first: usize,
    lag_rows: &mut Vec<Vec<String>>,
    backlog_plot: &mut Vec<(String, Vec<(f64, f64)>)>,
) -> Result<Value> {
    let mut out = json!({"max_batch_size": batch});
    for (kind, tenant, total, pace, threads) in [
        (
            "sustained",
            data::pipeline(first),
            (rate * f64::from(scale.pipe_seconds)) as usize,
            Some(rate),
            8,
        ),
        (
            "burst",
            data::pipeline(first + 1),
            scale.burst_writes,
            None,
            16,
        ),
    ] {
        step(&format!(
            "pipeline batch {batch}, {kind}: {total} client writes{}",
            pace.map(|r| format!(" at {r:.0}/s")).unwrap_or_default()
        ));
        let token = data::token(c, &tenant, data::BIG_USER, 86_400)?;
        let (writes, failed) = pipeline::writes(&c.base, &token, total, pace, threads, &[])?;
        let recorded = pipeline::audit_rows(c, &token, writes.len(), Duration::from_secs(180))?;
        let (mut v, lags, backlog) = pipeline::summarize(&writes, &recorded);
        v["failed_writes"] = json!(failed);
        eprintln!(
            "    {} written ({failed} failed), {} audited, {:.0} events/s, lag p50 {:.0} ms p99 {:.0} ms, backlog grows: {}",
            writes.len(), v["audited"], v["events_per_s"].as_f64().unwrap_or(0.0),
            v["lag_ms"]["p50"].as_f64().unwrap_or(0.0), v["lag_ms"]["p99"].as_f64().unwrap_or(0.0), v["backlog"]["grows"]
        );
        for (i, l) in lags.iter().enumerate() {
            lag_rows.push(vec![
                batch.to_string(),
                kind.into(),
                i.to_string(),
                format!("{l:.0}"),
            ]);
        }
        backlog_plot.push((format!("batch {batch} {kind}"), backlog));
        out[kind] = v;
    }
    let unpublished = data::query_value(
        persist,
        "SHARD_EU_01",
        "SELECT count(*) AS v FROM outbox WHERE published_at IS NULL",
    )
    .unwrap_or(Value::Null);
    out["outbox_unpublished_after"] = unpublished;
    Ok(out)
}
