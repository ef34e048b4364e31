//! The bench's own stack: one `wrangler dev` (own port, own persist dir) with the product's
//! Workers, a consumer variant (queue batch size), the two floor Workers and the JS twin behind a
//! bench-only edge. Also finds the workerd processes of the stack for RSS sampling.

use crate::{node_command, root, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The bench stack's configs, first one served over HTTP (the bench edge).
pub fn configs(consumer: &Path) -> Vec<PathBuf> {
    let r = root();
    vec![
        r.join("wrangler/bench-edge.jsonc"),
        r.join("wrangler/api.jsonc"),
        r.join("wrangler/api-dedicated-01.jsonc"),
        r.join("wrangler/operator.jsonc"),
        consumer.to_path_buf(),
        r.join("wrangler/scheduler.jsonc"),
        r.join("wrangler/bench-floor-rs.jsonc"),
        r.join("wrangler/bench-floor-js.jsonc"),
        r.join("wrangler/bench-twin-js.jsonc"),
        r.join("wrangler/bench-twin-consumer.jsonc"),
    ]
}

/// wrangler/consumer.jsonc with the change-event queue's `max_batch_size` replaced, written to
/// `dir` (paths made absolute so it works from there).
pub fn consumer_variant(dir: &Path, batch: u32) -> Result<PathBuf> {
    let src = root().join("wrangler/consumer.jsonc");
    let text = std::fs::read_to_string(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    let marker = "\"queue\": \"change-events\",";
    let start = text
        .find(marker)
        .ok_or("consumer.jsonc: no change-events consumer")?;
    let key = "\"max_batch_size\": ";
    let at = start
        + text[start..]
            .find(key)
            .ok_or("consumer.jsonc: no max_batch_size")?
        + key.len();
    let end = at
        + text[at..]
            .find(|c: char| !c.is_ascii_digit())
            .ok_or("consumer.jsonc: bad max_batch_size")?;
    let wrangler_dir = root().join("wrangler");
    let out = format!("{}{batch}{}", &text[..at], &text[end..])
        .replace("\"../", &format!("\"{}/../", wrangler_dir.display()));
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let path = dir.join(format!("consumer-b{batch}.jsonc"));
    std::fs::write(&path, out).map_err(|e| format!("{}: {e}", path.display()))?;
    // wrangler reads a Worker's local secrets from `.dev.vars` next to its config: without
    // them the variant has no AUDIT_SIGNING_KEY, retries every batch and audits nothing.
    let vars = wrangler_dir.join(".dev.vars");
    std::fs::copy(&vars, dir.join(".dev.vars")).map_err(|e| format!("{}: {e}", vars.display()))?;
    Ok(path)
}

pub struct BenchStack {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
    /// From spawn to the first 200 on /health.
    pub start_to_healthy: Duration,
}

impl BenchStack {
    pub fn start(persist: &Path, consumer: &Path, log: PathBuf) -> Result<BenchStack> {
        let port = crate::stack::free_port()?;
        let inspector = crate::stack::free_port()?;
        let mut cmd = node_command("wrangler");
        cmd.arg("dev");
        for c in configs(consumer) {
            cmd.arg("-c").arg(c);
        }
        cmd.args(["--ip", "127.0.0.1", "--port", &port.to_string()])
            .args(["--inspector-port", &inspector.to_string()])
            .arg("--persist-to")
            .arg(persist)
            .args([
                "--test-scheduled",
                "--show-interactive-dev-session=false",
                "--log-level",
                "warn",
            ])
            // wrangler's local trace collector (the local explorer's spans and logs, kept in
            // SQLite under the persist dir) runs in the request path of every invocation:
            // off, so the figures are the product's and the runtime's, not the dev tooling's.
            .env("X_LOCAL_OBSERVABILITY", "false")
            .stdin(Stdio::null());
        let f = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let f2 = f.try_clone().map_err(|e| e.to_string())?;
        cmd.stdout(f).stderr(f2);
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        let t0 = Instant::now();
        let child = cmd.spawn().map_err(|e| format!("wrangler dev: {e}"))?;
        let mut s = BenchStack {
            child,
            port,
            log,
            start_to_healthy: Duration::ZERO,
        };
        s.wait_healthy(Duration::from_secs(120))?;
        s.start_to_healthy = t0.elapsed();
        Ok(s)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let c = crate::http::Client::new(&self.url());
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "wrangler dev exited early ({status}){}",
                    self.log_tail()
                ));
            }
            if c.send("GET", "/health", &[], None)
                .is_ok_and(|r| r.status == 200)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the bench stack did not become healthy{}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        format!(
            "\n--- {} (last lines) ---\n{}",
            self.log.display(),
            lines[lines.len().saturating_sub(30)..].join("\n")
        )
    }

    /// The workerd processes of this stack (same process group, command name `workerd`).
    pub fn workerd_pids(&self) -> Vec<u32> {
        let pgid = self.child.id() as i32;
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return vec![];
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                comm.trim() == "workerd" && unsafe { libc::getpgid(*pid as i32) } == pgid
            })
            .collect()
    }

    /// SIGINT the process group (wrangler stops workerd), then SIGKILL what is left.
    pub fn stop(&mut self) {
        crate::stack::stop_group(&mut self.child);
    }
}

impl Drop for BenchStack {
    fn drop(&mut self) {
        self.stop();
    }
}

/// (VmRSS, VmHWM) of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}
