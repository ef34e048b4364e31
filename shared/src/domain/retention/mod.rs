//! Retention decisions: how long each kind of record is kept, and when it may (or must) be
//! deleted. Pure and sans-IO: the caller gathers what is known about a record into a
//! [`Record`], picks the account's [`Policy`] and passes `now`; [`decide`] answers with a
//! [`Decision`] and a short reason citing the rule that produced it.
//!
//! Precedence, strongest first:
//!
//! 1. **Legal holds** (on the account, or on the client for client-owned records) beat
//!    everything, including erasure requests: [`Decision::Held`].
//! 2. **Erasure requests** (UK GDPR Art. 17) for client-owned personal data (clients,
//!    documents, AML evidence) override the product's own retention periods and the
//!    soft-delete grace, but *not* a legal retention obligation: Art. 17(3)(b) disapplies the
//!    right to erasure where processing is necessary to comply with a legal obligation. While
//!    such an obligation runs (MLR 2017 reg 40 for AML evidence, HMRC record keeping for client
//!    records and their documents) the record is kept with processing restricted
//!    ([`Decision::KeepRestricted`]) and deleted when the obligation ends. Personal data with no
//!    legal retention obligation is deleted at once ([`Decision::Delete`]).
//! 3. **Retention periods**: when several rules apply to one record (a soft-deleted record
//!    still inside a legal retention period, say), the **longest** retention wins.
//!
//! Deletion happens exactly at the end instant: `now == end` deletes, one nanosecond earlier
//! keeps. Dates are shifted by calendar years with [`add_years`] (29 February becomes
//! 28 February in non-leap years); day periods are exact multiples of 24 hours. Nothing here
//! panics: arithmetic that would leave the supported date range saturates at its maximum.

use serde::{Deserialize, Serialize};
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// The kinds of record a retention rule can apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordType {
    /// A client record (HMRC: kept 6 years after the relationship ends).
    Client,
    /// Anti-money-laundering evidence: documents of kind `aml_evidence` or `identity`
    /// (MLR 2017 reg 40: kept 5 years after the relationship ends, then deleted).
    AmlEvidence,
    /// Any other document of a client (by default kept as long as its client).
    Document,
    /// An audit-trail row (holds pseudonymous ids only).
    AuditLog,
    /// A transactional-outbox row.
    Outbox,
    /// A stored idempotency key.
    IdempotencyKey,
    /// A dead-lettered message.
    DeadLetter,
}

/// Largest number of years any retention period may be set to.
const MAX_YEARS: u32 = 100;
/// Statutory minimums (years after the relationship ends).
pub const MIN_CLIENT_YEARS: u32 = 6;
pub const MIN_AML_YEARS: u32 = 5;
pub const MIN_DOCUMENT_YEARS: u32 = 5;
/// Largest number of days any retention period may be set to (100 years of 365.25 days).
const MAX_DAYS: u32 = 36_525;

/// One account's retention policy. [`Policy::uk_preset`] is the default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Client records: years after the relationship ends (HMRC: 6).
    pub client_years_after_end: u32,
    /// AML evidence: years after the relationship ends (MLR 2017 reg 40: 5).
    pub aml_years_after_end: u32,
    /// Other documents: years after their client's relationship ends (default 6, as clients).
    pub document_years_after_end: u32,
    /// Soft-deleted rows: days of grace before they are purged (default 30).
    pub soft_delete_grace_days: u32,
    /// Audit log: years after creation (default 10).
    pub audit_years: u32,
    /// Published outbox rows: days after publication (default 7).
    pub outbox_days: u32,
    /// Idempotency keys: days after creation (default 1).
    pub idempotency_days: u32,
    /// Dead letters: days after creation (default 30).
    pub dead_letter_days: u32,
}

impl Policy {
    /// The stored policy (an account's `retention`), or the UK preset when none (or an older
    /// shape) is stored.
    pub fn from_stored(stored: &serde_json::Value) -> Policy {
        serde_json::from_value(stored.clone()).unwrap_or_else(|_| Policy::uk_preset())
    }

    /// The UK preset: HMRC 6 years for clients and their documents, MLR 2017 reg 40 5 years
    /// for AML evidence, 30 days of soft-delete grace, 10 years of audit log, and 7 / 1 / 30
    /// days for published outbox rows, idempotency keys and dead letters.
    /// The UK preset; also the statutory floor `validate` enforces for the three record types.
    pub fn uk_preset() -> Self {
        Self {
            client_years_after_end: 6,
            aml_years_after_end: 5,
            document_years_after_end: 6,
            soft_delete_grace_days: 30,
            audit_years: 10,
            outbox_days: 7,
            idempotency_days: 1,
            dead_letter_days: 30,
        }
    }

