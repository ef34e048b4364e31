//! Capacity model inputs that only the product's own write path can give: the bytes an audit
//! row and an outbox row take per write (indexes included), measured with SQLite's `dbstat`
//! over the real migrations after writes through the API and the consumer. `cargo xtask
//! capacity measure` runs this test and reads the `capacity-input` line it prints.

use super::*;

/// Bytes per table (the table and its indexes), from `dbstat`.
fn table_bytes(db: &SqliteDb, table: &str) -> i64 {
    let rows = db.query_json(&format!(
        "SELECT sum(d.pgsize) AS b FROM dbstat d JOIN sqlite_master m ON m.name = d.name \
         WHERE m.tbl_name = '{table}'"
    ));
    rows.first()
        .and_then(|r| r.get("b"))
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0)
}

fn write_clients(f: &Fake, tok: &str, n: usize, from: usize) {
    for i in from..from + n {
        let body = json!({
            "forenames": format!("Client{i}"), "surname": format!("Surname{}", i % 997),
            "status": "active", "email": format!("client{i}@bench.example"),
            "phone": format!("0207 946 {}", i % 10000),
            "address": {"line1": format!("{i} High Street"), "town": "London", "postcode": "SW1A 1AA"}
        });
        let id = created_id(&f.as_user(tok, Post, "/v1/clients", Some(body)));
        let r = f.as_user(
            tok,
            Patch,
            &format!("/v1/clients/{id}"),
            Some(json!({"status": "former"})),
        );
        assert_eq!(r.status, 200, "{:?}", r.body_json());
    }
    settle(f);
}

#[test]
fn audit_and_outbox_bytes_per_write_are_measured_through_the_api_and_consumer() {
    let f = Fake::new();
    let (acct, _) = f.account("capacity", None);
    let tok = f.token(acct, Role::Admin);
    let db = f.shard_db("SHARD_EU_01");
    // Two sizes, so fixed costs (the first page of each index) drop out of the per-row figure.
    write_clients(&f, &tok, 100, 0);
    let (audit_1, outbox_1) = (table_bytes(&db, "audit_log"), table_bytes(&db, "outbox"));
    let writes_1 = f.count("SHARD_EU_01", "SELECT count(*) FROM audit_log");
    write_clients(&f, &tok, 300, 100);
    let (audit_2, outbox_2) = (table_bytes(&db, "audit_log"), table_bytes(&db, "outbox"));
    let writes_2 = f.count("SHARD_EU_01", "SELECT count(*) FROM audit_log");
    assert_eq!(
        f.count("SHARD_EU_01", "SELECT count(*) FROM outbox"),
        writes_2,
        "every write left its outbox row (the relay purges them later)"
    );
    let n = (writes_2 - writes_1) as f64;
    let audit = (audit_2 - audit_1) as f64 / n;
    let outbox = (outbox_2 - outbox_1) as f64 / n;
    println!(
        "capacity-input audit_bytes_per_write={audit:.1} outbox_bytes_per_write={outbox:.1} writes={n}"
    );
    // An audit link holds ids, a hash, times and changed field names (no personal data): some
    // hundreds of bytes with its four indexes, never kilobytes.
    assert!(
        (200.0..4000.0).contains(&audit),
        "audit bytes per write {audit}"
    );
    assert!(
        (100.0..4000.0).contains(&outbox),
        "outbox bytes per write {outbox}"
    );
}
