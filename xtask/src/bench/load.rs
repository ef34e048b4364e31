//! Load runs with wrk (Debian package, installed if missing) and bench/load.lua, and the RSS
//! sampler of the stack's workerd processes during a run.

use crate::{root, Result};
use serde_json::{json, Value};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Install wrk with apt-get when it is not on PATH (the bench runs as root).
pub fn ensure_wrk() -> Result<()> {
    if Command::new("wrk").arg("--version").output().is_ok() {
        return Ok(());
    }
    crate::step("apt-get install -y wrk");
    crate::run(
        Command::new("apt-get")
            .args(["install", "-y", "wrk"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Raise this process's open-files limit (wrangler, workerd and wrk inherit it): 4000 client
/// connections plus as many server-side sockets.
pub fn raise_nofile() -> libc::rlim_t {
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        let want: libc::rlim_t = 65_536;
        if lim.rlim_max < want && libc::geteuid() == 0 {
            lim.rlim_max = want;
        }
        lim.rlim_cur = want.min(lim.rlim_max);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur
    }
}

#[derive(Debug, Clone)]
pub struct Run {
    pub name: String,
    /// mix | get
    pub mode: &'static str,
    pub connections: u32,
    pub seconds: u32,
    pub think_ms: (u32, u32),
    pub host: Option<String>,
    /// floor-js only: the product's exact D1 call (a `first-unconstrained` session read).
    pub floor_session: bool,
    /// twin-js only: it also writes the product's per-request log line (`x-bench-log: 1`).
    pub log_line: bool,
}

pub struct Target<'a> {
    pub url: &'a str,
    pub token: &'a str,
    pub account: &'a str,
    pub clients: u64,
    pub docs: u64,
}

/// One wrk run; returns the script's `done()` JSON plus the run's settings and req/s.
pub fn wrk(t: &Target, run: &Run) -> Result<Value> {
    crate::step(&format!(
        "wrk {}: {} connections, {} s, think {}-{} ms",
        run.name, run.connections, run.seconds, run.think_ms.0, run.think_ms.1
    ));
    let threads = 2.min(run.connections);
    let out = Command::new("wrk")
        .args([
            "-t",
            &threads.to_string(),
            "-c",
            &run.connections.to_string(),
        ])
        .args(["-d", &format!("{}s", run.seconds), "--timeout", "30s", "-s"])
        .arg(root().join("bench/load.lua"))
        .arg(t.url)
        .env("BENCH_MODE", run.mode)
        .env("BENCH_TOKEN", t.token)
        .env("BENCH_ACCOUNT", t.account)
        .env("BENCH_CLIENTS", t.clients.to_string())
        .env("BENCH_DOCS", t.docs.to_string())
        .env("BENCH_THINK_MIN_MS", run.think_ms.0.to_string())
        .env("BENCH_THINK_MAX_MS", run.think_ms.1.to_string())
        .env("BENCH_HOST", run.host.clone().unwrap_or_default())
        .env(
            "BENCH_FLOOR_SESSION",
            if run.floor_session { "1" } else { "0" },
        )
        .env("BENCH_LOG", if run.log_line { "1" } else { "0" })
        .env(
            "BENCH_CONNS_PER_THREAD",
            run.connections.div_ceil(threads).to_string(),
        )
        .output()
        .map_err(|e| format!("wrk: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH_JSON "))
        .ok_or_else(|| {
            format!(
                "wrk printed no BENCH_JSON ({}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let mut v: Value = serde_json::from_str(line).map_err(|e| format!("wrk JSON: {e}: {line}"))?;
    let secs = v["duration_us"].as_f64().unwrap_or(0.0) / 1e6;
    let reqs = v["requests"].as_f64().unwrap_or(0.0);
    let sock: f64 = ["connect", "read", "write", "timeout"]
        .iter()
        .map(|k| v["socket_errors"][k].as_f64().unwrap_or(0.0))
        .sum();
    let non2xx = v["non2xx"].as_f64().unwrap_or(0.0);
    v["name"] = json!(run.name);
    v["mode"] = json!(run.mode);
    v["connections"] = json!(run.connections);
    v["seconds"] = json!(run.seconds);
    v["think_ms"] = json!([run.think_ms.0, run.think_ms.1]);
    v["rps"] = json!(if secs > 0.0 { reqs / secs } else { 0.0 });
    v["error_rate"] = json!(if reqs + sock > 0.0 {
        (non2xx + sock) / (reqs + sock)
    } else {
        0.0
    });
    eprintln!(
        "    {:.0} req/s, p50 {:.1} ms, p99 {:.1} ms, non-2xx {} {}, socket errors {}",
        v["rps"].as_f64().unwrap_or(0.0),
        v["latency_us"]["p50"].as_f64().unwrap_or(0.0) / 1e3,
        v["latency_us"]["p99"].as_f64().unwrap_or(0.0) / 1e3,
        non2xx,
        v["non2xx_by_status"],
        sock
    );
    Ok(v)
}

/// Samples the summed VmRSS and the largest VmHWM of `pids` every 500 ms until stopped.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<(f64, u64, u64)>>,
}

impl RssSampler {
    pub fn start(pids: Vec<u32>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut out = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                let (mut rss, mut hwm) = (0u64, 0u64);
                for p in &pids {
                    if let Some((r, h)) = super::stack::rss_kib(*p) {
                        rss += r;
                        hwm = hwm.max(h);
                    }
                }
                out.push((t0.elapsed().as_secs_f64(), rss, hwm));
                std::thread::sleep(Duration::from_millis(500));
            }
            out
        });
        Self { stop, handle }
    }

    /// (seconds, sum of VmRSS KiB, max VmHWM KiB) samples.
    pub fn finish(self) -> Vec<(f64, u64, u64)> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap_or_default()
    }
}

