//! D1 cost per operation type, from the API's local `x-d1-cost` header
//! (`calls=N;statements=N;rows_read=N;rows_written=N`), next to an ideal computed from the
//! schema: rows returned for reads, and for writes the rows written including one entry per
//! index the row is in (indexes counted in migrations/shard), plus the outbox row.

use crate::http::Client;
use crate::{root, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// `calls=1;statements=2;...` -> {"calls": 1, "statements": 2, ...}
pub fn parse_cost(h: &str) -> BTreeMap<String, u64> {
    h.split(';')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.trim().to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Indexes {
    /// Indexes a live row (deleted_at, relationship_ended_on, published_at all NULL) is in.
    pub live: u64,
    /// Partial indexes on `... IS NULL` (a live row leaves them when soft-deleted).
    pub null_partial: u64,
    /// Partial indexes on `deleted_at IS NOT NULL` (a soft-deleted row enters them).
    pub deleted_partial: u64,
}

/// Count each table's indexes in the migrations' SQL.
pub fn indexes(sql: &str, table: &str) -> Indexes {
    let mut n = Indexes::default();
    for stmt in sql.split(';') {
        let s = stmt
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join(" ");
        let up = s.to_ascii_uppercase();
        if !(up.contains("CREATE INDEX") || up.contains("CREATE UNIQUE INDEX")) {
            continue;
        }
        let Some(on) = up.find(" ON ") else { continue };
        let t = s[on + 4..]
            .split(|c: char| c == '(' || c.is_whitespace())
            .find(|w| !w.is_empty());
        if t != Some(table) {
            continue;
        }
        match up.find(" WHERE ").map(|w| &up[w..]) {
            None => n.live += 1,
            Some(w) if w.contains("IS NOT NULL") => {
                if w.contains("DELETED_AT") {
                    n.deleted_partial += 1;
                }
            }
            Some(_) => {
                n.live += 1;
                n.null_partial += 1;
            }
        }
    }
    n
}

fn schema_sql() -> String {
    let dir = root().join("migrations/shard");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(";\n")
}

/// (op, method, path, body, ideal calls, ideal rows_read, ideal rows_written)
type Op = (
    &'static str,
    &'static str,
    String,
    Option<Value>,
    u64,
    u64,
    u64,
);

/// `spare`: index of the first seeded client/document the load runs never touch (cold cache).
pub fn measure(base: &str, token: &str, spare: u64) -> Result<Vec<Value>> {
    crate::step("D1 cost per operation (x-d1-cost), single requests on the big tenant");
    let sql = schema_sql();
    let (ci, di, oi) = (
        indexes(&sql, "clients"),
        indexes(&sql, "documents"),
        indexes(&sql, "outbox"),
    );
    // The outbox row with its index entries, then marking it published (the one follow-up):
    // the row, out of the unpublished index, into the published one.
    let outbox = (1 + oi.live) + 3;
    let c = Client::new(base);
    let cid = |i: u64| format!("{}{i:012}", super::data::CLIENT_PREFIX);
    let did = |i: u64| format!("{}{i:012}", super::data::DOC_PREFIX);
    let mut out = Vec::new();
    let ops: Vec<Op> = vec![
        (
            "get client (cache miss)",
            "GET",
            format!("/v1/clients/{}", cid(spare)),
            None,
            1,
            1,
            0,
        ),
        (
            "get client (cache warm)",
            "GET",
            format!("/v1/clients/{}", cid(spare)),
            None,
            1,
            1,
            0,
        ),
        (
            "get document",
            "GET",
            format!("/v1/documents/{}", did(spare + 1)),
            None,
            1,
            1,
            0,
        ),
        (
            "list clients (page of 50)",
            "GET",
            "/v1/clients?limit=50".into(),
            None,
            1,
            50,
            0,
        ),
        (
            "list clients ?status= (page of 50)",
            "GET",
            "/v1/clients?status=active&limit=50".into(),
            None,
            1,
            50,
            0,
        ),
        (
            "list documents (page of 50)",
            "GET",
            "/v1/documents?limit=50".into(),
            None,
            1,
            50,
            0,
        ),
        (
            "create client",
            "POST",
            "/v1/clients".into(),
            Some(json!({"forenames": "Cost", "surname": "Probe", "status": "prospect"})),
            2,
            1,
            (1 + ci.live) + outbox,
        ),
        (
            "create document",
            "POST",
            "/v1/documents".into(),
            Some(json!({"client_id": cid(spare + 2), "kind": "fact_find", "title": "Cost probe"})),
            2,
            2,
            (1 + di.live) + outbox,
        ),
    ];
    let mut created: Option<String> = None;
    for (name, method, path, body, calls, read, written) in ops {
        let r = c.json(method, &path, Some(token), body.as_ref(), &[])?;
        if name == "create client" {
            created = r.json()["id"].as_str().map(str::to_owned);
        }
        out.push(row(name, &r, calls, read, written));
    }
    let id = created.ok_or("create client returned no id")?;
    let r = c.json(
        "PATCH",
        &format!("/v1/clients/{id}"),
        Some(token),
        Some(&json!({"phone": "0161 496 0000"})),
        &[("if-match", "\"v1\"")],
    )?;
    // A patch of an unindexed field: the row itself (its index keys are unchanged) + outbox.
    // Reads: the current row, the UPDATE's and the publish's row lookups.
    out.push(row("update client (If-Match)", &r, 2, 3, 1 + outbox));
    let r = c.json(
        "DELETE",
        &format!("/v1/clients/{id}"),
        Some(token),
        None,
        &[],
    )?;
    // Soft delete: the row, out of every `deleted_at IS NULL` index, into the deleted index.
    out.push(row(
        "delete client (soft)",
        &r,
        2,
        3,
        1 + ci.null_partial + ci.deleted_partial + outbox,
    ));
    let r = c.json("GET", "/v1/audit?limit=50", Some(token), None, &[])?;
    out.push(row("audit page (50)", &r, 1, 50, 0));
    Ok(out)
}

fn row(name: &str, r: &crate::http::Reply, calls: u64, read: u64, written: u64) -> Value {
    let header = r.header("x-d1-cost").map(str::to_owned);
    let cost = header.as_deref().map(parse_cost).unwrap_or_default();
    let get = |k: &str| cost.get(k).copied();
    let over = |got: Option<u64>, ideal: u64| got.is_some_and(|g| g > 2 * ideal.max(1));
    let flags: Vec<&str> = [
        ("calls", over(get("calls"), calls)),
        ("rows_read", over(get("rows_read"), read)),
        ("rows_written", over(get("rows_written"), written)),
    ]
    .iter()
    .filter(|(_, f)| *f)
    .map(|(k, _)| *k)
    .collect();
    eprintln!(
        "    {name}: HTTP {} {} (ideal calls={calls};rows_read={read};rows_written={written}){}",
        r.status,
        header.as_deref().unwrap_or("NO x-d1-cost HEADER"),
        if flags.is_empty() {
            String::new()
        } else {
            format!("  ABOVE 2x IDEAL: {}", flags.join(", "))
        }
    );
    json!({
        "op": name, "status": r.status, "header": header,
        "calls": get("calls"), "statements": get("statements"),
        "rows_read": get("rows_read"), "rows_written": get("rows_written"),
        "ideal": {"calls": calls, "rows_read": read, "rows_written": written},
        "above_2x_ideal": flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_cost_header() {
        let c = parse_cost("calls=2;statements=3;rows_read=1;rows_written=12");
        assert_eq!(c.get("calls"), Some(&2));
        assert_eq!(c.get("rows_written"), Some(&12));
        assert!(parse_cost("garbage").is_empty());
    }

    #[test]
    fn counts_indexes_by_partiality() {
        let sql = "CREATE TABLE t (a);\nCREATE INDEX t_live ON t (a) WHERE deleted_at IS NULL;\n\
                   -- comment ON u\nCREATE UNIQUE INDEX t_u ON t (a, b);\nCREATE INDEX t_del ON t (deleted_at) WHERE deleted_at IS NOT NULL;\n\
                   CREATE INDEX u_x ON u (a);";
        assert_eq!(
            indexes(sql, "t"),
            Indexes {
                live: 2,
                null_partial: 1,
                deleted_partial: 1
            }
        );
    }

    #[test]
    fn schema_has_the_clients_indexes() {
        let n = indexes(&schema_sql(), "clients");
        assert!(n.live >= 6, "{n:?}");
        assert!(n.deleted_partial >= 1, "{n:?}");
    }
}
