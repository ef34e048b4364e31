//! `cargo xtask <command>`: see README.md.

use std::process::Command;
use xtask::{deployable_configs, node_command, root, run, stack, step, toolchain, Result};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let res = match args.first().map(String::as_str) {
        Some("setup") => toolchain::ensure(),
        Some("build") => toolchain::ensure().and_then(|_| toolchain::build_workers()),
        Some("dev") | Some("run") => dev(),
        Some("test") => test(),
        Some("tidy") => match args.get(1) {
            Some(dir) => xtask::tidy::run_at(std::path::Path::new(dir)),
            None => xtask::tidy::run(),
        }
        .map(|_| step("tidy: ok")),
        Some("dry-run") => toolchain::ensure().and_then(|_| dry_run()),
        Some("bench") => xtask::bench::run(&args[1..]),
        Some("capacity") => match args.get(1).map(String::as_str) {
            Some("measure") => xtask::capacity::measure::run(&args[2..]),
            Some("moves") => xtask::capacity::moves::run(&args[2..]),
            Some("fence") => xtask::capacity::fence::run(&args[2..]),
            _ => Err("usage: cargo xtask capacity measure [--rows-small N] [--rows-large N] | capacity moves [--clients N] | capacity fence [--rounds K] [--clients N]".into()),
        },
        Some("dedicated") => xtask::dedicated::run(&args[1..]),
        Some("simulate") => xtask::capacity::simulate(&args[1..]),
        // Offline verification of an exported audit trail: no access to the service needed.
        // Run from the caller's directory (cargo runs xtask there), so relative paths in the
        // arguments mean what they say; the workspace is named by its manifest.
        Some("audit-verify") => run(std::process::Command::new(env!("CARGO"))
            .args(["run", "-q", "--release", "--manifest-path"])
            .arg(root().join("Cargo.toml"))
            .args(["-p", "audit-verify", "--"])
            .args(&args[1..])),
        Some("seed") => toolchain::ensure().and_then(|_| {
            let persist = root().join(".state/dev");
            stack::prepare(&persist)?;
            xtask::seed::retention_scenario(&persist)?;
            xtask::seed::oversized_scenario(&persist)?;
            step("seeded tenant 5eed0000-0000-4000-8000-000000000001 (retention: see xtask/src/seed.rs for what each row must become)");
            step("seeded tenant 5eed0000-0000-4000-8000-0000000000b1 (3,000 clients on shard-eu-02, registered capacity lowered to 4 MB: the next shard_health run proposes moving it)");
            Ok(())
        }),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n  run      build, migrate, seed and start the whole local stack on 127.0.0.1:8787\n  test     every check and test (what CI runs)\n  tidy     layering of shared/src, doc references to tests, wrangler/binding parity, README commands (of another checkout: tidy DIR)\n  build    build every Worker (wasm)\n  dry-run  wrangler deploy --dry-run of every Worker\n  bench    benchmarks on a stack of their own, results in bench/results (--quick: scaled down)\n  capacity measure  the capacity model's measured inputs (bench/results/capacity/inputs.json)\n  capacity moves [--clients N]  a tenant move's throughput (bench/results/capacity/moves.json)\n  capacity fence [--rounds K] [--clients N]  the fenced window of K moves under load (bench/results/capacity/fence.json)\n  simulate [--tenants N] [--years Y] [--seed S] [--assumptions FILE] [--set name=value]  the planner over a tenant population, month by month\n  seed     synthetic data in .state/dev: retention (known expiry, holds, an erasure request) and an oversized tenant\n  audit-verify --trail FILE.jsonl --checkpoints DIR|FILE --keys FILE [--pin FINGERPRINT] [--as-of T]  verify an exported audit trail offline\n  dedicated new <shard-id>  a new dedicated deployment (wrangler config from the template, shard bound to scheduler, consumer and operator, registered provisioning)\n  setup    install the pinned toolchain"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = res {
        eprintln!("\nerror: {e}");
        std::process::exit(1);
    }
}

