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
                end: created.replace_date(add_years(created.date(), policy.audit_years)),
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
                    end: plus_days(published, policy.outbox_days),
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
            end: midnight_utc(add_years(ended_on, years)),
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
        end: plus_days(created, days),
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
    let grace_end = plus_days(deleted, policy.soft_delete_grace_days);
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
                end: midnight_utc(add_years(received, years)),
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
mod tests {
    use super::*;
    use time::macros::{date, datetime, offset};

    const NS: Duration = Duration::nanoseconds(1);

    /// The expected shape of a decision (reasons are checked by substring).
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Want {
        Keep(Option<OffsetDateTime>),
        Delete,
        Restricted(OffsetDateTime),
        Held,
    }

    struct Case {
        name: &'static str,
        policy: Policy,
        record: Record,
        now: OffsetDateTime,
        want: Want,
        reason_has: Vec<&'static str>,
    }

    fn shape(decision: &Decision) -> (Want, &str) {
        match decision {
            Decision::Keep { until, reason } => (Want::Keep(*until), reason),
            Decision::Delete { reason } => (Want::Delete, reason),
            Decision::KeepRestricted { until, reason } => (Want::Restricted(*until), reason),
            Decision::Held { reason } => (Want::Held, reason),
        }
    }

    fn run(cases: &[Case]) {
        assert!(!cases.is_empty());
        for case in cases {
            let decision = decide(&case.policy, &case.record, case.now);
            let (got, reason) = shape(&decision);
            assert_eq!(got, case.want, "{}: {decision:?}", case.name);
            for has in &case.reason_has {
                assert!(
                    reason.contains(has),
                    "{}: reason {reason:?} lacks {has:?}",
                    case.name
                );
            }
        }
    }

    fn case(name: &'static str, record: Record, now: OffsetDateTime, want: Want) -> Case {
        Case {
            name,
            policy: Policy::uk_preset(),
            record,
            now,
            want,
            reason_has: Vec::new(),
        }
    }

    impl Case {
        fn reason(mut self, has: &'static str) -> Self {
            self.reason_has.push(has);
            self
        }
        fn policy(mut self, policy: Policy) -> Self {
            self.policy = policy;
            self
        }
    }

    /// A bare record of `record_type`: created 2015-06-01 12:00 UTC, nothing else known.
    fn rec(record_type: RecordType) -> Record {
        Record {
            record_type,
            created_at: datetime!(2015-06-01 12:00 UTC),
            relationship_ended_on: None,
            soft_deleted_at: None,
            published_at: None,
            account_hold: false,
            client_hold: false,
            erasure_requested_at: None,
        }
    }

    /// A client-owned record whose relationship ended on 2019-03-31.
    fn ended(record_type: RecordType) -> Record {
        Record {
            relationship_ended_on: Some(date!(2019 - 03 - 31)),
            ..rec(record_type)
        }
    }

    const ALL_TYPES: [RecordType; 7] = [
        RecordType::Client,
        RecordType::AmlEvidence,
        RecordType::Document,
        RecordType::AuditLog,
        RecordType::Outbox,
        RecordType::IdempotencyKey,
        RecordType::DeadLetter,
    ];

    /// One record per type with its retention end under the UK preset.
    fn boundary_records() -> Vec<(Record, OffsetDateTime, &'static str)> {
        let published = datetime!(2024-01-01 10:00 UTC);
        let created = datetime!(2024-01-01 10:00 UTC);
        vec![
            (
                ended(RecordType::Client),
                datetime!(2025-03-31 0:00 UTC),
                "HMRC: 6 years after the relationship ended on 2019-03-31",
            ),
            (
                ended(RecordType::AmlEvidence),
                datetime!(2024-03-31 0:00 UTC),
                "MLR 2017 reg 40: 5 years after the relationship ended on 2019-03-31",
            ),
            (
                ended(RecordType::Document),
                datetime!(2025-03-31 0:00 UTC),
                "6 years after the relationship ended on 2019-03-31",
            ),
            (
                rec(RecordType::AuditLog),
                datetime!(2025-06-01 12:00 UTC),
                "audit log: 10 years after creation on 2015-06-01",
            ),
            (
                Record {
                    published_at: Some(published),
                    ..rec(RecordType::Outbox)
                },
                datetime!(2024-01-08 10:00 UTC),
                "outbox: 7 days after publication on 2024-01-01",
            ),
            (
                Record {
                    created_at: created,
                    ..rec(RecordType::IdempotencyKey)
                },
                datetime!(2024-01-02 10:00 UTC),
                "idempotency key: 1 day after creation on 2024-01-01",
            ),
            (
                Record {
                    created_at: created,
                    ..rec(RecordType::DeadLetter)
                },
                datetime!(2024-01-31 10:00 UTC),
                "dead letter: 30 days after creation on 2024-01-01",
            ),
        ]
    }

