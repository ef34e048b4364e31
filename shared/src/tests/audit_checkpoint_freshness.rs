//! Checkpoints must be current: the job resumes from the bucket (D1's resume row is only a
//! hint, reported when it disagrees), verify reports every period due by now that has no
//! checkpoint (with two hours' grace), and checkpoints removed from the bucket are named.

use super::audit_insider::*;
use crate::jobs::Outcome;
use serde_json::{json, Value};
use time::Duration;

fn findings(v: &Value) -> Vec<Value> {
    v["checkpoints"]["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_resume_hint_moved_into_the_future_is_ignored_and_reported() {
    let t = setup();
    t.events(2);
    t.f.clock.advance(Duration::minutes(65));
    t.job();
    t.sql("UPDATE audit_checkpoint_heads SET body = json_set(body, '$.period', '2099-01-01T00:00:00.000Z')");
    for i in 0..5 {
        t.f.clock.advance(Duration::hours(1));
        t.events(1);
        let run = t.job();
        assert_eq!(run.counts.to_json()["signed"], json!(1), "{:?}", run.detail);
        if i == 0 {
            assert_eq!(run.outcome, Outcome::Partial);
            assert!(
                run.detail.iter().any(|d| d.contains("2099")),
                "{:?}",
                run.detail
            );
        } else {
            assert_eq!(run.outcome, Outcome::Ok, "{:?}", run.detail);
        }
    }
    let (_, v) = t.verify("");
    assert!(ok(&v), "{v}");
    assert_eq!(v["checkpoints"]["checked"], 6);
    t.truncate_after(2);
    let (_, v) = t.verify("");
    assert!(!ok(&v), "{v}");
}

#[test]
fn a_deleted_latest_checkpoint_or_all_of_them_are_named_missing() {
    let t = setup();
    t.events(2);
    t.f.clock.advance(Duration::minutes(65));
    t.job();
    t.f.clock.advance(Duration::hours(1));
    t.job();
    let last =
        t.f.checkpoints
            .objects
            .borrow()
            .keys()
            .rfind(|k| k.starts_with("audit-checkpoints/"))
            .cloned()
            .unwrap();
    t.f.checkpoints.objects.borrow_mut().remove(&last);
    let (_, v) = t.verify("");
    assert!(!ok(&v), "latest checkpoint gone: {v}");
    assert!(
        findings(&v)
            .iter()
            .any(|f| f["problem"] == "missing_period" && f["period"] == "2026-11-26T10:00:00.000Z"),
        "{v}"
    );
    t.f.checkpoints
        .objects
        .borrow_mut()
        .retain(|k, _| !k.starts_with("audit-checkpoints/"));
    let (_, v) = t.verify("");
    assert!(!ok(&v), "every checkpoint gone: {v}");
    assert_eq!(v["checkpoints"]["checked"], 0);
    // The job, run again, reports that its hint names a checkpoint the bucket lacks.
    t.f.clock.advance(Duration::hours(1));
    let run = t.job();
    assert_eq!(run.outcome, Outcome::Partial, "{:?}", run.detail);
}

#[test]
fn a_job_that_stopped_leaves_every_period_due_since_missing_after_the_grace() {
    let t = setup();
    t.events(1);
    t.f.clock.advance(Duration::minutes(65)); // 10:05: 09:00 signed
    t.job();
    // 12:50: the 10:00 period ended at 11:00, within two hours' grace.
    t.f.clock.advance(Duration::minutes(165));
    let (_, v) = t.verify("");
    assert!(ok(&v), "{v}");
    // 13:10: 10:00 is overdue, 11:00 not yet.
    t.f.clock.advance(Duration::minutes(20));
    let (_, v) = t.verify("");
    assert!(!ok(&v));
    let missing: Vec<Value> = findings(&v)
        .iter()
        .filter(|f| f["problem"] == "missing_period")
        .map(|f| f["period"].clone())
        .collect();
    assert_eq!(missing, vec![json!("2026-11-26T10:00:00.000Z")], "{v}");
}

#[test]
fn verify_checks_the_most_recent_week_by_default_and_pages_older_weeks() {
    let t = setup();
    t.events(1);
    t.f.clock.advance(Duration::minutes(65));
    t.job();
    t.f.clock.advance(Duration::hours(200));
    t.job();
    t.job(); // 168 periods per run
    t.events(2); // seq 2, 3
    t.f.clock.advance(Duration::hours(1));
    t.job();
    let (_, v) = t.verify("");
    assert!(ok(&v), "{v}");
    t.truncate_after(1);
    let (_, v) = t.verify("");
    assert!(
        !ok(&v),
        "truncated below a signed head in the latest week: {v}"
    );
    assert!(
        findings(&v).iter().any(|f| f["problem"] == "truncated"),
        "{v}"
    );
    let before = v["checkpoints"]["next_before"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(v["checkpoints"]["from"], json!(before));
    let (status, older) = t.verify(&format!("?checkpoints_before={before}"));
    assert_eq!(status, 200, "{older}");
    assert!(
        older["checkpoints"]["checked"].as_u64().unwrap() > 0,
        "{older}"
    );
    assert_eq!(older["checkpoints"]["to"], json!(before));
}
