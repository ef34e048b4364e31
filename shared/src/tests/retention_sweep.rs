//! Retention settings and the nightly sweep: bounded runs resuming from a cursor, what is due and what is kept, erasure.

use super::*;

#[test]
fn bounded_retention_runs_resume_from_the_stored_cursor_until_the_cycle_completes() {
    let f = Fake::new();
    let (acct, _) = f.account("bulk", Some("shard-eu-01"));
    let over = crate::jobs::retention_sweep::MAX_EXAMINED_PER_SHARD as i64 + 5_000;
    // Clients under a client-level legal hold (kept, but read), ended 2010, ahead of
    // ten expired ones in the candidate order (ended 2012).
    former_clients(&f, acct, over, "8000", "Held", "2010-01-01", true);
    former_clients(&f, acct, 10, "8001", "Expired", "2012-01-01", false);
    let expired = "SELECT count(*) FROM clients WHERE surname_lc = 'expired'";
    let first = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(first.outcome, Outcome::Partial, "{:?}", first.counts);
    assert_eq!(
        f.count("SHARD_EU_01", expired),
        10,
        "budget spent on held rows"
    );
    let cursor = f.accounts.query_json(&format!(
        "SELECT body FROM job_cursors WHERE id = '{}'",
        crate::jobs::retention_sweep::cursor_id("shard-eu-01")
    ));
    assert_eq!(cursor.len(), 1, "a stored cursor between runs");
    let second = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(second.outcome, Outcome::Ok, "{:?}", second.counts);
    assert_eq!(second.counts.to_json()["resumed"], 1);
    assert_eq!(
        second.counts.to_json()["cycles_completed"],
        3,
        "every bound shard finished its cycle"
    );
    assert!(
        second.counts.to_json()["candidates_examined"]
            .as_u64()
            .unwrap()
            < 6_000,
        "resumed after the cursor, not from the start: {:?}",
        second.counts
    );
    assert_eq!(
        f.count("SHARD_EU_01", expired),
        0,
        "every expired row gone after one cycle"
    );
    // Per shard: the swept shard carries the deletions, and the shards sum to the totals.
    let second_counts = second.counts.to_json();
    let by_shard = second_counts["by_shard"].as_object().unwrap();
    assert_eq!(by_shard["shard-eu-01"]["deleted"], 10, "{by_shard:?}");
    for key in ["deleted", "rows_read", "candidates_examined"] {
        let sum: u64 = by_shard.values().map(|v| v[key].as_u64().unwrap()).sum();
        assert_eq!(json!(sum), second_counts[key], "{key}: {by_shard:?}");
    }
    assert_eq!(
        f.count(
            "SHARD_EU_01",
            "SELECT count(*) FROM clients WHERE surname_lc = 'held'"
        ),
        over,
        "nothing held was deleted"
    );
    assert!(f
        .accounts
        .query_json("SELECT body FROM job_cursors")
        .is_empty());
}

#[test]
fn the_hourly_retention_cron_only_carries_on_an_unfinished_cycle() {
    use crate::bindings::{CRON_RETENTION, CRON_RETENTION_RESUME};
    let f = Fake::new();
    let (acct, _) = f.account("bulk", Some("shard-eu-01"));
    // More expired clients (relationship ended 2010) than one run may delete.
    let n = crate::jobs::retention_sweep::MAX_DELETIONS_PER_SHARD as i64 + 10;
    former_clients(&f, acct, n, "8001", "Expired", "2010-01-01", false);
    let left = || {
        f.count(
            "SHARD_EU_01",
            "SELECT count(*) FROM clients WHERE surname_lc = 'expired'",
        )
    };
    // No cycle in progress: the hourly run sweeps nothing (the nightly one starts cycles).
    let idle = block_on(jobs::run(&f, Job::Retention, Some(CRON_RETENTION_RESUME)));
    assert_eq!(idle.outcome, Outcome::Ok, "{:?}", idle.counts);
    assert!(
        idle.counts.to_json().get("deleted").is_none(),
        "{:?}",
        idle.counts
    );
    assert_eq!(left(), n);
    let nightly = block_on(jobs::run(&f, Job::Retention, Some(CRON_RETENTION)));
    assert_eq!(nightly.outcome, Outcome::Partial, "{:?}", nightly.counts);
    assert_eq!(left(), 10);
    // The next hourly run carries the cycle on from its cursor and finishes it.
    let hourly = block_on(jobs::run(&f, Job::Retention, Some(CRON_RETENTION_RESUME)));
    assert_eq!(hourly.outcome, Outcome::Ok, "{:?}", hourly.counts);
    assert_eq!(hourly.counts.to_json()["resumed"], 1);
    assert_eq!(hourly.counts.to_json()["deleted"], 10);
    assert_eq!(left(), 0);
    let after = block_on(jobs::run(&f, Job::Retention, Some(CRON_RETENTION_RESUME)));
    assert!(
        after.counts.to_json().get("deleted").is_none(),
        "{:?}",
        after.counts
    );
}

