//! The capacity model and simulation (issue 17): `cargo xtask capacity measure` measures the
//! model's inputs (`measure.rs`), `cargo xtask simulate` runs the product's planner over a
//! seeded tenant population for years (`sim.rs`) and writes CSVs, SVG plots and a summary to
//! `bench/results/capacity/`. Assumptions: `assumptions.rs` (file: `bench/capacity/assumptions.json`).

pub mod assumptions;
pub mod fence;
pub mod measure;
pub mod model;
pub mod moves;
pub mod prices;
pub mod sim;

use crate::bench::plot;
use crate::{root, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub struct Args {
    pub tenants: usize,
    pub years: u32,
    pub seed: u64,
    pub assumptions: assumptions::Assumptions,
    pub out: PathBuf,
}

pub fn parse(args: &[String]) -> Result<Args> {
    let mut a = Args {
        tenants: 1000,
        years: 10,
        seed: 1,
        assumptions: assumptions::Assumptions::load(
            &root().join("bench/capacity/assumptions.json"),
        )?,
        out: root().join("bench/results/capacity"),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--tenants" => a.tenants = value()?.parse().map_err(|e| format!("--tenants: {e}"))?,
            "--years" => a.years = value()?.parse().map_err(|e| format!("--years: {e}"))?,
            "--seed" => a.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--assumptions" => a.assumptions = assumptions::Assumptions::load(Path::new(value()?))?,
            "--set" => a.assumptions.set(value()?)?,
            "--out" => a.out = PathBuf::from(value()?),
            other => return Err(format!("simulate: unknown argument {other}")),
        }
    }
    Ok(a)
}

