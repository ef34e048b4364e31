//! Orchestration shared by `cargo xtask` and the integration tests: where things are, the
//! pinned toolchain, the Worker builds and the local stack (`wrangler dev`, one process).

pub mod bench;
pub mod capacity;
pub mod dedicated;
pub mod demo;
pub mod entrypoint;
pub mod http;
pub mod seed;
pub mod stack;
pub mod tidy;
pub mod toolchain;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Worker crates: (crate dir, wrangler config). One build serves every config that names it.
pub const WORKERS: &[(&str, &str)] = &[
    ("producers/api", "wrangler/api.jsonc"),
    ("producers/operator", "wrangler/operator.jsonc"),
    ("consumers/change-events", "wrangler/consumer.jsonc"),
    ("schedulers/cron", "wrangler/scheduler.jsonc"),
];

/// Every deployable config (the dedicated API reuses the API build).
pub const DEPLOYABLE_CONFIGS: &[&str] = &[
    "wrangler/api.jsonc",
    "wrangler/api-dedicated-01.jsonc",
    "wrangler/operator.jsonc",
    "wrangler/consumer.jsonc",
    "wrangler/scheduler.jsonc",
];

/// The local stack, first config first (only it is served over HTTP).
pub const STACK_CONFIGS: &[&str] = &[
    "wrangler/local-edge.jsonc",
    "wrangler/api.jsonc",
    "wrangler/api-dedicated-01.jsonc",
    "wrangler/operator.jsonc",
    "wrangler/consumer.jsonc",
    "wrangler/scheduler.jsonc",
    // Local only: the mock identity provider the tests' issuers live on.
    "wrangler/mock-idp.jsonc",
    // Local only: the bench's JS twin of GET client by id (Host twin-js.localhost), which
    // tests/twin.rs compares with the product.
    "wrangler/bench-twin-js.jsonc",
    // Local only: the JS twin of the change-event consumer (queue change-events-twin, fed by
    // the twin's creates with `x-twin-consumer: 1`); idle unless a test or the bench feeds it.
    "wrangler/bench-twin-consumer.jsonc",
];

/// (binding, config that declares it) for every local D1.
pub const DATABASES: &[(&str, &str)] = &[
    ("ACCOUNTS_DB", "wrangler/api.jsonc"),
    ("SHARD_EU_01", "wrangler/api.jsonc"),
    ("SHARD_EU_02", "wrangler/api.jsonc"),
    ("SHARD_DED_01", "wrangler/api-dedicated-01.jsonc"),
];

/// [`DEPLOYABLE_CONFIGS`], then the dedicated deployments `cargo xtask dedicated new` added.
pub fn deployable_configs() -> Vec<String> {
    let mut v: Vec<String> = DEPLOYABLE_CONFIGS.iter().map(|c| c.to_string()).collect();
    v.extend(dedicated::generated(&root()).into_iter().map(|(c, _)| c));
    v
}

/// [`STACK_CONFIGS`] with the generated dedicated deployments after the template's.
pub fn stack_configs() -> Vec<String> {
    let mut v: Vec<String> = STACK_CONFIGS.iter().map(|c| c.to_string()).collect();
    let at = v
        .iter()
        .position(|c| c == dedicated::TEMPLATE)
        .map_or(v.len(), |k| k + 1);
    for (k, (c, _)) in dedicated::generated(&root()).into_iter().enumerate() {
        v.insert(at + k, c);
    }
    v
}

/// [`DATABASES`] and the D1 of every generated dedicated deployment.
pub fn databases() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = DATABASES
        .iter()
        .map(|(b, c)| (b.to_string(), c.to_string()))
        .collect();
    v.extend(
        dedicated::generated(&root())
            .into_iter()
            .map(|(c, n)| (n.binding, c)),
    );
    v
}

pub const LOCAL_ADMIN_SECRET: &str = "local-dev-admin-secret";
/// The operator Worker's own hostname on the local stack (the local edge routes it; no tenant
/// host reaches the operator Worker).
pub const OPERATOR_HOST: &str = "ops.localhost";

/// A command with the pinned Node toolchain first on PATH and quiet wrangler settings.
pub fn node_command(program: &str) -> Command {
    let root = root();
    let bin = root.join("node_modules/.bin");
    let path = std::env::var("PATH").unwrap_or_default();
    let mut c = Command::new(bin.join(program));
    c.current_dir(&root)
        .env("PATH", format!("{}:{path}", bin.display()))
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("WRANGLER_LOG", "warn")
        .env("NO_COLOR", "1");
    c
}

pub type Result<T> = std::result::Result<T, String>;

/// Run a command to completion; a non-zero exit is an error that names the command.
pub fn run(cmd: &mut Command) -> Result<()> {
    let desc = format!("{cmd:?}");
    let status = cmd.status().map_err(|e| format!("{desc}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{desc} exited with {status}"))
    }
}

/// Run and capture output; on failure the output is part of the error.
pub fn run_quiet(cmd: &mut Command) -> Result<String> {
    let desc = format!("{:?}", cmd.get_program());
    let out = cmd.output().map_err(|e| format!("{desc}: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{cmd:?} failed ({}):\n{text}", out.status))
    }
}

pub fn step(msg: &str) {
    eprintln!("==> {msg}");
}
