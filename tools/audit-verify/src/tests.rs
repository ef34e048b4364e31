use super::*;
use base64::Engine as _;
use shared::domain::audit::ChainHead;
use shared::domain::checkpoint::{digest, period_label, Checkpoint, Kind, Problem, Signer};
use shared::domain::event::{Action, Actor, Change, ChangeEvent, Origin};

pub(crate) const ACCOUNT: Uuid = Uuid::from_u128(0xa1);

pub(crate) fn signer() -> Signer {
    let seed = base64::engine::general_purpose::STANDARD.encode([3u8; 32]);
    Signer::from_secret(&format!("k1:{seed}")).unwrap()
}

pub(crate) fn at(hours: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(1_764_633_600 + hours * 3600).unwrap()
}

/// `n` genuine rows, chained from genesis.
pub(crate) fn trail(n: i64) -> Vec<AuditEntry> {
    let mut head = ChainHead::genesis();
    let mut rows = Vec::new();
    for i in 1..=n {
        let ev = ChangeEvent::new(
            Uuid::from_u128(1000 + i as u128),
            at(0),
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
                entity_id: Uuid::from_u128(i as u128),
                action: Action::Created,
                entity_version: 1,
                changed_fields: vec![],
            },
        );
        let mut e = AuditEntry::from_event(&ev, &head, at(0));
        // As the consumer writes them: each run's last link signed (here every link).
        e.seal(&signer());
        head = ChainHead {
            seq: e.seq,
            hash: e.hash.clone(),
        };
        rows.push(e);
    }
    rows
}

/// Signed hourly checkpoints of the given heads of `rows`.
pub(crate) fn checkpoints(rows: &[AuditEntry], heads: &[i64]) -> Vec<SignedCheckpoint> {
    let s = signer();
    let mut out: Vec<SignedCheckpoint> = Vec::new();
    for (h, &head) in heads.iter().enumerate() {
        let previous = out
            .last()
            .map(digest)
            .unwrap_or_else(|| checkpoint::GENESIS.into());
        let head_hash = rows
            .iter()
            .find(|r| r.seq == head)
            .map(|r| r.hash.clone())
            .unwrap_or_else(|| checkpoint::GENESIS.into());
        out.push(s.sign(Checkpoint {
            account_id: ACCOUNT,
            period: period_label(at(h as i64)),
            kind: Kind::Periodic,
            head_seq: head,
            head_hash,
            disposed_through: None,
            disposed_hash: None,
            previous,
            key_id: "k1".into(),
            time: period_label(at(h as i64 + 1)),
        }));
    }
    out
}

pub(crate) fn run(rows: &[AuditEntry], cps: &[SignedCheckpoint]) -> Report {
    run_lines(&rows.iter().map(Line::of).collect::<Vec<_>>(), cps)
}

pub(crate) fn run_lines(rows: &[Line], cps: &[SignedCheckpoint]) -> Report {
    let signed = Signed {
        checkpoints: cps.to_vec(),
        heads: Vec::new(),
    };
    let opts = Options {
        pins: Vec::new(),
        as_of: None,
    };
    verify(ACCOUNT, rows, &signed, &[signer().public_key()], &opts).unwrap()
}

#[test]
fn an_untouched_export_verifies_offline() {
    let rows = trail(6);
    let cps = checkpoints(&rows, &[2, 4, 6]);
    let r = run(&rows, &cps);
    assert!(r.ok, "{r:?}");
    assert_eq!(
        r.last_good,
        Some(Link {
            seq: 6,
            hash: rows[5].hash.clone()
        })
    );
}

#[test]
fn an_edited_row_is_named_with_the_last_good_link() {
    let mut rows = trail(6);
    let cps = checkpoints(&rows, &[2, 6]);
    rows[3].request_id = "edited".into();
    let r = run(&rows, &cps);
    assert!(!r.ok);
    assert_eq!(r.last_good.as_ref().map(|l| l.seq), Some(3));
    assert_eq!(r.first_broken.as_ref().map(|b| b.seq), Some(4));
}

