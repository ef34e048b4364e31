//! The stored row is what is verified: a row whose text differs from the link as written
//! (re-spelt UUIDs, added fields) breaks the walk even when its hash does not change, and the
//! export hands out the stored text as is.

use super::audit_insider::*;
use crate::api::http::Method::*;
use uuid::Uuid;

#[test]
fn rewritten_rows_that_keep_their_hash_break_verify() {
    let t = setup();
    t.events(3);
    t.behind(
        "audit_log_no_update",
        "UPDATE audit_log SET body = json_set(body, '$.actor.id', upper(body ->> '$.actor.id')) WHERE seq = 2",
    );
    let (_, v) = t.verify("");
    assert!(!ok(&v), "{v}");
    assert_eq!(v["first_broken"]["seq"], 2, "{v}");
    assert!(
        v["first_broken"]["reason"]
            .as_str()
            .unwrap()
            .contains("differs from the link as written"),
        "{v}"
    );
    let t = setup();
    t.events(3);
    t.behind(
        "audit_log_no_update",
        "UPDATE audit_log SET body = json_set(body, '$.approved_by', 'the auditor') WHERE seq = 3",
    );
    let (_, v) = t.verify("");
    assert!(!ok(&v));
    assert_eq!(v["first_broken"]["seq"], 3, "{v}");
}

#[test]
fn the_export_is_the_stored_text_line_for_line() {
    let t = setup();
    t.events(3);
    let r = t.f.as_user(&t.admin(), Get, "/v1/audit/export", None);
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body_bytes()).unwrap();
    let stored: Vec<String> =
        t.f.shard_db(SHARD)
            .query_json(&format!(
                "SELECT body FROM audit_log WHERE account_id = '{}' ORDER BY seq",
                t.acct
            ))
            .iter()
            .map(|r| r["body"].as_str().unwrap().to_string())
            .collect();
    assert_eq!(text.lines().collect::<Vec<_>>(), stored);
    // And each is exactly the link's stored form.
    for line in text.lines() {
        let e: crate::domain::audit::AuditEntry = serde_json::from_str(line).unwrap();
        assert_eq!(e.stored_text(), line);
        assert_ne!(e.event_id, Uuid::nil());
    }
}
