use super::*;
use crate::domain::checkpoint::{Problem, PublicKey};
use crate::domain::event::{Action, Actor, Change, ChangeEvent, Origin};
use crate::services::audit;
use crate::testing::fakes::{block_on, MemImmutable, SqliteDb};
use base64::Engine as _;
use time::macros::datetime;

const ACCOUNT: Uuid = Uuid::from_u128(0xacc7);

fn signer(id: &str) -> Signer {
    let seed = base64::engine::general_purpose::STANDARD.encode([5u8; 32]);
    Signer::from_secret(&format!("{id}:{seed}")).unwrap()
}

fn keys(s: &[PublicKey]) -> KeyRing {
    KeyRing::new(s).unwrap()
}

/// Every key these tests sign with: the checkpoint signers' and the audit writer's.
fn ring() -> KeyRing {
    let seed = base64::engine::general_purpose::STANDARD.encode([6u8; 32]);
    keys(&[
        signer("k1").public_key(),
        Signer::from_secret(&format!("k2:{seed}"))
            .unwrap()
            .public_key(),
        crate::testing::harness::test_seal().signer.public_key(),
    ])
}

/// Record `n` more events of the account in its audit trail.
fn record(db: &SqliteDb, n: u128, at: OffsetDateTime) {
    let before = db.query_json("SELECT count(*) AS n FROM audit_log")[0]["n"]
        .as_u64()
        .unwrap_or(0) as u128;
    for i in 0..n {
        let ev = ChangeEvent::new(
            Uuid::from_u128(0xe000 + before + i),
            at,
            &Origin {
                deployment: "api",
                shard_id: "shard-eu-01",
                account_id: ACCOUNT,
                actor: Actor::System { id: "test".into() },
                request_id: "r",
            },
            Change {
                entity_type: "clients",
                entity_singular: "client",
                entity_id: Uuid::from_u128(i + 1),
                action: Action::Created,
                entity_version: 1,
                changed_fields: vec![],
            },
        );
        block_on(audit::append(
            db,
            &ev,
            None,
            None,
            at,
            &crate::testing::harness::test_seal(),
        ))
        .unwrap();
    }
}

fn all(bucket: &MemImmutable) -> Vec<SignedCheckpoint> {
    block_on(list(bucket, ACCOUNT, None, 1000))
        .unwrap()
        .into_iter()
        .map(|(_, c)| c)
        .collect()
}

#[test]
fn one_checkpoint_per_period_also_when_nothing_happened_and_the_trail_verifies() {
    let db = SqliteDb::shard().unwrap();
    let bucket = MemImmutable::default();
    let s = signer("k1");
    record(&db, 2, datetime!(2026-12-02 09:10 UTC));
    let w = block_on(write_due(
        &db,
        &bucket,
        &s,
        &ring(),
        ACCOUNT,
        datetime!(2026-12-02 10:05 UTC),
    ));
    assert_eq!(w.unwrap().signed, 1);
    // 11:00 to 12:00 saw no event: its checkpoint is still written.
    for h in [11, 12, 13] {
        let now = datetime!(2026-12-02 00:05 UTC) + time::Duration::hours(h);
        assert_eq!(
            block_on(write_due(&db, &bucket, &s, &ring(), ACCOUNT, now)).unwrap(),
            Written {
                signed: 1,
                ..Written::default()
            }
        );
        if h == 12 {
            record(&db, 1, now);
        }
    }
    let cps = all(&bucket);
    assert_eq!(
        cps.iter()
            .map(|c| c.checkpoint.head_seq)
            .collect::<Vec<_>>(),
        vec![2, 2, 2, 3]
    );
    let findings = block_on(verify_against(&db, ACCOUNT, &cps, &keys(&[s.public_key()]))).unwrap();
    assert_eq!(findings, vec![]);
}

