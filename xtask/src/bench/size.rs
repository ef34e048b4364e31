//! Worker sizes from `wrangler deploy --dry-run` ("Total Upload: X KiB / gzip: Y KiB") and the
//! built wasm files.

use crate::{node_command, root, run_quiet, Result};
use serde_json::{json, Value};

/// "Total Upload: 1234.56 KiB / gzip: 456.78 KiB" -> (1234.56, 456.78).
pub fn parse_total_upload(text: &str) -> Option<(f64, f64)> {
    let line = text.lines().find(|l| l.contains("Total Upload"))?;
    let nums: Vec<f64> = line
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|w| w.parse::<f64>().ok())
        .collect();
    Some((*nums.first()?, *nums.get(1)?))
}

/// (name, config, production env?, wasm file)
const WORKERS: &[(&str, &str, bool, Option<&str>)] = &[
    (
        "api",
        "wrangler/api.jsonc",
        true,
        Some("producers/api/build/index_bg.wasm"),
    ),
    (
        "consumer",
        "wrangler/consumer.jsonc",
        true,
        Some("consumers/change-events/build/index_bg.wasm"),
    ),
    (
        "scheduler",
        "wrangler/scheduler.jsonc",
        true,
        Some("schedulers/cron/build/index_bg.wasm"),
    ),
    (
        "floor-rs",
        "wrangler/bench-floor-rs.jsonc",
        false,
        Some("bench/floor-worker/build/index_bg.wasm"),
    ),
    ("floor-js", "wrangler/bench-floor-js.jsonc", false, None),
];

pub fn measure() -> Result<Vec<Value>> {
    let out_dir = root().join("target/bench/dry-run");
    let mut out = Vec::new();
    for (name, config, prod, wasm) in WORKERS {
        crate::step(&format!("wrangler deploy --dry-run -c {config}"));
        let mut cmd = node_command("wrangler");
        // "Total Upload" is an info line.
        cmd.args(["deploy", "--dry-run", "-c", config])
            .env("WRANGLER_LOG", "log");
        if *prod {
            cmd.args(["--env", "production"]);
        }
        let text = run_quiet(cmd.arg("--outdir").arg(out_dir.join(name)))?;
        let (raw, gz) = parse_total_upload(&text)
            .ok_or_else(|| format!("no Total Upload line for {name}:\n{text}"))?;
        let wasm_kib = wasm
            .and_then(|w| std::fs::metadata(root().join(w)).ok())
            .map(|m| m.len() as f64 / 1024.0);
        eprintln!("    {name}: {raw:.1} KiB, gzip {gz:.1} KiB");
        out.push(json!({"worker": name, "upload_kib": raw, "gzip_kib": gz, "wasm_file_kib": wasm_kib, "under_1mb_gzip": gz < 1024.0}));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_wranglers_total_upload_line() {
        let t = "foo\nTotal Upload: 1234.56 KiB / gzip: 456.78 KiB\nbar";
        assert_eq!(super::parse_total_upload(t), Some((1234.56, 456.78)));
        assert_eq!(super::parse_total_upload("nothing"), None);
    }
}
