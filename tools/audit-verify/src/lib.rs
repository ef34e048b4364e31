//! Verify a tenant's exported audit trail (JSON Lines, one audit row per line, exactly as
//! `GET /v1/audit/export` hands out the stored rows) against the Ed25519-signed checkpoints (a
//! file or a directory of files, each a checkpoint, an array of them, or the API's
//! `GET /v1/audit/checkpoints` page) with the published keys, without the service.
//!
//! Three checks, all `shared`'s own code: every row's stored text, place, hash over its
//! predecessor and the audit writer's receipts (`domain::audit::Walker`, as the service's
//! verify); every checkpoint's signature, its link to the previous one, the periods due by
//! `--as-of` and its head against the rows (`domain::checkpoint::verify`); and the writer's
//! latest anchored head (the page's `head`), which the export must reach. Keys are named by
//! their fingerprint (SHA-256 of the public key); `--pin` keeps only the keys received out of
//! band, so a keys file from the service being audited cannot vouch for a forgery.

use serde::Serialize;
use shared::domain::audit::{AuditEntry, ChainHead, Walker};
use shared::domain::checkpoint::{
    self, Finding, HeadAnchor, KeyRing, Problem, PublicKey, SignedCheckpoint, Trail,
};
use std::collections::BTreeMap;
use time::OffsetDateTime;
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

/// A key of the keys file, by fingerprint.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct KeyUsed {
    pub key_id: String,
    pub fingerprint: String,
    /// Whether a `--pin` names it (always true when nothing is pinned).
    pub pinned: bool,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub ok: bool,
    pub account_id: Uuid,
    pub rows: usize,
    pub checkpoints: usize,
    /// The keys of the keys file; only pinned ones were used (all when nothing is pinned).
    pub keys: Vec<KeyUsed>,
    /// Nothing was pinned: the keys were taken on trust from the keys file.
    pub keys_unpinned: bool,
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
    first_recorded: Option<String>,
    head: i64,
    hashes: BTreeMap<i64, String>,
}

impl Trail for Rows {
    fn first_recorded(&self) -> Option<String> {
        self.first_recorded.clone()
    }
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

/// One line of the export: the row as stored, and its link.
#[derive(Debug, Clone)]
pub struct Line {
    pub text: String,
    pub entry: AuditEntry,
}

impl Line {
    /// The line the export writes for `entry` (its stored form).
    pub fn of(entry: &AuditEntry) -> Self {
        Self {
            text: entry.stored_text(),
            entry: entry.clone(),
        }
    }
}

/// Parse the export: one row per non-empty line, in any order (pages of the export may be
/// concatenated as they came); sorted by seq. Each line is kept as written: the walk checks it
/// is exactly the link's stored form.
pub fn parse_trail(text: &str) -> Result<Vec<Line>, InputError> {
    let mut rows = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let text = l.trim_end_matches('\r').to_string();
            serde_json::from_str(&text)
                .map(|entry| Line { text, entry })
                .map_err(|e| InputError(format!("trail line {}: {e}", i + 1)))
        })
        .collect::<Result<Vec<Line>, InputError>>()?;
    rows.sort_by_key(|r| r.entry.seq);
    Ok(rows)
}

/// What a checkpoints file holds: signed checkpoints and, from the API's page, the writer's
/// latest anchored head.
#[derive(Debug, Default, Clone)]
pub struct Signed {
    pub checkpoints: Vec<SignedCheckpoint>,
    pub heads: Vec<HeadAnchor>,
}

