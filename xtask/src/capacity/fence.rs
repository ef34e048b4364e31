//! `cargo xtask capacity fence [--rounds K] [--clients N]`: the fenced window of a tenant move
//! under load, K times (issue 15's bench). One `wrangler dev`, fresh state: a tenant of N
//! clients and N documents (the bench's seed SQL) on shard-eu-01, a writer (creates, as fast
//! as it can; a 503 with `Retry-After` is retried after 100 ms) and a reader (GET by id of the
//! seeded rows) running throughout, while the tenant moves back and forth between the two
//! local shared shards K times, each move stepped through the operator API to `done` (grace
//! asked 0, raised to `MIN_GRACE_SECONDS`: the next move finds its target empty).
//!
//! Per move: the fenced window the workflow recorded (`fenced_ms`: from the fence to the
//! flip) and the pause the writer saw (from sending its first refused write to the end of the
//! first one that then landed), wall time, writes and reads. Over all: p50/p99/max of both windows, write latency p50/p99, and every write or read
//! that failed otherwise (expected 0). Written to `bench/results/capacity/fence.{json,md}`.

use super::moves::admin;
use crate::bench::{data, stats};
use crate::http::Client;
use crate::{root, step, Result};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ACCOUNT: &str = "ca000000-0000-4000-8000-00000000fe0c";
const USER: &str = "ca000000-0000-4000-8000-0000000000a1";
const SHARDS: [&str; 2] = ["shard-eu-02", "shard-eu-01"];

#[derive(Default)]
struct Load {
    /// (seconds since the start, latency ms, status) of every write attempt.
    writes: Vec<(f64, f64, u16)>,
    reads: u64,
    failed: Vec<String>,
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}

fn pct(v: &[f64], p: f64) -> f64 {
    stats::percentile(v, p).unwrap_or(0.0)
}

pub fn run(args: &[String]) -> Result<()> {
    let rounds = arg(args, "--rounds", 10).max(1);
    let clients = arg(args, "--clients", 3_000);
    let out = super::moves::on_seeded_stack(
        "capacity-fence",
        ACCOUNT,
        "fence-bench",
        clients,
        |c, url| {
            let token = format!("Bearer {}", data::token(c, ACCOUNT, USER, 86_400)?);
            let load = Arc::new(Mutex::new(Load::default()));
            let stop = Arc::new(AtomicBool::new(false));
            let t0 = Instant::now();
            let threads = spawn_load(url, &token, clients, &load, &stop, t0);
            std::thread::sleep(Duration::from_secs(1));
            let mut moves = Vec::new();
            let out = (|| -> Result<()> {
                for round in 0..rounds {
                    let target = SHARDS[round as usize % 2];
                    let started = t0.elapsed().as_secs_f64();
                    let m = admin(
                        c,
                        "POST",
                        "/admin/v1/moves",
                        Some(
                            &json!({"account_id": ACCOUNT, "target_shard": target, "grace_seconds": 0}),
                        ),
                    )?;
                    let id = m["id"].as_str().unwrap_or_default().to_string();
                    let deadline = Instant::now() + Duration::from_secs(600);
                    let mut steps = 0u64;
                    let done = loop {
                        let r = admin(c, "POST", &format!("/admin/v1/moves/{id}/step"), None)?;
                        steps += 1;
                        let m = r["move"].clone();
                        match m["phase"].as_str() {
                            Some("done") => break m,
                            // The grace before cleanup: no need to step the stack flat out.
                            Some("cleanup") if Instant::now() <= deadline => {
                                std::thread::sleep(Duration::from_millis(500))
                            }
                            Some("failed" | "cancelled") => {
                                return Err(format!("move {round} ended: {m}"))
                            }
                            _ if Instant::now() > deadline => {
                                return Err(format!("move {round} not done: {m}"))
                            }
                            _ => {}
                        }
                    };
                    let ended = t0.elapsed().as_secs_f64();
                    moves.push(json!({
                        "target": target,
                        "fenced_ms": done["fenced_ms"],
                        "steps": steps,
                        "started_s": started,
                        "seconds": ended - started,
                    }));
                    step(&format!(
                        "move {} to {target}: {:.1} s, {steps} steps, fenced {} ms",
                        round + 1,
                        ended - started,
                        done["fenced_ms"]
                    ));
                }
                Ok(())
            })();
            std::thread::sleep(Duration::from_secs(1));
            stop.store(true, Ordering::SeqCst);
            for t in threads {
                let _ = t.join();
            }
            out?;
            let g = load.lock().map_err(|_| "load poisoned")?;
            Ok(report(clients, &mut moves, &g))
        },
    )?;
    let dir = root().join("bench/results/capacity");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let text = serde_json::to_string_pretty(&out).map_err(|e| e.to_string())? + "\n";
    std::fs::write(dir.join("fence.json"), text).map_err(|e| e.to_string())?;
    let md = markdown(&out);
    std::fs::write(dir.join("fence.md"), &md).map_err(|e| e.to_string())?;
    println!("{md}");
    Ok(())
}

