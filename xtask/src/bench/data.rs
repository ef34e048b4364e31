//! Bench data: accounts through the operator API (fixed ids), rows bulk-inserted into the local
//! D1s with `wrangler d1 execute --file` of recursive-CTE `INSERT ... SELECT` statements.
//! Ids are deterministic UUIDs with the row index in the last 12 digits, so the wrk script can
//! pick random existing rows: clients `CLIENT_PREFIX{i:012}`, documents `DOC_PREFIX{i:012}`
//! (document i belongs to client i). Every tenant uses the same id patterns (keys are per account).

use crate::http::Client;
use crate::{node_command, run_quiet, Result, LOCAL_ADMIN_SECRET};
use serde_json::json;
use std::path::{Path, PathBuf};

pub const CLIENT_PREFIX: &str = "c1000000-0000-4000-8000-";
pub const DOC_PREFIX: &str = "d1000000-0000-4000-8000-";
/// The big tenant (load, floors, cost), on shard-eu-01.
pub const BIG: &str = "be000000-0000-4000-8000-000000000001";
/// The retention tenant (>= 1M rows with 10% expired), on shard-eu-02.
pub const SWEEP: &str = "be000000-0000-4000-8000-000000000002";
pub const BIG_USER: &str = "be000000-0000-4000-8000-0000000000a1";

pub fn small(i: usize) -> String {
    format!("be000000-0000-4000-8000-0000000001{i:02}")
}

/// Pipeline tenants (fresh and empty: their audit log holds only the phase's events).
pub fn pipeline(i: usize) -> String {
    format!("be000000-0000-4000-8000-0000000003{i:02}")
}

const TS: &str = "2024-01-01T00:00:00.000Z";
/// Evaluated by SQLite at insert time, in the product's format.
const TWO_YEARS_AGO: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-730 days')";

/// Rows `from..=to`.
fn rows_cte(from: u64, to: u64) -> String {
    format!(
        "WITH RECURSIVE seq(i) AS (SELECT {from} UNION ALL SELECT i + 1 FROM seq WHERE i < {to})"
    )
}

/// `n` live clients of `account` (statuses, surnames and search text varied by index).
pub fn clients_sql(account: &str, n: u64) -> String {
    format!(
        "{cte}\nINSERT INTO clients (account_id, id, body) SELECT '{account}', printf('{CLIENT_PREFIX}%012d', i), \
         json_object('forenames', 'Client' || i, 'surname', 'Surname' || (i % 997), \
         'status', CASE i % 3 WHEN 0 THEN 'prospect' WHEN 1 THEN 'active' ELSE 'former' END, \
         'email', 'client' || i || '@bench.example', 'phone', '0207 946 ' || (i % 10000), \
         'address', json_object('line1', i || ' High Street', 'town', 'London', 'postcode', 'SW1A 1AA'), \
         'search_text', 'surname' || (i % 997) || ' client' || i || ' sw1a 1aa', 'document_count', 1, 'index_rev', 0, \
         'version', 1, 'created_at', '{TS}', 'updated_at', '{TS}') FROM seq;\n",
        cte = rows_cte(1, n)
    )
}

/// One document per client 1..=n.
pub fn documents_sql(account: &str, n: u64) -> String {
    format!(
        "{cte}\nINSERT INTO documents (account_id, id, body) SELECT '{account}', printf('{DOC_PREFIX}%012d', i), \
         json_object('client_id', printf('{CLIENT_PREFIX}%012d', i), 'kind', 'fact_find', 'title', 'Fact find ' || i, \
         'content', NULL, 'version', 1, 'created_at', '{TS}', 'updated_at', '{TS}') FROM seq;\n",
        cte = rows_cte(1, n)
    )
}

