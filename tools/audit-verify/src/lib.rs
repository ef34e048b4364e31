//! Verify a tenant's exported audit trail (JSON Lines, one audit row per line, as
//! `GET /v1/audit/export` writes it) against the Ed25519-signed checkpoints (one JSON object per
//! file, as the checkpoint bucket holds them) with the published keys, without the service.
//!
//! Two checks, both `shared`'s own code: every row's place, hash over its predecessor and the
//! audit writer's receipts (`domain::audit::Walker`, as the service's verify), and every
//! checkpoint's signature, its link to the previous checkpoint and its head against the rows
//! (`domain::checkpoint::verify`).

use serde::Serialize;
use shared::domain::audit::{AuditEntry, ChainHead, Walker};
use shared::domain::checkpoint::{self, Finding, KeyRing, PublicKey, SignedCheckpoint, Trail};
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Link {
    pub seq: i64,
    pub hash: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Broken {
    pub seq: i64,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub ok: bool,
    pub account_id: Uuid,
    pub rows: usize,
    pub checkpoints: usize,
    /// The last row whose hash and link verified.
    pub last_good: Option<Link>,
    /// The first row that did not.
    pub first_broken: Option<Broken>,
    /// Where the trail and the signed record part.
    pub findings: Vec<Finding>,
}

/// The rows as read from the export, indexed by seq.
struct Rows {
    first: Option<(i64, String)>,
    head: i64,
    hashes: BTreeMap<i64, String>,
}

impl Trail for Rows {
    fn first(&self) -> Option<(i64, String)> {
        self.first.clone()
    }
    fn head(&self) -> i64 {
        self.head
    }
    fn hash_at(&self, seq: i64) -> Option<String> {
        self.hashes.get(&seq).cloned()
    }
}

#[derive(Debug)]
pub struct InputError(pub String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parse the export: one row per non-empty line, in any order (pages of the export may be
/// concatenated as they came); sorted by seq.
pub fn parse_trail(text: &str) -> Result<Vec<AuditEntry>, InputError> {
    let mut rows = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| InputError(format!("trail line {}: {e}", i + 1)))
        })
        .collect::<Result<Vec<AuditEntry>, InputError>>()?;
    rows.sort_by_key(|r| r.seq);
    Ok(rows)
}

/// Checkpoints from one file: a signed checkpoint, an array of them, or the API's
/// `GET /v1/audit/checkpoints` answer (`{"items": [...]}`).
pub fn parse_checkpoints(text: &str) -> Result<Vec<SignedCheckpoint>, InputError> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Doc {
        Page { items: Vec<SignedCheckpoint> },
        Many(Vec<SignedCheckpoint>),
        One(Box<SignedCheckpoint>),
    }
    match serde_json::from_str(text) {
        Ok(Doc::Page { items }) | Ok(Doc::Many(items)) => Ok(items),
        Ok(Doc::One(c)) => Ok(vec![*c]),
        Err(e) => Err(InputError(format!("checkpoints: {e}"))),
    }
}

/// The published keys: either `{"keys": [...]}` (the well-known document) or a bare array.
pub fn parse_keys(text: &str) -> Result<Vec<PublicKey>, InputError> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Doc {
        Wrapped { keys: Vec<PublicKey> },
        Bare(Vec<PublicKey>),
    }
    match serde_json::from_str(text) {
        Ok(Doc::Wrapped { keys }) | Ok(Doc::Bare(keys)) => Ok(keys),
        Err(e) => Err(InputError(format!("public keys: {e}"))),
    }
}

pub fn verify(
    account_id: Uuid,
    rows: &[AuditEntry],
    checkpoints: &[SignedCheckpoint],
    keys: &[PublicKey],
) -> Result<Report, InputError> {
    let ring = KeyRing::new(keys).map_err(|e| InputError(format!("public keys: {e}")))?;
    let mine: Vec<SignedCheckpoint> = checkpoints
        .iter()
        .filter(|c| c.checkpoint.account_id == account_id)
        .cloned()
        .collect();
    // Where the walk starts: the genesis link, or a signed disposal the first row continues.
    let start = match rows.first() {
        Some(first) if first.seq > 1 => mine
            .iter()
            .filter(|c| ring.verifies(c))
            .find_map(|c| {
                let (t, h) = (
                    c.checkpoint.disposed_through?,
                    c.checkpoint.disposed_hash.clone()?,
                );
                (t == first.seq - 1 && h == first.prev_hash)
                    .then_some(ChainHead { seq: t, hash: h })
            })
            .unwrap_or_else(ChainHead::genesis),
        _ => ChainHead::genesis(),
    };
    let mut walker = Walker::new(account_id, start, &ring);
    let mut first_broken: Option<Broken> = None;
    let mut trail = Rows {
        first: rows.first().map(|r| (r.seq, r.prev_hash.clone())),
        head: 0,
        hashes: BTreeMap::new(),
    };
    for r in rows {
        trail.head = trail.head.max(r.seq);
        trail.hashes.insert(r.seq, r.hash.clone());
        if first_broken.is_none() {
            if let Err(b) = walker.step(r.seq, r) {
                first_broken = Some(Broken {
                    seq: b.seq,
                    reason: b.reason,
                });
            }
        }
    }
    if first_broken.is_none() {
        if let Err(b) = walker.finish() {
            first_broken = Some(Broken {
                seq: b.seq,
                reason: b.reason,
            });
        }
    }
    let sealed = walker.sealed();
    let last_good = (sealed.seq > 0).then(|| Link {
        seq: sealed.seq,
        hash: sealed.hash.clone(),
    });
    let findings = checkpoint::verify(account_id, &mine, &ring, &trail);
    Ok(Report {
        ok: first_broken.is_none() && findings.is_empty() && !mine.is_empty(),
        account_id,
        rows: rows.len(),
        checkpoints: mine.len(),
        last_good,
        first_broken,
        findings,
    })
}

/// The command line: reads the files and verifies them; the report says whether all held.
pub fn run_cli(args: impl IntoIterator<Item = String>) -> Result<Report, String> {
    let mut trail = None;
    let mut dir = None;
    let mut keys = None;
    let mut account = None;
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        let v = args.next().ok_or(format!("{a} needs a value"))?;
        match a.as_str() {
            "--trail" | "--export" => trail = Some(std::path::PathBuf::from(v)),
            "--checkpoints" => dir = Some(std::path::PathBuf::from(v)),
            "--keys" | "--public-key" => keys = Some(std::path::PathBuf::from(v)),
            "--account" => account = Some(uuid::Uuid::parse_str(&v).map_err(|e| e.to_string())?),
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    let read = |p: &std::path::PathBuf| {
        std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
    };
    let rows =
        parse_trail(&read(&trail.ok_or("--trail is required")?)?).map_err(|e| e.to_string())?;
    let keys = parse_keys(&read(&keys.ok_or("--keys is required")?)?).map_err(|e| e.to_string())?;
    let dir = dir.ok_or("--checkpoints is required")?;
    let mut checkpoints = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    for p in entries {
        checkpoints
            .push(serde_json::from_str(&read(&p)?).map_err(|e| format!("{}: {e}", p.display()))?);
    }
    let account = account
        .or_else(|| rows.first().map(|r| r.account_id))
        .ok_or("an empty trail needs --account")?;
    verify(account, &rows, &checkpoints, &keys).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
