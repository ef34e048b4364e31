//! Signed audit checkpoints: the record of a tenant's audit trail kept outside its D1, so that
//! someone who can write to the D1 cannot rewrite the trail unnoticed (CloudTrail's signed
//! digests, C2SP signed tree heads). Pure: the caller passes the key, the time and the trail.
//!
//! A checkpoint states, for one account and one hourly period, the trail's head (`head_seq`,
//! `head_hash`) and the digest of the previous checkpoint, so checkpoints form a chain of
//! their own; one is written for every period, also when nothing happened, so a missing period
//! is visible. A disposal checkpoint records that rows up to `disposed_through` were removed by
//! the audit log's own retention, and the hash of the last removed row, so the trail that
//! remains still verifies from it. Each is signed with Ed25519 over a domain-separated
//! canonical encoding; the key id names the key, so keys rotate without invalidating old
//! checkpoints.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The `previous` of an account's first checkpoint.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const DOMAIN: &[u8] = b"clientdocs.audit-checkpoint.v1\n";
const RECEIPT_DOMAIN: &[u8] = b"clientdocs.audit-link.v1\n";
/// Checkpoint periods are clock hours, UTC.
pub const PERIOD: Duration = Duration::HOUR;
/// How long after its end a period's checkpoint may still be missing without a finding: the
/// job runs at :05, and a run or two may fail.
pub const GRACE: Duration = Duration::hours(2);
/// Periods due since the last checkpoint that are listed one by one (the most recent).
pub const MAX_TRAILING_MISSING: usize = 24 * 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Periodic,
    Disposal,
}

/// What is signed. Field order is the canonical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub account_id: Uuid,
    /// Start of the period, RFC 3339 UTC (`2026-12-02T14:00:00.000Z`).
    pub period: String,
    pub kind: Kind,
    pub head_seq: i64,
    pub head_hash: String,
    /// Disposal only: rows with `seq <= disposed_through` may be gone; `disposed_hash` is the
    /// hash of that last removed row, where the remaining trail continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposed_through: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposed_hash: Option<String>,
    /// `digest` of the previous checkpoint of this account, or [`GENESIS`].
    pub previous: String,
    pub key_id: String,
    /// When it was signed, RFC 3339 UTC.
    pub time: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    #[serde(flatten)]
    pub checkpoint: Checkpoint,
    /// Ed25519 signature over [`signing_bytes`], base64.
    pub signature: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("signing key must be `<key id>:<base64 of a 32-byte Ed25519 seed>`")]
    Malformed,
}

/// The private key, from a Worker secret: `<key id>:<base64 seed>`.
pub struct Signer {
    pub key_id: String,
    key: SigningKey,
}

impl Signer {
    pub fn from_secret(secret: &str) -> Result<Self, KeyError> {
        let (key_id, seed) = secret.trim().split_once(':').ok_or(KeyError::Malformed)?;
        let bytes: [u8; 32] = B64
            .decode(seed)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(KeyError::Malformed)?;
        if key_id.is_empty()
            || !key_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(KeyError::Malformed);
        }
        Ok(Self {
            key_id: key_id.into(),
            key: SigningKey::from_bytes(&bytes),
        })
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            key_id: self.key_id.clone(),
            public_key: B64.encode(self.key.verifying_key().as_bytes()),
        }
    }

    /// The writer's receipt of one audit link.
    pub fn receipt(&self, account_id: Uuid, seq: i64, hash: &str) -> Receipt {
        Receipt {
            key_id: self.key_id.clone(),
            signature: B64.encode(
                self.key
                    .sign(&receipt_bytes(account_id, seq, hash))
                    .to_bytes(),
            ),
        }
    }

    pub fn sign(&self, checkpoint: Checkpoint) -> SignedCheckpoint {
        debug_assert_eq!(checkpoint.key_id, self.key_id);
        let signature = B64.encode(self.key.sign(&signing_bytes(&checkpoint)).to_bytes());
        SignedCheckpoint {
            checkpoint,
            signature,
        }
    }
}

/// The audit writer's Ed25519 signature of one link `(account, seq, hash)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub key_id: String,
    /// base64
    pub signature: String,
}

fn receipt_bytes(account_id: Uuid, seq: i64, hash: &str) -> Vec<u8> {
    let mut out = RECEIPT_DOMAIN.to_vec();
    out.extend(format!("{account_id}\n{seq}\n{hash}").into_bytes());
    out
}