/// Total CPU seconds (user + system) of `pids` so far.
pub fn cpu_seconds(pids: &[u32]) -> f64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .filter_map(|s| {
            // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?)
        })
        .sum::<f64>()
        / 100.0
}

/// Of `pids`, the runtime process: the workerd that runs the Workers themselves (and the local
/// D1, KV, Queues and R2), which wrangler starts with an inspector (`--inspector-addr`); the
/// other is wrangler's dev proxy, whose CPU per request is the same whichever Worker answers
/// and so dilutes a ratio. Empty if no process says so (then only the all-process figure is
/// reported).
pub fn runtime_pids(pids: &[u32]) -> Vec<u32> {
    pids.iter()
        .copied()
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| is_runtime_cmdline(&c))
                .unwrap_or(false)
        })
        .collect()
}

/// Whether a `/proc/<pid>/cmdline` (arguments NUL-separated) is the runtime's (see
/// [`runtime_pids`]).
fn is_runtime_cmdline(cmdline: &[u8]) -> bool {
    cmdline
        .split(|b| *b == 0)
        .any(|arg| arg.starts_with(b"--inspector-addr"))
}

/// Wait until the stack is idle (workerd below 10% of a core for two seconds running), so one
/// phase's leftovers (queue, index fan-outs) do not eat the next phase's CPU. At most `max`.
pub fn settle(pids: &[u32], max: Duration) -> f64 {
    let t0 = Instant::now();
    let (mut last, mut quiet) = (cpu_seconds(pids), 0);
    while t0.elapsed() < max && quiet < 2 {
        std::thread::sleep(Duration::from_secs(1));
        let now = cpu_seconds(pids);
        quiet = if now - last < 0.10 { quiet + 1 } else { 0 };
        last = now;
    }
    let waited = t0.elapsed().as_secs_f64();
    if waited > 2.5 {
        eprintln!("    (waited {waited:.0} s for the stack to go idle)");
    }
    waited
}

/// Length of each target's unrecorded warm-up run before the read-path rounds.
const WARM_UP_SECONDS: u32 = 3;

/// (name, Host, floor-js session read, twin-js log line) of one target of an alternated run.
pub type Side = (&'static str, Option<&'static str>, bool, bool);

