//! The floors: the Rust floor Worker's build (worker-build, tools by path like the product's),
//! and the database floor (native SQLite, same schema, same seed SQL, timed in-process by
//! bench/native-floor).

use crate::{root, run_quiet, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::toolchain::cargo_bin;

/// `worker-build --release` of bench/floor-worker (nothing downloaded: every tool by path).
pub fn build_floor_worker() -> Result<()> {
    crate::step("worker-build --release bench/floor-worker");
    let r = root();
    run_quiet(
        Command::new(cargo_bin("worker-build"))
            .arg("--release")
            .current_dir(r.join("bench/floor-worker"))
            .env("WASM_BINDGEN_BIN", cargo_bin("wasm-bindgen"))
            .env("WASM_OPT_BIN", r.join("node_modules/.bin/wasm-opt"))
            .env("ESBUILD_BIN", r.join("node_modules/.bin/esbuild")),
    )
    .map(|_| ())
}

/// The database floor: a native SQLite file built from migrations/shard and `seeds`, then
/// `queries` GET-by-id lookups of random existing clients, single-threaded.
pub fn native(
    dir: &Path,
    account: &str,
    rows: u64,
    queries: u64,
    seeds: &[PathBuf],
) -> Result<Value> {
    crate::step("database floor: native SQLite, same schema and rows, in-process");
    let r = root();
    run_quiet(Command::new("cargo").args(["build", "--release", "-p", "native-floor"]))?;
    let db = dir.join("native-floor.sqlite");
    let out = run_quiet(
        Command::new(r.join("target/release/native-floor"))
            .arg(&db)
            .arg(r.join("migrations/shard"))
            .args([
                account,
                super::data::CLIENT_PREFIX,
                &rows.to_string(),
                &queries.to_string(),
            ])
            .args(seeds),
    )?;
    let line = out
        .lines()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| format!("native-floor printed no JSON: {out}"))?;
    let v: Value = serde_json::from_str(line).map_err(|e| format!("native-floor JSON: {e}"))?;
    eprintln!(
        "    {:.0} queries/s, p50 {:.1} us, p99 {:.1} us over {} rows",
        v["qps"].as_f64().unwrap_or(0.0),
        v["p50_us"].as_f64().unwrap_or(0.0),
        v["p99_us"].as_f64().unwrap_or(0.0),
        v["rows"]
    );
    let _ = std::fs::remove_file(&db);
    Ok(v)
}