    #[test]
    fn each_record_type_is_deleted_exactly_at_its_end_and_kept_one_nanosecond_before() {
        let mut cases = Vec::new();
        for (record, end, reason) in boundary_records() {
            cases.push(
                case("at the end", record.clone(), end, Want::Delete)
                    .reason(reason)
                    .reason("retention ended"),
            );
            cases.push(
                case(
                    "just before",
                    record.clone(),
                    end - NS,
                    Want::Keep(Some(end)),
                )
                .reason(reason),
            );
            cases.push(case(
                "long after",
                record.clone(),
                end + Duration::days(400),
                Want::Delete,
            ));
            // The same instant written in another offset still deletes.
            cases.push(case(
                "at the end, other offset",
                record,
                end.to_offset(offset!(+1)),
                Want::Delete,
            ));
        }
        assert_eq!(cases.len(), ALL_TYPES.len() * 4);
        run(&cases);
    }

    #[test]
    fn retention_periods_follow_the_account_policy() {
        let policy = Policy {
            client_years_after_end: 7,
            aml_years_after_end: 8,
            document_years_after_end: 2,
            audit_years: 20,
            idempotency_days: 3,
            ..Policy::uk_preset()
        };
        let now = datetime!(2020-01-01 0:00 UTC);
        run(&[
            case(
                "client 7y",
                ended(RecordType::Client),
                now,
                Want::Keep(Some(datetime!(2026-03-31 0:00 UTC))),
            )
            .policy(policy.clone())
            .reason("HMRC: 7 years"),
            case(
                "aml 8y",
                ended(RecordType::AmlEvidence),
                now,
                Want::Keep(Some(datetime!(2027-03-31 0:00 UTC))),
            )
            .policy(policy.clone())
            .reason("MLR 2017 reg 40: 8 years"),
            case(
                "document 2y",
                ended(RecordType::Document),
                now,
                Want::Keep(Some(datetime!(2021-03-31 0:00 UTC))),
            )
            .policy(policy.clone())
            .reason("2 years"),
            case(
                "audit 20y",
                rec(RecordType::AuditLog),
                now,
                Want::Keep(Some(datetime!(2035-06-01 12:00 UTC))),
            )
            .policy(policy.clone())
            .reason("20 years"),
            case(
                "idempotency 3d",
                rec(RecordType::IdempotencyKey),
                datetime!(2015-06-04 11:59 UTC),
                Want::Keep(Some(datetime!(2015-06-04 12:00 UTC))),
            )
            .policy(policy)
            .reason("3 days"),
        ]);
    }

    #[test]
    fn active_client_and_its_records_are_kept_indefinitely() {
        let far_future = datetime!(2200-01-01 0:00 UTC);
        run(&[
            case(
                "client",
                rec(RecordType::Client),
                far_future,
                Want::Keep(None),
            )
            .reason("active client"),
            case(
                "document",
                rec(RecordType::Document),
                far_future,
                Want::Keep(None),
            )
            .reason("active client"),
            case(
                "aml evidence",
                rec(RecordType::AmlEvidence),
                far_future,
                Want::Keep(None),
            )
            .reason("AML evidence of a live relationship is kept"),
        ]);
    }

