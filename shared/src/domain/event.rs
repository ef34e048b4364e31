//! The change-event envelope, CloudEvents 1.0 compatible (structured JSON mode): the required
//! context attributes `specversion`, `id`, `source`, `type`, plus `time` and `subject`; the
//! product's attributes travel as extensions. `tests/golden/change_event.json` pins the format.

use crate::domain::clock::rfc3339;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

pub const SPEC_VERSION: &str = "1.0";
/// Bumped when the envelope changes incompatibly; consumers dead-letter versions they do not know.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    User { id: Uuid, role: String },
    System { id: String },
}

impl Actor {
    pub fn id(&self) -> String {
        match self {
            Actor::User { id, .. } => id.to_string(),
            Actor::System { id } => id.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    Updated,
    Deleted,
    Purged,
    Erased,
    /// Processing restricted (UK GDPR art. 18, or kept because a law requires it).
    Restricted,
    /// A restriction ended (lifted, or its `until` passed and the record was disposed of).
    Unrestricted,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
            Action::Purged => "purged",
            Action::Erased => "erased",
            Action::Restricted => "restricted",
            Action::Unrestricted => "unrestricted",
        }
    }
}

/// The closed set of change-event types: `(entity_singular, subject collection, actions)`.
/// The consumer refuses (dead-letters) anything else; producers only emit these.
pub const EVENT_TYPES: &[(&str, &str, &[Action])] = {
    use Action::*;
    &[
        ("group", "groups", &[Created, Updated, Deleted, Purged]),
        (
            "user",
            "users",
            &[Created, Updated, Deleted, Purged, Erased],
        ),
        (
            "client",
            "clients",
            &[
                Created,
                Updated,
                Deleted,
                Purged,
                Erased,
                Restricted,
                Unrestricted,
            ],
        ),
        (
            "document",
            "documents",
            &[
                Created,
                Updated,
                Deleted,
                Purged,
                Erased,
                Restricted,
                Unrestricted,
            ],
        ),
        ("account", "accounts", &[Updated]),
        ("erasure_request", "erasure_requests", &[Created, Updated]),
    ]
};

/// Whether `event_type` (`{entity}.{action}`) is one this build emits, and `subject_type` (the
/// collection in `subject`) the one that goes with it.
pub fn is_known_type(event_type: &str, subject_type: &str) -> bool {
    let Some((entity, action)) = event_type.rsplit_once('.') else {
        return false;
    };
    EVENT_TYPES.iter().any(|(singular, collection, actions)| {
        *singular == entity
            && *collection == subject_type
            && actions.iter().any(|a| a.as_str() == action)
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub specversion: String,
    pub id: Uuid,
    /// `/deployments/{deployment}/shards/{shard_id}`
    pub source: String,
    /// `{entity}.{action}`, for example `client.updated`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    /// `{entity_type}/{entity_id}`, for example `clients/0190...`.
    pub subject: String,
    pub account_id: Uuid,
    pub shard_id: String,
    pub actor: Actor,
    pub request_id: String,
    /// An integer; outbox rows written before numbers kept their type may say `2.0`.
    #[serde(deserialize_with = "crate::domain::integers::deserialize")]
    pub entity_version: i64,
    pub changed_fields: Vec<String>,
    /// Before and after of each changed field, for changes whose values are not personal data
    /// (settings, legal holds): `{"legal_hold": {"before": false, "after": true}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<serde_json::Value>,
    /// D1 bookmark of the write (null when the event was written by a system job's batch).
    pub bookmark: Option<String>,
    pub schema_version: u32,
}

/// What a write tells the event builder.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub entity_type: &'a str,
    pub entity_singular: &'a str,
    pub entity_id: Uuid,
    pub action: Action,
    pub entity_version: i64,
    pub changed_fields: Vec<String>,
}

pub struct Origin<'a> {
    pub deployment: &'a str,
    pub shard_id: &'a str,
    pub account_id: Uuid,
    pub actor: Actor,
    pub request_id: &'a str,
}

