//! The pinned toolchain, installed idempotently: the wasm32 target, worker-build and
//! wasm-bindgen-cli (exact versions, `cargo install --locked`, skipped when present), and the
//! npm devDependencies (node 22, wrangler, binaryen) via `npm ci` when the lock file changed.

use crate::{root, run, step, Result};
use std::path::PathBuf;
use std::process::Command;

pub const WORKER_BUILD_VERSION: &str = "0.8.7";
/// Must equal the `wasm-bindgen` pinned in Cargo.toml (checked by a test).
pub const WASM_BINDGEN_VERSION: &str = "0.2.129";

/// A tool `cargo install` put in `$CARGO_HOME/bin`.
pub fn cargo_bin(name: &str) -> PathBuf {
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo")
        });
    home.join("bin").join(name)
}

fn version_of(bin: &PathBuf) -> Option<String> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn ensure_cargo_tool(krate: &str, bin: &str, version: &str) -> Result<()> {
    let path = cargo_bin(bin);
    if version_of(&path).is_some_and(|v| v.split_whitespace().any(|w| w == version)) {
        return Ok(());
    }
    step(&format!(
        "installing {krate} {version} (cargo install --locked; a few minutes, once)"
    ));
    run(Command::new("cargo").args(["install", krate, "--version", version, "--locked"]))
}

fn ensure_npm() -> Result<()> {
    let root = root();
    let lock = std::fs::read(root.join("package-lock.json"))
        .map_err(|e| format!("package-lock.json: {e}"))?;
    let stamp_path = root.join("node_modules/.xtask-lock-stamp");
    let stamp = format!("{:016x}", fnv1a(&lock));
    let have = std::fs::read_to_string(&stamp_path).unwrap_or_default();
    if have == stamp
        && root.join("node_modules/.bin/wrangler").exists()
        && root.join("node_modules/.bin/node").exists()
    {
        return Ok(());
    }
    step("npm ci (node 22, wrangler, binaryen)");
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&root))?;
    std::fs::write(&stamp_path, stamp).map_err(|e| e.to_string())
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, x| {
        (h ^ u64::from(*x)).wrapping_mul(0x100000001b3)
    })
}

/// Everything the builds and the stack need. Idempotent and quick when all is present.
pub fn ensure() -> Result<()> {
    let targets = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if !targets
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        step("rustup target add wasm32-unknown-unknown");
        run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    ensure_cargo_tool("worker-build", "worker-build", WORKER_BUILD_VERSION)?;
    ensure_cargo_tool("wasm-bindgen-cli", "wasm-bindgen", WASM_BINDGEN_VERSION)?;
    ensure_npm()
}

/// `worker-build --release` of every Worker crate, with every tool given by path so nothing
/// is downloaded (worker-build would otherwise fetch wasm-bindgen/wasm-opt from GitHub).
pub fn build_workers() -> Result<()> {
    let root = root();
    for (dir, _) in crate::WORKERS {
        step(&format!("worker-build --release {dir}"));
        let out = crate::run_quiet(
            Command::new(cargo_bin("worker-build"))
                .arg("--release")
                .current_dir(root.join(dir))
                .env("WASM_BINDGEN_BIN", cargo_bin("wasm-bindgen"))
                .env("WASM_OPT_BIN", root.join("node_modules/.bin/wasm-opt"))
                .env("ESBUILD_BIN", root.join("node_modules/.bin/esbuild")),
        )?;
        if let Some(line) = out.lines().find(|l| l.contains("Done in")) {
            eprintln!("    {}", line.trim());
        }
        plain_entrypoint(&root.join(dir).join("build/index.js"))?;
    }
    Ok(())
}

/// Replace worker-build's per-request `Proxy` entrypoint with a plain module-worker object
/// that keeps its panic recovery (see `entrypoint`).
pub fn plain_entrypoint(bundle: &std::path::Path) -> Result<()> {
    let js = std::fs::read_to_string(bundle).map_err(|e| format!("{}: {e}", bundle.display()))?;
    match crate::entrypoint::rewrite(&js).map_err(|e| format!("{}: {e}", bundle.display()))? {
        Some(out) => std::fs::write(bundle, out).map_err(|e| format!("{}: {e}", bundle.display())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn wasm_bindgen_cli_version_matches_the_pinned_library() {
        let manifest =
            std::fs::read_to_string(crate::root().join("Cargo.toml")).unwrap_or_default();
        let pin = format!("wasm-bindgen = \"={}\"", super::WASM_BINDGEN_VERSION);
        assert!(manifest.contains(&pin), "Cargo.toml must pin {pin}");
        let lock = std::fs::read_to_string(crate::root().join("Cargo.lock")).unwrap_or_default();
        let locked = format!(
            "name = \"wasm-bindgen\"\nversion = \"{}\"",
            super::WASM_BINDGEN_VERSION
        );
        assert!(lock.contains(&locked), "Cargo.lock must resolve {locked}");
    }

    #[test]
    fn package_json_pins_node_22_and_the_toolchain() {
        let pkg: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(crate::root().join("package.json")).unwrap_or_default(),
        )
        .unwrap_or_default();
        let dev = &pkg["devDependencies"];
        assert!(
            dev["node"].as_str().is_some_and(|v| v.starts_with("22.")),
            "node 22: {dev}"
        );
        assert_eq!(dev["wrangler"], "4.164.0");
        for s in ["esbuild", "node", "workerd"] {
            assert_eq!(pkg["allowScripts"][s], true, "{s} install script approved");
        }
    }
}