#[test]
fn retention_settings_default_to_uk_presets_and_only_admins_change_them() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let member = f.token(acct, Role::Member);
    let admin = f.token(acct, Role::Admin);
    let g = f.as_user(&member, Get, "/v1/settings/retention", None);
    assert_eq!(g.status, 200);
    assert_eq!(g.body_json().unwrap()["client_years_after_end"], 6);
    assert_eq!(g.body_json().unwrap()["aml_years_after_end"], 5);
    let mut p = g.body_json().unwrap().clone();
    p["audit_years"] = json!(12.0); // JSON Schema's integer admits 12.0
    assert_eq!(
        f.as_user(&member, Put, "/v1/settings/retention", Some(p.clone()))
            .status,
        403
    );
    assert_eq!(
        f.as_user(&admin, Put, "/v1/settings/retention", Some(p.clone()))
            .status,
        200
    );
    assert_eq!(
        f.as_user(&member, Get, "/v1/settings/retention", None)
            .body_json()
            .unwrap()["audit_years"],
        12
    );
    let mut bad = p.clone();
    bad["soft_delete_grace_days"] = json!(0);
    assert_eq!(
        f.as_user(&admin, Put, "/v1/settings/retention", Some(bad))
            .status,
        400
    );
    let mut unknown = p;
    unknown["keep_forever"] = json!(true);
    assert_eq!(
        f.as_user(&admin, Put, "/v1/settings/retention", Some(unknown))
            .status,
        400
    );
}

