//! `cargo xtask capacity measure`: the capacity model's measured inputs, each with where it
//! comes from, written to `bench/results/capacity/inputs.json`.
//!
//! - D1 bytes per client and per document row, indexes included: every shard migration and the
//!   bench's own seed SQL (`bench::data::clients_sql`, `documents_sql`) on native SQLite (D1 is
//!   SQLite) at two row counts; SQLite's `dbstat` gives each table's pages and its indexes'
//!   (grouped by `sqlite_master.tbl_name`), and the per-row figure is the difference over the
//!   difference in rows (fixed costs drop out).
//! - Audit and outbox bytes per write: `shared/src/tests/capacity_inputs.rs`, writes through the
//!   API and the consumer over the same migrations (run here, its printed line parsed).
//! - D1 calls and rows per operation: the bench's cost table, `bench/results/cost.csv`.

use crate::bench::data::{clients_sql, documents_sql};
use crate::{root, Result};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const ACCOUNT: &str = "ca000000-0000-4000-8000-000000000001";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub value: f64,
    pub unit: String,
    pub source: String,
}

fn fig(value: f64, unit: &str, source: impl Into<String>) -> Figure {
    Figure {
        value,
        unit: unit.into(),
        source: source.into(),
    }
}

/// One row of `bench/results/cost.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpCost {
    pub op: String,
    pub calls: f64,
    pub rows_read: f64,
    pub rows_written: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inputs {
    pub client_row_bytes: Figure,
    pub document_row_bytes: Figure,
    pub audit_bytes_per_write: Figure,
    pub outbox_bytes_per_write: Figure,
    /// Rows an insert writes into the audit log: the row and one per index (from the schema).
    pub audit_rows_written_per_event: Figure,
    /// Tenant-move throughput: `capacity moves` on the local stack (`moves.rs`).
    pub move_bytes_per_s: Figure,
    pub cost_source: String,
    pub ops: Vec<OpCost>,
}

impl Inputs {
    pub fn op(&self, name: &str) -> Result<&OpCost> {
        self.ops
            .iter()
            .find(|o| o.op == name)
            .ok_or_else(|| format!("{}: no operation {name:?}", self.cost_source))
    }

    pub fn committed() -> Result<Self> {
        let p = root().join("bench/results/capacity/inputs.json");
        let text = std::fs::read_to_string(&p)
            .map_err(|e| format!("{}: {e} (run `cargo xtask capacity measure`)", p.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
    }
}

/// A shard database on native SQLite with every migration and `n` seeded clients + documents.
pub fn seeded_shard(n: u64) -> Result<Connection> {
    let conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(|e| e.to_string())?;
    for m in shared::migrations::SHARD {
        conn.execute_batch(m.sql)
            .map_err(|e| format!("{}: {e}", m.name))?;
    }
    if n > 0 {
        conn.execute_batch(&clients_sql(ACCOUNT, n))
            .map_err(|e| format!("clients seed: {e}"))?;
        conn.execute_batch(&documents_sql(ACCOUNT, n))
            .map_err(|e| format!("documents seed: {e}"))?;
    }
    Ok(conn)
}

/// Bytes of each table with its indexes (`dbstat`, pages of every b-tree named for the table).
pub fn table_bytes(conn: &Connection) -> Result<BTreeMap<String, i64>> {
    let mut stmt = conn
        .prepare(
            "SELECT m.tbl_name, sum(d.pgsize) FROM dbstat d JOIN sqlite_master m \
             ON m.name = d.name GROUP BY m.tbl_name ORDER BY m.tbl_name",
        )
        .map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(|e| e.to_string())?;
    rows.collect::<std::result::Result<_, _>>()
        .map_err(|e| e.to_string())
}

/// Bytes per row of `clients` and `documents`, from seeds of `n1` and `n2` rows.
pub fn row_bytes(n1: u64, n2: u64) -> Result<(f64, f64)> {
    let a = table_bytes(&seeded_shard(n1)?)?;
    let b = table_bytes(&seeded_shard(n2)?)?;
    let per = |t: &str| {
        (b.get(t).copied().unwrap_or(0) - a.get(t).copied().unwrap_or(0)) as f64 / (n2 - n1) as f64
    };
    Ok((per("clients"), per("documents")))
}

fn index_count(conn: &Connection, table: &str) -> Result<f64> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1",
        [table],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as f64)
    .map_err(|e| e.to_string())
}

pub fn parse_cost_csv(text: &str) -> Result<Vec<OpCost>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().ok_or("empty cost.csv")?.split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| format!("cost.csv has no column {name}"))
    };
    let (op, calls, read, written) = (
        col("op")?,
        col("calls")?,
        col("rows_read")?,
        col("rows_written")?,
    );
    let num = |v: Option<&&str>| v.and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    Ok(lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            OpCost {
                op: c.get(op).copied().unwrap_or_default().to_string(),
                calls: num(c.get(calls)),
                rows_read: num(c.get(read)),
                rows_written: num(c.get(written)),
            }
        })
        .collect())
}

