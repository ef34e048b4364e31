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

pub fn is_reason(code: &str) -> bool {
    REASONS.contains(&code)
}
