//! `audit-verify --trail trail.jsonl --checkpoints DIR --keys keys.json [--account UUID]`:
//! prints the report as JSON; exit status 0 when everything verified, 1 when something did
//! not, 2 when the input could not be read.

use std::process::ExitCode;

fn main() -> ExitCode {
    match audit_verify::run_cli(std::env::args().skip(1)) {
        Ok(report) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("audit-verify: {e}");
            eprintln!(
                "usage: audit-verify --trail FILE.jsonl --checkpoints DIR --keys FILE.json [--account UUID]"
            );
            ExitCode::from(2)
        }
    }
}