/// Runs the shared test and reads its `capacity-input` line.
fn audit_and_outbox() -> Result<(f64, f64)> {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "test",
            "-q",
            "-p",
            "shared",
            "--lib",
            "capacity_inputs",
            "--",
            "--nocapture",
        ])
        .current_dir(root())
        .output()
        .map_err(|e| format!("cargo test: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("capacity-input "))
        .ok_or_else(|| format!("the capacity_inputs test printed no figure:\n{text}"))?;
    let get = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| format!("no {k} in {line}"))
    };
    Ok((
        get("audit_bytes_per_write")?,
        get("outbox_bytes_per_write")?,
    ))
}

pub fn run(args: &[String]) -> Result<()> {
    let rows = |flag: &str, default: u64| {
        args.windows(2)
            .find(|w| w[0] == flag)
            .and_then(|w| w[1].parse().ok())
            .unwrap_or(default)
    };
    let (n1, n2) = (rows("--rows-small", 20_000), rows("--rows-large", 60_000));
    crate::step(&format!(
        "seeding the shard migrations with the bench's seed SQL at {n1} and {n2} rows (native SQLite, dbstat)"
    ));
    let (client, document) = row_bytes(n1, n2)?;
    let seed_src = format!(
        "dbstat of every migrations/shard/*.sql + bench::data::clients_sql/documents_sql at {n1} and {n2} rows: (bytes at {n2} - bytes at {n1}) / {} rows, table and its indexes (xtask/src/capacity/measure.rs)",
        n2 - n1
    );
    crate::step("audit and outbox bytes per write: cargo test -p shared capacity_inputs");
    let (audit, outbox) = audit_and_outbox()?;
    let test_src = "shared/src/tests/capacity_inputs.rs: 400 creates + 400 patches through the API and the consumer, dbstat at 200 and 800 writes";
    let audit_rows = 1.0 + index_count(&seeded_shard(0)?, "audit_log")?;
    let moves = super::moves::MoveRun::committed()?;
    let cost_path = root().join("bench/results/cost.csv");
    let text =
        std::fs::read_to_string(&cost_path).map_err(|e| format!("{}: {e}", cost_path.display()))?;
    let inputs = Inputs {
        client_row_bytes: fig(client, "bytes/row", &seed_src),
        document_row_bytes: fig(document, "bytes/row", &seed_src),
        audit_bytes_per_write: fig(audit, "bytes/write", test_src),
        outbox_bytes_per_write: fig(
            outbox,
            "bytes/write (transient: the relay purges a row once audited)",
            test_src,
        ),
        audit_rows_written_per_event: fig(
            audit_rows,
            "rows/event",
            "1 + the indexes on audit_log in the migrations (sqlite_master)",
        ),
        move_bytes_per_s: fig(
            moves.bytes_per_s,
            "bytes/s",
            format!(
                "bench/results/capacity/moves.json (cargo xtask capacity moves, {}): {} rows, {} D1 bytes moved by the scheduler's moves job in {:.1} s over {} back-to-back runs ({:.0} B/s); deployed, one run per {} s tick ({:.0} B/s): the lower",
                moves.measured_on,
                moves.rows,
                moves.d1_bytes,
                moves.seconds,
                moves.job_runs,
                moves.stepping_bytes_per_s,
                super::moves::CRON_INTERVAL_S,
                moves.cron_bytes_per_s
            ),
        ),
        cost_source: "bench/results/cost.csv (cargo xtask bench, x-d1-cost of single requests on the big tenant)".into(),
        ops: parse_cost_csv(&text)?,
    };
    let dir = root().join("bench/results/capacity");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let out = serde_json::to_string_pretty(&inputs).map_err(|e| e.to_string())? + "\n";
    std::fs::write(dir.join("inputs.json"), out).map_err(|e| e.to_string())?;
    crate::step(&format!(
        "client row {client:.0} B, document row {document:.0} B, audit {audit:.0} B/write, outbox {outbox:.0} B/write: bench/results/capacity/inputs.json"
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_bytes_are_positive_and_stable_across_seed_sizes() {
        let (c1, d1) = row_bytes(2_000, 6_000).unwrap();
        let (c2, d2) = row_bytes(6_000, 12_000).unwrap();
        assert!(c1 > 200.0 && d1 > 100.0, "{c1} {d1}");
        // Per-row bytes are a property of the schema, not of the sample size.
        assert!((c1 - c2).abs() / c2 < 0.15, "{c1} vs {c2}");
        assert!((d1 - d2).abs() / d2 < 0.15, "{d1} vs {d2}");
    }

    #[test]
    fn committed_inputs_match_a_fresh_measurement_of_row_bytes() {
        let inputs = Inputs::committed().unwrap();
        let (c, d) = row_bytes(5_000, 15_000).unwrap();
        for (committed, fresh) in [
            (inputs.client_row_bytes.value, c),
            (inputs.document_row_bytes.value, d),
        ] {
            assert!(
                (committed - fresh).abs() / fresh < 0.15,
                "{committed} vs {fresh}"
            );
        }
    }

    #[test]
    fn committed_cost_table_is_the_bench_cost_csv() {
        let inputs = Inputs::committed().unwrap();
        let csv = std::fs::read_to_string(root().join("bench/results/cost.csv")).unwrap();
        assert_eq!(inputs.ops, parse_cost_csv(&csv).unwrap());
        assert_eq!(inputs.op("create client").unwrap().rows_written, 13.0);
    }
}
