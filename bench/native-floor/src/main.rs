//! The database floor of `cargo xtask bench`: builds a native SQLite file with the shard schema
//! (every `migrations/shard/*.sql`, in order) and the same seed SQL the bench gives the local
//! D1, then times the product's GET-by-id statement on random existing ids, in-process.
//! Prints one JSON object on stdout.
//!
//! usage: native-floor DB MIGRATIONS_DIR ACCOUNT ID_PREFIX ROWS QUERIES SEED.sql...

use rusqlite::{Connection, OptionalExtension};
use std::time::Instant;

const GET_BY_ID: &str =
    "SELECT id, body FROM clients WHERE account_id = ?1 AND id = ?2 AND deleted_at IS NULL";

fn main() {
    if let Err(e) = run() {
        eprintln!("native-floor: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, migrations, account, prefix, rows, queries, seeds @ ..] = args.as_slice() else {
        return Err(
            "usage: native-floor DB MIGRATIONS_DIR ACCOUNT ID_PREFIX ROWS QUERIES SEED.sql..."
                .into(),
        );
    };
    let rows: u64 = rows.parse().map_err(|e| format!("ROWS: {e}"))?;
    let queries: usize = queries.parse().map_err(|e| format!("QUERIES: {e}"))?;
    let _ = std::fs::remove_file(db);
    let conn = Connection::open(db).map_err(|e| e.to_string())?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(|e| e.to_string())?;
    let mut files: Vec<_> = std::fs::read_dir(migrations)
        .map_err(|e| format!("{migrations}: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    let t_seed = Instant::now();
    files.extend(seeds.iter().map(std::path::PathBuf::from));
    for f in &files {
        let sql = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        conn.execute_batch(&sql)
            .map_err(|e| format!("{}: {e}", f.display()))?;
    }
    let seed_ms = t_seed.elapsed().as_secs_f64() * 1e3;
    let count: i64 = conn
        .query_row(
            "SELECT count(*) FROM clients WHERE account_id = ?1",
            [account],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    let mut stmt = conn.prepare(GET_BY_ID).map_err(|e| e.to_string())?;
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut lat_ns: Vec<u64> = Vec::with_capacity(queries);
    let mut found = 0u64;
    let t0 = Instant::now();
    for _ in 0..queries {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let id = format!("{prefix}{:012}", rng % rows.max(1) + 1);
        let t = Instant::now();
        let row: Option<(String, String)> = stmt
            .query_row([account.as_str(), id.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(|e| e.to_string())?;
        lat_ns.push(t.elapsed().as_nanos() as u64);
        found += u64::from(row.is_some());
    }
    let secs = t0.elapsed().as_secs_f64();
    lat_ns.sort_unstable();
    let pct = |p: f64| {
        let i = ((p / 100.0) * lat_ns.len() as f64).ceil() as usize;
        lat_ns.get(i.saturating_sub(1)).copied().unwrap_or(0) as f64 / 1e3
    };
    println!(
        "{{\"rows\":{count},\"queries\":{queries},\"found\":{found},\"seconds\":{secs:.4},\"qps\":{:.1},\"p50_us\":{:.2},\"p95_us\":{:.2},\"p99_us\":{:.2},\"seed_ms\":{seed_ms:.0}}}",
        queries as f64 / secs,
        pct(50.0),
        pct(95.0),
        pct(99.0)
    );
    Ok(())
}