/// Clients and documents `from..=to`, 10% of them due for deletion: client i with i % 20 == 0
/// ended its relationship in 2010 (past the 6-year HMRC period; its document goes with it),
/// i % 20 == 10 was soft-deleted (with its document) two years ago, past any grace period.
pub fn sweep_sql(account: &str, from: u64, to: u64) -> String {
    let cte = rows_cte(from, to);
    format!(
        "{cte}\nINSERT INTO clients (account_id, id, body) SELECT '{account}', printf('{CLIENT_PREFIX}%012d', i), \
         json_object('forenames', 'Client' || i, 'surname', 'Surname' || (i % 997), \
         'status', CASE WHEN i % 20 = 0 THEN 'former' ELSE 'active' END, \
         'relationship_ended_on', CASE WHEN i % 20 = 0 THEN '2010-01-01' END, \
         'deleted_at', CASE WHEN i % 20 = 10 THEN {TWO_YEARS_AGO} END, \
         'version', 1, 'created_at', '2009-01-01T00:00:00.000Z', 'updated_at', '2009-01-01T00:00:00.000Z') FROM seq;\n\
         {cte}\nINSERT INTO documents (account_id, id, body) SELECT '{account}', printf('{DOC_PREFIX}%012d', i), \
         json_object('client_id', printf('{CLIENT_PREFIX}%012d', i), 'kind', 'fact_find', 'title', 'Fact find ' || i, \
         'deleted_at', CASE WHEN i % 20 = 10 THEN {TWO_YEARS_AGO} END, \
         'client_ended_on', CASE WHEN i % 20 = 0 THEN '2010-01-01' END, \
         'version', 1, 'created_at', '2009-01-01T00:00:00.000Z', 'updated_at', '2009-01-01T00:00:00.000Z') FROM seq;\n"
    )
}

/// `wrangler d1 execute <binding> --local` on the bench's persist dir with extra arguments.
fn d1_execute(persist: &Path, binding: &str, args: &[&std::ffi::OsStr]) -> Result<String> {
    run_quiet(
        node_command("wrangler")
            .args([
                "d1",
                "execute",
                binding,
                "--local",
                "-c",
                "wrangler/api.jsonc",
            ])
            .args(args)
            .arg("--persist-to")
            .arg(persist)
            .env("CI", "true")
            // --json output is a "log" level line.
            .env("WRANGLER_LOG", "log"),
    )
}

/// Write `sql` to `dir/name` and run it on a local D1 (works with or without `wrangler dev`).
pub fn execute(
    persist: &Path,
    dir: &Path,
    name: &str,
    binding: &str,
    sql: &str,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let file = dir.join(name);
    std::fs::write(&file, sql).map_err(|e| format!("{}: {e}", file.display()))?;
    d1_execute(persist, binding, &["--file".as_ref(), file.as_os_str()])?;
    Ok(file)
}

/// One value from a local D1 (`SELECT ... AS v`), through wrangler.
pub fn query_value(persist: &Path, binding: &str, sql: &str) -> Result<serde_json::Value> {
    let out = d1_execute(
        persist,
        binding,
        &["--json".as_ref(), "--command".as_ref(), sql.as_ref()],
    )?;
    let start = out
        .find('[')
        .ok_or_else(|| format!("no JSON from wrangler: {out}"))?;
    let v: serde_json::Value =
        serde_json::from_str(&out[start..]).map_err(|e| format!("{e}: {out}"))?;
    Ok(v[0]["results"][0]["v"].clone())
}

/// Create an account with a fixed id on a shard (201, or 409 when it exists).
pub fn account(c: &Client, id: &str, slug: &str, shard: &str) -> Result<()> {
    let body = json!({"id": id, "name": format!("Bench {slug}"), "slug": slug, "kind": "test", "shard_id": shard});
    let r = c.json(
        "POST",
        "/admin/v1/accounts",
        Some(LOCAL_ADMIN_SECRET),
        Some(&body),
        &[("host", crate::OPERATOR_HOST)],
    )?;
    if r.status == 201 || r.status == 409 {
        Ok(())
    } else {
        Err(format!(
            "create account {slug}: HTTP {} {}",
            r.status,
            r.text()
        ))
    }
}

/// An admin token for `account`, valid for `ttl` seconds.
pub fn token(c: &Client, account: &str, sub: &str, ttl: u64) -> Result<String> {
    let r = c.json(
        "POST",
        &format!("/admin/v1/accounts/{account}/tokens"),
        Some(LOCAL_ADMIN_SECRET),
        Some(&json!({"sub": sub, "role": "admin", "ttl_seconds": ttl})),
        &[("host", crate::OPERATOR_HOST)],
    )?;
    r.json()["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("mint token: HTTP {} {}", r.status, r.text()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn seed_sql_uses_the_id_patterns() {
        let s = super::clients_sql("acct", 10);
        assert!(s.contains("i < 10)") && s.contains("c1000000-0000-4000-8000-%012d"));
        let d = super::sweep_sql("acct", 21, 40);
        assert!(d.contains("SELECT 21 UNION ALL") && d.contains("i < 40)"));
        assert_eq!(d.matches("INSERT INTO").count(), 2);
        assert!(d.contains("i % 20 = 0") && d.contains("i % 20 = 10"));
    }
}