#[test]
fn a_repeated_run_writes_nothing_and_a_late_run_fills_every_missed_period() {
    let db = SqliteDb::shard().unwrap();
    let bucket = MemImmutable::default();
    let s = signer("k1");
    record(&db, 1, datetime!(2026-12-02 09:10 UTC));
    let at = datetime!(2026-12-02 10:05 UTC);
    assert_eq!(
        block_on(write_due(&db, &bucket, &s, &ring(), ACCOUNT, at))
            .unwrap()
            .signed,
        1
    );
    assert_eq!(
        block_on(write_due(&db, &bucket, &s, &ring(), ACCOUNT, at)).unwrap(),
        Written::default(),
        "the same run again does nothing"
    );
    // The resume hint lost (or a run that crashed before saving it): the job resumes from the
    // bucket, whose objects are never replaced.
    db.exec("DELETE FROM audit_checkpoint_heads").unwrap();
    assert_eq!(
        block_on(write_due(&db, &bucket, &s, &ring(), ACCOUNT, at)).unwrap(),
        Written::default()
    );
    // Off for four hours: the next run signs the four periods it missed.
    let late = datetime!(2026-12-02 14:40 UTC);
    assert_eq!(
        block_on(write_due(&db, &bucket, &s, &ring(), ACCOUNT, late))
            .unwrap()
            .signed,
        4
    );
    let cps = all(&bucket);
    assert_eq!(cps.len(), 5);
    assert!(cps[1..].iter().all(|c| c.checkpoint.time == rfc3339(late)));
    assert_eq!(
        block_on(verify_against(&db, ACCOUNT, &cps, &keys(&[s.public_key()]))).unwrap(),
        vec![]
    );
}

#[test]
fn a_truncated_or_rewritten_trail_parts_from_its_checkpoints() {
    let db = SqliteDb::shard().unwrap();
    let bucket = MemImmutable::default();
    let s = signer("k1");
    record(&db, 6, datetime!(2026-12-02 09:10 UTC));
    block_on(write_due(
        &db,
        &bucket,
        &s,
        &ring(),
        ACCOUNT,
        datetime!(2026-12-02 10:05 UTC),
    ))
    .unwrap();
    let cps = all(&bucket);
    let ring = keys(&[s.public_key()]);
    // The insider drops the guard and cuts the tail.
    db.exec("DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq > 4")
        .unwrap();
    let f = block_on(verify_against(&db, ACCOUNT, &cps, &ring)).unwrap();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].seq, 6);
    assert_eq!(f[0].period, "2026-12-02T09:00:00.000Z");
    assert_eq!(f[0].problem, Problem::Truncated { trail_head: 4 });
}

#[test]
fn checkpoints_signed_before_a_key_rotation_still_verify() {
    let db = SqliteDb::shard().unwrap();
    let bucket = MemImmutable::default();
    let old = signer("k1");
    let seed = base64::engine::general_purpose::STANDARD.encode([6u8; 32]);
    let new = Signer::from_secret(&format!("k2:{seed}")).unwrap();
    record(&db, 1, datetime!(2026-12-02 09:10 UTC));
    block_on(write_due(
        &db,
        &bucket,
        &old,
        &ring(),
        ACCOUNT,
        datetime!(2026-12-02 10:05 UTC),
    ))
    .unwrap();
    record(&db, 1, datetime!(2026-12-02 10:10 UTC));
    block_on(write_due(
        &db,
        &bucket,
        &new,
        &ring(),
        ACCOUNT,
        datetime!(2026-12-02 11:05 UTC),
    ))
    .unwrap();
    let cps = all(&bucket);
    assert_eq!(
        cps.iter()
            .map(|c| c.checkpoint.key_id.as_str())
            .collect::<Vec<_>>(),
        vec!["k1", "k2"]
    );
    let both = keys(&[old.public_key(), new.public_key()]);
    assert_eq!(
        block_on(verify_against(&db, ACCOUNT, &cps, &both)).unwrap(),
        vec![]
    );
}

