//! Audit verify over chains longer than one call's budget: resumable with the `next` cursor,
//! `complete` only at the head, a break deep in the chain named with the last good link.

use crate::api::http::Method::*;
use crate::domain::auth::Role;
use crate::domain::event::Actor;
use crate::services::audit::{AuditEntry, ChainHead, Target, VERIFY_MAX_ROWS};
use crate::testing::fakes::SqliteDb;
use crate::testing::harness::*;
use serde_json::{json, Value};
use uuid::Uuid;

/// A real chain of `n` links for `account`, written as the consumer writes it (runs of ten, the
/// last link of each signed), inserted 2,000 rows per statement in one transaction. Returns
/// every link's hash (index 0 = the genesis hash).
fn insert_chain(db: &SqliteDb, account: Uuid, n: i64) -> Vec<String> {
    let seal = test_seal();
    let mut head = ChainHead::genesis();
    let mut hashes = vec![head.hash.clone()];
    let mut sql = String::from("BEGIN;");
    let mut values = Vec::with_capacity(2_000);
    for seq in 1..=n {
        let mut e = AuditEntry {
            seq,
            event_id: Uuid::from_u128(seq as u128),
            account_id: account,
            actor: Actor::System { id: "bulk".into() },
            action: "client.updated".into(),
            target: Target {
                entity_type: "clients".into(),
                id: Uuid::from_u128(7).to_string(),
            },
            event_time: "2026-11-26T09:00:00.000Z".into(),
            recorded_time: "2026-11-26T09:00:01.000Z".into(),
            request_id: format!("req-{seq}"),
            outcome: "success".into(),
            entity_version: seq,
            changed_fields: vec!["surname".into()],
            changes: None,
            prev_hash: head.hash.clone(),
            hash: String::new(),
            receipt: None,
        };
        e.hash = e.compute_hash();
        if seq % 10 == 0 || seq == n {
            e.seal(&seal.signer);
        }
        head = ChainHead {
            seq,
            hash: e.hash.clone(),
        };
        hashes.push(e.hash.clone());
        let body = serde_json::to_string(&e).unwrap();
        values.push(format!(
            "('{account}', {seq}, '{}')",
            body.replace('\'', "''")
        ));
        if values.len() == 2_000 || seq == n {
            sql += &format!(
                "INSERT INTO audit_log (account_id, seq, body) VALUES {};",
                values.join(",")
            );
            values.clear();
        }
    }
    sql += "COMMIT;";
    db.exec(&sql).unwrap();
    hashes
}

fn verify(f: &Fake, tok: &str, query: &str) -> (u16, Value) {
    let r = f.as_user(tok, Get, &format!("/v1/audit/verify{query}"), None);
    (r.status, r.body_json().cloned().unwrap_or_default())
}

fn resume(v: &Value) -> String {
    format!(
        "?after_seq={}&after_hash={}",
        v["next"]["after_seq"],
        v["next"]["after_hash"].as_str().unwrap_or_default()
    )
}

#[test]
fn verify_resumes_over_more_than_100k_links_and_names_a_deep_break_with_the_last_good_link() {
    const N: i64 = 120_001;
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let db = f.shard_db("SHARD_EU_01");
    let hashes = insert_chain(&db, acct, N);
    let budget = VERIFY_MAX_ROWS as i64;
    assert!(N > 2 * budget, "the chain spans three calls");

    // Intact: two calls end on the budget with a cursor, the third reaches the head.
    let (status, first) = verify(&f, &admin, "");
    assert_eq!(status, 200);
    assert_eq!(
        (&first["ok"], &first["complete"], &first["checked"]),
        (&json!(true), &json!(false), &json!(budget))
    );
    assert_eq!(first["next"]["after_seq"], budget);
    assert_eq!(
        first["from_start"], true,
        "the first call starts at the chain's start"
    );
    assert_eq!(first["next"]["after_hash"], json!(hashes[budget as usize]));
    let (_, second) = verify(&f, &admin, &resume(&first));
    assert_eq!(second["started_after"], budget);
    assert_eq!(
        second["from_start"], false,
        "a cursor vouches only for what follows it"
    );
    assert_eq!(second["next"]["after_seq"], 2 * budget);
    let (_, third) = verify(&f, &admin, &resume(&second));
    assert_eq!(
        (&third["ok"], &third["complete"], &third["next"]),
        (&json!(true), &json!(true), &Value::Null)
    );
    assert_eq!(third["checked"], N - 2 * budget);
    assert_eq!(third["last_good"]["seq"], N);
    assert_eq!(third["last_good"]["hash"], json!(hashes[N as usize]));

    // Tamper with a link deep in the chain: resuming from the second cursor finds it.
    let deep = 2 * budget + 10_000;
    db.exec(&format!(
        "DROP TRIGGER audit_log_no_update; \
         UPDATE audit_log SET body = json_set(body, '$.actor.id', 'mallory') \
         WHERE account_id = '{acct}' AND seq = {deep};"
    ))
    .unwrap();
    let (_, found) = verify(&f, &admin, &resume(&second));
    assert_eq!(
        (&found["ok"], &found["complete"], &found["next"]),
        (&json!(false), &json!(false), &Value::Null)
    );
    assert_eq!(found["first_broken"]["seq"], deep);
    assert_eq!(
        found["first_broken"]["reason"],
        "hash does not match the entry's content"
    );
    // The last good link is the last one the writer's receipt covers before the break.
    assert_eq!(found["last_good"]["seq"], deep - 10);
    assert_eq!(
        found["last_good"]["hash"],
        json!(hashes[deep as usize - 10])
    );
    assert_eq!(found["checked"], 10_000 - 1);
}

#[test]
fn a_resume_cursor_catches_a_link_rewritten_since_and_refuses_unknown_links() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let db = f.shard_db("SHARD_EU_01");
    let hashes = insert_chain(&db, acct, 50);
    let (_, v) = verify(
        &f,
        &admin,
        &format!("?after_seq=20&after_hash={}", hashes[20]),
    );
    assert_eq!(
        (&v["ok"], &v["complete"], &v["checked"]),
        (&json!(true), &json!(true), &json!(30))
    );
    // Without the hash, the stored link is checked and its hash used.
    let (_, v) = verify(&f, &admin, "?after_seq=20");
    assert_eq!((&v["complete"], &v["checked"]), (&json!(true), &json!(30)));
    // A cursor whose hash is not the link's (the link changed since the call that gave it).
    let (_, v) = verify(
        &f,
        &admin,
        &format!("?after_seq=20&after_hash={}", hashes[19]),
    );
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_broken"]["seq"], 20);
    for bad in [
        "?after_seq=51",
        "?after_seq=-1",
        "?after_seq=x",
        "?after_hash=00",
        "?limit=5",
    ] {
        assert_eq!(verify(&f, &admin, bad).0, 400, "{bad}");
    }
}
