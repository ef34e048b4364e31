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