/// The read path against its JS twin and its floors: GET by id on the product, on the twin
/// (bench/twin-js, the product's whole GET in plain JS) and on each floor Worker,
/// alternated round after round (see [`alternated`]).
pub fn read_path(
    t: &Target,
    pids: &[u32],
    rounds: u32,
    connections: u32,
    seconds: u32,
    idle: Duration,
) -> Result<Vec<Value>> {
    let targets: [Side; 6] = [
        ("product GET by id", None, false, false),
        (
            "twin-js (JS Worker, the product's full GET by id)",
            Some("twin-js.localhost"),
            false,
            false,
        ),
        (
            "twin-js + log line (the twin writing the product's request line)",
            Some("twin-js.localhost"),
            false,
            true,
        ),
        (
            "floor-rs (Rust Worker, the product's D1 call)",
            Some("floor-rs.localhost"),
            false,
            false,
        ),
        (
            "floor-js session (JS Worker, the product's D1 call)",
            Some("floor-js.localhost"),
            true,
            false,
        ),
        (
            "floor-js plain (JS Worker, one D1 query, no session)",
            Some("floor-js.localhost"),
            false,
            false,
        ),
    ];
    alternated(t, pids, &targets, "get", rounds, connections, seconds, idle)
}

/// The write path against its JS twin: `POST /v1/clients` (load.lua's `create` mode: a new
/// client per request, no think time) on the product and on the twin (bench/twin-js/create.js,
/// the product's whole create in plain JS, its events to the same queue), alternated.
pub fn write_path(
    t: &Target,
    pids: &[u32],
    rounds: u32,
    connections: u32,
    seconds: u32,
    idle: Duration,
) -> Result<Vec<Value>> {
    let targets: [Side; 3] = [
        ("product POST /v1/clients", None, false, false),
        (
            "twin-js (JS Worker, the product's full POST /v1/clients)",
            Some("twin-js.localhost"),
            false,
            false,
        ),
        (
            "twin-js + log line (the twin writing the product's request line)",
            Some("twin-js.localhost"),
            false,
            true,
        ),
    ];
    alternated(
        t,
        pids,
        &targets,
        "create",
        rounds,
        connections,
        seconds,
        idle,
    )
}

/// One target's run in [`alternated`]: wrk's result and the CPU seconds it cost.
struct Round {
    wrk: Value,
    /// All workerd processes, during the run.
    cpu: f64,
    /// All workerd processes, until the stack was idle again.
    cpu_to_idle: f64,
    /// The runtime process alone, during the run ([`runtime_pids`]).
    runtime_cpu: f64,
}

impl Round {
    fn requests(&self) -> f64 {
        self.wrk["requests"].as_f64().unwrap_or(0.0)
    }
}

