use super::*;
use crate::testing::fakes::{query_plan, SqliteDb};

#[test]
fn a_guarded_purge_leaves_a_document_whose_client_was_put_on_hold_and_writes_no_event() {
    use crate::testing::fakes::block_on;
    let db = SqliteDb::shard().unwrap();
    let a = Uuid::nil();
    db.exec(&format!(
            "INSERT INTO clients (account_id, id, body) VALUES ('{a}', 'c', '{{\"legal_hold\": true}}'); \
             INSERT INTO clients (account_id, id, body) VALUES ('{a}', 'c2', '{{}}'); \
             INSERT INTO documents (account_id, id, body) VALUES ('{a}', 'd', '{{\"client_id\": \"c\"}}'); \
             INSERT INTO documents (account_id, id, body) VALUES ('{a}', 'd2', '{{\"client_id\": \"c2\"}}');"
        ))
        .unwrap();
    let due = |id: &str, client: &str| Due {
        table: "documents",
        singular: "document",
        id: id.into(),
        client: Some(client.into()),
        version: 0,
        body: json!({}),
        reason: "test".into(),
    };
    let ev = |n: u128| {
        let mut e: ChangeEvent =
            serde_json::from_str(include_str!("../../../tests/golden/change_event.json")).unwrap();
        e.id = Uuid::from_u128(n);
        e.account_id = a;
        e
    };
    // The candidate was judged deletable, then its client was put on hold.
    let held = block_on(db.batch(purge_stmts(a, &due("d", "c"), &ev(1)))).unwrap();
    assert_eq!(held[0].meta.changes, 0, "held: not deleted");
    assert_eq!(held[1].meta.changes, 0, "held: no purged event");
    let free = block_on(db.batch(purge_stmts(a, &due("d2", "c2"), &ev(2)))).unwrap();
    assert_eq!((free[0].meta.changes, free[1].meta.changes), (1, 1));
}

#[test]
fn every_candidate_query_is_an_index_range_of_one_account_resuming_at_the_keyset() {
    let db = SqliteDb::shard().unwrap();
    let acct = AccountCtx {
        id: Uuid::from_u128(1),
        policy: Policy::uk_preset(),
        hold: false,
    };
    let cut = Cutoffs {
        grace: "2026-10-01T00:00:00.000Z".into(),
        ended: "2021-11-26".into(),
    };
    let after = format!("2020-01-01{SEP}00000000-0000-4000-8000-000000000001{SEP}x");
    for step in STEP_DOCS_SOFT_DELETED..=STEP_GROUPS {
        let stmt = candidates(step, &acct, &cut, &after).unwrap();
        let plan = query_plan(&db, &stmt).join(" | ");
        assert!(!plan.contains("SCAN"), "step {step}: {plan}");
        // (Sorting one client's few documents by id is fine; sorting the page is not.)
        assert!(
            !plan.contains("TEMP B-TREE FOR ORDER BY"),
            "step {step} sorts: {plan}"
        );
        // The first table is searched by account and by the keyset's sort column.
        let first = plan.split(" | ").next().unwrap_or_default();
        assert!(
            first.contains("account_id=?")
                && [
                    "(deleted_at,id)>",
                    "(relationship_ended_on,id)>",
                    "(client_ended_on,id)>"
                ]
                .iter()
                .any(|k| first.contains(k)),
            "step {step}: {plan}"
        );
        // One table per step: D1 bills every row a join touches.
        assert_eq!(plan.split(" | ").count(), 1, "step {step} joins: {plan}");
    }
}

#[test]
fn erasure_and_purge_statements_search_indexes_led_by_account_id() {
    use crate::store::erasure_requests::{due_for_review_stmt, pending_stmt};
    let db = SqliteDb::shard().unwrap();
    let a = Uuid::from_u128(1);
    let c = "00000000-0000-4000-8000-000000000002";
    for stmt in [
        pending_stmt(a, ""),
        due_for_review_stmt(a, "2026-11-26T02:00:00.000Z"),
        sql::row("clients", a, c),
        sql::row("users", a, c),
        sql::documents_of_client(a, c),
        crate::store::idempotency::delete_for_entity(a, "clients", Uuid::from_u128(2)),
        sql::purge_idempotency(a, "2026-11-26T02:00:00.000Z"),
        sql::purge(a, "documents", c, Some(c), 3, "2026-01-01T00:00:00.000Z"),
        sql::purge(a, "clients", c, None, 3, "2026-01-01T00:00:00.000Z"),
        sql::held_clients(a),
    ] {
        let plan = query_plan(&db, &stmt).join(" | ");
        assert!(!plan.contains("SCAN"), "{}: {plan}", stmt.sql);
        assert!(plan.contains("account_id=?"), "{}: {plan}", stmt.sql);
    }
}
