use super::*;
use crate::domain::event::{Action, Origin};
use base64::Engine as _;
use time::macros::datetime;

const ACCOUNT: Uuid = Uuid::from_u128(0xa11);

fn seal(seed: u8) -> Seal {
    let s = base64::engine::general_purpose::STANDARD.encode([seed; 32]);
    Seal::new(&format!("k{seed}:{s}"), &[]).unwrap()
}

/// `n` links; the ones at `sealed` (1-based seqs) carry the writer's receipt.
fn chain(n: i64, sealed: &[i64], writer: &Seal) -> Vec<AuditEntry> {
    let mut head = ChainHead::genesis();
    (1..=n)
        .map(|i| {
            let ev = ChangeEvent::new(
                Uuid::from_u128(i as u128),
                datetime!(2026-12-02 09:00 UTC),
                &Origin {
                    deployment: "api",
                    shard_id: "shard-eu-01",
                    account_id: ACCOUNT,
                    actor: Actor::System { id: "t".into() },
                    request_id: "r",
                },
                crate::domain::event::Change {
                    entity_type: "clients",
                    entity_singular: "client",
                    entity_id: Uuid::from_u128(7),
                    action: Action::Updated,
                    entity_version: i,
                    changed_fields: vec!["status".into()],
                },
            );
            let mut e = AuditEntry::from_event(&ev, &head, datetime!(2026-12-02 09:00 UTC));
            if sealed.contains(&i) {
                e.seal(&writer.signer);
            }
            head = ChainHead {
                seq: e.seq,
                hash: e.hash.clone(),
            };
            e
        })
        .collect()
}

fn walk(links: &[AuditEntry], keys: &KeyRing) -> Result<i64, Break> {
    let mut w = Walker::new(ACCOUNT, ChainHead::genesis(), keys);
    for e in links {
        w.step(e.seq, e)?;
    }
    w.finish()?;
    Ok(w.sealed().seq)
}

#[test]
fn a_chain_sealed_at_the_end_of_each_run_verifies() {
    let w = seal(1);
    assert_eq!(walk(&chain(6, &[3, 6], &w), &w.keys), Ok(6));
}

#[test]
fn the_receipt_is_not_part_of_the_hash() {
    let w = seal(1);
    let mut e = chain(1, &[1], &w).remove(0);
    let h = e.compute_hash();
    e.receipt = None;
    assert_eq!(e.compute_hash(), h);
}

#[test]
fn links_appended_after_the_last_receipt_are_named_as_forged() {
    let w = seal(1);
    // An insider appends two links with correctly recomputed hashes but cannot sign them.
    let links = chain(5, &[3], &w);
    let err = walk(&links, &w.keys).unwrap_err();
    assert_eq!(err.seq, 4);
    assert!(err.reason.contains("4..=5"), "{}", err.reason);
}

#[test]
fn a_chain_rewritten_and_resigned_with_another_key_fails() {
    let writer = seal(1);
    let forger = seal(2);
    let err = walk(&chain(3, &[3], &forger), &writer.keys).unwrap_err();
    assert_eq!(err.seq, 3);
    assert!(err.reason.contains("receipt does not verify"));
}

#[test]
fn a_receipt_moved_to_another_link_does_not_verify() {
    let w = seal(1);
    let mut links = chain(4, &[2, 4], &w);
    // Copy link 2's genuine receipt onto link 3 (and drop 4's): the signature names seq 2.
    links[2].receipt = links[1].receipt.clone();
    links[3].receipt = None;
    assert_eq!(walk(&links, &w.keys).unwrap_err().seq, 3);
}

#[test]
fn old_receipts_verify_after_a_key_rotation() {
    let old = seal(1);
    let seed = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let new = Seal::new(&format!("k9:{seed}"), &[old.signer.public_key()]).unwrap();
    let mut links = chain(2, &[1], &old);
    links[1].seal(&new.signer);
    assert_eq!(walk(&links, &new.keys), Ok(2));
}

fn walk_text(lines: &[String], keys: &KeyRing) -> Result<i64, Break> {
    let mut w = Walker::new(ACCOUNT, ChainHead::genesis(), keys);
    for (i, l) in lines.iter().enumerate() {
        w.step_text(i as i64 + 1, l)?;
    }
    w.finish()?;
    Ok(w.sealed().seq)
}

#[test]
fn a_row_whose_text_is_not_the_link_as_written_breaks_although_its_hash_holds() {
    let w = seal(1);
    let links = chain(3, &[3], &w);
    let mut lines: Vec<String> = links.iter().map(AuditEntry::stored_text).collect();
    assert_eq!(walk_text(&lines, &w.keys), Ok(3));
    // An extra field: serde ignores it, so the hash still matches; the text does not.
    lines[1] = lines[1].replacen('{', "{\"approved_by\":\"x\",", 1);
    let err = walk_text(&lines, &w.keys).unwrap_err();
    assert_eq!(err.seq, 2);
    assert!(err.reason.contains("differs from the link as written"));
}

#[test]
fn the_writers_record_of_unsigned_links_breaks_at_the_range_and_resumes_after_it() {
    let w = seal(1);
    let mut links = chain(4, &[2], &w); // 3 and 4 unsigned: appended outside
    let head = ChainHead {
        seq: 4,
        hash: links[3].hash.clone(),
    };
    let mut own =
        AuditEntry::unsigned_links(ACCOUNT, &head, 3, None, datetime!(2026-12-02 10:00 UTC));
    own.seal(&w.signer);
    assert_eq!(own.unsigned_range(), Some((3, 4)));
    links.push(own.clone());
    let mut walker = Walker::new(ACCOUNT, ChainHead::genesis(), &w.keys);
    let mut err = None;
    for e in &links {
        if let Err(b) = walker.step(e.seq, e) {
            err = Some(b);
            break;
        }
    }
    let err = err.unwrap();
    assert_eq!(err.seq, 3);
    assert!(err.reason.contains("3..=4"), "{}", err.reason);
    assert_eq!(
        walker.sealed().seq,
        2,
        "the last good link is before the range"
    );
    assert_eq!(err.resume.map(|r| r.seq), Some(5));
    // The same record claiming another range is itself a break.
    let mut wrong =
        AuditEntry::unsigned_links(ACCOUNT, &head, 4, None, datetime!(2026-12-02 10:00 UTC));
    wrong.seal(&w.signer);
    links[4] = wrong;
    let err = walk(&links, &w.keys).unwrap_err();
    assert_eq!(err.seq, 5);
    assert!(err.reason.contains("names links 4..=4"), "{}", err.reason);
    assert!(err.resume.is_none());
}