    #[test]
    fn holds_beat_deletion_and_erasure() {
        let long_after = datetime!(2100-01-01 0:00 UTC);
        let erased = Some(datetime!(2024-01-10 9:00 UTC));
        let mut cases = Vec::new();
        for (record, _, _) in boundary_records() {
            cases.push(
                case(
                    "account hold on an expired record",
                    Record {
                        account_hold: true,
                        ..record.clone()
                    },
                    long_after,
                    Want::Held,
                )
                .reason("legal hold on the account"),
            );
            cases.push(
                case(
                    "account hold on an expired, soft-deleted record with an erasure request",
                    Record {
                        account_hold: true,
                        client_hold: true,
                        soft_deleted_at: Some(datetime!(2020-01-01 0:00 UTC)),
                        erasure_requested_at: erased,
                        ..record
                    },
                    long_after,
                    Want::Held,
                )
                .reason("legal hold on the account"),
            );
        }
        for record_type in [
            RecordType::Client,
            RecordType::Document,
            RecordType::AmlEvidence,
        ] {
            cases.push(
                case(
                    "client hold on an expired record",
                    Record {
                        client_hold: true,
                        ..ended(record_type)
                    },
                    long_after,
                    Want::Held,
                )
                .reason("legal hold on the client"),
            );
            cases.push(
                case(
                    "client hold beats erasure of an active client",
                    Record {
                        client_hold: true,
                        erasure_requested_at: erased,
                        ..rec(record_type)
                    },
                    long_after,
                    Want::Held,
                )
                .reason("legal hold on the client"),
            );
            cases.push(
                case(
                    "client hold beats the soft-delete grace",
                    Record {
                        client_hold: true,
                        soft_deleted_at: Some(datetime!(2020-01-01 0:00 UTC)),
                        ..rec(record_type)
                    },
                    long_after,
                    Want::Held,
                )
                .reason("legal hold on the client"),
            );
        }
        run(&cases);
    }

    #[test]
    fn client_hold_does_not_hold_account_wide_operational_rows() {
        let long_after = datetime!(2100-01-01 0:00 UTC);
        let mut cases = Vec::new();
        for (record, _, reason) in boundary_records() {
            if is_client_owned(record.record_type) {
                continue;
            }
            cases.push(
                case(
                    "client hold ignored",
                    Record {
                        client_hold: true,
                        ..record
                    },
                    long_after,
                    Want::Delete,
                )
                .reason(reason),
            );
        }
        assert_eq!(
            cases.len(),
            4,
            "audit log, outbox, idempotency key, dead letter"
        );
        run(&cases);
    }

    #[test]
    fn longest_retention_wins_for_soft_deleted_records() {
        let soft_deleted = Some(datetime!(2021-04-01 9:00 UTC));
        let aml_end = datetime!(2024-03-31 0:00 UTC);
        let client_end = datetime!(2025-03-31 0:00 UTC);
        let aml = Record {
            soft_deleted_at: soft_deleted,
            ..ended(RecordType::AmlEvidence)
        };
        let document = Record {
            soft_deleted_at: soft_deleted,
            ..ended(RecordType::Document)
        };
        // Soft-deleted long after the legal period: the grace runs from the soft deletion.
        let late = Record {
            soft_deleted_at: Some(datetime!(2030-01-01 0:00 UTC)),
            ..ended(RecordType::AmlEvidence)
        };
        let late_grace_end = datetime!(2030-01-31 0:00 UTC);
        run(&[
            case(
                "soft-deleted AML evidence, relationship ended 2 years ago: kept to the MLR end",
                aml.clone(),
                datetime!(2021-06-01 0:00 UTC),
                Want::Keep(Some(aml_end)),
            )
            .reason("MLR 2017 reg 40: 5 years")
            .reason("longest retention wins over the 30 days soft-delete grace"),
            case(
                "... and deleted at the MLR end",
                aml.clone(),
                aml_end,
                Want::Delete,
            ),
            case(
                "... kept one nanosecond before",
                aml,
                aml_end - NS,
                Want::Keep(Some(aml_end)),
            ),
            case(
                "soft-deleted document of an ended relationship: kept to the HMRC end",
                document,
                datetime!(2021-06-01 0:00 UTC),
                Want::Keep(Some(client_end)),
            )
            .reason("HMRC"),
            case(
                "grace outlasts an expired legal period",
                late.clone(),
                datetime!(2030-01-10 0:00 UTC),
                Want::Keep(Some(late_grace_end)),
            )
            .reason("soft-deleted on 2030-01-01: 30 days grace period"),
            case(
                "... and deleted when the grace ends",
                late,
                late_grace_end,
                Want::Delete,
            )
            .reason("soft-deleted on 2030-01-01"),
            case(
                "soft-deleted audit row keeps its 10 years",
                Record {
                    soft_deleted_at: Some(datetime!(2016-01-01 0:00 UTC)),
                    ..rec(RecordType::AuditLog)
                },
                datetime!(2020-01-01 0:00 UTC),
                Want::Keep(Some(datetime!(2025-06-01 12:00 UTC))),
            )
            .reason("audit log"),
            case(
                "soft-deleted dead letter: the longer grace wins",
                Record {
                    created_at: datetime!(2024-01-01 0:00 UTC),
                    soft_deleted_at: Some(datetime!(2024-01-20 0:00 UTC)),
                    ..rec(RecordType::DeadLetter)
                },
                datetime!(2024-02-05 0:00 UTC),
                Want::Keep(Some(datetime!(2024-02-19 0:00 UTC))),
            )
            .reason("grace period"),
        ]);
    }

