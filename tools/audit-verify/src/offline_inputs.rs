//! What an auditor feeds the offline verifier, as the README says to fetch it: the export's
//! text as stored, the API's checkpoints page (a file, or files in a directory), the keys
//! document with pinned fingerprints, and the time of the check.

use super::tests::{at, checkpoints, run, run_lines, signer, trail, ACCOUNT};
use super::*;
use base64::Engine as _;
use shared::domain::checkpoint::Signer;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("audit-verify-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn export_text(rows: &[AuditEntry]) -> String {
    rows.iter().map(|r| r.stored_text() + "\n").collect()
}

fn anchor(rows: &[AuditEntry], seq: i64) -> HeadAnchor {
    let r = &rows[(seq - 1) as usize];
    HeadAnchor {
        account_id: ACCOUNT,
        seq,
        hash: r.hash.clone(),
        receipt: signer().receipt(ACCOUNT, seq, &r.hash),
    }
}

#[test]
fn the_readme_flow_verifies_a_checkpoints_page_file_or_directory_and_fails_once_altered() {
    let dir = temp_dir("readme");
    let rows = trail(3);
    std::fs::write(dir.join("trail.jsonl"), export_text(&rows)).unwrap();
    // What `GET /v1/audit/checkpoints?limit=500 > checkpoints.json` writes.
    let page = serde_json::json!({
        "items": checkpoints(&rows, &[3]), "next_after": null, "head": anchor(&rows, 3)
    });
    std::fs::write(dir.join("checkpoints.json"), page.to_string()).unwrap();
    // What `GET /.well-known/audit-keys > keys.json` writes.
    let key = signer().public_key();
    let fingerprint = key.fingerprint().unwrap();
    std::fs::write(
        dir.join("keys.json"),
        serde_json::json!({"keys": [{"key_id": key.key_id, "public_key": key.public_key,
            "fingerprint": fingerprint}]})
        .to_string(),
    )
    .unwrap();
    let arg = |a: &str| dir.join(a).display().to_string();
    let cli = |cps: &str| {
        run_cli(
            [
                "--trail".to_string(),
                arg("trail.jsonl"),
                "--checkpoints".into(),
                arg(cps),
                "--keys".into(),
                arg("keys.json"),
                "--pin".into(),
                fingerprint.clone(),
            ],
            at(2),
        )
    };
    let r = cli("checkpoints.json").unwrap();
    assert!(r.ok, "{r:?}");
    assert_eq!(r.keys[0].fingerprint, fingerprint);
    assert!(r.keys[0].pinned && !r.keys_unpinned);
    // The same page inside a directory.
    let cps = dir.join("cps");
    std::fs::create_dir_all(&cps).unwrap();
    std::fs::copy(dir.join("checkpoints.json"), cps.join("page.json")).unwrap();
    assert!(cli("cps").unwrap().ok);
    // The export altered: one line's text re-spelt without changing its content's hash.
    let altered = export_text(&rows).replacen("\"seq\":2,", "\"seq\": 2,", 1);
    std::fs::write(dir.join("trail.jsonl"), altered).unwrap();
    let r = cli("checkpoints.json").unwrap();
    assert!(!r.ok);
    assert_eq!(r.first_broken.map(|b| b.seq), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn lines_cut_from_the_end_of_an_export_fall_short_of_the_anchored_head() {
    let rows = trail(6);
    let cps = checkpoints(&rows, &[2, 4]);
    let signed = |n: usize| Signed {
        checkpoints: cps.clone(),
        heads: vec![anchor(&rows, n as i64)],
    };
    let lines: Vec<Line> = rows.iter().map(Line::of).collect();
    let opts = Options {
        pins: Vec::new(),
        as_of: None,
    };
    let keys = [signer().public_key()];
    assert!(
        verify(ACCOUNT, &lines, &signed(6), &keys, &opts)
            .unwrap()
            .ok
    );
    let r = verify(ACCOUNT, &lines[..4], &signed(6), &keys, &opts).unwrap();
    assert!(!r.ok);
    assert!(r
        .findings
        .iter()
        .any(|f| f.seq == 6 && f.problem == Problem::Truncated { trail_head: 4 }));
}

#[test]
fn a_keys_file_with_the_forgers_key_fails_once_the_genuine_fingerprint_is_pinned() {
    let rows = trail(3);
    let cps = checkpoints(&rows, &[3]);
    let mut forged = rows.clone();
    forged[1].request_id = "forged".into();
    let seed = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let mallory = Signer::from_secret(&format!("k1:{seed}")).unwrap();
    let mut head = ChainHead::genesis();
    for r in forged.iter_mut() {
        r.prev_hash = head.hash.clone();
        r.hash = r.compute_hash();
        r.seal(&mallory);
        head = ChainHead {
            seq: r.seq,
            hash: r.hash.clone(),
        };
    }
    let fcps: Vec<SignedCheckpoint> = cps
        .iter()
        .map(|c| {
            let mut c = c.checkpoint.clone();
            c.head_hash = head.hash.clone();
            mallory.sign(c)
        })
        .collect();
    let lines: Vec<Line> = forged.iter().map(Line::of).collect();
    let signed = Signed {
        checkpoints: fcps,
        heads: Vec::new(),
    };
    let genuine = signer().public_key().fingerprint().unwrap();
    let pinned = Options {
        pins: vec![genuine],
        as_of: None,
    };
    let r = verify(ACCOUNT, &lines, &signed, &[mallory.public_key()], &pinned).unwrap();
    assert!(!r.ok, "the forger's key is not the pinned one: {r:?}");
    assert!(!r.keys[0].pinned);
    // Unpinned, the report says the keys were taken on trust.
    let trusting = Options {
        pins: Vec::new(),
        as_of: None,
    };
    let r = verify(ACCOUNT, &lines, &signed, &[mallory.public_key()], &trusting).unwrap();
    assert!(r.keys_unpinned);
}

#[test]
fn the_periods_due_by_the_time_of_the_check_must_have_checkpoints() {
    let rows = trail(2);
    let cps = checkpoints(&rows, &[1, 2]); // periods at(0) and at(1)
    let lines: Vec<Line> = rows.iter().map(Line::of).collect();
    let signed = Signed {
        checkpoints: cps,
        heads: Vec::new(),
    };
    let keys = [signer().public_key()];
    let as_of = |h| Options {
        pins: Vec::new(),
        as_of: Some(at(h)),
    };
    assert!(
        verify(ACCOUNT, &lines, &signed, &keys, &as_of(3))
            .unwrap()
            .ok
    );
    let r = verify(ACCOUNT, &lines, &signed, &keys, &as_of(6)).unwrap();
    assert!(!r.ok);
    assert!(r
        .findings
        .iter()
        .all(|f| f.problem == Problem::MissingPeriod));
    assert_eq!(r.findings.len(), 2, "{r:?}"); // at(2) and at(3) are overdue at at(6)
}

#[test]
fn duplicated_missing_or_reordered_lines_and_a_forged_checkpoint() {
    let rows = trail(6);
    let cps = checkpoints(&rows, &[2, 6]);
    let mut dup = rows.clone();
    dup.insert(3, rows[3].clone());
    assert!(!run(&dup, &cps).ok);
    let mut rev = rows.clone();
    rev.reverse();
    assert!(run_lines(&parse_trail(&export_text(&rev)).unwrap(), &cps).ok);
    let mut gap = rows.clone();
    gap.remove(2);
    assert!(!run(&gap, &cps).ok);
    let mut bad = cps.clone();
    bad[1].checkpoint.head_seq = 5;
    assert!(!run(&rows, &bad).ok);
}
