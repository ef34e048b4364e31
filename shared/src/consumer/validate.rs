//! What the change-event consumer refuses: it trusts no message for being on its queue. A
//! message is only a pointer to an event (account + id): it is recorded only if its type is
//! one this build emits (`domain::event::is_known_type`) with the fields that type must carry,
//! its account is registered on the shard the event names, that shard is bound here, and the
//! shard's outbox holds the event; what is recorded is the OUTBOX row's event, never the
//! message's fields (the outbox keeps every event until the audit trail has it). An event
//! already recorded is acknowledged and appends nothing. Anything else is dead-lettered with a
//! typed [`Reason`] and never appended to the chain.

use crate::domain::event::{is_known_type, ChangeEvent};
use crate::store::accounts::Placement;
use crate::store::event_evidence::Evidence;
use serde_json::Value;
use uuid::Uuid;

/// At most this many changed fields per event (the widest entity has fewer fields).
pub const MAX_CHANGED_FIELDS: usize = 64;
/// A changed field's name at most this long (a disposition's "field" is its reason, a sentence).
pub const MAX_FIELD_NAME: usize = 1024;
/// `changes` (before/after of settings and holds) at most this large, serialised.
pub const MAX_CHANGES_BYTES: usize = 16 * 1024;

/// Why a message is dead-lettered. `kind()` is the stable, value-free name operators filter
/// on and logs carry; the text may quote the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    #[error("not a change event: {0}")]
    Undecodable(String),
    #[error("unknown event type {event_type} for subject collection {collection}")]
    UnknownType {
        event_type: String,
        collection: String,
    },
    #[error("malformed {event_type}: {detail}")]
    Schema { event_type: String, detail: String },
    #[error("account {0} is not registered")]
    UnknownAccount(String),
    #[error("account lives on shard {account_shard}, the event names shard {event_shard}")]
    WrongShard {
        account_shard: String,
        event_shard: String,
    },
    #[error("shard {0} is not bound by this consumer")]
    ShardNotBound(String),
    /// The shard's outbox has no event with this id: the write protocol never wrote it.
    #[error("event {0} is not in its shard's outbox")]
    NotInOutbox(String),
    #[error("not an index job")]
    NotAnIndexJob,
    #[error("not a platform event (id, type platform.*, time required)")]
    NotAPlatformEvent,
    #[error("refused by storage: {0}")]
    Refused(String),
    /// The account's audit chain ends in a link the audit writer did not sign (appended outside
    /// the service). Chaining onto it would vouch for it, so the event waits here, intact, to be
    /// replayed once operators have dealt with the forged link.
    #[error(
        "audit chain head {seq} is not signed by the audit writer: appended outside the service"
    )]
    UnsealedChainHead { seq: i64 },
}

impl Reason {
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::Undecodable(_) => "undecodable",
            Reason::UnknownType { .. } => "unknown_type",
            Reason::Schema { .. } => "schema",
            Reason::UnknownAccount(_) => "unknown_account",
            Reason::WrongShard { .. } => "wrong_shard",
            Reason::ShardNotBound(_) => "shard_not_bound",
            Reason::NotInOutbox(_) => "not_in_outbox",
            Reason::NotAnIndexJob => "not_an_index_job",
            Reason::NotAPlatformEvent => "not_a_platform_event",
            Reason::Refused(_) => "refused",
            Reason::UnsealedChainHead { .. } => "unsealed_chain_head",
        }
    }
}

fn schema(ev: &ChangeEvent, detail: impl Into<String>) -> Reason {
    Reason::Schema {
        event_type: ev.event_type.clone(),
        detail: detail.into(),
    }
}

/// Whether `s` is a UUID in its canonical spelling (lowercase, hyphenated): the spelling the
/// write protocol uses, so another one (braced, urn, simple, uppercase) is not its event.
pub fn is_canonical_uuid(s: &str) -> bool {
    Uuid::parse_str(s).is_ok_and(|u| u.hyphenated().to_string() == s)
}

/// The ids of the raw message in their canonical spelling (decoding accepts any spelling).
pub fn check_spelling(ev: &ChangeEvent, body: &Value) -> Result<(), Reason> {
    for key in ["id", "account_id"] {
        if !body[key].as_str().is_some_and(is_canonical_uuid) {
            return Err(schema(ev, format!("{key} is not a canonical UUID")));
        }
    }
    Ok(())
}