    #[test]
    fn soft_deleted_records_without_relationship_end() {
        let soft_deleted = datetime!(2024-01-01 9:30 UTC);
        let grace_end = datetime!(2024-01-31 9:30 UTC);
        let mut cases = Vec::new();
        for record_type in [RecordType::Document, RecordType::Client] {
            let record = Record {
                soft_deleted_at: Some(soft_deleted),
                ..rec(record_type)
            };
            cases.push(
                case(
                    "purged when the grace ends",
                    record.clone(),
                    grace_end,
                    Want::Delete,
                )
                .reason("soft-deleted on 2024-01-01: 30 days grace period"),
            );
            cases.push(
                case(
                    "kept during the grace",
                    record,
                    grace_end - NS,
                    Want::Keep(Some(grace_end)),
                )
                .reason("no relationship end"),
            );
        }
        cases.push(
            case(
                "soft-deleted AML evidence of a live relationship is kept",
                Record {
                    soft_deleted_at: Some(soft_deleted),
                    ..rec(RecordType::AmlEvidence)
                },
                datetime!(2100-01-01 0:00 UTC),
                Want::Keep(None),
            )
            .reason("MLR 2017 reg 40"),
        );
        cases.push(
            case(
                "soft-deleted unpublished outbox row is kept",
                Record {
                    soft_deleted_at: Some(soft_deleted),
                    ..rec(RecordType::Outbox)
                },
                datetime!(2100-01-01 0:00 UTC),
                Want::Keep(None),
            )
            .reason("not yet published"),
        );
        run(&cases);
    }

    #[test]
    fn erasure_deletes_personal_data_without_a_legal_obligation() {
        let requested = Some(datetime!(2024-01-31 15:00 UTC));
        let now = datetime!(2024-02-01 0:00 UTC);
        let mut cases = Vec::new();
        for record_type in [RecordType::Client, RecordType::Document] {
            cases.push(
                case(
                    "active client's data is erased",
                    Record {
                        erasure_requested_at: requested,
                        ..rec(record_type)
                    },
                    now,
                    Want::Delete,
                )
                .reason("UK GDPR Art. 17: erasure requested on 2024-01-31, due by 2024-02-29")
                .reason("no legal retention obligation applies"),
            );
            cases.push(
                case(
                    "erasure overrides the soft-delete grace",
                    Record {
                        erasure_requested_at: requested,
                        soft_deleted_at: Some(datetime!(2024-01-30 0:00 UTC)),
                        ..rec(record_type)
                    },
                    now,
                    Want::Delete,
                )
                .reason("UK GDPR Art. 17"),
            );
        }
        cases.push(
            case(
                "erasure once the legal period has ended deletes",
                Record {
                    erasure_requested_at: requested,
                    ..ended(RecordType::Document)
                },
                datetime!(2025-04-01 0:00 UTC),
                Want::Delete,
            )
            .reason("has ended"),
        );
        run(&cases);
    }

