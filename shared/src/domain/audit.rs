//! The audit trail's links, pure: one entry per change event, per-account sequence numbers,
//! `hash = SHA-256(prev_hash || canonical entry)` (canonical = the entry without `hash` and
//! `receipt`, serialised as JSON with its fields in declaration order), and the one walk that
//! checks a run of links, used by the service's verify and by the offline verifier alike.
//!
//! An unkeyed hash chain catches accidental edits only: whoever can write the database can
//! recompute it. So the writer signs (Ed25519, `domain::checkpoint`'s keys) the last link of
//! every run it appends, and never vouches for a link it did not sign: links an insider forges
//! stay unsigned at the tail, where [`Walker::finish`] names them, until the writer appends
//! again, first its own signed [`UNSIGNED_LINKS_ACTION`] link naming them, which the walk
//! reports as the break. A rewrite anywhere breaks the signatures after it (and a row whose
//! text is not the link as written breaks at once); what is cut from the tail is caught by
//! the heads the writer anchors outside D1 and by the signed checkpoints.

use crate::domain::checkpoint::{KeyError, KeyRing, PublicKey, Receipt, Signer};
use crate::domain::clock::rfc3339;
use crate::domain::event::{Actor, ChangeEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The action of a link the audit writer appends itself, never taken from the queue: the links
/// before it (`changes.unsigned_from..=unsigned_to`) carry no receipt of the writer, so they
/// were appended outside the service. The writer records that, signed, and carries on after it
/// instead of stopping the account's auditing.
pub const UNSIGNED_LINKS_ACTION: &str = "audit.unsigned_links";
/// The actor of the links the audit writer appends itself.
pub const WRITER_ACTOR: &str = "audit-writer";

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

    /// The writer's own link after links it did not sign (`from..=head.seq`, possibly none),
    /// and, when its signed head `cut_head` (anchored outside D1) is above the trail's head,
    /// that the trail was cut: recorded, signed, so the trail carries on and verify names it.
    pub fn unsigned_links(
        account_id: Uuid,
        head: &ChainHead,
        from: i64,
        cut_head: Option<i64>,
        recorded: OffsetDateTime,
    ) -> Self {
        let now = rfc3339(recorded);
        // One id per account and range: two writers acknowledging the same range collide.
        let mut h = Sha256::new();
        h.update(
            format!(
                "{UNSIGNED_LINKS_ACTION}\n{account_id}\n{from}\n{}",
                head.seq
            )
            .as_bytes(),
        );
        let digest = h.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        let event_id = uuid::Builder::from_custom_bytes(bytes).into_uuid();
        let mut changes = serde_json::json!({"unsigned_from": from, "unsigned_to": head.seq});
        if let Some(c) = cut_head {
            changes["cut_head"] = c.into();
        }
        let mut e = AuditEntry {
            seq: head.seq + 1,
            event_id,
            account_id,
            actor: Actor::System {
                id: WRITER_ACTOR.into(),
            },
            action: UNSIGNED_LINKS_ACTION.into(),
            target: Target {
                entity_type: "audit_log".into(),
                id: format!("{from}..={}", head.seq),
            },
            event_time: now.clone(),
            recorded_time: now,
            request_id: String::new(),
            outcome: "success".into(),
            entity_version: 0,
            changed_fields: Vec::new(),
            changes: Some(changes),
            prev_hash: head.hash.clone(),
            hash: String::new(),
            receipt: None,
        };
        e.hash = e.compute_hash();
        e
    }

    /// The range `(from, to)` an [`UNSIGNED_LINKS_ACTION`] link names.
    pub fn unsigned_range(&self) -> Option<(i64, i64)> {
        if self.action != UNSIGNED_LINKS_ACTION {
            return None;
        }
        let c = self.changes.as_ref()?;
        Some((c["unsigned_from"].as_i64()?, c["unsigned_to"].as_i64()?))
    }

    /// The stored form of the link: the text the writer inserts, and the only spelling of it
    /// that verifies (a row re-spelt, with fields added or reordered, keeps its hash but is not
    /// what was written).
    pub fn stored_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
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
    /// Where a caller may resume after the break: the writer's own signed link that
    /// acknowledged the broken range (see [`UNSIGNED_LINKS_ACTION`]).
    pub resume: Option<ChainHead>,
}

/// Walks an account's links in ascending order from a trusted start (the genesis link, a signed
/// disposal, or a resume cursor at a signed link), checking each link's place, hash and
/// receipt. `sealed` is the last link a valid receipt covers: the last good link.
pub struct Walker<'k> {
    account_id: Uuid,
    keys: &'k KeyRing,
    start: i64,
    head: ChainHead,
    sealed: ChainHead,
}

impl<'k> Walker<'k> {
    pub fn new(account_id: Uuid, start: ChainHead, keys: &'k KeyRing) -> Self {
        Self {
            account_id,
            keys,
            start: start.seq,
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

    /// Check the next link from its row as stored (`seq` column, `body` text): the text must be
    /// exactly the entry's stored form ([`AuditEntry::stored_text`]), then [`Walker::step`].
    pub fn step_text(&mut self, seq: i64, text: &str) -> Result<AuditEntry, Break> {
        let fail = |reason: String| Break {
            seq,
            reason,
            resume: None,
        };
        let entry: AuditEntry = serde_json::from_str(text)
            .map_err(|e| fail(format!("body is not an audit entry: {e}")))?;
        if entry.stored_text() != text {
            return Err(fail(
                "the stored row differs from the link as written (fields added, removed, \
                 re-spelt or reordered), although its hash may not"
                    .into(),
            ));
        }
        self.step(seq, &entry)?;
        Ok(entry)
    }

    /// Check the next link (`seq` as stored in its row).
    pub fn step(&mut self, seq: i64, entry: &AuditEntry) -> Result<(), Break> {
        let fail = |reason: String| {
            Err(Break {
                seq,
                reason,
                resume: None,
            })
        };
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
            let unsigned_from = self.sealed.seq + 1;
            // The writer's acknowledgment of links it did not sign, where this walk saw them.
            if let Some((from, to)) = entry.unsigned_range() {
                if from > self.start {
                    if from != unsigned_from || to != seq - 1 {
                        return fail(format!(
                            "the writer's acknowledgment names links {from}..={to}, but the \
                             links without its receipt are {unsigned_from}..={}",
                            seq - 1
                        ));
                    }
                    let cut = entry.changes.as_ref().and_then(|c| c["cut_head"].as_i64());
                    let what = match (cut, from <= to) {
                        (Some(c), true) => format!(
                            "the trail was cut: the writer's signed head {c} is gone, and links \
                             {from}..={to} (left of a run cut in the middle) carry no receipt"
                        ),
                        (Some(c), false) => format!(
                            "the trail was cut after seq {to}: the writer's signed head {c} is gone"
                        ),
                        (None, _) => format!(
                            "links {from}..={to} carry no receipt of the audit writer: appended \
                             outside the service"
                        ),
                    };
                    return Err(Break {
                        seq: from,
                        reason: format!(
                            "{what} (the writer recorded this at seq {seq}; resume there to \
                             verify the links after it)"
                        ),
                        // `sealed` stays the last good link before the range.
                        resume: Some(self.head.clone()),
                    });
                }
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
                resume: None,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
