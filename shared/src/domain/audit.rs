//! The audit trail's links, pure: one entry per change event, per-account sequence numbers,
//! `hash = SHA-256(prev_hash || canonical entry)` (canonical = the entry without `hash` and
//! `receipt`, serialised as JSON with its fields in declaration order), and the one walk that
//! checks a run of links, used by the service's verify and by the offline verifier alike.
//!
//! An unkeyed hash chain catches accidental edits only: whoever can write the database can
//! recompute it. So the writer signs (Ed25519, `domain::checkpoint`'s keys) the last link of
//! every run it appends, and refuses to chain onto a link it did not sign. A link an insider
//! forges therefore stays at the tail, unsigned, where [`Walker::finish`] names it; a rewrite
//! anywhere breaks the signatures after it; what is cut from the tail is caught by the signed
//! checkpoints outside D1.

use crate::domain::checkpoint::{KeyError, KeyRing, PublicKey, Receipt, Signer};
use crate::domain::clock::rfc3339;
use crate::domain::event::{Actor, ChangeEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    #[serde(rename = "type")]
    pub entity_type: String,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub event_id: Uuid,
    pub account_id: Uuid,
    pub actor: Actor,
    /// The event type, for example `client.updated`.
    pub action: String,
    pub target: Target,
    pub event_time: String,
    pub recorded_time: String,
    pub request_id: String,
    pub outcome: String,
    pub entity_version: i64,
    pub changed_fields: Vec<String>,
    /// Before/after of the changed fields where the event carries them (settings, holds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Value>,
    pub prev_hash: String,
    pub hash: String,
    /// The audit writer's signature of this link (`seq`, `hash`), on the last link of every run
    /// it appends: links an insider appends carry none, and the writer never chains onto such a
    /// link (see [`Walker`]). Not part of the hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
}

impl AuditEntry {
    pub fn from_event(ev: &ChangeEvent, head: &ChainHead, recorded: OffsetDateTime) -> Self {
        let (ty, id) = ev.target().unwrap_or(("unknown", ""));
        let mut e = AuditEntry {
            seq: head.seq + 1,
            event_id: ev.id,
            account_id: ev.account_id,
            actor: ev.actor.clone(),
            action: ev.event_type.clone(),
            target: Target {
                entity_type: ty.into(),
                id: id.into(),
            },
            event_time: ev.time.clone(),
            recorded_time: rfc3339(recorded),
            request_id: ev.request_id.clone(),
            outcome: "success".into(),
            entity_version: ev.entity_version,
            changed_fields: ev.changed_fields.clone(),
            changes: ev.changes.clone(),
            prev_hash: head.hash.clone(),
            hash: String::new(),
            receipt: None,
        };
        e.hash = e.compute_hash();
        e
    }

    /// Sign this link as the audit writer (the last link of a run it appends).
    pub fn seal(&mut self, signer: &Signer) {
        self.receipt = Some(signer.receipt(self.account_id, self.seq, &self.hash));
    }

    /// SHA-256 over `prev_hash` followed by the canonical entry (without `hash` and `receipt`).
    pub fn compute_hash(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(m) = v.as_object_mut() {
            m.remove("hash");
            m.remove("receipt");
        }
        let canonical = v.to_string();
        let mut h = Sha256::new();
        h.update(self.prev_hash.as_bytes());
        h.update(canonical.as_bytes());
        hex::encode(h.finalize())
    }
}

/// The last link of an account's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

impl ChainHead {
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS_HASH.into(),
        }
    }
}

/// What the audit writer signs with, and the keys its receipts verify with (its own and any
/// earlier ones, for links signed before a rotation).
pub struct Seal {
    pub signer: Signer,
    pub keys: KeyRing,
}

impl Seal {
    /// From the writer's secret (`<key id>:<base64 seed>`) and the published keys (a JSON array
    /// of `{key_id, public_key}`; may be empty: the signer's own key is always included).
    pub fn new(secret: &str, published: &[PublicKey]) -> Result<Self, KeyError> {
        let signer = Signer::from_secret(secret)?;
        let mut keys = published.to_vec();
        keys.push(signer.public_key());
        Ok(Self {
            keys: KeyRing::new(&keys)?,
            signer,
        })
    }
}

/// Why a link does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub seq: i64,
    pub reason: String,
}

/// Walks an account's links in ascending order from a trusted start (the genesis link, a signed
/// disposal, or a resume cursor at a signed link), checking each link's place, hash and
/// receipt. `sealed` is the last link a valid receipt covers: the last good link.
pub struct Walker<'k> {
    account_id: Uuid,
    keys: &'k KeyRing,
    head: ChainHead,
    sealed: ChainHead,
}

impl<'k> Walker<'k> {
    pub fn new(account_id: Uuid, start: ChainHead, keys: &'k KeyRing) -> Self {
        Self {
            account_id,
            keys,
            sealed: start.clone(),
            head: start,
        }
    }

    /// The last link checked.
    pub fn head(&self) -> &ChainHead {
        &self.head
    }

    /// The last link covered by a valid receipt (the start when none yet).
    pub fn sealed(&self) -> &ChainHead {
        &self.sealed
    }

    /// Check the next link (`seq` as stored in its row).
    pub fn step(&mut self, seq: i64, entry: &AuditEntry) -> Result<(), Break> {
        let fail = |reason: String| Err(Break { seq, reason });
        if entry.seq != seq {
            return fail(format!("body seq {} differs from row seq", entry.seq));
        }
        if entry.account_id != self.account_id {
            return fail("link of another account".into());
        }
        if seq != self.head.seq + 1 {
            return fail(format!("gap: expected seq {}", self.head.seq + 1));
        }
        if entry.prev_hash != self.head.hash {
            return fail("prev_hash does not match the previous link".into());
        }
        if entry.compute_hash() != entry.hash {
            return fail("hash does not match the entry's content".into());
        }
        self.head = ChainHead {
            seq,
            hash: entry.hash.clone(),
        };
        if let Some(r) = &entry.receipt {
            if !self
                .keys
                .verify_receipt(self.account_id, seq, &entry.hash, r)
            {
                return fail(format!(
                    "receipt does not verify (key {}): not signed by the audit writer",
                    r.key_id
                ));
            }
            self.sealed = self.head.clone();
        }
        Ok(())
    }

    /// At the head of the chain: every link must be covered by a receipt. Links after the last
    /// one were appended by someone other than the audit writer.
    pub fn finish(&self) -> Result<(), Break> {
        if self.head.seq > self.sealed.seq {
            return Err(Break {
                seq: self.sealed.seq + 1,
                reason: format!(
                    "links {}..={} carry no receipt of the audit writer: appended outside the service",
                    self.sealed.seq + 1,
                    self.head.seq
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