    #[test]
    fn erasure_inside_a_legal_retention_period_is_restricted_until_it_ends() {
        let requested = Some(datetime!(2021-03-31 10:00 UTC));
        let aml_end = datetime!(2024-03-31 0:00 UTC);
        let hmrc_end = datetime!(2025-03-31 0:00 UTC);
        let aml = Record {
            erasure_requested_at: requested,
            ..ended(RecordType::AmlEvidence)
        };
        let client = Record {
            erasure_requested_at: requested,
            ..ended(RecordType::Client)
        };
        let document = Record {
            erasure_requested_at: requested,
            soft_deleted_at: Some(datetime!(2021-01-01 0:00 UTC)),
            ..ended(RecordType::Document)
        };
        let active_aml = Record {
            erasure_requested_at: requested,
            ..rec(RecordType::AmlEvidence)
        };
        let active_aml_end = datetime!(2026-03-31 0:00 UTC);
        run(&[
            case(
                "AML evidence inside its 5 years",
                aml.clone(),
                datetime!(2021-04-01 0:00 UTC),
                Want::Restricted(aml_end),
            )
            .reason("UK GDPR Art. 17(3)(b)")
            .reason("MLR 2017 reg 40: 5 years after the relationship ended on 2019-03-31"),
            case(
                "... one nanosecond before the end",
                aml.clone(),
                aml_end - NS,
                Want::Restricted(aml_end),
            ),
            case("... deleted at the end", aml.clone(), aml_end, Want::Delete).reason("has ended"),
            case(
                "... deleted once past it",
                aml,
                datetime!(2030-01-01 0:00 UTC),
                Want::Delete,
            )
            .reason("UK GDPR Art. 17: erasure requested on 2021-03-31, due by 2021-04-30"),
            case(
                "client inside the HMRC 6 years",
                client.clone(),
                datetime!(2021-04-01 0:00 UTC),
                Want::Restricted(hmrc_end),
            )
            .reason("HMRC: 6 years"),
            case(
                "... deleted at the HMRC end",
                client,
                hmrc_end,
                Want::Delete,
            ),
            case(
                "soft-deleted document inside the HMRC 6 years",
                document.clone(),
                datetime!(2022-01-01 0:00 UTC),
                Want::Restricted(hmrc_end),
            )
            .reason("HMRC"),
            case(
                "... deleted at the HMRC end",
                document,
                hmrc_end,
                Want::Delete,
            ),
            case(
                "AML evidence of an active client: 5 years from the erasure request",
                active_aml.clone(),
                datetime!(2021-04-01 0:00 UTC),
                Want::Restricted(active_aml_end),
            )
            .reason("ended with the erasure request"),
            case(
                "... deleted when those 5 years end",
                active_aml,
                active_aml_end,
                Want::Delete,
            ),
        ]);
    }

    #[test]
    fn erasure_does_not_touch_audit_or_operational_rows() {
        let requested = Some(datetime!(2024-01-10 9:00 UTC));
        let mut cases = Vec::new();
        for (record, end, reason) in boundary_records() {
            if is_client_owned(record.record_type) {
                continue;
            }
            let record = Record {
                erasure_requested_at: requested,
                ..record
            };
            cases.push(
                case(
                    "normal rule, before the end",
                    record.clone(),
                    end - NS,
                    Want::Keep(Some(end)),
                )
                .reason(reason),
            );
            cases.push(case("normal rule, at the end", record, end, Want::Delete).reason(reason));
        }
        assert_eq!(cases.len(), 8);
        run(&cases);
    }

    #[test]
    fn unpublished_outbox_rows_are_never_deleted() {
        let record = rec(RecordType::Outbox);
        let mut cases = Vec::new();
        for now in [
            datetime!(2015-06-01 12:00 UTC),
            datetime!(2015-06-08 12:00 UTC),
            datetime!(2999-01-01 0:00 UTC),
            PrimitiveDateTime::MAX.assume_utc(),
        ] {
            cases.push(
                case("unpublished", record.clone(), now, Want::Keep(None)).reason("never purged"),
            );
        }
        run(&cases);
    }

    #[test]
    fn add_years_clamps_29_february_and_saturates() {
        let cases = [
            (date!(2024 - 02 - 29), 1, date!(2025 - 02 - 28)),
            (date!(2024 - 02 - 29), 4, date!(2028 - 02 - 29)),
            (date!(2024 - 02 - 29), 6, date!(2030 - 02 - 28)),
            (date!(2020 - 02 - 29), 100, date!(2120 - 02 - 29)),
            (date!(2000 - 02 - 29), 100, date!(2100 - 02 - 28)),
            (date!(2019 - 03 - 31), 0, date!(2019 - 03 - 31)),
            (date!(2019 - 03 - 31), 6, date!(2025 - 03 - 31)),
            (date!(2019 - 12 - 31), 5, date!(2024 - 12 - 31)),
            (date!(9999 - 12 - 31), 1, Date::MAX),
            (date!(2024 - 01 - 01), u32::MAX, Date::MAX),
            (Date::MIN, u32::MAX, Date::MAX),
        ];
        for (date, years, want) in cases {
            assert_eq!(add_years(date, years), want, "{date} + {years} years");
        }
    }