/// The simulation's files, by name (byte-identical for the same arguments).
pub fn render(args: &Args, inputs: &measure::Inputs) -> Result<Vec<(String, String)>> {
    let m = model::Model::new(&args.assumptions, inputs)?;
    let o = sim::run(&m, args.tenants, args.years, args.seed)?;
    let mut months = String::from("month,tenants,shared_shards,dedicated_shards,max_fill,mean_shared_fill,proposals,moves,bytes_moved,move_hours,promotions,provisioned,max_shard_queries_per_s,account_d1_qps_today,account_d1_qps_batched,d1_gb,r2_gb,bill_usd\n");
    for r in &o.months {
        let _ =
            writeln!(
            months,
            "{},{},{},{},{:.4},{:.4},{},{},{:.0},{:.2},{},{},{:.1},{:.1},{:.1},{:.3},{:.3},{:.2}",
            r.month, r.tenants, r.shared_shards, r.dedicated_shards, r.max_fill, r.mean_shared_fill,
            r.proposals, r.moves, r.bytes_moved, r.move_hours, r.promotions, r.provisioned,
            r.max_shard_queries_per_s, r.account_d1_qps_today, r.account_d1_qps_batched,
            r.d1_bytes / 1e9, r.r2_bytes / 1e9, r.bill_usd
        );
    }
    let mut events = String::from("month,kind,account,from,to,bytes,reason\n");
    for e in &o.events {
        let _ = writeln!(
            events,
            "{},{},{},{},{},{},\"{}\"",
            e.month,
            e.kind,
            e.account,
            e.from,
            e.to,
            e.bytes,
            e.reason.replace('"', "'")
        );
    }
    let mut tenants = String::from("tenant,size_rank,grown_users,joined_month,promoted_month,shard,d1_gb,r2_gb,bill_last_month_usd\n");
    for (t, b) in o.tenants.iter().zip(&o.last_bills) {
        let shard = t.shard.map(|s| o.shards[s].id.as_str()).unwrap_or("");
        let promoted = t.promoted.map(|p| p.to_string()).unwrap_or_default();
        let _ = writeln!(
            tenants,
            "{},{},{:.0},{},{},{},{:.4},{:.4},{:.2}",
            t.id,
            t.rank,
            t.grown_users,
            t.joins,
            promoted,
            shard,
            t.d1_bytes / 1e9,
            t.r2_bytes / 1e9,
            b
        );
    }
    let last = o.months.last().cloned().unwrap_or_default();
    let x = |f: fn(&sim::Month) -> f64| {
        o.months
            .iter()
            .map(|r| (f64::from(r.month) / 12.0, f(r)))
            .collect::<Vec<_>>()
    };
    let plots = vec![
        (
            "shards.svg".to_string(),
            plot::lines(
                "Shards in use",
                "year",
                "shards",
                &[
                    ("shared", x(|r| r.shared_shards as f64)),
                    ("dedicated", x(|r| r.dedicated_shards as f64)),
                ],
            ),
        ),
        (
            "fill.svg".into(),
            plot::lines(
                "Shard fill (share of D1's 10 GB)",
                "year",
                "fill",
                &[
                    ("max over shards", x(|r| r.max_fill)),
                    ("mean of shared shards", x(|r| r.mean_shared_fill)),
                ],
            ),
        ),
        (
            "moves.svg".into(),
            plot::lines(
                "Planner: moves per month",
                "year",
                "moves",
                &[
                    ("moves (incl. to dedicated)", x(|r| r.moves as f64)),
                    ("proposals", x(|r| r.proposals as f64)),
                ],
            ),
        ),
        (
            "queries.svg".into(),
            plot::lines(
                "Peak D1 queries/s",
                "year",
                "queries/s",
                &[
                    ("busiest shard", x(|r| r.max_shard_queries_per_s)),
                    ("account D1, today's cache", x(|r| r.account_d1_qps_today)),
                    ("account D1, batched probe", x(|r| r.account_d1_qps_batched)),
                ],
            ),
        ),
        (
            "bill.svg".into(),
            plot::lines(
                "Monthly Cloudflare bill (USD)",
                "year",
                "USD",
                &[("total", x(|r| r.bill_usd))],
            ),
        ),
    ];
    let first = |f: &dyn Fn(&sim::Month) -> bool| {
        o.months
            .iter()
            .find(|r| f(r))
            .map(|r| format!("month {}", r.month))
            .unwrap_or_else(|| "never".into())
    };
    let mut bills = o.last_bills.clone();
    bills.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        bills
            .get(((bills.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let half = m.a.d1_queries_per_s_ceiling / 2.0;
    let mut summary = format!(
        "# Capacity simulation: {} tenants, {} years, seed {}\n\n\
         Model: D1 bytes per document (row + client share + audit) {:.0} B, R2 mean {:.0} B, documents per user-month {:.3}, \
         rows read per read {:.1}, rows written per write {:.1}, D1 calls per read {:.2} / per write {:.2}. Planner policy: {:?}.\n\n\
         | figure | value |\n|---|---|\n",
        args.tenants, args.years, args.seed, m.d1_bytes_per_document, m.a.r2_mean_document_bytes, m.documents_per_user_month,
        m.rows_read_per_read, m.rows_written_per_write, m.calls_per_read, m.calls_per_write, o.policy
    );
    let rows: Vec<(String, String)> = vec![
        (
            "shards at the end (shared / dedicated)".into(),
            format!("{} / {}", last.shared_shards, last.dedicated_shards),
        ),
        (
            "D1 / R2 stored at the end".into(),
            format!(
                "{:.1} GB / {:.0} GB",
                last.d1_bytes / 1e9,
                last.r2_bytes / 1e9
            ),
        ),
        (
            "highest shard fill ever (hard cap 1.0)".into(),
            format!(
                "{:.3}",
                o.months.iter().fold(0.0f64, |a, r| a.max(r.max_fill))
            ),
        ),
        (
            "moves in total (to dedicated included)".into(),
            format!("{}", o.months.iter().map(|r| r.moves).sum::<usize>()),
        ),
        (
            "busiest year's moves".into(),
            format!(
                "{}",
                (0..args.years)
                    .map(|y| o
                        .months
                        .iter()
                        .filter(|r| r.month / 12 == y)
                        .map(|r| r.moves)
                        .sum::<usize>())
                    .max()
                    .unwrap_or(0)
            ),
        ),
        (
            "bytes moved in total".into(),
            format!(
                "{:.2} GB ({:.1} h at the measured {:.2} MB/s)",
                o.months.iter().map(|r| r.bytes_moved).sum::<f64>() / 1e9,
                o.months.iter().map(|r| r.move_hours).sum::<f64>(),
                m.move_bytes_per_s / 1e6
            ),
        ),
        (
            "tenants promoted to dedicated shards".into(),
            format!(
                "{} (first: {})",
                o.tenants.iter().filter(|t| t.promoted.is_some()).count(),
                first(&|r| r.promotions > 0)
            ),
        ),
        (
            "shards provisioned by the operator".into(),
            format!("{}", o.months.iter().map(|r| r.provisioned).sum::<usize>()),
        ),
        (
            "peak D1 queries/s of the busiest shard (end)".into(),
            format!(
                "{:.0} (first above half of one D1, {half:.0}/s: {})",
                last.max_shard_queries_per_s,
                first(&|r| r.max_shard_queries_per_s > half)
            ),
        ),
        (
            "account D1 at peak, today's cache (end)".into(),
            format!(
                "{:.0} q/s (first above {half:.0}: {})",
                last.account_d1_qps_today,
                first(&|r| r.account_d1_qps_today > half)
            ),
        ),
        (
            "account D1 at peak, batched probe (end)".into(),
            format!(
                "{:.0} q/s (first above {half:.0}: {})",
                last.account_d1_qps_batched,
                first(&|r| r.account_d1_qps_batched > half)
            ),
        ),
        (
            "monthly bill, last month (with included usage)".into(),
            format!("${:.0}", last.bill_usd),
        ),
        (
            "per tenant at list price, last month: median / p90 / max".into(),
            format!("${:.2} / ${:.2} / ${:.2}", pct(0.5), pct(0.9), pct(1.0)),
        ),
    ];
    for (k, v) in &rows {
        let _ = writeln!(summary, "| {k} | {v} |");
    }
    let mut files = vec![
        ("months.csv".to_string(), months),
        ("events.csv".into(), events),
        ("tenants.csv".into(), tenants),
        ("summary.md".into(), summary),
    ];
    files.extend(plots);
    Ok(files)
}

pub fn simulate(args: &[String]) -> Result<()> {
    let a = parse(args)?;
    let inputs = measure::Inputs::committed()?;
    let files = render(&a, &inputs)?;
    std::fs::create_dir_all(&a.out).map_err(|e| e.to_string())?;
    for (name, text) in &files {
        std::fs::write(a.out.join(name), text).map_err(|e| format!("{name}: {e}"))?;
    }
    if let Some((_, s)) = files.iter().find(|(n, _)| n == "summary.md") {
        println!("{s}");
    }
    crate::step(&format!(
        "wrote {} files to {}",
        files.len(),
        a.out.display()
    ));
    Ok(())
}

#[cfg(test)]
mod tests;