/// Targets run in `mode` round after round (one target's run never sees only one phase of
/// the machine's drift), each run from an idle stack. Per target: throughput over all its
/// rounds, the latency of its median round, and workerd CPU per request (the local runtime is
/// one thread: its CPU per request is what bounds throughput, and is steadier than req/s),
/// during the runs and until the stack is idle again after each (`cpu_ms_per_request_to_idle`:
/// with the work a run leaves behind, such as the consumer's share of its events).
#[allow(clippy::too_many_arguments)]
fn alternated(
    t: &Target,
    pids: &[u32],
    targets: &[Side],
    mode: &'static str,
    rounds: u32,
    connections: u32,
    seconds: u32,
    idle: Duration,
) -> Result<Vec<Value>> {
    let run = |name: String, host: Option<&str>, session: bool, log: bool, seconds: u32| Run {
        name,
        mode,
        connections,
        seconds,
        think_ms: (0, 0),
        host: host.map(str::to_owned),
        floor_session: session,
        log_line: log,
    };
    // One unrecorded run of each target first: V8 compiles hot code in the background while
    // an isolate warms up (the API's 1.7 MB of wasm is tiered up from its baseline code), and
    // that one-off compile CPU would otherwise be charged to the first round's requests.
    for (name, host, session, log) in targets {
        settle(pids, idle);
        let warm = format!("{name} (warm-up, not recorded)");
        wrk(t, &run(warm, *host, *session, *log, WARM_UP_SECONDS))?;
    }
    let runtime = runtime_pids(pids);
    let mut runs: Vec<Vec<Round>> = (0..targets.len()).map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for (i, (name, host, session, log)) in targets.iter().enumerate() {
            settle(pids, idle);
            let (cpu0, rt0) = (cpu_seconds(pids), cpu_seconds(&runtime));
            let name = format!("{name} #{}", round + 1);
            let r = wrk(t, &run(name, *host, *session, *log, seconds))?;
            let (during, rt) = (cpu_seconds(pids) - cpu0, cpu_seconds(&runtime) - rt0);
            settle(pids, idle);
            runs[i].push(Round {
                wrk: r,
                cpu: during,
                cpu_to_idle: cpu_seconds(pids) - cpu0,
                runtime_cpu: rt,
            });
        }
    }
    let mut out = Vec::new();
    for ((name, _, _, _), rs) in targets.iter().zip(runs) {
        let requests: f64 = rs.iter().map(Round::requests).sum();
        let secs: f64 = rs
            .iter()
            .map(|r| r.wrk["duration_us"].as_f64().unwrap_or(0.0) / 1e6)
            .sum();
        let cpu: f64 = rs.iter().map(|r| r.cpu).sum();
        let cpu_to_idle: f64 = rs.iter().map(|r| r.cpu_to_idle).sum();
        let errors: f64 = rs
            .iter()
            .map(|r| r.wrk["non2xx"].as_f64().unwrap_or(0.0))
            .sum();
        let mut by_rps: Vec<&Value> = rs.iter().map(|r| &r.wrk).collect();
        by_rps.sort_by(|a, b| {
            a["rps"]
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&b["rps"].as_f64().unwrap_or(0.0))
        });
        let median = by_rps
            .get(by_rps.len() / 2)
            .copied()
            .cloned()
            .unwrap_or(Value::Null);
        let per_request = |c: f64, n: f64| if n > 0.0 { c * 1000.0 / n } else { 0.0 };
        out.push(json!({
            "name": name,
            "mode": mode,
            "connections": connections,
            "seconds": secs.round(),
            "think_ms": [0, 0],
            "requests": requests,
            "rps": if secs > 0.0 { requests / secs } else { 0.0 },
            "round_rps": rs.iter().map(|r| r.wrk["rps"].clone()).collect::<Vec<_>>(),
            "round_cpu_ms_per_request": rs
                .iter()
                .map(|r| per_request(r.cpu, r.requests()))
                .collect::<Vec<_>>(),
            "cpu_ms_per_request": per_request(cpu, requests),
            // The runtime process alone (null when it could not be told apart).
            "runtime_cpu_ms_per_request": (!runtime.is_empty())
                .then(|| per_request(rs.iter().map(|r| r.runtime_cpu).sum(), requests)),
            "round_runtime_cpu_ms_per_request": (!runtime.is_empty()).then(|| rs
                .iter()
                .map(|r| per_request(r.runtime_cpu, r.requests()))
                .collect::<Vec<_>>()),
            "cpu_ms_per_request_to_idle": per_request(cpu_to_idle, requests),
            "latency_us": median["latency_us"].clone(),
            "non2xx": errors,
            "socket_errors": median["socket_errors"].clone(),
            "error_rate": if requests > 0.0 { errors / requests } else { 0.0 },
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::is_runtime_cmdline;

    #[test]
    fn the_runtime_is_the_workerd_started_with_an_inspector() {
        let runtime = b"workerd\0serve\0--binary\0--experimental\0--socket-addr=entry=127.0.0.1:0\0--control-fd=3\0-\0--inspector-addr=127.0.0.1:0\0--debug-port=127.0.0.1:0\0";
        let proxy = b"workerd\0serve\0--binary\0--experimental\0--socket-addr=entry=127.0.0.1:41583\0--control-fd=3\0-\0";
        assert!(is_runtime_cmdline(runtime));
        assert!(!is_runtime_cmdline(proxy));
        assert!(!is_runtime_cmdline(b""));
    }
}