    #[test]
    fn erasure_deadline_is_one_calendar_month_after_receipt() {
        let cases = [
            (
                datetime!(2023-01-31 10:00 UTC),
                datetime!(2023-02-28 10:00 UTC),
            ),
            (
                datetime!(2024-01-31 10:00 UTC),
                datetime!(2024-02-29 10:00 UTC),
            ),
            (
                datetime!(2024-01-29 10:00 UTC),
                datetime!(2024-02-29 10:00 UTC),
            ),
            (
                datetime!(2024-03-15 8:30 UTC),
                datetime!(2024-04-15 8:30 UTC),
            ),
            (
                datetime!(2024-03-31 0:00 UTC),
                datetime!(2024-04-30 0:00 UTC),
            ),
            (
                datetime!(2024-12-31 23:59 UTC),
                datetime!(2025-01-31 23:59 UTC),
            ),
            (
                datetime!(2024-08-31 12:00 +1),
                datetime!(2024-09-30 12:00 +1),
            ),
            (
                datetime!(9999-12-31 0:00 UTC),
                PrimitiveDateTime::MAX.assume_utc(),
            ),
        ];
        for (received, want) in cases {
            let got = erasure_deadline(received);
            assert_eq!(got, want, "received {received}");
            assert_eq!(got.offset(), want.offset(), "received {received}");
        }
    }

    #[test]
    fn uk_preset_is_valid_and_is_the_default() {
        let preset = Policy::uk_preset();
        assert_eq!(preset, Policy::default());
        assert_eq!(preset.validate(), Ok(()));
        assert_eq!(
            (
                preset.client_years_after_end,
                preset.aml_years_after_end,
                preset.document_years_after_end
            ),
            (6, 5, 6)
        );
        assert_eq!(
            (preset.soft_delete_grace_days, preset.audit_years),
            (30, 10)
        );
        assert_eq!(
            (
                preset.outbox_days,
                preset.idempotency_days,
                preset.dead_letter_days
            ),
            (7, 1, 30)
        );
    }

    #[test]
    fn policy_validate_rejects_zeros_and_absurd_values() {
        let with = |change: fn(&mut Policy)| {
            let mut policy = Policy::uk_preset();
            change(&mut policy);
            policy
        };
        let cases: Vec<(&str, Policy, Option<&str>)> = vec![
            (
                "client years zero",
                with(|p| p.client_years_after_end = 0),
                Some("client_years_after_end is 0 years; the statutory minimum is 6 years (HMRC)"),
            ),
            (
                "client five years is below HMRC's six",
                with(|p| p.client_years_after_end = 5),
                Some("client_years_after_end is 5 years; the statutory minimum is 6"),
            ),
            (
                "aml four years is below MLR's five",
                with(|p| p.aml_years_after_end = 4),
                Some("aml_years_after_end is 4 years; the statutory minimum is 5 years (MLR 2017 reg 40)"),
            ),
            (
                "documents four years is below five",
                with(|p| p.document_years_after_end = 4),
                Some("document_years_after_end is 4 years; the statutory minimum is 5"),
            ),
            (
                "longer than the minimum is allowed",
                with(|p| {
                    p.client_years_after_end = 7;
                    p.aml_years_after_end = 5;
                    p.document_years_after_end = 5
                }),
                None,
            ),
            (
                "aml years zero",
                with(|p| p.aml_years_after_end = 0),
                Some("aml_years_after_end is 0 years; the statutory minimum is 5"),
            ),
            (
                "document years zero",
                with(|p| p.document_years_after_end = 0),
                Some("document_years_after_end"),
            ),
            (
                "audit years zero",
                with(|p| p.audit_years = 0),
                Some("audit_years must be at least 1 year"),
            ),
            (
                "grace zero",
                with(|p| p.soft_delete_grace_days = 0),
                Some("soft_delete_grace_days must be at least 1 day"),
            ),
            (
                "idempotency zero",
                with(|p| p.idempotency_days = 0),
                Some("idempotency_days"),
            ),
            (
                "dead letters zero",
                with(|p| p.dead_letter_days = 0),
                Some("dead_letter_days"),
            ),
            ("outbox zero is allowed", with(|p| p.outbox_days = 0), None),
            (
                "client 101 years",
                with(|p| p.client_years_after_end = 101),
                Some("client_years_after_end is 101 years; at most 100"),
            ),
            (
                "audit u32::MAX years",
                with(|p| p.audit_years = u32::MAX),
                Some("audit_years is 4294967295 years"),
            ),
            (
                "client 100 years is allowed",
                with(|p| p.client_years_after_end = 100),
                None,
            ),
            (
                "outbox 36526 days",
                with(|p| p.outbox_days = 36_526),
                Some("outbox_days is 36526 days"),
            ),
            (
                "grace 36525 days is allowed",
                with(|p| p.soft_delete_grace_days = 36_525),
                None,
            ),
            (
                "dead letters u32::MAX days",
                with(|p| p.dead_letter_days = u32::MAX),
                Some("dead_letter_days"),
            ),
        ];
        for (name, policy, want) in cases {
            match (policy.validate(), want) {
                (Ok(()), None) => {}
                (Err(message), Some(has)) => {
                    assert!(message.contains(has), "{name}: {message:?} lacks {has:?}");
                }
                (got, want) => panic!("{name}: got {got:?}, wanted an error containing {want:?}"),
            }
        }
        let all_zero = Policy {
            client_years_after_end: 0,
            aml_years_after_end: 0,
            document_years_after_end: 0,
            soft_delete_grace_days: 0,
            audit_years: 0,
            outbox_days: 0,
            idempotency_days: 0,
            dead_letter_days: 0,
        };
        let message = all_zero.validate().err().unwrap_or_default();
        assert_eq!(
            message.matches("must be at least 1").count(),
            4,
            "{message}"
        );
        assert_eq!(
            message.matches("the statutory minimum").count(),
            3,
            "{message}"
        );
    }

