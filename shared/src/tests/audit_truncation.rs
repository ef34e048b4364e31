//! Tail truncation: every head the writer signs is anchored outside D1 as it is appended
//! (`audit-heads/{account}/{seq}`), so a trail cut below one is named by verify, never signed
//! by the next checkpoint, and recorded by the writer when it appends again.

use super::audit_insider::*;
use super::{client_body, created_id};
use crate::api::http::Method::*;
use crate::consumer::Decision;
use crate::jobs::Outcome;
use serde_json::json;
use time::Duration;

#[test]
fn truncation_after_the_last_checkpoint_is_named_and_never_signed() {
    let t = setup();
    t.events(3);
    t.f.clock.advance(Duration::minutes(65)); // 10:05
    assert_eq!(t.job().outcome, Outcome::Ok);
    t.events(3); // seq 4..=6, each signed and anchored
    assert!(t
        .f
        .checkpoints
        .objects
        .borrow()
        .contains_key(&crate::services::checkpoints::head_key(t.acct, 6)));
    t.truncate_after(3);
    assert_eq!(t.head(), 3);
    let (status, v) = t.verify("");
    assert_eq!(status, 200);
    assert!(!ok(&v), "{v}");
    let f = &v["checkpoints"]["findings"];
    assert!(
        f.as_array()
            .unwrap()
            .iter()
            .any(|f| f["problem"] == "truncated" && f["seq"] == 6 && f["trail_head"] == 3),
        "{v}"
    );
    // The next hourly checkpoint refuses to sign the truncated head, naming the account.
    t.f.clock.advance(Duration::hours(1));
    let before = t.f.checkpoints.objects.borrow().len();
    let run = t.job();
    assert_eq!(run.outcome, Outcome::Partial);
    assert!(
        run.detail
            .iter()
            .any(|d| d.contains(&t.acct.to_string()) && d.contains("cut")),
        "{:?}",
        run.detail
    );
    assert_eq!(t.f.checkpoints.objects.borrow().len(), before);
    // The next genuine event: the writer records the cut, signed, and carries on.
    created_id(&t.f.as_user(&t.member(), Post, "/v1/clients", Some(client_body())));
    assert_eq!(t.f.drain_queue(), vec![Decision::Ack]);
    let (_, v) = t.verify("");
    assert!(!ok(&v));
    assert_eq!(v["first_broken"]["seq"], 4, "{v}");
    assert!(
        v["first_broken"]["reason"]
            .as_str()
            .unwrap()
            .contains("signed head 6 is gone"),
        "{v}"
    );
    // With the cut on the record, signed, the checkpoints go on although the trail (head 5) is
    // still below the anchored head 6, which verify keeps naming.
    assert_eq!(t.head(), 5);
    t.f.clock.advance(Duration::hours(1));
    let run = t.job();
    assert_eq!(run.outcome, Outcome::Ok, "{:?}", run.detail);
    assert_eq!(run.counts.to_json()["signed"], json!(2), "10:00 and 11:00");
}

#[test]
fn truncation_into_the_middle_of_a_run_is_named_as_truncation_not_as_an_outside_append() {
    let t = setup();
    t.events(3);
    // One run of three (4..=6): only its last link carries the writer's receipt.
    for _ in 0..3 {
        created_id(&t.f.as_user(&t.member(), Post, "/v1/clients", Some(client_body())));
    }
    assert!(t.f.drain_queue().iter().all(|d| *d == Decision::Ack));
    assert!(t.entry(5).receipt.is_none() && t.entry(6).receipt.is_some());
    t.truncate_after(5);
    let (_, v) = t.verify("");
    assert!(!ok(&v), "{v}");
    let reason = v["first_broken"]["reason"].as_str().unwrap();
    assert_eq!(v["first_broken"]["seq"], 4, "{v}");
    assert!(
        reason.contains("cut") && !reason.contains("appended outside"),
        "{reason}"
    );
    assert_eq!(v["checkpoints"]["ok"], json!(false));
}