    /// Rejects zero where zero makes no sense, and absurd values (more than 100 years), with
    /// a message naming every offending field.
    ///
    /// Zero is rejected for every period except `outbox_days`: purging an outbox row as soon
    /// as it is published is coherent, whereas zero years of client, document, AML or audit
    /// retention contradicts the obligations those periods exist for, zero days of idempotency
    /// makes the keys useless, zero days of dead letters leaves no time to inspect or replay
    /// them, and zero days of soft-delete grace leaves no undo window and no time for the
    /// deletion to propagate.
    ///
    /// Statutory minimums are enforced: a firm may keep records longer, never shorter. Client
    /// records at least 6 years after the relationship ends (HMRC), AML evidence at least 5
    /// (MLR 2017 reg 40), other client documents at least 5 (FCA SYSC 9 record keeping).
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        for (name, value, min, law) in [
            (
                "client_years_after_end",
                self.client_years_after_end,
                MIN_CLIENT_YEARS,
                "HMRC",
            ),
            (
                "aml_years_after_end",
                self.aml_years_after_end,
                MIN_AML_YEARS,
                "MLR 2017 reg 40",
            ),
            (
                "document_years_after_end",
                self.document_years_after_end,
                MIN_DOCUMENT_YEARS,
                "FCA SYSC 9",
            ),
        ] {
            if value < min {
                problems.push(format!(
                    "{name} is {value} years; the statutory minimum is {min} years ({law})"
                ));
            }
        }
        let years = [
            ("client_years_after_end", self.client_years_after_end),
            ("aml_years_after_end", self.aml_years_after_end),
            ("document_years_after_end", self.document_years_after_end),
            ("audit_years", self.audit_years),
        ];
        let days = [
            ("soft_delete_grace_days", self.soft_delete_grace_days, false),
            ("outbox_days", self.outbox_days, true),
            ("idempotency_days", self.idempotency_days, false),
            ("dead_letter_days", self.dead_letter_days, false),
        ];
        for (name, value) in years {
            if value == 0 && name == "audit_years" {
                problems.push(format!("{name} must be at least 1 year"));
            } else if value > MAX_YEARS {
                problems.push(format!(
                    "{name} is {value} years; at most {MAX_YEARS} years is allowed"
                ));
            }
        }
        for (name, value, zero_allowed) in days {
            if value == 0 && !zero_allowed {
                problems.push(format!("{name} must be at least 1 day"));
            } else if value > MAX_DAYS {
                problems.push(format!(
                    "{name} is {value} days; at most {MAX_DAYS} days ({MAX_YEARS} years) is allowed"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("invalid retention policy: {}", problems.join("; ")))
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::uk_preset()
    }
}

/// What is known about one record when deciding.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub record_type: RecordType,
    pub created_at: OffsetDateTime,
    /// Relationship end of the client it belongs to (clients, documents, AML evidence).
    pub relationship_ended_on: Option<Date>,
    pub soft_deleted_at: Option<OffsetDateTime>,
    /// For outbox rows: when it was published (None = not yet: never purge).
    pub published_at: Option<OffsetDateTime>,
    pub account_hold: bool,
    pub client_hold: bool,
    /// An erasure request covers this record (its client or user), received at this time.
    pub erasure_requested_at: Option<OffsetDateTime>,
}

/// What to do with one record now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Keep the record; `until` is when it becomes deletable (None = indefinitely, e.g. an
    /// active client or an unpublished outbox row).
    Keep {
        #[serde(with = "time::serde::rfc3339::option")]
        until: Option<OffsetDateTime>,
        reason: String,
    },
    /// Delete the record now.
    Delete { reason: String },
    /// Erasure requested but a legal retention obligation applies: keep restricted until `until`, then delete.
    KeepRestricted {
        #[serde(with = "time::serde::rfc3339")]
        until: OffsetDateTime,
        reason: String,
    },
    /// Under a legal hold: keep, whatever else applies.
    Held { reason: String },
}

/// How long a rule keeps a record.
#[derive(Debug, Clone, PartialEq)]
enum Retention {
    /// Deletable from this instant on.
    Until { end: OffsetDateTime, reason: String },
    /// No end can be computed (active relationship, unpublished outbox row).
    Indefinite { reason: String },
}

