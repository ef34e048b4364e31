//! The platform-event envelope: what system jobs tell operators (not tenant data, not in any
//! tenant's audit trail), as CloudEvents 1.0 structured JSON. `consumer::platform_events`
//! records them; `store::platform_events` lists them.

use crate::domain::clock::{rfc3339, uuid_v7, Entropy};
use serde_json::{json, Value};
use time::OffsetDateTime;

pub const REBALANCE_PROPOSED: &str = "platform.rebalance_proposal.created";

/// A platform event: `subject` names what it is about (`rebalance_proposals/{id}`).
pub fn event(
    event_type: &str,
    source: &str,
    subject: &str,
    data: Value,
    now: OffsetDateTime,
    entropy: &impl Entropy,
) -> Value {
    json!({
        "specversion": crate::domain::event::SPEC_VERSION,
        "id": uuid_v7(now, entropy).to_string(),
        "source": source,
        "type": event_type,
        "time": rfc3339(now),
        "subject": subject,
        "datacontenttype": "application/json",
        "data": data,
    })
}