impl ChangeEvent {
    pub fn new(id: Uuid, now: OffsetDateTime, origin: &Origin<'_>, change: Change<'_>) -> Self {
        Self {
            specversion: SPEC_VERSION.into(),
            id,
            source: format!(
                "/deployments/{}/shards/{}",
                origin.deployment, origin.shard_id
            ),
            event_type: format!("{}.{}", change.entity_singular, change.action.as_str()),
            time: rfc3339(now),
            subject: format!("{}/{}", change.entity_type, change.entity_id),
            account_id: origin.account_id,
            shard_id: origin.shard_id.into(),
            actor: origin.actor.clone(),
            request_id: origin.request_id.into(),
            entity_version: change.entity_version,
            changed_fields: change.changed_fields,
            changes: None,
            bookmark: None,
            schema_version: SCHEMA_VERSION,
        }
    }

    /// `(entity_type, entity_id)` from `subject`.
    pub fn target(&self) -> Option<(&str, &str)> {
        self.subject.split_once('/')
    }

    /// The action part of `type`.
    pub fn action(&self) -> Option<&str> {
        self.event_type.rsplit_once('.').map(|(_, a)| a)
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("not a change event: {0}")]
    Malformed(String),
    #[error("unsupported schema_version {0} (this build knows {SCHEMA_VERSION})")]
    UnknownSchema(u32),
    #[error("unsupported specversion {0}")]
    UnknownSpec(String),
}

/// Decode a queue message body. Anything that is not a known envelope is a poison message.
pub fn decode(value: &serde_json::Value) -> Result<ChangeEvent, DecodeError> {
    if let Some(v) = value.get("schema_version").and_then(|v| v.as_u64()) {
        if v != u64::from(SCHEMA_VERSION) {
            return Err(DecodeError::UnknownSchema(v as u32));
        }
    }
    let ev: ChangeEvent =
        serde_json::from_value(value.clone()).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if ev.specversion != SPEC_VERSION {
        return Err(DecodeError::UnknownSpec(ev.specversion));
    }
    if ev.target().is_none() || ev.action().is_none() {
        return Err(DecodeError::Malformed(
            "subject or type lacks its separator".into(),
        ));
    }
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    pub(crate) fn sample() -> ChangeEvent {
        let mut ev = ChangeEvent::new(
            Uuid::parse_str("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").unwrap(),
            datetime!(2026-11-26 09:30:00.125 UTC),
            &Origin {
                deployment: "api",
                shard_id: "shard-eu-01",
                account_id: Uuid::parse_str("a1a1a1a1-0000-4000-8000-000000000001").unwrap(),
                actor: Actor::User {
                    id: Uuid::parse_str("b2b2b2b2-0000-4000-8000-000000000001").unwrap(),
                    role: "admin".into(),
                },
                request_id: "req-1",
            },
            Change {
                entity_type: "clients",
                entity_singular: "client",
                entity_id: Uuid::parse_str("0193a1b2-0000-7000-8000-000000000009").unwrap(),
                action: Action::Updated,
                entity_version: 3,
                changed_fields: vec!["status".into(), "surname".into()],
            },
        );
        ev.bookmark = Some("00000000000000a1".into());
        ev
    }

    #[test]
    fn wire_format_matches_the_golden_file() {
        let golden: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/golden/change_event.json")).unwrap();
        assert_eq!(serde_json::to_value(sample()).unwrap(), golden);
        assert_eq!(decode(&golden).unwrap(), sample());
    }

    #[test]
    fn only_the_closed_set_of_event_types_is_known() {
        assert!(is_known_type("client.updated", "clients"));
        assert!(is_known_type("client.restricted", "clients"));
        assert!(is_known_type("account.updated", "accounts"));
        assert!(!is_known_type("client.teleported", "clients"));
        assert!(!is_known_type("client.updated", "documents"));
        assert!(!is_known_type("group.erased", "groups"));
        assert!(!is_known_type("clientupdated", "clients"));
    }

    #[test]
    fn decode_rejects_unknown_schema_and_garbage() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["schema_version"] = 99.into();
        assert_eq!(decode(&v), Err(DecodeError::UnknownSchema(99)));
        assert!(matches!(
            decode(&serde_json::json!({"hello": 1})),
            Err(DecodeError::Malformed(_))
        ));
        let mut v = serde_json::to_value(sample()).unwrap();
        v["specversion"] = "0.3".into();
        assert!(matches!(decode(&v), Err(DecodeError::UnknownSpec(_))));
    }
}