/// The decision for one record at `now`.
///
/// Rules, in order:
///
/// 1. An account hold holds every record; a client hold holds the client's own records
///    (client, documents, AML evidence) but not account-wide operational rows (audit log,
///    outbox, idempotency keys, dead letters). Holds beat erasure.
/// 2. Retention end by type: client, document and AML evidence run from 00:00 UTC of the
///    relationship end date (no end date: kept indefinitely); the audit log, idempotency keys
///    and dead letters from creation; outbox rows from publication (unpublished: never
///    deleted).
/// 3. Erasure (client, document and AML evidence only; the audit log holds pseudonymous ids
///    and follows its normal rule): if a legal retention end exists and is still in the
///    future, keep restricted until it (UK GDPR Art. 17(3)(b)); otherwise delete. A client or
///    document with no relationship end has no legal end and is deleted. AML evidence with no
///    relationship end is the one exception: erasure ends the relationship, so the MLR 2017
///    reg 40 period runs from the date the request was received (UTC) and the evidence is kept
///    restricted until then rather than deleted or kept indefinitely.
/// 4. Soft deletion: the record may be deleted at the later of the grace end and the
///    retention end (longest retention wins). A soft-deleted client or document with no
///    relationship end has no legal end to wait for: soft deletion says the data is no longer
///    wanted, so the grace end alone applies. Soft-deleted AML evidence with no relationship
///    end is kept: AML evidence of a live relationship must be kept. A soft-deleted
///    unpublished outbox row is likewise kept.
/// 5. Otherwise `now >= end` deletes and anything earlier keeps until `end`.
pub fn decide(policy: &Policy, record: &Record, now: OffsetDateTime) -> Decision {
    let client_owned = is_client_owned(record.record_type);
    if record.account_hold {
        return Decision::Held {
            reason: "legal hold on the account".to_owned(),
        };
    }
    if record.client_hold && client_owned {
        return Decision::Held {
            reason: "legal hold on the client".to_owned(),
        };
    }

    let retention = retention(policy, record);

    if let (Some(requested_at), true) = (record.erasure_requested_at, client_owned) {
        return erasure(policy, record.record_type, retention, requested_at, now);
    }

    let retention = match record.soft_deleted_at {
        Some(deleted_at) => with_soft_delete(policy, record.record_type, retention, deleted_at),
        None => retention,
    };

    match retention {
        Retention::Indefinite { reason } => Decision::Keep {
            until: None,
            reason,
        },
        Retention::Until { end, reason } if now >= end => Decision::Delete {
            reason: format!("retention ended: {reason}"),
        },
        Retention::Until { end, reason } => Decision::Keep {
            until: Some(end),
            reason,
        },
    }
}

/// The latest moment erasure must be complete: one calendar month after receipt.
///
/// A statutory month: the same day of the next month, or the last day of the next month when
/// that day does not exist (31 January -> 28 or 29 February). The time of day and the offset
/// are those of `received_at`. Saturates at the largest representable date-time.
pub fn erasure_deadline(received_at: OffsetDateTime) -> OffsetDateTime {
    let date = received_at.date();
    let next = if date.month() == Month::December {
        date.year()
            .checked_add(1)
            .map(|year| (year, Month::January))
    } else {
        Some((date.year(), date.month().next()))
    };
    let deadline = next.and_then(|(year, month)| {
        let day = date.day().min(time::util::days_in_month(month, year));
        Date::from_calendar_date(year, month, day).ok()
    });
    match deadline {
        Some(day) => received_at.replace_date(day),
        None => PrimitiveDateTime::MAX.assume_offset(received_at.offset()),
    }
}

/// `date + years` that never panics (29 Feb -> 28 Feb in non-leap years). Saturates at
/// [`Date::MAX`].
pub fn add_years(date: Date, years: u32) -> Date {
    let target = i64::from(date.year()) + i64::from(years);
    let year = match i32::try_from(target) {
        Ok(year) if year <= Date::MAX.year() => year,
        _ => return Date::MAX,
    };
    let day = date
        .day()
        .min(time::util::days_in_month(date.month(), year));
    Date::from_calendar_date(year, date.month(), day).unwrap_or(Date::MAX)
}

/// Client, documents and AML evidence belong to one client: client holds and erasure
/// requests apply to them.
fn is_client_owned(record_type: RecordType) -> bool {
    matches!(
        record_type,
        RecordType::Client | RecordType::Document | RecordType::AmlEvidence
    )
}