/// The per-type schema of an envelope (pure): the closed set of types, a canonical UUID
/// subject, a positive version (0 for a purge or erasure that removed the row), changed fields
/// named and bounded, `time` an RFC 3339 instant, the source a shard's
/// (`/deployments/{d}/shards/{s}`; not necessarily the event's shard: an account's event
/// forwarded by an earlier build after a stale route names the shard it was made through), and
/// `changes`, when present, shaped `{field: {before, after}}` and bounded. `changes` is not
/// required: events of earlier builds (legal holds) carry none, and the record is the outbox's.
pub fn check_envelope(ev: &ChangeEvent) -> Result<(), Reason> {
    let (collection, id) = ev.target().unwrap_or_default();
    if !is_known_type(&ev.event_type, collection) {
        return Err(Reason::UnknownType {
            event_type: ev.event_type.clone(),
            collection: collection.to_string(),
        });
    }
    if !is_canonical_uuid(id) {
        return Err(schema(ev, "subject id is not a canonical UUID"));
    }
    let action = ev.action().unwrap_or_default();
    // A disposition that removed the row has no version left to read: it carries 0.
    let least = if matches!(action, "purged" | "erased") {
        0
    } else {
        1
    };
    if ev.entity_version < least {
        return Err(schema(
            ev,
            format!("entity_version must be at least {least}"),
        ));
    }
    if ev.changed_fields.is_empty() && action != "created" {
        return Err(schema(ev, "changed_fields names no field"));
    }
    if ev.changed_fields.len() > MAX_CHANGED_FIELDS {
        return Err(schema(
            ev,
            format!("changed_fields names more than {MAX_CHANGED_FIELDS} fields"),
        ));
    }
    if ev.changed_fields.iter().any(|f| f.trim().is_empty()) {
        return Err(schema(ev, "changed_fields holds an empty name"));
    }
    if ev.changed_fields.iter().any(|f| f.len() > MAX_FIELD_NAME) {
        return Err(schema(
            ev,
            format!("a changed field is longer than {MAX_FIELD_NAME} bytes"),
        ));
    }
    if time::OffsetDateTime::parse(&ev.time, &time::format_description::well_known::Rfc3339)
        .is_err()
    {
        return Err(schema(ev, "time is not an RFC 3339 instant"));
    }
    let shard_source = ev
        .source
        .strip_prefix("/deployments/")
        .and_then(|r| r.split_once("/shards/"))
        .is_some_and(|(d, s)| !d.is_empty() && !s.is_empty() && !s.contains('/'));
    if !shard_source || ev.shard_id.is_empty() {
        return Err(schema(ev, "source does not name a shard"));
    }
    if collection == "accounts" && id != ev.account_id.to_string() {
        return Err(schema(ev, "an account event concerns its own account"));
    }
    match &ev.changes {
        None => Ok(()),
        Some(Value::Object(m)) => {
            if serde_json::to_string(m).map_or(usize::MAX, |t| t.len()) > MAX_CHANGES_BYTES {
                return Err(schema(
                    ev,
                    format!("changes is larger than {MAX_CHANGES_BYTES} bytes"),
                ));
            }
            for (field, v) in m {
                let ok = v
                    .as_object()
                    .is_some_and(|o| o.contains_key("before") && o.contains_key("after"));
                if !ok {
                    return Err(schema(
                        ev,
                        format!("changes.{field} is not {{before, after}}"),
                    ));
                }
            }
            Ok(())
        }
        Some(_) => Err(schema(ev, "changes is not an object")),
    }
}

/// The account's placement against the event: registered (active or deactivated: a
/// deactivation's own events must be recorded), on the shard the event names, and that shard
/// registered. Returns the shard's binding.
pub fn check_placement<'a>(
    ev: &ChangeEvent,
    placement: Option<&'a Placement>,
) -> Result<&'a str, Reason> {
    let Some(p) = placement else {
        return Err(Reason::UnknownAccount(ev.account_id.to_string()));
    };
    if p.shard_id != ev.shard_id {
        return Err(Reason::WrongShard {
            account_shard: p.shard_id.clone(),
            event_shard: ev.shard_id.clone(),
        });
    }
    p.binding
        .as_deref()
        .ok_or_else(|| Reason::ShardNotBound(ev.shard_id.clone()))
}

/// What to do with a checked message, given what its shard knows of its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The audit trail already has the event: nothing to append (a redelivery, a relay's
    /// resend, a replayed dead letter, or a copy of a recorded event).
    Recorded,
    /// Record this: the event as its outbox row holds it.
    Record(Box<ChangeEvent>),
}

/// The message against its shard's evidence (see the module doc): the outbox row's event, or
/// why not.
pub fn check_evidence(ev: &ChangeEvent, e: &Evidence) -> Result<Verdict, Reason> {
    if e.recorded {
        return Ok(Verdict::Recorded);
    }
    let Some(body) = &e.outbox else {
        return Err(Reason::NotInOutbox(ev.id.to_string()));
    };
    match crate::domain::event::decode(body) {
        Ok(row) if row.id == ev.id && row.account_id == ev.account_id => {
            Ok(Verdict::Record(Box::new(row)))
        }
        Ok(_) => Err(Reason::NotInOutbox(ev.id.to_string())),
        Err(e) => Err(Reason::Undecodable(format!("outbox row: {e}"))),
    }
}
