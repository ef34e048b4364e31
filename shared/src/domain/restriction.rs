//! Why a record's processing is restricted: a closed set of codes, never free text. The
//! `reason` is copied into `*.restricted` events and so into the append-only audit trail, which
//! can never be erased: free text there could hold personal data forever.

/// Kept because a law requires it (UK GDPR art. 17(3)(b)); what the retention sweep sets on
/// records an erasure must keep.
pub const LEGAL_OBLIGATION: &str = "legal_obligation";

/// Every reason a restriction may give: UK GDPR art. 18(1)(a)-(d), and a legal obligation.
pub const REASONS: &[&str] = &[
    // (a) the data subject contests the accuracy of the data, while it is verified
    "accuracy_contested",
    // (b) the processing is unlawful and the data subject asks for restriction, not erasure
    "unlawful_processing",
    // (c) the controller no longer needs the data, the data subject needs it for legal claims
    "legal_claims",
    // (d) the data subject objected (art. 21(1)), pending verification of legitimate grounds
    "objection_pending",
    LEGAL_OBLIGATION,
];

/// The `scope` of a restriction the retention sweep sets on one record an erasure must keep,
/// for that record's own legal period: it protects that record only. A client's restriction
/// without it (an admin's) also keeps its documents from disposal while it is in force; one
/// with it does not, each document being kept by a marker of its own
/// (`store::entities::not_protected_at`). Either way every document of a restricted client is
/// shown and refused as restricted ([`binding`]).
pub const RECORD_SCOPE: &str = "record";

pub fn is_reason(code: &str) -> bool {
    REASONS.contains(&code)
}

/// Whether a stored restriction marker (`restricted: {reason, until, since}`) is in force at
/// `now`: set, and without an end or with its end still ahead. From `until` on the record is
/// served and changed as any other (the retention sweep lifts the marker the night after, with
/// its `*.unrestricted` event). An end that cannot be read keeps the restriction.
pub fn in_force(marker: &serde_json::Value, now: time::OffsetDateTime) -> bool {
    if !marker.is_object() {
        return false;
    }
    match marker["until"].as_str() {
        None => true,
        Some(until) => crate::domain::clock::parse_rfc3339(until).is_none_or(|end| now < end),
    }
}

/// When a marker stops restricting: `None` while it never does (no `until`, or one that cannot
/// be read, which keeps the restriction as [`in_force`] does).
fn end(marker: &serde_json::Value) -> Option<time::OffsetDateTime> {
    marker["until"]
        .as_str()
        .and_then(crate::domain::clock::parse_rfc3339)
}

/// The restriction that binds a record at `now` when two may: its own (`own`) and, for a
/// document, its client's (`inherited`). A record is restricted while either is in force, and
/// the one that ends later is the one shown (and refused by): neither can shorten the other.
/// `None` when neither is in force.
pub fn binding<'a>(
    own: &'a serde_json::Value,
    inherited: &'a serde_json::Value,
    now: time::OffsetDateTime,
) -> Option<&'a serde_json::Value> {
    match (in_force(own, now), in_force(inherited, now)) {
        (false, false) => None,
        (true, false) => Some(own),
        (false, true) => Some(inherited),
        (true, true) => match (end(own), end(inherited)) {
            (None, _) => Some(own),
            (Some(_), None) => Some(inherited),
            (Some(a), Some(b)) => Some(if b > a { inherited } else { own }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    #[test]
    fn a_restriction_is_in_force_until_its_end_and_forever_without_one() {
        let m = json!({"reason": "legal_claims", "until": "2027-03-01T00:00:00.000Z"});
        assert!(in_force(&m, datetime!(2027-02-28 23:59:59 UTC)));
        assert!(!in_force(&m, datetime!(2027-03-01 00:00:00 UTC)));
        assert!(!in_force(&m, datetime!(2027-03-01 00:00:01 UTC)));
        let open = json!({"reason": "legal_claims", "until": null});
        assert!(in_force(&open, datetime!(2100-01-01 00:00 UTC)));
        assert!(!in_force(
            &serde_json::Value::Null,
            datetime!(2000-01-01 00:00 UTC)
        ));
        let unreadable = json!({"reason": "legal_claims", "until": "soon"});
        assert!(in_force(&unreadable, datetime!(2100-01-01 00:00 UTC)));
    }

    #[test]
    fn a_record_is_restricted_while_either_restriction_is_in_force_and_the_later_end_binds() {
        let now = datetime!(2027-01-01 00:00 UTC);
        let short = json!({"reason": "accuracy_contested", "until": "2027-02-01T00:00:00.000Z"});
        let long = json!({"reason": "legal_claims", "until": "2031-01-01T00:00:00.000Z"});
        let open = json!({"reason": "legal_obligation", "until": null});
        let ended = json!({"reason": "legal_claims", "until": "2026-06-01T00:00:00.000Z"});
        let none = serde_json::Value::Null;
        // A document's own short restriction does not shorten its client's longer one.
        assert_eq!(binding(&short, &long, now), Some(&long));
        assert_eq!(binding(&long, &short, now), Some(&long));
        assert_eq!(binding(&short, &open, now), Some(&open));
        assert_eq!(binding(&open, &long, now), Some(&open));
        // An ended one never binds; the other still does.
        assert_eq!(binding(&ended, &short, now), Some(&short));
        assert_eq!(binding(&short, &ended, now), Some(&short));
        assert_eq!(binding(&none, &short, now), Some(&short));
        assert_eq!(binding(&ended, &none, now), None);
        assert_eq!(binding(&none, &none, now), None);
        // After the short one ends the long one binds alone.
        let later = datetime!(2027-03-01 00:00 UTC);
        assert_eq!(binding(&short, &long, later), Some(&long));
    }
}