fn dry_run() -> Result<()> {
    let out = root().join("target/dry-run");
    for c in deployable_configs() {
        step(&format!(
            "wrangler deploy --dry-run -c {c} --env production"
        ));
        let name = c.trim_start_matches("wrangler/").trim_end_matches(".jsonc");
        let text = xtask::run_quiet(
            node_command("wrangler")
                .args([
                    "deploy",
                    "--dry-run",
                    "-c",
                    &c,
                    "--env",
                    "production",
                    "--outdir",
                ])
                .arg(out.join(name)),
        )?;
        if let Some(l) = text.lines().find(|l| l.contains("Total Upload")) {
            eprintln!("    {}", l.trim());
        }
    }
    Ok(())
}

fn test() -> Result<()> {
    let t0 = std::time::Instant::now();
    toolchain::ensure()?;
    step("cargo fmt --check");
    run(Command::new("cargo").args(["fmt", "--all", "--check"]))?;
    step("tidy: layering, doc references, wrangler/binding parity, README commands");
    xtask::tidy::run()?;
    step("cargo tree -p shared: no `worker` dependency");
    let tree = xtask::run_quiet(Command::new("cargo").args([
        "tree", "-p", "shared", "-e", "normal", "--prefix", "none", "--target", "all",
    ]))?;
    if tree
        .lines()
        .any(|l| l.starts_with("worker ") || l.starts_with("worker-"))
    {
        return Err("shared depends on the worker crate".into());
    }
    step("cargo clippy (native) -D warnings");
    run(Command::new("cargo").args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    step("cargo clippy (wasm32) -D warnings");
    run(Command::new("cargo").args([
        "clippy",
        "--release",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "platform",
        "-p",
        "api-worker",
        "-p",
        "operator-worker",
        "-p",
        "change-events-consumer",
        "-p",
        "scheduler-worker",
        "--",
        "-D",
        "warnings",
    ]))?;
    toolchain::build_workers()?;
    dry_run()?;
    step("cargo test --workspace (native unit tests, then integration tests on the local runtime)");
    let (passed, failed) = cargo_test(&["test", "--workspace"])?;
    step(&format!("all checks passed in {:.0?}", t0.elapsed()));
    println!("tests: {passed} passed, {failed} failed");
    Ok(())
}

fn dev() -> Result<()> {
    toolchain::ensure()?;
    toolchain::build_workers()?;
    let persist = root().join(".state/dev");
    step(&format!(
        "applying migrations and the shard registry to {}",
        persist.display()
    ));
    stack::prepare(&persist)?;
    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8787);
    step(&format!(
        "starting every Worker in one wrangler dev on 127.0.0.1:{port}"
    ));
    let mut s = stack::Stack::start(stack::Options {
        port,
        persist,
        log: None,
        vars: vec![],
        local_traces: true,
    })?;
    // Ctrl-C goes to wrangler (its own process group gets it from us); we wait for it to exit.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
    s.wait_healthy(std::time::Duration::from_secs(60))?;
    let demo = xtask::demo::seed(&s.url())?;
    xtask::demo::print(&s.url(), &demo);
    while !STOP.load(std::sync::atomic::Ordering::SeqCst) {
        if s.try_exited() {
            return Err("wrangler dev exited".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    eprintln!("\nstopping the stack...");
    s.stop();
    eprintln!("stopped. State is kept in .state/dev; run again to continue with it.");
    Ok(())
}

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Run `cargo test`, echoing its output, and add up every `test result:` line.
fn cargo_test(args: &[&str]) -> Result<(u64, u64)> {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new("cargo")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cargo test: {e}"))?;
    let (mut passed, mut failed) = (0u64, 0u64);
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out)
            .lines()
            .map_while(std::result::Result::ok)
        {
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                for part in rest.split([';', '.']) {
                    let mut w = part.split_whitespace();
                    if let (Some(n), Some(kind)) =
                        (w.next().and_then(|n| n.parse::<u64>().ok()), w.next())
                    {
                        match kind {
                            "passed" => passed += n,
                            "failed" => failed += n,
                            _ => {}
                        }
                    }
                }
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() || failed > 0 {
        println!("tests: {passed} passed, {failed} failed");
        return Err(format!("cargo test failed ({status})"));
    }
    Ok((passed, failed))
}
