//! One definition of each retention boundary: `retention::decide` and the sweep's candidate
//! bounds agree one second before, at, and one second after the end of every UK preset, and
//! the sweep disposes of the boundary row on the first night it is due.

use super::*;
use crate::domain::clock::rfc3339;
use crate::domain::retention::{
    days_retention_end, decide, latest_due_relationship_end, latest_due_start,
    relationship_retention_end, Decision, Policy, Record, RecordType,
};
use time::macros::{date, datetime};
use time::{Date, Duration, OffsetDateTime};

const SECOND: Duration = Duration::seconds(1);

fn record(ty: RecordType) -> Record {
    Record {
        record_type: ty,
        created_at: datetime!(2000-01-01 00:00 UTC),
        relationship_ended_on: None,
        soft_deleted_at: None,
        published_at: None,
        account_hold: false,
        client_hold: false,
        erasure_requested_at: None,
    }
}

fn deletes(r: &Record, now: OffsetDateTime) -> bool {
    matches!(
        decide(&Policy::uk_preset(), r, now),
        Decision::Delete { .. }
    )
}

#[test]
fn relationship_end_presets_delete_exactly_when_the_candidate_bound_reaches_them() {
    let p = Policy::uk_preset();
    for (ty, years) in [
        (RecordType::Client, p.client_years_after_end),
        (RecordType::AmlEvidence, p.aml_years_after_end),
        (RecordType::Document, p.document_years_after_end),
    ] {
        for ended in [
            date!(2019 - 06 - 15),
            date!(2020 - 02 - 29), // a leap day: its anniversary is 28 February
            date!(2020 - 02 - 28),
            date!(2020 - 12 - 31),
        ] {
            let end = relationship_retention_end(ended, years);
            let mut r = record(ty);
            r.relationship_ended_on = Some(ended);
            for (now, due) in [(end - SECOND, false), (end, true), (end + SECOND, true)] {
                assert_eq!(deletes(&r, now), due, "{ty:?} ended {ended} at {now}");
                // The candidate query: `ended_on <= bound`, compared as ISO dates (text).
                let bound = latest_due_relationship_end(years, now);
                assert_eq!(
                    ended.to_string() <= bound.to_string(),
                    due,
                    "{ty:?} ended {ended}: candidate bound {bound} at {now}"
                );
            }
        }
    }
}

#[test]
fn day_count_presets_delete_exactly_when_the_candidate_bound_reaches_them() {
    let p = Policy::uk_preset();
    let start = datetime!(2026-03-29 00:59:59.250 UTC); // sub-second, across a UK clock change
    let cases: [(&str, u32, Record); 4] = [
        ("soft-delete grace", p.soft_delete_grace_days, {
            let mut r = record(RecordType::Client);
            r.soft_deleted_at = Some(start);
            r
        }),
        ("idempotency keys", p.idempotency_days, {
            let mut r = record(RecordType::IdempotencyKey);
            r.created_at = start;
            r
        }),
        ("dead letters", p.dead_letter_days, {
            let mut r = record(RecordType::DeadLetter);
            r.created_at = start;
            r
        }),
        ("published outbox rows", p.outbox_days, {
            let mut r = record(RecordType::Outbox);
            r.published_at = Some(start);
            r
        }),
    ];
    for (name, days, r) in cases {
        let end = days_retention_end(start, days);
        for (now, due) in [(end - SECOND, false), (end, true), (end + SECOND, true)] {
            assert_eq!(deletes(&r, now), due, "{name} at {now}");
            // The candidate query: `stamp <= bound`, compared as RFC 3339 text.
            let bound = rfc3339(latest_due_start(days, now));
            assert_eq!(
                rfc3339(start) <= bound,
                due,
                "{name}: bound {bound} at {now}"
            );
        }
    }
}

#[test]
fn the_audit_preset_ends_ten_calendar_years_after_creation() {
    let mut r = record(RecordType::AuditLog);
    r.created_at = datetime!(2016-02-29 10:00 UTC);
    let end = datetime!(2026-02-28 10:00 UTC);
    assert_eq!(Policy::uk_preset().audit_years, 10);
    for (now, due) in [(end - SECOND, false), (end, true), (end + SECOND, true)] {
        assert_eq!(deletes(&r, now), due, "{now}");
    }
}

#[test]
fn the_latest_due_relationship_end_counts_a_leap_day_on_its_anniversary() {
    // On 28 February 2025 both 28 and 29 February 2020 are five years past.
    assert_eq!(
        latest_due_relationship_end(5, datetime!(2025-02-28 00:00 UTC)),
        date!(2020 - 02 - 29)
    );
    assert_eq!(
        latest_due_relationship_end(4, datetime!(2024-02-29 23:59 UTC)),
        date!(2020 - 02 - 29)
    );
    assert_eq!(
        latest_due_relationship_end(6, datetime!(2026-11-26 00:00 UTC)),
        Date::from_calendar_date(2020, time::Month::November, 26).unwrap()
    );
}

#[test]
fn the_sweep_disposes_of_each_boundary_row_on_the_first_night_it_is_due() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let mut c = client_body();
    // AML evidence is due 5 years later: 2026-11-27T00:00Z.
    c["relationship_ended_on"] = json!("2021-11-27");
    let client = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(c)));
    let doc = |tok: &str, kind: &str| {
        created_id(&f.as_user(
            tok,
            Post,
            "/v1/documents",
            Some(json!({"client_id": client, "kind": kind, "title": kind})),
        ))
    };
    let aml = doc(&admin, "aml_evidence");
    let fact_find = doc(&admin, "fact_find"); // documents follow the client: 6 years
    let exists = |id: &str| {
        f.count(
            "SHARD_EU_01",
            &format!("SELECT count(*) FROM documents WHERE id = '{id}'"),
        ) == 1
    };
    let sweep = || {
        let run = block_on(jobs::run(&f, Job::Retention, None));
        assert_eq!(run.outcome, Outcome::Ok, "{run:?}");
        run
    };
    // The night before (2026-11-26 02:00 would be in the past; START is 09:00 that day).
    sweep();
    assert!(exists(&aml), "not due yet");
    // The first night it is due: 2026-11-27 02:00.
    f.clock.advance(Duration::hours(17));
    let run = sweep();
    assert!(
        !exists(&aml),
        "due since 00:00: gone at 02:00 {:?}",
        run.counts
    );
    assert!(exists(&fact_find));
    // Soft-delete grace, to the second: a note of an active client (no legal retention),
    // deleted now, is due exactly 30 days later.
    let admin = f.token(acct, Role::Admin);
    let active = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(client_body())));
    let note = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/documents",
        Some(json!({"client_id": active, "kind": "fact_find", "title": "note"})),
    ));
    assert_eq!(
        f.as_user(&admin, Delete, &format!("/v1/documents/{note}"), None)
            .status,
        204
    );
    f.clock.advance(Duration::days(30) - SECOND);
    sweep();
    assert!(exists(&note), "one second before the grace ends");
    f.clock.advance(SECOND);
    sweep();
    assert!(!exists(&note), "at the instant the grace ends");
    assert!(exists(&fact_find), "the ended client's documents: 6 years");
}