fn spawn_load(
    base: &str,
    token: &str,
    clients: u64,
    load: &Arc<Mutex<Load>>,
    stop: &Arc<AtomicBool>,
    t0: Instant,
) -> Vec<std::thread::JoinHandle<()>> {
    let writer = {
        let (load, stop, token, c) = (
            load.clone(),
            stop.clone(),
            token.to_string(),
            Client::new(base),
        );
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let body =
                    json!({"forenames": "W", "surname": format!("W{n}"), "status": "active"});
                loop {
                    let at = Instant::now();
                    let r = c.send(
                        "POST",
                        "/v1/clients",
                        &[
                            ("authorization", &token),
                            ("content-type", "application/json"),
                        ],
                        Some(body.to_string().as_bytes()),
                    );
                    let ms = at.elapsed().as_secs_f64() * 1000.0;
                    let Ok(mut g) = load.lock() else { return };
                    let status = r.as_ref().map_or(0, |r| r.status);
                    g.writes.push(((at - t0).as_secs_f64(), ms, status));
                    match r {
                        Ok(r) if r.status == 503 && r.header("retry-after").is_some() => {
                            drop(g);
                            std::thread::sleep(Duration::from_millis(100));
                            continue;
                        }
                        Ok(r) if r.status == 201 => {}
                        Ok(r) => g.failed.push(format!("POST: {} {}", r.status, r.text())),
                        Err(e) => g.failed.push(format!("POST: {e}")),
                    }
                    break;
                }
            }
        })
    };
    let reader = {
        let (load, stop, token, c) = (
            load.clone(),
            stop.clone(),
            token.to_string(),
            Client::new(base),
        );
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let path = format!(
                    "/v1/clients/{}{:012}",
                    data::CLIENT_PREFIX,
                    1 + (i * 37) % clients.max(1)
                );
                let r = c.send("GET", &path, &[("authorization", &token)], None);
                let Ok(mut g) = load.lock() else { return };
                g.reads += 1;
                match r {
                    Ok(r) if r.status == 200 => {}
                    Ok(r) => g
                        .failed
                        .push(format!("GET {path}: {} {}", r.status, r.text())),
                    Err(e) => g.failed.push(format!("GET {path}: {e}")),
                }
            }
        })
    };
    vec![writer, reader]
}

