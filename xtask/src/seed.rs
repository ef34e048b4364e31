//! Synthetic data for the schedulers (`cargo xtask seed`): one tenant with rows of known expiry,
//! legal holds and an erasure request, written straight into the local D1s with
//! `wrangler d1 execute --local` (it works while `wrangler dev` runs). Fixed ids, so tests and
//! people know exactly what must be deleted and what must stay. Idempotent (INSERT OR REPLACE).

use crate::{node_command, run_quiet, Result};
use std::path::Path;

pub const ACCOUNT: &str = "5eed0000-0000-4000-8000-000000000001";
pub const SHARD: &str = "shard-eu-01";

/// (id, what the nightly sweep must do with it, description)
pub const CLIENTS: &[(&str, bool, &str)] = &[
    (
        "5eed0000-0000-4000-8000-00000000c001",
        true,
        "relationship ended 2015-01-31: past 6 years, deleted",
    ),
    (
        "5eed0000-0000-4000-8000-00000000c002",
        false,
        "relationship ended 2023-06-30: inside 6 years, kept",
    ),
    (
        "5eed0000-0000-4000-8000-00000000c003",
        false,
        "ended 2010-01-01 but under a legal hold, kept",
    ),
    (
        "5eed0000-0000-4000-8000-00000000c004",
        true,
        "soft-deleted 40 days ago, no end date: past grace, deleted",
    ),
    (
        "5eed0000-0000-4000-8000-00000000c005",
        false,
        "soft-deleted 5 days ago: inside grace, kept",
    ),
    (
        "5eed0000-0000-4000-8000-00000000c006",
        true,
        "active; erasure requested, nothing a law requires: deleted",
    ),
];

/// (id, client, kind, must be deleted)
pub const DOCUMENTS: &[(&str, &str, &str, bool)] = &[
    (
        "5eed0000-0000-4000-8000-00000000d001",
        "5eed0000-0000-4000-8000-00000000c001",
        "aml_evidence",
        true,
    ),
    (
        "5eed0000-0000-4000-8000-00000000d002",
        "5eed0000-0000-4000-8000-00000000c002",
        "aml_evidence",
        false,
    ),
    (
        "5eed0000-0000-4000-8000-00000000d003",
        "5eed0000-0000-4000-8000-00000000c003",
        "identity",
        false,
    ),
    (
        "5eed0000-0000-4000-8000-00000000d006",
        "5eed0000-0000-4000-8000-00000000c006",
        "fact_find",
        true,
    ),
];

pub const ERASURE_REQUEST: &str = "5eed0000-0000-4000-8000-00000000e006";

fn days_ago(days: i64) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
        - days * 86_400;
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn client_sql(
    id: &str,
    surname: &str,
    ended: Option<&str>,
    deleted: Option<&str>,
    hold: bool,
) -> String {
    let mut body = serde_json::json!({
        "forenames": "Seed", "surname": surname, "status": "former", "email": format!("{surname}@seed.example"),
        "version": 1, "created_at": "2014-01-01T00:00:00.000Z", "updated_at": "2014-01-01T00:00:00.000Z",
    });
    if let Some(e) = ended {
        body["relationship_ended_on"] = e.into();
    }
    if let Some(d) = deleted {
        body["deleted_at"] = d.into();
    }
    if hold {
        body["legal_hold"] = true.into();
    }
    format!(
        "INSERT OR REPLACE INTO clients (account_id, id, body) VALUES ('{ACCOUNT}', '{id}', '{}');\n",
        body.to_string().replace('\'', "''")
    )
}