#[test]
fn retention_sweep_deletes_exactly_what_is_due_and_keeps_holds() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let (held_acct, _) = f.account("held-firm", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let client = |tok: &str, surname: &str, ended: Option<&str>| {
        let mut c = client_body();
        c["surname"] = json!(surname);
        if let Some(e) = ended {
            c["relationship_ended_on"] = json!(e);
        }
        created_id(&f.as_user(tok, Post, "/v1/clients", Some(c)))
    };
    let doc = |tok: &str, client: &str, kind: &str| {
        created_id(&f.as_user(
            tok,
            Post,
            "/v1/documents",
            Some(json!({"client_id": client, "kind": kind, "title": kind})),
        ))
    };
    let active = client(&admin, "Active", None);
    let old = client(&admin, "Old", Some("2019-01-01")); // 6 years after: 2025-01-01, past
    let old_aml = doc(&admin, &old, "aml_evidence");
    let old_doc = doc(&admin, &old, "fact_find");
    let recent = client(&admin, "Recent", Some("2022-06-01")); // AML until 2027, client until 2028
    let recent_aml = doc(&admin, &recent, "aml_evidence");
    let held = client(&admin, "Held", Some("2010-01-01"));
    let held_doc = doc(&admin, &held, "identity");
    assert_eq!(
        f.as_user(
            &admin,
            Put,
            &format!("/v1/clients/{held}/legal-hold"),
            Some(json!({"hold": true}))
        )
        .status,
        200
    );
    let member = f.token(acct, Role::Member);
    assert_eq!(
        f.as_user(
            &member,
            Put,
            &format!("/v1/clients/{active}/legal-hold"),
            Some(json!({"hold": true}))
        )
        .status,
        403
    );
    // Content of a document that will be purged.
    let bearer = format!("Bearer {admin}");
    let up = f.raw(crate::api::http::ApiRequest {
        method: Put,
        path: format!("/v1/documents/{old_doc}/content"),
        query: vec![],
        headers: vec![
            ("authorization".into(), bearer),
            ("content-type".into(), "application/pdf".into()),
        ],
        body: b"%PDF old".to_vec(),
        cf_country: Default::default(),
        request_id: "r".into(),
    });
    assert_eq!(up.status, 200);
    assert_eq!(f.blobs.objects.borrow().len(), 1);
    let soft_old = client(&admin, "SoftOld", None);
    assert_eq!(
        f.as_user(&admin, Delete, &format!("/v1/clients/{soft_old}"), None)
            .status,
        204
    );
    f.clock.advance(time::Duration::days(30));
    let admin = f.token(acct, Role::Admin); // the first token has expired meanwhile
    let soft_new = client(&admin, "SoftNew", None);
    assert_eq!(
        f.as_user(&admin, Delete, &format!("/v1/clients/{soft_new}"), None)
            .status,
        204
    );
    // An account on legal hold: nothing of it goes, however old.
    let held_admin = f.token(held_acct, Role::Admin);
    let held_acct_client = client(&held_admin, "AcctHeld", Some("2001-01-01"));
    assert_eq!(
        f.admin(
            Put,
            &format!("/admin/v1/accounts/{held_acct}/legal-hold"),
            Some(json!({"hold": true}))
        )
        .status,
        200
    );
    f.clock.advance(time::Duration::days(10));
    settle(&f);

    let outbox_before = f.count("SHARD_EU_01", "SELECT count(*) FROM outbox");
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(
        run.outcome,
        Outcome::Ok,
        "{:?} {:?}",
        run.counts,
        run.detail
    );
    let exists = |table: &str, id: &str| {
        f.count(
            "SHARD_EU_01",
            &format!("SELECT count(*) FROM {table} WHERE id = '{id}'"),
        ) == 1
    };
    for (id, table, want) in [
        (&active, "clients", true),
        (&old, "clients", false),
        (&old_aml, "documents", false),
        (&old_doc, "documents", false),
        (&recent, "clients", true),
        (&recent_aml, "documents", true),
        (&held, "clients", true),
        (&held_doc, "documents", true),
        (&soft_old, "clients", false),
        (&soft_new, "clients", true),
        (&held_acct_client, "clients", true),
    ] {
        assert_eq!(
            exists(table, id),
            want,
            "{table} {id}: counts {:?}",
            run.counts
        );
    }
    assert_eq!(run.counts.to_json()["clients_deleted"], 2);
    assert_eq!(run.counts.to_json()["documents_deleted"], 2);
    assert_eq!(run.counts.to_json()["contents_deleted"], 1);
    assert!(
        f.blobs.objects.borrow().is_empty(),
        "the purged document's content is gone from R2"
    );
    // Every deletion is a change event (proof of disposition in the audit trail).
    assert_eq!(
        f.count("SHARD_EU_01", "SELECT count(*) FROM outbox") - outbox_before,
        4
    );
    assert_eq!(
        f.count(
            "SHARD_EU_01",
            "SELECT count(*) FROM outbox WHERE body ->> '$.type' LIKE '%.purged'"
        ),
        4
    );
    f.drain_queue();
    let purged_audit = f.count(
        "SHARD_EU_01",
        "SELECT count(*) FROM audit_log WHERE body ->> '$.action' LIKE '%.purged'",
    );
    assert_eq!(
        purged_audit, 0,
        "the sweep's events go out through the relay, not the API's send"
    );
    f.clock.advance(time::Duration::minutes(1));
    block_on(jobs::run(&f, Job::OutboxRelay, None));
    f.drain_queue();
    assert_eq!(
        f.count(
            "SHARD_EU_01",
            "SELECT count(*) FROM audit_log WHERE body ->> '$.action' LIKE '%.purged'"
        ),
        4
    );
    // A second full run finds nothing more to delete.
    let again = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(again.counts.to_json()["deleted"], 0, "{:?}", again.counts);
}