/// The writer's view of each move (the pause it saw) next to the workflow's, and the
/// distributions.
fn report(clients: u64, moves: &mut [Value], g: &Load) -> Value {
    for m in moves.iter_mut() {
        let from = m["started_s"].as_f64().unwrap_or(0.0);
        let to = from + m["seconds"].as_f64().unwrap_or(0.0);
        let inside: Vec<&(f64, f64, u16)> = g
            .writes
            .iter()
            .filter(|(t, _, _)| *t >= from && *t <= to)
            .collect();
        let refused = inside.iter().filter(|w| w.2 == 503).count();
        // From sending the first refused write to the end of the first write that then landed
        // (the writer retries every 100 ms): the pause a client saw.
        let first = inside.iter().position(|w| w.2 == 503);
        let seen = first.map_or(0.0, |i| {
            let start = inside[i].0 * 1000.0;
            inside[i..]
                .iter()
                .find(|w| w.2 == 201)
                .map_or(to * 1000.0, |w| w.0 * 1000.0 + w.1)
                - start
        });
        m["writer_saw_fenced_ms"] = json!(seen.round());
        m["writes_refused"] = json!(refused);
    }
    let fenced: Vec<f64> = moves
        .iter()
        .filter_map(|m| m["fenced_ms"].as_f64())
        .collect();
    let seen: Vec<f64> = moves
        .iter()
        .filter_map(|m| m["writer_saw_fenced_ms"].as_f64())
        .collect();
    let ok: Vec<f64> = g
        .writes
        .iter()
        .filter(|(_, _, s)| *s == 201)
        .map(|(_, ms, _)| *ms)
        .collect();
    json!({
        "clients": clients,
        "rows": 2 * clients,
        "moves": moves,
        "fenced_ms": {"p50": pct(&fenced, 50.0), "p99": pct(&fenced, 99.0),
                      "max": fenced.iter().cloned().fold(0.0, f64::max)},
        "writer_saw_fenced_ms": {"p50": pct(&seen, 50.0), "p99": pct(&seen, 99.0),
                                 "max": seen.iter().cloned().fold(0.0, f64::max)},
        "writes": {"created": ok.len(), "attempts": g.writes.len(),
                   "refused_503": g.writes.iter().filter(|w| w.2 == 503).count(),
                   "latency_ms_p50": pct(&ok, 50.0), "latency_ms_p99": pct(&ok, 99.0)},
        "reads": g.reads,
        "failed": g.failed.len(),
        "failed_first": g.failed.iter().take(5).collect::<Vec<_>>(),
        "loadavg": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
        "measured_on": crate::run_quiet(std::process::Command::new("date").arg("-u").arg("+%F"))
            .unwrap_or_default().trim(),
    })
}

fn markdown(v: &Value) -> String {
    let f = |k: &str, p: &str| v[k][p].as_f64().unwrap_or(0.0);
    format!(
        "| tenant moves under load (`cargo xtask capacity fence`) | value |\n|---|---|\n\
         | moves | {} of a tenant of {} rows, back and forth, a writer and a reader running |\n\
         | fenced window (workflow, fence to flip) | p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms |\n\
         | pause the writer saw (first 503 sent to the next write landed) | p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms |\n\
         | writes | {} created, {} answers 503 (retried), latency p50 {:.0} ms, p99 {:.0} ms |\n\
         | reads | {} |\n| failed writes or reads (other than a retried 503) | {} |\n\
         | machine load average | {} |\n",
        v["moves"].as_array().map_or(0, Vec::len),
        v["rows"],
        f("fenced_ms", "p50"),
        f("fenced_ms", "p99"),
        f("fenced_ms", "max"),
        f("writer_saw_fenced_ms", "p50"),
        f("writer_saw_fenced_ms", "p99"),
        f("writer_saw_fenced_ms", "max"),
        v["writes"]["created"],
        v["writes"]["refused_503"],
        v["writes"]["latency_ms_p50"].as_f64().unwrap_or(0.0),
        v["writes"]["latency_ms_p99"].as_f64().unwrap_or(0.0),
        v["reads"],
        v["failed"],
        v["loadavg"].as_str().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writers_window_spans_its_first_to_last_refusal_inside_each_move() {
        let g = Load {
            // (at s, latency ms, status): two refusals in the first move, none in the second.
            writes: vec![
                (0.5, 10.0, 201),
                (1.0, 5.0, 503),
                (1.4, 5.0, 503),
                (2.0, 10.0, 201),
                (6.0, 10.0, 201),
            ],
            reads: 3,
            failed: vec![],
        };
        let mut moves = vec![
            json!({"fenced_ms": 300, "started_s": 0.0, "seconds": 3.0}),
            json!({"fenced_ms": 100, "started_s": 5.0, "seconds": 3.0}),
        ];
        let v = report(10, &mut moves, &g);
        // From the first 503 sent at 1.0 s to the 201 sent at 2.0 s landing 10 ms later.
        assert_eq!(v["moves"][0]["writer_saw_fenced_ms"], 1010.0);
        assert_eq!(v["moves"][0]["writes_refused"], 2);
        assert_eq!(v["moves"][1]["writer_saw_fenced_ms"], 0.0);
        assert_eq!(v["fenced_ms"]["max"], 300.0);
        assert_eq!(v["writes"]["created"], 3);
        assert_eq!(v["writes"]["refused_503"], 2);
        assert!(markdown(&v).contains("2 answers 503"));
    }
}
