//! Every migration applies with foreign keys on, and every tenant statement searches an index led by `account_id` (`EXPLAIN QUERY PLAN`).

use super::*;

#[test]
fn every_migration_applies_in_order_with_foreign_keys_on() {
    for db in [SqliteDb::accounts().unwrap(), SqliteDb::shard().unwrap()] {
        let r = block_on(crate::ports::Database::query(
            &db,
            crate::ports::Stmt::new("PRAGMA foreign_keys", vec![]),
        ))
        .unwrap();
        assert_eq!(r.rows[0]["foreign_keys"], json!(1));
        let fk = block_on(crate::ports::Database::query(
            &db,
            crate::ports::Stmt::new("PRAGMA foreign_key_check", vec![]),
        ))
        .unwrap();
        assert!(fk.rows.is_empty());
    }
}

#[test]
fn every_get_and_list_statement_searches_an_index_led_by_account_id() {
    let db = SqliteDb::shard().unwrap();
    let acct = Uuid::from_u128(1);
    let id = Uuid::from_u128(2).to_string();
    for spec in entity::ALL {
        let mut stmts = vec![
            crate::api::get_stmt(spec, acct, Uuid::from_u128(2)),
            crate::api::list_stmt(spec, acct, None, None, 50, None),
            crate::api::list_stmt(spec, acct, None, Some((None, &id)), 50, None),
        ];
        for f in spec.filters {
            stmts.push(crate::api::list_stmt(
                spec,
                acct,
                Some((f, "x")),
                None,
                50,
                None,
            ));
            stmts.push(crate::api::list_stmt(
                spec,
                acct,
                Some((f, "x")),
                None,
                50,
                Some("2026-01-01T00:00:00.000Z"),
            ));
            let key = (f.op == FilterOp::Prefix).then_some("x");
            stmts.push(crate::api::list_stmt(
                spec,
                acct,
                Some((f, "x")),
                Some((key, &id)),
                50,
                Some("2026-01-01T00:00:00.000Z"),
            ));
        }
        for s in stmts {
            let plan = query_plan(&db, &s).join(" | ");
            assert!(
                plan.contains("SEARCH") && plan.contains("(account_id=?"),
                "{}: {plan}\n{}",
                spec.table,
                s.sql
            );
            assert!(!plan.contains("SCAN"), "{}: {plan}", s.sql);
            assert!(!plan.contains("TEMP B-TREE"), "sorted by the index: {plan}");
        }
    }
}

#[test]
fn audit_list_statements_search_an_index_led_by_account_id() {
    use crate::services::audit::{list_stmt, AuditQuery};
    let db = SqliteDb::shard().unwrap();
    let acct = Uuid::from_u128(1);
    let queries = [
        AuditQuery::All,
        AuditQuery::Target {
            entity_type: "clients".into(),
            id: "x".into(),
        },
        AuditQuery::Actor("u".into()),
        AuditQuery::Time {
            from: "2026-01-01T00:00:00.000Z".into(),
            to: "2027-01-01T00:00:00.000Z".into(),
        },
    ];
    for q in &queries {
        for after in [None, Some((5, Some("2026-02-01T00:00:00.000Z")))] {
            let s = list_stmt(acct, q, after, 50);
            let plan = query_plan(&db, &s).join(" | ");
            assert!(
                plan.contains("SEARCH") && plan.contains("(account_id=?"),
                "{q:?}: {plan}"
            );
            assert!(
                !plan.contains("SCAN") && !plan.contains("TEMP B-TREE"),
                "{q:?}: {plan}"
            );
        }
    }
    let plan = query_plan(
        &db,
        &crate::services::audit::head_stmt(acct, Uuid::from_u128(2)),
    )
    .join(" | ");
    assert!(
        !plan.contains("SCAN audit_log"),
        "chain head lookup: {plan}"
    );
}