/// The retention rule for the record's type, ignoring holds, erasure and soft deletion.
fn retention(policy: &Policy, record: &Record) -> Retention {
    match record.record_type {
        RecordType::Client => after_relationship(
            record.relationship_ended_on,
            policy.client_years_after_end,
            "HMRC",
            "active client: kept while the relationship lasts",
        ),
        RecordType::AmlEvidence => after_relationship(
            record.relationship_ended_on,
            policy.aml_years_after_end,
            "MLR 2017 reg 40",
            "MLR 2017 reg 40: AML evidence of a live relationship is kept",
        ),
        RecordType::Document => after_relationship(
            record.relationship_ended_on,
            policy.document_years_after_end,
            "HMRC (documents follow their client)",
            "document of an active client: kept while the relationship lasts",
        ),
        RecordType::AuditLog => {
            let created = utc(record.created_at);
            Retention::Until {
                end: audit_retention_end(created, policy.audit_years),
                reason: format!(
                    "audit log: {} after creation on {}",
                    plural(policy.audit_years, "year"),
                    created.date()
                ),
            }
        }
        RecordType::Outbox => match record.published_at {
            None => Retention::Indefinite {
                reason: "outbox row not yet published: never purged".to_owned(),
            },
            Some(published_at) => {
                let published = utc(published_at);
                Retention::Until {
                    end: days_retention_end(published, policy.outbox_days),
                    reason: format!(
                        "outbox: {} after publication on {}",
                        plural(policy.outbox_days, "day"),
                        published.date()
                    ),
                }
            }
        },
        RecordType::IdempotencyKey => {
            after_creation(record, policy.idempotency_days, "idempotency key")
        }
        RecordType::DeadLetter => after_creation(record, policy.dead_letter_days, "dead letter"),
    }
}

/// `years` after 00:00 UTC of the relationship end date; no end date: indefinitely.
fn after_relationship(
    ended_on: Option<Date>,
    years: u32,
    rule: &str,
    active_reason: &str,
) -> Retention {
    match ended_on {
        None => Retention::Indefinite {
            reason: active_reason.to_owned(),
        },
        Some(ended_on) => Retention::Until {
            end: relationship_retention_end(ended_on, years),
            reason: format!(
                "{rule}: {} after the relationship ended on {ended_on}",
                plural(years, "year")
            ),
        },
    }
}

/// `days` after creation.
fn after_creation(record: &Record, days: u32, what: &str) -> Retention {
    let created = utc(record.created_at);
    Retention::Until {
        end: days_retention_end(created, days),
        reason: format!(
            "{what}: {} after creation on {}",
            plural(days, "day"),
            created.date()
        ),
    }
}

/// Soft deletion: the later of the grace end and the retention end (longest retention wins).
/// With no retention end, clients and documents are purged after the grace alone (soft
/// deletion says the data is no longer wanted and there is no legal end to wait for); AML
/// evidence of a live relationship and unpublished outbox rows stay kept indefinitely.
fn with_soft_delete(
    policy: &Policy,
    record_type: RecordType,
    retention: Retention,
    deleted_at: OffsetDateTime,
) -> Retention {
    let deleted = utc(deleted_at);
    let grace_end = days_retention_end(deleted, policy.soft_delete_grace_days);
    let grace = plural(policy.soft_delete_grace_days, "day");
    let grace_reason = format!("soft-deleted on {}: {grace} grace period", deleted.date());
    match retention {
        Retention::Until { end, reason } if end > grace_end => Retention::Until {
            end,
            reason: format!("{reason} (longest retention wins over the {grace} soft-delete grace)"),
        },
        Retention::Until { .. } => Retention::Until {
            end: grace_end,
            reason: grace_reason,
        },
        Retention::Indefinite { .. }
            if matches!(record_type, RecordType::Client | RecordType::Document) =>
        {
            Retention::Until {
                end: grace_end,
                reason: format!("{grace_reason} (no relationship end, so no legal retention)"),
            }
        }
        indefinite @ Retention::Indefinite { .. } => indefinite,
    }
}