/// A published verification key (the well-known key document lists these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    pub key_id: String,
    /// The 32-byte Ed25519 public key, base64.
    pub public_key: String,
}

impl PublicKey {
    /// SHA-256 of the 32 raw key bytes, hex: what an auditor receives out of band and pins,
    /// rather than trusting keys fetched from the service being audited. None: not a key.
    pub fn fingerprint(&self) -> Option<String> {
        let bytes = B64.decode(&self.public_key).ok()?;
        (bytes.len() == 32).then(|| hex::encode(Sha256::digest(&bytes)))
    }
}

/// The writer's signed head, anchored outside D1 as it is appended (one write-once object per
/// run the writer appends): a trail whose head is below an anchor was cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadAnchor {
    pub account_id: Uuid,
    pub seq: i64,
    pub hash: String,
    pub receipt: Receipt,
}

impl HeadAnchor {
    /// Whether the receipt is the writer's signature of this account's link `(seq, hash)`.
    pub fn verifies(&self, account_id: Uuid, keys: &KeyRing) -> bool {
        self.account_id == account_id
            && keys.verify_receipt(account_id, self.seq, &self.hash, &self.receipt)
    }
}

/// Verification keys by id, old ones included.
#[derive(Default)]
pub struct KeyRing(BTreeMap<String, VerifyingKey>);