#[test]
fn the_audit_logs_own_disposal_is_a_signed_checkpoint_and_the_rest_still_verifies() {
    let db = SqliteDb::shard().unwrap();
    let bucket = MemImmutable::default();
    let seal = crate::testing::harness::test_seal();
    let t0 = datetime!(2026-12-02 09:10 UTC);
    record(&db, 5, t0);
    block_on(write_due(
        &db,
        &bucket,
        &seal.signer,
        &ring(),
        ACCOUNT,
        t0 + time::Duration::hours(1),
    ))
    .unwrap();
    // Ten years and a day on, one more event: the five old links are past their retention.
    let later = datetime!(2036-12-03 10:30 UTC);
    record(&db, 1, later);
    let n = block_on(dispose_expired(
        &db,
        &bucket,
        &seal.signer,
        &seal.keys,
        ACCOUNT,
        10,
        later,
    ))
    .unwrap();
    assert_eq!(n, 5, "everything but the head");
    assert_eq!(
        db.query_json("SELECT count(*) AS n FROM audit_log")[0]["n"],
        serde_json::json!(1)
    );
    // Repeating it disposes of nothing more (the head always stays).
    assert_eq!(
        block_on(dispose_expired(
            &db,
            &bucket,
            &seal.signer,
            &seal.keys,
            ACCOUNT,
            10,
            later
        ))
        .unwrap(),
        0
    );
    // The chain verifies from the disposal; the checkpoints, the disposal among them, too.
    let v = block_on(audit::verify(&db, ACCOUNT, None, 1000, &seal.keys))
        .unwrap()
        .unwrap();
    assert!(v.ok && v.complete, "{v:?}");
    assert_eq!(v.started_after, 5);
    block_on(write_due(
        &db,
        &bucket,
        &seal.signer,
        &ring(),
        ACCOUNT,
        later + time::Duration::hours(1),
    ))
    .unwrap();
    let cps = all(&bucket);
    assert!(cps.iter().any(|c| c.checkpoint.kind == Kind::Disposal));
    assert_eq!(
        block_on(verify_against(&db, ACCOUNT, &cps, &seal.keys)).unwrap(),
        vec![]
    );
    let w = block_on(verify_recent(
        &db,
        &bucket,
        ACCOUNT,
        None,
        later + time::Duration::hours(1),
        &seal.keys,
    ))
    .unwrap();
    // Ten years without the hourly job: the periods it did not sign, and nothing else.
    assert!(
        !w.findings.is_empty()
            && w.findings
                .iter()
                .all(|f| f.problem == Problem::MissingPeriod),
        "{w:?}"
    );
}

#[test]
fn rows_cut_behind_a_disposal_the_writer_did_not_sign_are_named() {
    let db = SqliteDb::shard().unwrap();
    let seal = crate::testing::harness::test_seal();
    record(&db, 4, datetime!(2026-12-02 09:10 UTC));
    // The insider writes a disposal row by hand (the schema only checks its shape) and cuts.
    db.exec(&format!(
        "INSERT INTO audit_disposals (account_id, through_seq, body) VALUES ('{ACCOUNT}', 2, \
         json_object('account_id', '{ACCOUNT}', 'period', '2026-12-02T09:00:00.000Z', \
         'kind', 'disposal', 'head_seq', 4, 'head_hash', 'x', 'disposed_through', 2, \
         'disposed_hash', 'x', 'previous', 'x', 'key_id', 'test-k1', 'time', 'x', \
         'signature', 'c2ln')); \
         DELETE FROM audit_log WHERE seq <= 2;"
    ))
    .unwrap();
    let v = block_on(audit::verify(&db, ACCOUNT, None, 1000, &seal.keys))
        .unwrap()
        .unwrap();
    assert!(!v.ok);
    assert_eq!(v.first_broken.as_ref().map(|b| b.seq), Some(3));
    assert!(
        v.first_broken
            .as_ref()
            .is_some_and(|b| b.reason.contains("not the audit writer's")),
        "{v:?}"
    );
}