#[test]
fn a_rewrite_with_recomputed_hashes_fails_on_the_receipts_and_the_signed_heads() {
    let rows = trail(6);
    let cps = checkpoints(&rows, &[2, 6]);
    // Rewritten from genesis with every hash recomputed: the chain is consistent, the signed
    // heads are not.
    let mut forged = rows.clone();
    forged[1].request_id = "forged".into();
    let mut head = ChainHead::genesis();
    for r in forged.iter_mut() {
        r.prev_hash = head.hash.clone();
        r.hash = r.compute_hash();
        head = ChainHead {
            seq: r.seq,
            hash: r.hash.clone(),
        };
    }
    let r = run(&forged, &cps);
    // The hashes are consistent, but the writer's receipts no longer are...
    assert_eq!(r.first_broken.as_ref().map(|b| b.seq), Some(2), "{r:?}");
    assert!(!r.ok);
    // ...nor the signed heads outside D1.
    assert!(r
        .findings
        .iter()
        .any(|f| f.seq == 2 && f.problem == Problem::Rewritten));
}

#[test]
fn a_truncated_export_fails_offline() {
    let rows = trail(6);
    let cps = checkpoints(&rows, &[2, 6]);
    let r = run(&rows[..4], &cps);
    assert!(!r.ok);
    assert!(r
        .findings
        .iter()
        .any(|f| f.seq == 6 && f.problem == Problem::Truncated { trail_head: 4 }));
}

#[test]
fn no_checkpoints_is_not_a_verified_trail() {
    let rows = trail(2);
    assert!(!run(&rows, &[]).ok);
}

#[test]
fn the_command_line_reads_the_files_and_fails_once_the_trail_is_altered() {
    let dir = std::env::temp_dir().join(format!("audit-verify-{}", std::process::id()));
    let cps_dir = dir.join("checkpoints");
    std::fs::create_dir_all(&cps_dir).unwrap();
    let rows = trail(3);
    let write_trail = |rows: &[AuditEntry]| {
        let text: String = rows
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        std::fs::write(dir.join("trail.jsonl"), text).unwrap();
    };
    write_trail(&rows);
    for (i, c) in checkpoints(&rows, &[1, 3]).iter().enumerate() {
        std::fs::write(
            cps_dir.join(format!("{i}.json")),
            serde_json::to_string(c).unwrap(),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("keys.json"),
        serde_json::json!({"keys": [signer().public_key()]}).to_string(),
    )
    .unwrap();
    let args = |_: ()| {
        [
            "--trail",
            "trail.jsonl",
            "--checkpoints",
            "checkpoints",
            "--keys",
            "keys.json",
        ]
        .iter()
        .map(|a| {
            if a.starts_with("--") {
                a.to_string()
            } else {
                dir.join(a).display().to_string()
            }
        })
        .collect::<Vec<_>>()
    };
    let ok = run_cli(args(()), at(3)).unwrap();
    assert!(ok.ok, "{ok:?}");
    let mut altered = rows.clone();
    altered[2].outcome = "failure".into();
    write_trail(&altered);
    let r = run_cli(args(()), at(3)).unwrap();
    assert_eq!(r.first_broken.map(|b| b.seq), Some(3));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_forged_append_fails_offline_as_unsigned() {
    let mut rows = trail(3);
    let cps = checkpoints(&rows, &[3]);
    let mut forged = rows[2].clone();
    forged.seq = 4;
    forged.event_id = Uuid::from_u128(0xf0);
    forged.prev_hash = rows[2].hash.clone();
    forged.receipt = None;
    forged.hash = forged.compute_hash();
    rows.push(forged);
    let r = run(&rows, &cps);
    assert!(!r.ok);
    assert_eq!(r.first_broken.as_ref().map(|b| b.seq), Some(4), "{r:?}");
    assert_eq!(r.last_good.as_ref().map(|l| l.seq), Some(3));
}