impl KeyRing {
    pub fn new(keys: &[PublicKey]) -> Result<Self, KeyError> {
        let mut ring = BTreeMap::new();
        for k in keys {
            let bytes: [u8; 32] = B64
                .decode(&k.public_key)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or(KeyError::Malformed)?;
            let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::Malformed)?;
            ring.insert(k.key_id.clone(), key);
        }
        Ok(Self(ring))
    }

    /// Whether `receipt` is a valid signature of the link by a known key.
    pub fn verify_receipt(
        &self,
        account_id: Uuid,
        seq: i64,
        hash: &str,
        receipt: &Receipt,
    ) -> bool {
        let Some(key) = self.0.get(&receipt.key_id) else {
            return false;
        };
        let Some(sig) = B64
            .decode(&receipt.signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
        else {
            return false;
        };
        key.verify(
            &receipt_bytes(account_id, seq, hash),
            &Signature::from_bytes(&sig),
        )
        .is_ok()
    }

    /// Whether a checkpoint's signature verifies with a known key.
    pub fn verifies(&self, c: &SignedCheckpoint) -> bool {
        self.verify(c).is_ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn verify(&self, c: &SignedCheckpoint) -> Result<(), Problem> {
        let key = self
            .0
            .get(&c.checkpoint.key_id)
            .ok_or(Problem::UnknownKey)?;
        let sig: [u8; 64] = B64
            .decode(&c.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(Problem::BadSignature)?;
        key.verify(&signing_bytes(&c.checkpoint), &Signature::from_bytes(&sig))
            .map_err(|_| Problem::BadSignature)
    }
}

pub fn signing_bytes(c: &Checkpoint) -> Vec<u8> {
    let mut out = DOMAIN.to_vec();
    // A struct serialises its fields in declaration order: the encoding is canonical.
    out.extend(serde_json::to_vec(c).unwrap_or_default());
    out
}

/// The digest the next checkpoint names as `previous`: SHA-256 over the signed bytes and the
/// signature, hex.
pub fn digest(c: &SignedCheckpoint) -> String {
    let mut h = Sha256::new();
    h.update(signing_bytes(&c.checkpoint));
    h.update(c.signature.as_bytes());
    hex::encode(h.finalize())
}

/// The period `t` falls in: its start.
pub fn period_start(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_minute(0)
        .and_then(|t| t.replace_second(0))
        .and_then(|t| t.replace_nanosecond(0))
        .unwrap_or(t)
}

pub fn period_label(start: OffsetDateTime) -> String {
    crate::domain::clock::rfc3339(start)
}

/// Where the signed record and the trail part, or where the signed record is itself broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "problem")]
pub enum Problem {
    /// The checkpoint names a key id no published key has.
    UnknownKey,
    /// The signature does not verify: the checkpoint was forged or altered.
    BadSignature,
    /// A checkpoint of another account among this account's.
    WrongAccount,
    /// `previous` is not the digest of the checkpoint before it: one was removed or inserted.
    ChainBroken,
    /// No checkpoint for this period although the ones around it exist.
    MissingPeriod,
    /// The head went backwards between two checkpoints.
    HeadWentBack,
    /// The trail ends before the signed head: rows were cut from the tail.
    Truncated { trail_head: i64 },
    /// The trail's row at the signed head has another hash: the trail was rewritten.
    Rewritten,
    /// The trail starts after seq 1 without a signed disposal covering the rows before it.
    HeadCut { first_seq: i64 },
    /// An object where checkpoints (or head anchors) live that is not one signed by the audit
    /// writer for this account: planted, or damaged.
    Corrupt { key: String, detail: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub period: String,
    pub seq: i64,
    #[serde(flatten)]
    pub problem: Problem,
}

/// What the verifier knows of the trail: its first and last row and the hash at any seq.
pub trait Trail {
    /// `(seq, prev_hash)` of the first row present, if any.
    fn first(&self) -> Option<(i64, String)>;
    /// The last seq present (0 when empty).
    fn head(&self) -> i64;
    /// When the first row present was recorded (RFC 3339), if known: with no checkpoint at
    /// all, the periods since then are missing.
    fn first_recorded(&self) -> Option<String> {
        None
    }
    /// The hash stored in row `seq`, if that row is present.
    fn hash_at(&self, seq: i64) -> Option<String>;
}

/// Check an account's checkpoints (in any order) on their own and against the trail. The trail's
/// internal chain (each row's hash over its predecessor) is checked by the audit verifier; this
/// ties it to the signed record.
///
/// `as_of`: the time of the check; every complete period since the last checkpoint, more than
/// [`GRACE`] ago, is a `MissingPeriod` (checkpoints deleted, or the job stopped). None: the
/// checkpoints are older ones and a newer window follows.
pub fn verify(
    account_id: Uuid,
    checkpoints: &[SignedCheckpoint],
    keys: &KeyRing,
    trail: &impl Trail,
    as_of: Option<OffsetDateTime>,
) -> Vec<Finding> {
    walk(account_id, None, None, checkpoints, keys, trail, as_of)
}

/// [`verify`] for a window of an account's checkpoints (the service checks a bounded number
/// per call): `anchor` is the checkpoint just before the window (None: the window starts at the
/// account's first), which the window's first must name as `previous`. `disposal` is the
/// latest disposal known to verify (`(through, hash)`, from its signed copy in D1), which
/// covers a trail that starts after seq 1 when the disposal checkpoint is outside the window.
pub fn verify_window(
    account_id: Uuid,
    anchor: Option<&SignedCheckpoint>,
    disposal: Option<(i64, String)>,
    checkpoints: &[SignedCheckpoint],
    keys: &KeyRing,
    trail: &impl Trail,
    as_of: Option<OffsetDateTime>,
) -> Vec<Finding> {
    walk(
        account_id,
        anchor,
        disposal,
        checkpoints,
        keys,
        trail,
        as_of,
    )
}

fn walk<'a>(
    account_id: Uuid,
    anchor: Option<&'a SignedCheckpoint>,
    disposal: Option<(i64, String)>,
    checkpoints: &'a [SignedCheckpoint],
    keys: &KeyRing,
    trail: &impl Trail,
    as_of: Option<OffsetDateTime>,
) -> Vec<Finding> {
    let mut cps: Vec<&SignedCheckpoint> = checkpoints.iter().collect();
    cps.sort_by(|a, b| {
        (&a.checkpoint.period, a.checkpoint.kind == Kind::Periodic)
            .cmp(&(&b.checkpoint.period, b.checkpoint.kind == Kind::Periodic))
    });
    let mut findings = Vec::new();
    let push = |findings: &mut Vec<Finding>, c: &Checkpoint, problem: Problem| {
        findings.push(Finding {
            period: c.period.clone(),
            seq: c.head_seq,
            problem,
        })
    };
    let mut previous: Option<&SignedCheckpoint> = anchor;
    // The latest disposal that verifies, from D1's copy or among these checkpoints: rows up to it
    // may be gone, whichever checkpoint named them.
    let mut disposed: Option<(i64, String)> = disposal.clone();
    // Where the remaining trail may start: after any disposal that verifies (one whose D1 half
    // failed has removed nothing yet, so an earlier start is fine too).
    let mut starts: Vec<(i64, String)> = disposal.into_iter().collect();
    for sc in &cps {
        let c = &sc.checkpoint;
        if let (Kind::Disposal, Some(through), Some(hash)) =
            (c.kind, c.disposed_through, &c.disposed_hash)
        {
            if c.account_id == account_id && keys.verify(sc).is_ok() {
                starts.push((through, hash.clone()));
                if disposed.as_ref().is_none_or(|(t, _)| through > *t) {
                    disposed = Some((through, hash.clone()));
                }
            }
        }
    }
    for sc in &cps {
        let c = &sc.checkpoint;
        if c.account_id != account_id {
            push(&mut findings, c, Problem::WrongAccount);
            continue;
        }
        if let Err(p) = keys.verify(sc) {
            push(&mut findings, c, p);
            continue;
        }
        let expected_previous = previous.map(digest).unwrap_or_else(|| GENESIS.into());
        if c.previous != expected_previous {
            push(&mut findings, c, Problem::ChainBroken);
        }
        if let Some(p) = previous {
            let gap = missing_periods(&p.checkpoint.period, &c.period);
            for period in gap {
                findings.push(Finding {
                    period,
                    seq: p.checkpoint.head_seq,
                    problem: Problem::MissingPeriod,
                });
            }
            if c.head_seq < p.checkpoint.head_seq {
                push(&mut findings, c, Problem::HeadWentBack);
            }
        }
        if c.head_seq > 0 {
            let trail_head = trail.head();
            if trail_head < c.head_seq {
                push(&mut findings, c, Problem::Truncated { trail_head });
            } else if let Some(h) = trail.hash_at(c.head_seq) {
                if h != c.head_hash {
                    push(&mut findings, c, Problem::Rewritten);
                }
            } else if disposed
                .as_ref()
                .is_none_or(|(through, _)| c.head_seq > *through)
            {
                push(&mut findings, c, Problem::Rewritten);
            }
        }
        previous = Some(sc);
    }
    // The account's first checkpoint (no anchor, naming the genesis digest) must cover the
    // trail from its first row's period: checkpoints removed from the start are named.
    if let (None, Some(first)) = (anchor, cps.first()) {
        let c = &first.checkpoint;
        let began = trail
            .first_recorded()
            .as_deref()
            .and_then(parse_rfc3339)
            .map(|t| period_start(t) - PERIOD);
        if c.previous == GENESIS && c.account_id == account_id {
            if let Some(began) = began {
                let missing = missing_periods(&period_label(began), &c.period);
                let skip = missing.len().saturating_sub(MAX_TRAILING_MISSING);
                for period in missing.into_iter().skip(skip) {
                    findings.push(Finding {
                        period,
                        seq: 0,
                        problem: Problem::MissingPeriod,
                    });
                }
            }
        }
    }
    if let Some(now) = as_of {
        // The last complete period whose checkpoint is overdue.
        let due = period_start(now - GRACE) - PERIOD;
        let from = match previous {
            Some(p) => parse_rfc3339(&p.checkpoint.period),
            // No checkpoint at all: every period since the trail began.
            None => trail
                .first_recorded()
                .as_deref()
                .and_then(parse_rfc3339)
                .map(|t| period_start(t) - PERIOD),
        };
        if let Some(from) = from {
            let seq = previous.map_or(0, |p| p.checkpoint.head_seq);
            let missing = missing_periods(&period_label(from), &period_label(due + PERIOD));
            // The most recent week of them: enough to say the record stopped, and when.
            let skip = missing.len().saturating_sub(MAX_TRAILING_MISSING);
            for period in missing.into_iter().skip(skip) {
                findings.push(Finding {
                    period,
                    seq,
                    problem: Problem::MissingPeriod,
                });
            }
        }
    }
    if let Some((first_seq, prev_hash)) = trail.first() {
        let covered = first_seq == 1
            || starts
                .iter()
                .any(|(through, hash)| first_seq == through + 1 && prev_hash == *hash);
        if !covered {
            findings.push(Finding {
                period: previous
                    .map(|p| p.checkpoint.period.clone())
                    .unwrap_or_default(),
                seq: first_seq,
                problem: Problem::HeadCut { first_seq },
            });
        }
    }
    findings
}

fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    crate::domain::clock::parse_rfc3339(s)
}

/// Periods strictly between two period labels.
fn missing_periods(from: &str, to: &str) -> Vec<String> {
    let (Some(a), Some(b)) = (parse_rfc3339(from), parse_rfc3339(to)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut t = a + PERIOD;
    // Bounded: a trail verified years later lists at most a year of gaps one by one.
    while t < b && out.len() < 24 * 366 {
        out.push(period_label(t));
        t += PERIOD;
    }
    out
}

#[cfg(test)]
mod tests;