/// An erasure request on a client-owned record (UK GDPR Art. 17). Erasure overrides the
/// product's retention periods and the soft-delete grace, but not a legal retention
/// obligation (Art. 17(3)(b)): while one runs, the record is kept with processing restricted.
fn erasure(
    policy: &Policy,
    record_type: RecordType,
    retention: Retention,
    requested_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Decision {
    let requested = utc(requested_at);
    let received = requested.date();
    let due = erasure_deadline(requested).date();
    let retention = match retention {
        // Erasure ends the relationship: MLR 2017 reg 40 then keeps the evidence for the
        // period after it, counted from the request.
        Retention::Indefinite { .. } if record_type == RecordType::AmlEvidence => {
            let years = policy.aml_years_after_end;
            Retention::Until {
                end: relationship_retention_end(received, years),
                reason: format!(
                    "MLR 2017 reg 40: {} after the relationship ended with the erasure request",
                    plural(years, "year")
                ),
            }
        }
        other => other,
    };
    match retention {
        Retention::Until { end, reason } if now < end => Decision::KeepRestricted {
            until: end,
            reason: format!(
                "UK GDPR Art. 17(3)(b): erasure requested on {received} is deferred by a legal \
                 obligation ({reason}); processing restricted until then"
            ),
        },
        Retention::Until { reason, .. } => Decision::Delete {
            reason: format!(
                "UK GDPR Art. 17: erasure requested on {received}, due by {due}; the legal \
                 retention ({reason}) has ended"
            ),
        },
        Retention::Indefinite { .. } => Decision::Delete {
            reason: format!(
                "UK GDPR Art. 17: erasure requested on {received}, due by {due}; no legal \
                 retention obligation applies"
            ),
        },
    }
}

/// The one definition of a relationship-end retention boundary: a record kept `years` after
/// a relationship that ended on `ended_on` may go from this instant on (00:00 UTC of the date
/// `years` later). [`decide`] deletes at `now >= end`; the sweep's candidate query selects
/// `ended_on <= latest_due_relationship_end(years, now)`, which is the same set.
pub fn relationship_retention_end(ended_on: Date, years: u32) -> OffsetDateTime {
    midnight_utc(add_years(ended_on, years))
}

/// The latest relationship end whose `years` of retention are over at `now`: every end date
/// `d <= ` this one has `relationship_retention_end(d, years) <= now`, and no later one does.
/// (29 February counts: `add_years` maps it onto 28 February, the same day as 28 February.)
pub fn latest_due_relationship_end(years: u32, now: OffsetDateTime) -> Date {
    let today = utc(now).date();
    let target = i64::from(today.year()) - i64::from(years.min(9_000));
    let Ok(year) = i32::try_from(target) else {
        return Date::MIN;
    };
    let day = today
        .day()
        .min(time::util::days_in_month(today.month(), year));
    let mut bound = Date::from_calendar_date(year, today.month(), day).unwrap_or(Date::MIN);
    // At most one later day maps onto today too (29 February onto 28 February).
    while let Some(next) = bound.next_day() {
        if add_years(next, years) <= today {
            bound = next;
        } else {
            break;
        }
    }
    bound
}

/// The one definition of a day-count boundary (soft-delete grace, idempotency keys, dead
/// letters, published outbox rows): `days` exact 24-hour days after `from`.
/// When an audit row recorded at `created` has been kept its `years` (same instant, `years`
/// calendar years on; 29 February onto 28 February). The audit log's own disposal walks the
/// chain from its start and disposes of the prefix whose end has passed.
pub fn audit_retention_end(created: OffsetDateTime, years: u32) -> OffsetDateTime {
    let created = utc(created);
    created.replace_date(add_years(created.date(), years))
}

pub fn days_retention_end(from: OffsetDateTime, days: u32) -> OffsetDateTime {
    plus_days(utc(from), days)
}

/// The latest start whose `days` are over at `now` (`from <= this` exactly when
/// `days_retention_end(from, days) <= now`): the candidate bound of a day-count rule.
pub fn latest_due_start(days: u32, now: OffsetDateTime) -> OffsetDateTime {
    utc(now).saturating_sub(Duration::days(i64::from(days)))
}

/// 00:00 UTC of `date`.
fn midnight_utc(date: Date) -> OffsetDateTime {
    date.midnight().assume_utc()
}

/// The same instant in UTC, or unchanged when UTC falls outside the supported range.
fn utc(at: OffsetDateTime) -> OffsetDateTime {
    at.checked_to_offset(UtcOffset::UTC).unwrap_or(at)
}

/// `at + days * 24h`, saturating.
fn plus_days(at: OffsetDateTime, days: u32) -> OffsetDateTime {
    at.saturating_add(Duration::days(i64::from(days)))
}

/// "1 day", "30 days".
fn plural(n: u32, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests;