pub fn shard_sql() -> String {
    let mut sql = String::new();
    sql += &client_sql(CLIENTS[0].0, "expired", Some("2015-01-31"), None, false);
    sql += &client_sql(CLIENTS[1].0, "recent", Some("2023-06-30"), None, false);
    sql += &client_sql(CLIENTS[2].0, "held", Some("2010-01-01"), None, true);
    sql += &client_sql(CLIENTS[3].0, "softold", None, Some(&days_ago(40)), false);
    sql += &client_sql(CLIENTS[4].0, "softnew", None, Some(&days_ago(5)), false);
    sql += &client_sql(CLIENTS[5].0, "erased", None, None, false);
    for (id, client, kind, _) in DOCUMENTS {
        let body = serde_json::json!({"client_id": client, "kind": kind, "title": kind, "version": 1,
            "created_at": "2014-01-01T00:00:00.000Z", "updated_at": "2014-01-01T00:00:00.000Z"});
        sql += &format!("INSERT OR REPLACE INTO documents (account_id, id, body) VALUES ('{ACCOUNT}', '{id}', '{body}');\n");
    }
    // What the API does for documents: each carries its client's relationship end.
    sql += "UPDATE documents SET body = json_patch(body, json_object('client_ended_on', \
            (SELECT c.relationship_ended_on FROM clients c WHERE c.account_id = documents.account_id \
            AND c.id = documents.client_id))) WHERE account_id = '";
    sql += ACCOUNT;
    sql += "';\n";
    let req = serde_json::json!({"id": ERASURE_REQUEST, "subject_type": "client", "subject_id": CLIENTS[5].0,
        "requested_by": "seed", "received_at": days_ago(1), "due_by": days_ago(-30), "status": "pending",
        "completed_at": null, "outcome": null});
    sql += &format!("INSERT OR REPLACE INTO erasure_requests (account_id, id, body) VALUES ('{ACCOUNT}', '{ERASURE_REQUEST}', '{req}');\n");
    sql
}

pub fn account_sql() -> String {
    let body = serde_json::json!({"id": ACCOUNT, "name": "Seeded Retention Ltd", "slug": "seeded-retention",
        "db_shard_id": SHARD, "is_active": true, "tier": "shared", "kind": "test", "uk_only": false,
        "cidr_allowlist": null, "retention": {"preset": "uk-financial-advice"}, "created_at": "2014-01-01T00:00:00.000Z",
        "updated_at": "2014-01-01T00:00:00.000Z", "version": 1});
    format!("INSERT OR REPLACE INTO accounts (id, body) VALUES ('{ACCOUNT}', '{body}');\n")
}

/// Run SQL against a local D1 of the stack under `persist` (it works while `wrangler dev` runs).
pub fn execute(persist: &Path, binding: &str, config: &str, sql: &str) -> Result<()> {
    // One file per statement set: concurrent seeds (tests run in parallel) never share one.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let file = persist.join(format!("seed-{binding}-{}-{n}.sql", std::process::id()));
    std::fs::write(&file, sql).map_err(|e| format!("{}: {e}", file.display()))?;
    // Another writer (the running stack, a parallel seed) may hold the SQLite lock briefly.
    let mut attempt = 0;
    let res = loop {
        let r = run_quiet(
            node_command("wrangler")
                .args(["d1", "execute", binding, "--local", "-c", config, "--file"])
                .arg(&file)
                .arg("--persist-to")
                .arg(persist)
                .env("CI", "true"),
        );
        match r {
            Err(e) if e.contains("SQLITE_BUSY") && attempt < 10 => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(250 * attempt));
            }
            other => break other,
        }
    };
    let _ = std::fs::remove_file(&file);
    res.map(|_| ())
}

/// Rows of one query against a local D1 of the stack under `persist` (tests read what D1 stored,
/// for example `typeof()` of a JSON field).
pub fn query(
    persist: &Path,
    binding: &str,
    config: &str,
    sql: &str,
) -> Result<Vec<serde_json::Value>> {
    let mut attempt = 0;
    let out = loop {
        let o = node_command("wrangler")
            .args([
                "d1",
                "execute",
                binding,
                "--local",
                "--json",
                "-c",
                config,
                "--command",
            ])
            .arg(sql)
            .arg("--persist-to")
            .arg(persist)
            .env("CI", "true")
            // The JSON is printed at log level (node_command quiets wrangler to warnings).
            .env("WRANGLER_LOG", "log")
            .output()
            .map_err(|e| format!("wrangler d1 execute: {e}"))?;
        let (stdout, stderr) = (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        );
        if o.status.success() {
            break stdout;
        }
        if (stdout.contains("SQLITE_BUSY") || stderr.contains("SQLITE_BUSY")) && attempt < 10 {
            attempt += 1;
            std::thread::sleep(std::time::Duration::from_millis(250 * attempt));
            continue;
        }
        return Err(format!(
            "wrangler d1 execute {binding} failed: {stdout}{stderr}"
        ));
    };
    let start = out.find('[').ok_or_else(|| format!("no JSON in: {out}"))?;
    let v: serde_json::Value =
        serde_json::from_str(&out[start..]).map_err(|e| format!("{e}: {out}"))?;
    Ok(v[0]["results"].as_array().cloned().unwrap_or_default())
}

