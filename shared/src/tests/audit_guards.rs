//! The audit trail's schema guards against an insider who writes SQL straight at the shard.

use super::{client_body, created_id};
use crate::api::http::Method::*;
use crate::domain::auth::Role;
use crate::ports::StoreError;
use crate::testing::harness::*;

/// A shard with three recorded events of one account; returns the fake and the account id.
fn trail_of_three() -> (Fake, uuid::Uuid) {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    for _ in 0..3 {
        created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    }
    f.drain_queue();
    assert_eq!(f.count("SHARD_EU_01", "SELECT count(*) FROM audit_log"), 3);
    (f, acct)
}

fn refused(r: Result<(), StoreError>, what: &str) {
    assert!(r.is_err(), "{what} must be refused");
}

#[test]
fn replacing_an_audit_row_is_refused_however_it_is_spelled() {
    let (f, _) = trail_of_three();
    let db = f.shard_db("SHARD_EU_01");
    let copy = |verb: &str| {
        format!(
            "{verb} INTO audit_log (account_id, seq, body) \
             SELECT account_id, seq, json_set(body, '$.actor.role', 'admin') FROM audit_log \
             WHERE seq = 2"
        )
    };
    refused(db.exec(&copy("INSERT OR REPLACE")), "INSERT OR REPLACE");
    refused(db.exec(&copy("REPLACE")), "REPLACE");
    refused(
        db.exec(&format!(
            "{} ON CONFLICT DO UPDATE SET body = excluded.body",
            copy("INSERT")
        )),
        "an upsert",
    );
    refused(
        db.exec(&copy("INSERT OR IGNORE")).and(Ok(())),
        "a duplicate insert",
    );
    assert_eq!(
        f.count(
            "SHARD_EU_01",
            "SELECT count(*) FROM audit_log WHERE body ->> '$.actor.role' = 'admin'"
        ),
        0,
        "nothing was rewritten"
    );
}

#[test]
fn a_collision_is_still_classified_as_a_constraint_failure() {
    let (f, _) = trail_of_three();
    let db = f.shard_db("SHARD_EU_01");
    let e = db
        .exec("INSERT INTO audit_log (account_id, seq, body) SELECT account_id, seq, body FROM audit_log WHERE seq = 3")
        .unwrap_err();
    assert!(matches!(e, StoreError::Constraint(_)), "{e:?}");
}

#[test]
fn rows_are_deleted_only_below_a_disposal_and_disposals_are_append_only() {
    let (f, acct) = trail_of_three();
    let db = f.shard_db("SHARD_EU_01");
    refused(db.exec("DELETE FROM audit_log WHERE seq = 1"), "a delete");
    refused(
        db.exec(&format!(
            "INSERT INTO audit_checkpoints (account_id, body) VALUES ('{acct}', json_object('seq', 3, 'hash', 'x'))"
        )),
        "the retired floor",
    );
    refused(
        db.exec(&format!(
            "INSERT INTO audit_disposals (account_id, through_seq, body) VALUES \
             ('{acct}', 1, json_object('account_id', '{acct}', 'disposed_through', 1))"
        )),
        "an unsigned disposal",
    );
    let disposal = format!(
        "INSERT INTO audit_disposals (account_id, through_seq, body) VALUES \
         ('{acct}', 1, json_object('account_id', '{acct}', 'disposed_through', 1, \
         'key_id', 'k1', 'signature', 'c2ln'))"
    );
    db.exec(&disposal).unwrap();
    refused(
        db.exec(&disposal.replace("INSERT", "INSERT OR REPLACE")),
        "replacing a disposal",
    );
    refused(
        db.exec("UPDATE audit_disposals SET through_seq = 3"),
        "moving a disposal",
    );
    refused(
        db.exec("DELETE FROM audit_disposals"),
        "removing a disposal",
    );
    refused(
        db.exec("DELETE FROM audit_log WHERE seq = 2"),
        "a delete above it",
    );
    db.exec("DELETE FROM audit_log WHERE seq = 1").unwrap();
    assert_eq!(f.count("SHARD_EU_01", "SELECT count(*) FROM audit_log"), 2);
}

#[test]
fn a_dropped_audit_trigger_is_drift_the_migration_check_reports() {
    let (f, _) = trail_of_three();
    f.shard_db("SHARD_EU_01")
        .exec("DROP TRIGGER audit_log_no_collision")
        .unwrap();
    let run = crate::testing::fakes::block_on(crate::jobs::run(
        &f,
        crate::jobs::Job::MigrationCheck,
        None,
    ));
    assert_eq!(
        run.counts.to_json().get("drifted"),
        Some(&serde_json::json!(1))
    );
    assert!(
        run.detail
            .iter()
            .any(|d| d.starts_with("SHARD_EU_01: schema fingerprint")),
        "{:?}",
        run.detail
    );
}
