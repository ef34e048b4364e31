//! What the change-event consumer refuses: it trusts no message for being on its queue. An
//! event is recorded only if its type is one this build emits (`domain::event::is_known_type`)
//! with the fields that type must carry, its account is registered on the shard the event
//! names, that shard is bound here, and its target exists or existed (the outbox holds the
//! event, the row is there at or past the event's version, or the target has an audit
//! history: purged and erased targets keep theirs, so their late events are still recorded).
//! Anything else is dead-lettered with a typed [`Reason`] and never appended to the chain.

use crate::domain::event::{is_known_type, ChangeEvent};
use crate::store::accounts::Placement;
use crate::store::event_evidence::Evidence;
use serde_json::Value;

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
    #[error("target {0} does not exist and never existed")]
    NoSuchTarget(String),
    #[error("event version {event} is ahead of the target's version {row}")]
    VersionAhead { event: i64, row: i64 },
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
            Reason::NoSuchTarget(_) => "no_such_target",
            Reason::VersionAhead { .. } => "version_ahead",
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

/// The per-type schema of an envelope (pure): the closed set of types, a positive version (0
/// for a purge or erasure that removed the row),
/// changed fields named, the source naming the event's shard, and `changes` shaped
/// `{field: {before, after}}`, required where the values are not
/// personal data and make the audit record (account changes, legal holds).
pub fn check_envelope(ev: &ChangeEvent) -> Result<(), Reason> {
    let (collection, id) = ev.target().unwrap_or_default();
    if !is_known_type(&ev.event_type, collection) {
        return Err(Reason::UnknownType {
            event_type: ev.event_type.clone(),
            collection: collection.to_string(),
        });
    }
    if id.is_empty() || uuid::Uuid::parse_str(id).is_err() {
        return Err(schema(ev, "subject id is not a UUID"));
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
    // (A disposition's "field" is its reason, a sentence: no length bound here.)
    if ev.changed_fields.iter().any(|f| f.trim().is_empty()) {
        return Err(schema(ev, "changed_fields holds an empty name"));
    }
    if !ev.source.ends_with(&format!("/shards/{}", ev.shard_id)) || ev.shard_id.is_empty() {
        return Err(schema(ev, "source does not name the event's shard"));
    }
    if collection == "accounts" && id != ev.account_id.to_string() {
        return Err(schema(ev, "an account event concerns its own account"));
    }
    let needs_changes =
        collection == "accounts" || ev.changed_fields.iter().any(|f| f == "legal_hold");
    match &ev.changes {
        None if needs_changes => Err(schema(ev, "changes (before/after) required")),
        None => Ok(()),
        Some(Value::Object(m)) => {
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
            if needs_changes && m.is_empty() {
                return Err(schema(ev, "changes (before/after) required"));
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

/// The target against what its shard knows (see the module doc).
pub fn check_target(ev: &ChangeEvent, e: &Evidence) -> Result<(), Reason> {
    if e.in_outbox {
        return Ok(());
    }
    match e.version {
        Some(row) if ev.entity_version > row => Err(Reason::VersionAhead {
            event: ev.entity_version,
            row,
        }),
        Some(_) => Ok(()),
        None if e.audited => Ok(()),
        None => Err(Reason::NoSuchTarget(ev.subject.clone())),
    }
}