    #[test]
    fn policy_json_round_trips_and_rejects_unknown_fields() {
        let preset = Policy::uk_preset();
        let json = serde_json::to_value(&preset).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "client_years_after_end": 6, "aml_years_after_end": 5,
                "document_years_after_end": 6, "soft_delete_grace_days": 30,
                "audit_years": 10, "outbox_days": 7, "idempotency_days": 1,
                "dead_letter_days": 30
            })
        );
        assert_eq!(
            serde_json::from_value::<Policy>(json.clone()).unwrap(),
            preset
        );
        let mut unknown = json;
        unknown["purge_everything"] = serde_json::json!(true);
        assert!(serde_json::from_value::<Policy>(unknown).is_err());
        assert_eq!(
            serde_json::to_value(RecordType::AmlEvidence).unwrap(),
            serde_json::json!("aml_evidence")
        );
        assert_eq!(
            serde_json::from_value::<RecordType>(serde_json::json!("idempotency_key")).unwrap(),
            RecordType::IdempotencyKey
        );
    }

    #[test]
    fn decisions_serialize_with_a_decision_tag() {
        let cases = [
            (
                Decision::Keep {
                    until: Some(datetime!(2025-03-31 0:00 UTC)),
                    reason: "r".into(),
                },
                serde_json::json!({"decision": "keep", "until": "2025-03-31T00:00:00Z", "reason": "r"}),
            ),
            (
                Decision::Keep {
                    until: None,
                    reason: "r".into(),
                },
                serde_json::json!({"decision": "keep", "until": null, "reason": "r"}),
            ),
            (
                Decision::Delete { reason: "r".into() },
                serde_json::json!({"decision": "delete", "reason": "r"}),
            ),
            (
                Decision::KeepRestricted {
                    until: datetime!(2024-03-31 0:00 UTC),
                    reason: "r".into(),
                },
                serde_json::json!({"decision": "keep_restricted", "until": "2024-03-31T00:00:00Z", "reason": "r"}),
            ),
            (
                Decision::Held { reason: "r".into() },
                serde_json::json!({"decision": "held", "reason": "r"}),
            ),
        ];
        for (decision, want) in cases {
            assert_eq!(
                serde_json::to_value(&decision).unwrap(),
                want,
                "{decision:?}"
            );
        }
    }

    /// Every combination of the record's flags for every type, at several instants.
    fn grid() -> Vec<(Record, OffsetDateTime)> {
        let mut out = Vec::new();
        for record_type in ALL_TYPES {
            for bits in 0u8..64 {
                let bit = |n: u8| bits & (1 << n) != 0;
                let record = Record {
                    record_type,
                    created_at: datetime!(2018-02-28 23:00 -1),
                    relationship_ended_on: bit(0).then_some(date!(2019 - 03 - 31)),
                    soft_deleted_at: bit(1).then_some(datetime!(2020-02-29 12:00 UTC)),
                    published_at: bit(2).then_some(datetime!(2018-03-01 0:00 UTC)),
                    account_hold: bit(3),
                    client_hold: bit(4),
                    erasure_requested_at: bit(5).then_some(datetime!(2021-01-31 9:00 UTC)),
                };
                for now in [
                    datetime!(2018-03-01 0:00 UTC),
                    datetime!(2021-02-01 0:00 UTC),
                    datetime!(2024-03-31 0:00 UTC),
                    datetime!(2050-01-01 0:00 UTC),
                ] {
                    out.push((record.clone(), now));
                }
            }
        }
        out
    }

    #[test]
    fn decide_is_deterministic() {
        let policy = Policy::uk_preset();
        let first: Vec<Decision> = grid()
            .iter()
            .map(|(r, now)| decide(&policy, r, *now))
            .collect();
        let second: Vec<Decision> = grid()
            .iter()
            .map(|(r, now)| decide(&policy, r, *now))
            .collect();
        assert_eq!(first, second);
        // A clone of the policy and record decide alike, and the same instant in another
        // offset gives the same decision.
        for ((record, now), decision) in grid().iter().zip(&first) {
            let again = decide(&policy.clone(), &record.clone(), now.to_offset(offset!(-5)));
            assert_eq!(&again, decision, "{record:?} at {now}");
        }
    }

    #[test]
    fn invariants_hold_across_all_flag_combinations() {
        let policy = Policy::uk_preset();
        for (record, now) in grid() {
            let decision = decide(&policy, &record, now);
            let client_owned = is_client_owned(record.record_type);
            let held = record.account_hold || (record.client_hold && client_owned);
            match &decision {
                Decision::Held { .. } => assert!(held, "{record:?}"),
                Decision::KeepRestricted { until, .. } => {
                    assert!(!held && client_owned && record.erasure_requested_at.is_some());
                    assert!(now < *until, "{record:?}");
                }
                Decision::Keep { until, .. } => {
                    assert!(!held, "{record:?}");
                    assert!(until.is_none_or(|until| now < until), "{record:?}");
                }
                Decision::Delete { .. } => {
                    assert!(!held, "{record:?}");
                    let unpublished_outbox =
                        record.record_type == RecordType::Outbox && record.published_at.is_none();
                    assert!(!unpublished_outbox, "{record:?}");
                }
            }
        }
    }

    #[test]
    fn decide_never_panics_on_extreme_inputs() {
        let max = PrimitiveDateTime::MAX.assume_utc();
        let min = PrimitiveDateTime::MIN.assume_utc();
        let instants = [
            min,
            max,
            PrimitiveDateTime::MAX.assume_offset(offset!(-23:59:59)),
            PrimitiveDateTime::MIN.assume_offset(offset!(+23:59:59)),
            datetime!(2024-02-29 23:59:59.999_999_999 +14),
        ];
        let dates = [
            None,
            Some(Date::MIN),
            Some(Date::MAX),
            Some(date!(2024 - 02 - 29)),
        ];
        let policies = [
            Policy::uk_preset(),
            Policy {
                client_years_after_end: u32::MAX,
                aml_years_after_end: u32::MAX,
                document_years_after_end: u32::MAX,
                soft_delete_grace_days: u32::MAX,
                audit_years: u32::MAX,
                outbox_days: u32::MAX,
                idempotency_days: u32::MAX,
                dead_letter_days: u32::MAX,
            },
            Policy {
                client_years_after_end: 0,
                aml_years_after_end: 0,
                document_years_after_end: 0,
                soft_delete_grace_days: 0,
                audit_years: 0,
                outbox_days: 0,
                idempotency_days: 0,
                dead_letter_days: 0,
            },
        ];
        let mut decided = 0usize;
        for policy in &policies {
            for record_type in ALL_TYPES {
                for at in instants {
                    for ended_on in dates {
                        for erasure in [None, Some(at)] {
                            let record = Record {
                                record_type,
                                created_at: at,
                                relationship_ended_on: ended_on,
                                soft_deleted_at: Some(at),
                                published_at: Some(at),
                                account_hold: false,
                                client_hold: false,
                                erasure_requested_at: erasure,
                            };
                            for now in instants {
                                let decision = decide(policy, &record, now);
                                // Serialising may fail for out-of-range years, but never panics.
                                let _ = serde_json::to_string(&decision);
                                decided += 1;
                            }
                        }
                    }
                }
            }
            let _ = policy.validate();
        }
        for at in instants {
            let _ = erasure_deadline(at);
        }
        assert_eq!(decided, policies.len() * ALL_TYPES.len() * 5 * 4 * 2 * 5);
    }
}