/// Checkpoints from one file: a signed checkpoint, an array of them, or the API's
/// `GET /v1/audit/checkpoints` answer (`{"items": [...], "head": {...}}`).
pub fn parse_checkpoints(text: &str) -> Result<Signed, InputError> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Doc {
        Page {
            items: Vec<SignedCheckpoint>,
            #[serde(default)]
            head: Option<HeadAnchor>,
        },
        Many(Vec<SignedCheckpoint>),
        One(Box<SignedCheckpoint>),
    }
    match serde_json::from_str(text) {
        Ok(Doc::Page { items, head }) => Ok(Signed {
            checkpoints: items,
            heads: head.into_iter().collect(),
        }),
        Ok(Doc::Many(items)) => Ok(Signed {
            checkpoints: items,
            heads: Vec::new(),
        }),
        Ok(Doc::One(c)) => Ok(Signed {
            checkpoints: vec![*c],
            heads: Vec::new(),
        }),
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

/// What the verification is given besides the trail and the checkpoints.
#[derive(Debug, Clone)]
pub struct Options {
    /// Fingerprints received out of band (empty: every key of the keys file is trusted).
    pub pins: Vec<String>,
    /// The time of the check: the periods due by then must have checkpoints. None: not
    /// checked (an export of an old trail).
    pub as_of: Option<OffsetDateTime>,
}

pub fn verify(
    account_id: Uuid,
    rows: &[Line],
    signed: &Signed,
    keys: &[PublicKey],
    opts: &Options,
) -> Result<Report, InputError> {
    let pins: Vec<String> = opts.pins.iter().map(|p| p.trim().to_lowercase()).collect();
    let mut used_keys = Vec::new();
    let mut report_keys = Vec::new();
    for k in keys {
        let fingerprint = k.fingerprint().ok_or_else(|| {
            InputError(format!(
                "public keys: key {} is not an Ed25519 key",
                k.key_id
            ))
        })?;
        let pinned = pins.is_empty() || pins.contains(&fingerprint);
        if pinned {
            used_keys.push(k.clone());
        }
        report_keys.push(KeyUsed {
            key_id: k.key_id.clone(),
            fingerprint,
            pinned,
        });
    }
    let ring = KeyRing::new(&used_keys).map_err(|e| InputError(format!("public keys: {e}")))?;
    let mine: Vec<SignedCheckpoint> = signed
        .checkpoints
        .iter()
        .filter(|c| c.checkpoint.account_id == account_id)
        .cloned()
        .collect();
    // Where the walk starts: the genesis link, or a signed disposal the first row continues.
    let start = match rows.first() {
        Some(first) if first.entry.seq > 1 => mine
            .iter()
            .filter(|c| ring.verifies(c))
            .find_map(|c| {
                let (t, h) = (
                    c.checkpoint.disposed_through?,
                    c.checkpoint.disposed_hash.clone()?,
                );
                (t == first.entry.seq - 1 && h == first.entry.prev_hash)
                    .then_some(ChainHead { seq: t, hash: h })
            })
            .unwrap_or_else(ChainHead::genesis),
        _ => ChainHead::genesis(),
    };
    let mut walker = Walker::new(account_id, start, &ring);
    let mut first_broken: Option<Broken> = None;
    let mut trail = Rows {
        first: rows
            .first()
            .map(|r| (r.entry.seq, r.entry.prev_hash.clone())),
        first_recorded: rows.first().map(|r| r.entry.recorded_time.clone()),
        head: 0,
        hashes: BTreeMap::new(),
    };
    for r in rows {
        trail.head = trail.head.max(r.entry.seq);
        trail.hashes.insert(r.entry.seq, r.entry.hash.clone());
        if first_broken.is_none() {
            if let Err(b) = walker.step_text(r.entry.seq, &r.text) {
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
    let mut findings = checkpoint::verify(account_id, &mine, &ring, &trail, opts.as_of);
    // The writer's anchored heads: the export must reach them, with the same hash.
    for a in &signed.heads {
        if a.account_id != account_id {
            continue;
        }
        let problem = if !a.verifies(account_id, &ring) {
            Problem::BadSignature
        } else if trail.head < a.seq {
            Problem::Truncated {
                trail_head: trail.head,
            }
        } else if trail.hashes.get(&a.seq).is_some_and(|h| *h != a.hash) {
            Problem::Rewritten
        } else {
            continue;
        };
        findings.push(Finding {
            period: String::new(),
            seq: a.seq,
            problem,
        });
    }
    Ok(Report {
        ok: first_broken.is_none() && findings.is_empty() && !mine.is_empty(),
        account_id,
        rows: rows.len(),
        checkpoints: mine.len(),
        keys_unpinned: pins.is_empty(),
        keys: report_keys,
        last_good,
        first_broken,
        findings,
    })
}

/// Every checkpoint under `path`: a file, or a directory of `.json` files (each a checkpoint,
/// an array, or a checkpoints page).
fn read_checkpoints(path: &std::path::Path) -> Result<Signed, String> {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
    };
    let files: Vec<std::path::PathBuf> = if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        entries.sort();
        entries
    } else {
        vec![path.to_path_buf()]
    };
    let mut all = Signed::default();
    for f in files {
        let s = parse_checkpoints(&read(&f)?).map_err(|e| format!("{}: {e}", f.display()))?;
        all.checkpoints.extend(s.checkpoints);
        all.heads.extend(s.heads);
    }
    Ok(all)
}

/// The command line: reads the files and verifies them; the report says whether all held.
/// `now` is the default of `--as-of`.
pub fn run_cli(
    args: impl IntoIterator<Item = String>,
    now: OffsetDateTime,
) -> Result<Report, String> {
    let mut trail = None;
    let mut checkpoints = None;
    let mut keys = None;
    let mut account = None;
    let mut opts = Options {
        pins: Vec::new(),
        as_of: Some(now),
    };
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        let v = args.next().ok_or(format!("{a} needs a value"))?;
        match a.as_str() {
            "--trail" | "--export" => trail = Some(std::path::PathBuf::from(v)),
            "--checkpoints" => checkpoints = Some(std::path::PathBuf::from(v)),
            "--keys" | "--public-key" => keys = Some(std::path::PathBuf::from(v)),
            "--account" => account = Some(uuid::Uuid::parse_str(&v).map_err(|e| e.to_string())?),
            "--pin" => opts.pins.push(v),
            "--as-of" => {
                opts.as_of = Some(
                    shared::domain::clock::parse_rfc3339(&v)
                        .ok_or(format!("--as-of {v}: not an RFC 3339 time"))?,
                )
            }
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    let read = |p: &std::path::PathBuf| {
        std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
    };
    let rows =
        parse_trail(&read(&trail.ok_or("--trail is required")?)?).map_err(|e| e.to_string())?;
    let keys = parse_keys(&read(&keys.ok_or("--keys is required")?)?).map_err(|e| e.to_string())?;
    let signed = read_checkpoints(&checkpoints.ok_or("--checkpoints is required")?)?;
    let account = account
        .or_else(|| rows.first().map(|r| r.entry.account_id))
        .ok_or("an empty trail needs --account")?;
    verify(account, &rows, &signed, &keys, &opts).map_err(|e| e.to_string())
}

#[cfg(test)]
mod offline_inputs;
#[cfg(test)]
mod tests;