#[test]
fn erasure_erases_personal_data_keeps_what_the_law_requires_and_respects_holds() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let adviser = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/users",
        Some(json!({"email": "ann@acme.example", "display_name": "Ann Adviser", "role": "member"})),
    ));
    let mut c = client_body();
    c["email"] = json!("ada@example.com");
    c["address"] = json!({"line1": "1 Analytical Row", "postcode": "N1 1AA"});
    c["adviser_id"] = json!(adviser);
    let active = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(c)));
    let ff = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/documents",
        Some(json!({"client_id": active, "kind": "fact_find", "title": "FF"})),
    ));
    let aml = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/documents",
        Some(json!({"client_id": active, "kind": "aml_evidence", "title": "Passport"})),
    ));
    let mut old = client_body();
    old["relationship_ended_on"] = json!("2015-01-31");
    let old = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(old)));
    let old_doc = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/documents",
        Some(json!({"client_id": old, "kind": "aml_evidence", "title": "Old"})),
    ));
    let held = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(client_body())));
    f.as_user(
        &admin,
        Put,
        &format!("/v1/clients/{held}/legal-hold"),
        Some(json!({"hold": true})),
    );
    let request = |kind: &str, id: &str| {
        let r = f.as_user(
            &admin,
            Post,
            "/v1/erasure-requests",
            Some(json!({"subject_type": kind, "subject_id": id})),
        );
        assert_eq!(r.status, 202, "{:?}", r.body_json());
        let v = r.body_json().cloned().unwrap();
        assert_eq!(
            v["due_by"], "2026-12-26T09:00:00.000Z",
            "one calendar month"
        );
        v["id"].as_str().unwrap().to_string()
    };
    let member = f.token(acct, Role::Member);
    assert_eq!(
        f.as_user(
            &member,
            Post,
            "/v1/erasure-requests",
            Some(json!({"subject_type": "client", "subject_id": active}))
        )
        .status,
        403
    );
    assert_eq!(
        f.as_user(
            &admin,
            Post,
            "/v1/erasure-requests",
            Some(json!({"subject_type": "client", "subject_id": Uuid::from_u128(9)}))
        )
        .status,
        422
    );
    let r_active = request("client", &active);
    let r_old = request("client", &old);
    let r_held = request("client", &held);
    let r_user = request("user", &adviser);
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(
        run.outcome,
        Outcome::Ok,
        "{:?} {:?}",
        run.counts,
        run.detail
    );
    let exists = |t: &str, id: &str| {
        f.count(
            "SHARD_EU_01",
            &format!("SELECT count(*) FROM {t} WHERE id = '{id}'"),
        ) == 1
    };
    // Active client: the fact find goes; AML evidence stays (MLR), restricted; the client row stays
    // because that evidence refers to it, but without personal data.
    assert!(!exists("documents", &ff) && exists("documents", &aml));
    let v = f
        .as_user(&admin, Get, &format!("/v1/clients/{active}"), None)
        .body_json()
        .cloned()
        .unwrap();
    assert_eq!(
        (v["surname"].clone(), v["forenames"].clone()),
        (json!("[erased]"), json!("[erased]"))
    );
    assert!(
        v.get("email").is_none() && v.get("address").is_none(),
        "{v}"
    );
    let req = |id: &str| {
        f.as_user(&admin, Get, &format!("/v1/erasure-requests/{id}"), None)
            .body_json()
            .cloned()
            .unwrap()
    };
    let ra = req(&r_active);
    assert_eq!(ra["status"], "restricted");
    assert_eq!(ra["outcome"]["restricted"][0]["document_id"], aml);
    // Relationship ended 2015: nothing must be kept, everything goes.
    assert!(!exists("clients", &old) && !exists("documents", &old_doc));
    assert_eq!(req(&r_old)["status"], "completed");
    // A legal hold beats erasure: the request waits.
    assert!(exists("clients", &held));
    assert_eq!(req(&r_held)["status"], "pending");
    // The user is pseudonymised, and clients stop showing the name.
    assert_eq!(req(&r_user)["status"], "completed");
    let u = f.as_user(&admin, Get, &format!("/v1/users/{adviser}"), None);
    assert_eq!(
        u.status, 404,
        "an erased user is also deleted from lists and reads"
    );
    f.clock.advance(time::Duration::minutes(1));
    block_on(jobs::run(&f, Job::OutboxRelay, None));
    settle(&f);
    let v = f
        .as_user(&admin, Get, &format!("/v1/clients/{active}"), None)
        .body_json()
        .cloned()
        .unwrap();
    assert_eq!(v["adviser_name"], serde_json::Value::Null, "{v}");
    // The audit trail records the erasures and still verifies.
    let audit = f.as_user(&admin, Get, "/v1/audit/export", None);
    let text = String::from_utf8(audit.body_bytes()).unwrap();
    assert!(
        text.contains("client.erased")
            && text.contains("document.erased")
            && text.contains("user.erased")
    );
    assert!(
        !text.contains("ada@example.com") && !text.contains("Analytical Row"),
        "no personal data in the audit trail"
    );
    assert_eq!(
        f.as_user(&admin, Get, "/v1/audit/verify", None)
            .body_json()
            .unwrap()["ok"],
        true
    );
}
