//! `audit-verify --trail trail.jsonl --checkpoints FILE|DIR --keys keys.json [--pin FINGERPRINT]...
//! [--as-of RFC3339] [--account UUID]`:
//! prints the report as JSON; exit status 0 when everything verified, 1 when something did
//! not, 2 when the input could not be read.

use std::process::ExitCode;

fn main() -> ExitCode {
    let now = time::OffsetDateTime::now_utc();
    match audit_verify::run_cli(std::env::args().skip(1), now) {
        Ok(report) => {
            for k in &report.keys {
                eprintln!(
                    "key {} fingerprint {}{}",
                    k.key_id,
                    k.fingerprint,
                    if k.pinned {
                        ""
                    } else {
                        " (not pinned: not used)"
                    }
                );
            }
            if report.keys_unpinned {
                eprintln!("warning: no --pin given: the keys file was trusted as it is; pin the fingerprints received out of band");
            }
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
                "usage: audit-verify --trail FILE.jsonl --checkpoints FILE|DIR --keys FILE.json [--pin FINGERPRINT]... [--as-of RFC3339] [--account UUID]"
            );
            ExitCode::from(2)
        }
    }
}
