use super::*;
use time::macros::datetime;

const ACCOUNT: Uuid = Uuid::from_u128(0xa1a1_a1a1_0000_4000_8000_0000_0000_0001);

fn signer(id: &str, seed: u8) -> Signer {
    Signer::from_secret(&format!("{id}:{}", B64.encode([seed; 32]))).unwrap()
}

/// A trail of `n` rows whose hashes are `h1..hn`, optionally starting later.
struct Rows {
    first: i64,
    hashes: Vec<String>,
}

impl Rows {
    fn new(n: i64) -> Self {
        Self {
            first: 1,
            hashes: (1..=n).map(|s| format!("h{s}")).collect(),
        }
    }
}

impl Trail for Rows {
    fn first(&self) -> Option<(i64, String)> {
        (!self.hashes.is_empty()).then(|| {
            let prev = if self.first == 1 {
                GENESIS.to_string()
            } else {
                format!("h{}", self.first - 1)
            };
            (self.first, prev)
        })
    }
    fn head(&self) -> i64 {
        self.first + self.hashes.len() as i64 - 1
    }
    fn hash_at(&self, seq: i64) -> Option<String> {
        let i = seq - self.first;
        (i >= 0)
            .then(|| self.hashes.get(i as usize).cloned())
            .flatten()
    }
}

fn period(h: i64) -> String {
    period_label(datetime!(2026-12-02 00:00 UTC) + Duration::hours(h))
}

/// Checkpoints for hours 0.. with the given heads, chained, signed by `s`.
fn chain(s: &Signer, heads: &[i64]) -> Vec<SignedCheckpoint> {
    let mut out: Vec<SignedCheckpoint> = Vec::new();
    for (h, &head) in heads.iter().enumerate() {
        let previous = out.last().map(digest).unwrap_or_else(|| GENESIS.into());
        out.push(s.sign(Checkpoint {
            account_id: ACCOUNT,
            period: period(h as i64),
            kind: Kind::Periodic,
            head_seq: head,
            head_hash: if head == 0 {
                GENESIS.into()
            } else {
                format!("h{head}")
            },
            disposed_through: None,
            disposed_hash: None,
            previous,
            key_id: s.key_id.clone(),
            time: period(h as i64 + 1),
        }));
    }
    out
}

fn problems(f: &[Finding]) -> Vec<&Problem> {
    f.iter().map(|f| &f.problem).collect()
}

#[test]
fn an_intact_trail_with_an_empty_period_verifies() {
    let s = signer("k1", 7);
    let keys = KeyRing::new(&[s.public_key()]).unwrap();
    let cps = chain(&s, &[0, 2, 2, 5]);
    assert_eq!(verify(ACCOUNT, &cps, &keys, &Rows::new(6), None), vec![]);
}

#[test]
fn a_truncated_tail_is_named_with_its_period_and_seq() {
    let s = signer("k1", 7);
    let keys = KeyRing::new(&[s.public_key()]).unwrap();
    let cps = chain(&s, &[2, 6]);
    let f = verify(ACCOUNT, &cps, &keys, &Rows::new(4), None);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].period, period(1));
    assert_eq!(f[0].seq, 6);
    assert_eq!(f[0].problem, Problem::Truncated { trail_head: 4 });
}

#[test]
fn a_rewritten_trail_is_named() {
    let s = signer("k1", 7);
    let keys = KeyRing::new(&[s.public_key()]).unwrap();
    let cps = chain(&s, &[3]);
    let mut rows = Rows::new(4);
    rows.hashes[2] = "forged".into();
    assert_eq!(
        problems(&verify(ACCOUNT, &cps, &keys, &rows, None)),
        vec![&Problem::Rewritten]
    );
}

#[test]
fn an_altered_or_unsigned_checkpoint_is_refused() {
    let s = signer("k1", 7);
    let keys = KeyRing::new(&[s.public_key()]).unwrap();
    let mut cps = chain(&s, &[3]);
    cps[0].checkpoint.head_seq = 2;
    cps[0].checkpoint.head_hash = "h2".into();
    assert_eq!(
        problems(&verify(ACCOUNT, &cps, &keys, &Rows::new(2), None)),
        vec![&Problem::BadSignature]
    );
    let forger = signer("k1", 9);
    let forged = chain(&forger, &[1]);
    assert_eq!(
        problems(&verify(ACCOUNT, &forged, &keys, &Rows::new(1), None)),
        vec![&Problem::BadSignature]
    );
}

#[test]
fn a_removed_checkpoint_breaks_the_chain_and_leaves_a_missing_period() {
    let s = signer("k1", 7);
    let keys = KeyRing::new(&[s.public_key()]).unwrap();
    let mut cps = chain(&s, &[1, 2, 3]);
    cps.remove(1);
    assert_eq!(
        problems(&verify(ACCOUNT, &cps, &keys, &Rows::new(3), None)),
        vec![&Problem::ChainBroken, &Problem::MissingPeriod]
    );
}

#[test]
fn old_checkpoints_verify_with_the_old_key_after_rotation() {
    let old = signer("k1", 7);
    let new = signer("k2", 8);
    let keys = KeyRing::new(&[old.public_key(), new.public_key()]).unwrap();
    let mut cps = chain(&old, &[1]);
    let previous = digest(&cps[0]);
    cps.push(new.sign(Checkpoint {
        account_id: ACCOUNT,
        period: period(1),
        kind: Kind::Periodic,
        head_seq: 2,
        head_hash: "h2".into(),
        disposed_through: None,
        disposed_hash: None,
        previous,
        key_id: "k2".into(),
        time: period(2),
    }));
    assert_eq!(verify(ACCOUNT, &cps, &keys, &Rows::new(2), None), vec![]);
    let only_new = KeyRing::new(&[new.public_key()]).unwrap();
    assert_eq!(
        problems(&verify(ACCOUNT, &cps, &only_new, &Rows::new(2), None)),
        vec![&Problem::UnknownKey, &Problem::ChainBroken]
    );
}

#[test]
fn rows_cut_from_the_start_need_a_signed_disposal() {
    let s = signer("k1", 7);
    let keys = KeyRing::new(&[s.public_key()]).unwrap();
    let cps = chain(&s, &[5]);
    let cut = Rows {
        first: 3,
        hashes: (3..=5).map(|s| format!("h{s}")).collect(),
    };
    assert_eq!(
        problems(&verify(ACCOUNT, &cps, &keys, &cut, None)),
        vec![&Problem::HeadCut { first_seq: 3 }]
    );
    // The same cut, recorded by a signed disposal checkpoint, verifies.
    let mut with_disposal = cps.clone();
    with_disposal.push(s.sign(Checkpoint {
        account_id: ACCOUNT,
        period: period(1),
        kind: Kind::Disposal,
        head_seq: 5,
        head_hash: "h5".into(),
        disposed_through: Some(2),
        disposed_hash: Some("h2".into()),
        previous: digest(&cps[0]),
        key_id: "k1".into(),
        time: period(1),
    }));
    assert_eq!(verify(ACCOUNT, &with_disposal, &keys, &cut, None), vec![]);
}

#[test]
fn a_malformed_secret_is_refused() {
    assert!(Signer::from_secret("no-colon").is_err());
    assert!(Signer::from_secret("k1:not-base64!").is_err());
    assert!(Signer::from_secret(&format!("k1:{}", B64.encode([1u8; 16]))).is_err());
}
