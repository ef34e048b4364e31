//! The local stack: migrations and seed applied to a persist directory, then every Worker in
//! ONE `wrangler dev` process (two processes on one persist dir give SQLITE_BUSY).

use crate::{databases, node_command, root, run_quiet, stack_configs, Result};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Apply every migration to every local D1 (fresh or existing), then the local shard registry.
pub fn prepare(persist: &Path) -> Result<()> {
    std::fs::create_dir_all(persist).map_err(|e| format!("{}: {e}", persist.display()))?;
    for (binding, config) in databases() {
        run_quiet(
            node_command("wrangler")
                .args([
                    "d1",
                    "migrations",
                    "apply",
                    &binding,
                    "--local",
                    "-c",
                    &config,
                    "--persist-to",
                ])
                .arg(persist)
                .env("CI", "true"), // no confirmation prompt
        )?;
    }
    // The local shard registry, then the shards `cargo xtask dedicated new` registered.
    let mut seeds = vec!["seed/local-shards.sql".to_string()];
    let mut generated: Vec<String> = std::fs::read_dir(root().join(crate::dedicated::SHARD_SEEDS))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .map(|n| format!("{}/{n}", crate::dedicated::SHARD_SEEDS))
        .collect();
    generated.sort();
    seeds.extend(generated);
    for seed in seeds {
        run_quiet(
            node_command("wrangler")
                .args([
                    "d1",
                    "execute",
                    "ACCOUNTS_DB",
                    "--local",
                    "-c",
                    "wrangler/api.jsonc",
                    "--file",
                    &seed,
                    "--persist-to",
                ])
                .arg(persist)
                .env("CI", "true"),
        )?;
    }
    Ok(())
}

pub fn free_port() -> Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

pub struct Options {
    pub port: u16,
    pub persist: PathBuf,
    /// Where wrangler's output goes (None: inherit the terminal).
    pub log: Option<PathBuf>,
    /// Extra `--var KEY:VALUE` overrides (tests use them for fault injection and secrets).
    pub vars: Vec<(String, String)>,
    /// wrangler's local trace collector (spans and logs for the local explorer, kept in SQLite
    /// under the persist dir). It sits in the request path of every invocation: the demo keeps
    /// it for engineers to browse, the tests and the bench turn it off.
    pub local_traces: bool,
}

pub struct Stack {
    child: Child,
    pub port: u16,
    pub log: Option<PathBuf>,
}

impl Stack {
    pub fn start(opts: Options) -> Result<Stack> {
        let inspector = free_port()?;
        let mut cmd = node_command("wrangler");
        cmd.arg("dev");
        for c in stack_configs() {
            cmd.args(["-c", &c]);
        }
        cmd.args(["--ip", "127.0.0.1", "--port", &opts.port.to_string()])
            .args(["--inspector-port", &inspector.to_string()])
            .arg("--persist-to")
            .arg(&opts.persist)
            .args([
                "--test-scheduled",
                "--show-interactive-dev-session=false",
                // `log`, not `warn`: wrangler prints the Workers' console.log lines (the JSON
                // lines of platform::logging) only at this level or above.
                "--log-level",
                "log",
            ]);
        for (k, v) in &opts.vars {
            cmd.args(["--var", &format!("{k}:{v}")]);
        }
        if !opts.local_traces {
            cmd.env("X_LOCAL_OBSERVABILITY", "false");
        }
        cmd.stdin(Stdio::null());
        if let Some(log) = &opts.log {
            let f = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
            let f2 = f.try_clone().map_err(|e| e.to_string())?;
            cmd.stdout(f).stderr(f2);
        }
        use std::os::unix::process::CommandExt;
        cmd.process_group(0); // its own group: stop() ends wrangler and workerd together
        let child = cmd.spawn().map_err(|e| format!("wrangler dev: {e}"))?;
        Ok(Stack {
            child,
            port: opts.port,
            log: opts.log,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Poll `/health` until it answers 200 or the deadline passes.
    pub fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(2)))
            .http_status_as_error(false)
            .build()
            .into();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "wrangler dev exited early ({status}){}",
                    self.log_tail()
                ));
            }
            if let Ok(r) = agent.get(format!("{}/health", self.url())).call() {
                if r.status() == 200 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the stack did not become healthy in {timeout:?}{}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn log_tail(&self) -> String {
        match &self.log {
            Some(p) => {
                let s = std::fs::read_to_string(p).unwrap_or_default();
                let lines: Vec<&str> = s.lines().collect();
                format!(
                    "\n--- {} (last lines) ---\n{}",
                    p.display(),
                    lines[lines.len().saturating_sub(40)..].join("\n")
                )
            }
            None => String::new(),
        }
    }

    pub fn try_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// SIGINT the whole process group (wrangler shuts workerd down), then SIGKILL if needed.
    pub fn stop(&mut self) {
        stop_group(&mut self.child);
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Stop a `wrangler dev` started in its own process group: SIGINT the group (wrangler shuts
/// workerd down), wait up to 10 s, then SIGKILL whatever is left.
pub fn stop_group(child: &mut Child) {
    let pgid = child.id() as i32;
    unsafe {
        libc::kill(-pgid, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    let _ = child.wait();
}

/// A fresh persist directory under target/ (tests) .
pub fn fresh_state_dir(name: &str) -> Result<PathBuf> {
    let dir = root().join("target/stack-state").join(format!(
        "{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    ));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| e.to_string())?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}