/// The oversized tenant: enough rows on shard-eu-02 that, with the shard's registered capacity
/// lowered to [`OVERSIZED_CAPACITY`] (a stand-in for 10 GB: local shards are tiny), the shard
/// is above its soft cap (70%) and the planner must propose moving this tenant off it.
pub const OVERSIZED_ACCOUNT: &str = "5eed0000-0000-4000-8000-0000000000b1";
pub const OVERSIZED_SHARD: &str = "shard-eu-02";
pub const OVERSIZED_CLIENTS: u32 = 3_000;
pub const OVERSIZED_CAPACITY: u64 = 4_000_000;
/// What local shards are registered with (seed/local-shards.sql).
pub const LOCAL_CAPACITY: u64 = 10_000_000_000;

pub fn oversized_account_sql() -> String {
    let body = serde_json::json!({"id": OVERSIZED_ACCOUNT, "name": "Oversized Holdings Ltd", "slug": "seeded-oversized",
        "db_shard_id": OVERSIZED_SHARD, "is_active": true, "tier": "shared", "kind": "test", "uk_only": false,
        "cidr_allowlist": null, "retention": {"preset": "uk-financial-advice"}, "created_at": "2020-01-01T00:00:00.000Z",
        "updated_at": "2020-01-01T00:00:00.000Z", "version": 1});
    format!(
        "INSERT OR REPLACE INTO accounts (id, body) VALUES ('{OVERSIZED_ACCOUNT}', '{body}');\n{}",
        capacity_sql(OVERSIZED_SHARD, OVERSIZED_CAPACITY)
    )
}

/// Set a shard's registered capacity (what health and the planner measure against).
pub fn capacity_sql(shard: &str, bytes: u64) -> String {
    format!(
        "UPDATE shards SET body = json_set(body, '$.capacity_bytes', {bytes}) WHERE id = '{shard}';\n"
    )
}

/// About 1 KB per client (notes), active, never expiring: only its size matters.
pub fn oversized_shard_sql() -> String {
    format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {OVERSIZED_CLIENTS}) \
         INSERT OR REPLACE INTO clients (account_id, id, body) \
         SELECT '{OVERSIZED_ACCOUNT}', printf('5eed0000-0000-4000-8b00-%012d', i), \
         json_object('forenames', 'Big', 'surname', printf('Client%05d', i), 'status', 'active', 'version', 1, \
         'notes', hex(zeroblob(500)), 'created_at', '2020-01-01T00:00:00.000Z', 'updated_at', '2020-01-01T00:00:00.000Z') \
         FROM n;\n"
    )
}

/// Write the oversized tenant and lower its shard's registered capacity.
pub fn oversized_scenario(persist: &Path) -> Result<()> {
    execute(
        persist,
        "ACCOUNTS_DB",
        "wrangler/api.jsonc",
        &oversized_account_sql(),
    )?;
    execute(
        persist,
        "SHARD_EU_02",
        "wrangler/api.jsonc",
        &oversized_shard_sql(),
    )
}

/// Give a shard its registered capacity back (after the oversized scenario).
pub fn restore_capacity(persist: &Path, shard: &str) -> Result<()> {
    execute(
        persist,
        "ACCOUNTS_DB",
        "wrangler/api.jsonc",
        &capacity_sql(shard, LOCAL_CAPACITY),
    )
}

/// Write the scenario into the local D1s under `persist`.
pub fn retention_scenario(persist: &Path) -> Result<()> {
    execute(persist, "ACCOUNTS_DB", "wrangler/api.jsonc", &account_sql())?;
    execute(persist, "SHARD_EU_01", "wrangler/api.jsonc", &shard_sql())
}

#[cfg(test)]
mod tests {
    #[test]
    fn days_ago_is_rfc3339_utc() {
        let s = super::days_ago(0);
        assert_eq!(s.len(), 24);
        assert!(
            s.ends_with(".000Z") && &s[4..5] == "-" && &s[10..11] == "T",
            "{s}"
        );
        assert!(super::days_ago(40) < s);
    }
}
