//! Links appended outside the service: the writer never chains onto one silently, nor stops
//! the account's auditing; it appends, signed, its own `audit.unsigned_links` link naming the
//! range, then the event. Verify names the range as broken and resumes after the writer's link.

use super::audit_insider::*;
use super::{client_body, created_id};
use crate::api::http::Method::*;
use crate::consumer::Decision;
use crate::domain::audit::{ChainHead, UNSIGNED_LINKS_ACTION};
use serde_json::{json, Value};
use time::Duration;
use uuid::Uuid;

fn forge_after(t: &T, seq: i64) {
    let mut e = t.entry(seq);
    e.seq = seq + 1;
    e.event_id = Uuid::from_u128(0xf1);
    e.prev_hash = e.hash.clone();
    e.receipt = None;
    e.hash = e.compute_hash();
    t.sql(&format!(
        "INSERT INTO audit_log (account_id, seq, body) VALUES ('{}', {}, '{}')",
        t.acct,
        seq + 1,
        serde_json::to_string(&e).unwrap()
    ));
}

#[test]
fn one_forged_append_is_recorded_by_the_writer_and_auditing_carries_on() {
    let t = setup();
    t.events(2);
    forge_after(&t, 2);
    t.f.clock.advance(Duration::minutes(65));
    t.job();
    let cp: Value = serde_json::from_slice(
        t.f.checkpoints
            .objects
            .borrow()
            .iter()
            .find(|(k, _)| k.starts_with("audit-checkpoints/"))
            .unwrap()
            .1,
    )
    .unwrap();
    assert_eq!(
        cp["head_seq"], 2,
        "the checkpoint states the last link the writer signed"
    );
    for _ in 0..3 {
        created_id(&t.f.as_user(&t.member(), Post, "/v1/clients", Some(client_body())));
        assert_eq!(t.f.drain_queue(), vec![Decision::Ack]);
    }
    let own = t.entry(4);
    assert_eq!(own.action, UNSIGNED_LINKS_ACTION);
    assert_eq!(own.target.id, "3..=3");
    assert_eq!(
        own.changes,
        Some(json!({"unsigned_from": 3, "unsigned_to": 3}))
    );
    assert!(own.receipt.is_some());
    assert_eq!(t.head(), 7);
    let (_, v) = t.verify("");
    assert!(!ok(&v));
    assert_eq!(v["first_broken"]["seq"], 3, "{v}");
    assert!(v["first_broken"]["reason"]
        .as_str()
        .unwrap()
        .contains("appended outside"));
    assert_eq!(v["last_good"]["seq"], 2, "{v}");
    assert_eq!(
        v["next"]["after_seq"], 4,
        "a cursor at the writer's link: {v}"
    );
    let q = format!(
        "?after_seq=4&after_hash={}",
        v["next"]["after_hash"].as_str().unwrap()
    );
    let (_, rest) = t.verify(&q);
    assert!(
        rest["first_broken"].is_null() && rest["complete"] == json!(true),
        "the links after the writer's record verify: {rest}"
    );
}

#[test]
fn the_writers_own_action_is_never_accepted_from_the_queue() {
    assert!(!crate::domain::event::is_known_type(
        UNSIGNED_LINKS_ACTION,
        "audit_log"
    ));
}

#[test]
fn more_unsigned_links_than_one_calls_budget_are_a_break_not_a_loop() {
    let t = setup();
    t.events(2);
    let last = t.entry(2);
    let mut head = ChainHead {
        seq: 2,
        hash: last.hash.clone(),
    };
    let n = crate::services::audit::VERIFY_MAX_ROWS as i64 + 1;
    let mut sql = String::from("BEGIN;");
    let mut values = Vec::new();
    for seq in 3..3 + n {
        let mut e = last.clone();
        e.seq = seq;
        e.event_id = Uuid::from_u128(0xf000_0000 + seq as u128);
        e.prev_hash = head.hash.clone();
        e.receipt = None;
        e.hash = e.compute_hash();
        head = ChainHead {
            seq,
            hash: e.hash.clone(),
        };
        let body = serde_json::to_string(&e).unwrap().replace('\'', "''");
        values.push(format!("('{}', {seq}, '{body}')", t.acct));
        if values.len() == 2000 || seq == 2 + n {
            sql += &format!(
                "INSERT INTO audit_log (account_id, seq, body) VALUES {};",
                values.join(",")
            );
            values.clear();
        }
    }
    sql += "COMMIT;";
    t.sql(&sql);
    let (_, v) = t.verify("");
    assert!(!ok(&v), "{v}");
    assert_eq!(v["first_broken"]["seq"], 3, "{v}");
    assert!(v["next"].is_null(), "{v}");
}

#[test]
fn after_a_key_rotation_with_the_old_key_published_the_writer_carries_on() {
    let mut t = setup();
    t.events(2);
    let old = t.f.seal.signer.public_key();
    use base64::Engine as _;
    let seed = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    // README: the old public key stays in AUDIT_PUBLIC_KEYS, which the consumer reads too.
    t.f.seal = crate::services::audit::Seal::new(&format!("k2:{seed}"), std::slice::from_ref(&old))
        .unwrap();
    t.f.cfg.audit_keys = vec![old, t.f.seal.signer.public_key()];
    created_id(&t.f.as_user(&t.member(), Post, "/v1/clients", Some(client_body())));
    assert_eq!(t.f.drain_queue(), vec![Decision::Ack]);
    assert_eq!(t.entry(3).receipt.map(|r| r.key_id), Some("k2".to_string()));
    let (_, v) = t.verify("");
    assert!(
        v["first_broken"].is_null() && v["complete"] == json!(true),
        "{v}"
    );
}
