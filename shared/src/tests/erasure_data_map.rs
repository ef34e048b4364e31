//! Erasure complete by construction: after a subject's erasure, none of its strings (name,
//! email, phone, postcode) is left in any table of the shard or the account D1, in the KV read
//! cache or in R2; only pseudonymous ids remain. Every shard table is in the data map
//! (`domain::personal_data::DATA_MAP`), so a new table cannot escape it.

use super::*;
use crate::domain::personal_data::unmapped_shard_tables;

const STRINGS: &[&str] = &[
    "zelda",
    "quennell",
    "zelda.quennell@example.org",
    "07700 900123",
    "zq9 9zz",
    "grace hopper",
    "grace@acme.example",
];

fn tables(db: &SqliteDb) -> Vec<String> {
    db.query_json(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name NOT LIKE '_cf_%' AND name <> 'd1_migrations' ORDER BY name",
    )
    .iter()
    .filter_map(|r| r["name"].as_str().map(str::to_owned))
    .collect()
}

/// Every place (table row, KV entry, R2 object) in which one of the strings occurs.
fn findings(f: &Fake) -> Vec<String> {
    let mut found = Vec::new();
    let mut look = |place: String, text: String| {
        let text = text.to_lowercase();
        for s in STRINGS {
            if text.contains(s) {
                found.push(format!("{place}: {s}"));
            }
        }
    };
    for (name, db) in [
        ("shard".to_string(), f.shard_db("SHARD_EU_01")),
        ("accounts".to_string(), f.accounts.clone()),
    ] {
        for t in tables(&db) {
            for row in db.query_json(&format!("SELECT * FROM {t}")) {
                look(format!("{name}.{t}"), format!("{row:?}"));
            }
        }
    }
    for (k, v) in f.cache.entries.borrow().iter() {
        look(format!("kv {k}"), format!("{k} {v}"));
    }
    for (k, b) in f.blobs.objects.borrow().iter() {
        look(
            format!("r2 {k}"),
            format!("{k} {}", String::from_utf8_lossy(&b.bytes)),
        );
    }
    found
}

#[test]
fn every_shard_table_is_in_the_data_map() {
    let shard = SqliteDb::shard().unwrap();
    let all = tables(&shard);
    assert!(all.len() >= 10, "{all:?}");
    assert_eq!(
        unmapped_shard_tables(&all),
        Vec::<&str>::new(),
        "shard tables with no entry in domain::personal_data::DATA_MAP: say which fields may \
         hold personal data and what erasure does with them"
    );
    // A new table nobody mapped is caught.
    shard
        .exec("CREATE TABLE client_notes (account_id TEXT, id TEXT, body TEXT)")
        .unwrap();
    assert_eq!(unmapped_shard_tables(&tables(&shard)), vec!["client_notes"]);
}

#[test]
fn after_erasure_no_trace_of_the_subject_is_left_in_any_table_kv_or_r2() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let auth = format!("Bearer {admin}");
    let adviser = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/users",
        Some(json!({"email": "grace@acme.example", "display_name": "Grace Hopper", "role": "member"})),
    ));
    // The client, created idempotently (its stored response holds every personal field).
    let original = json!({
            "forenames": "Zelda", "surname": "Quennell", "status": "former",
            "email": "zelda.quennell@example.org", "phone": "07700 900123",
            "address": {"line1": "9 Quay Street", "postcode": "ZQ9 9ZZ"},
            "adviser_id": adviser, "relationship_ended_on": "2015-03-31",
    });
    let client = created_id(&f.call(
        Post,
        "/v1/clients",
        &[
            ("authorization", &auth),
            ("idempotency-key", "create-zelda-1"),
        ],
        Some(original.clone()),
    ));
    let doc = created_id(&f.call(
        Post,
        "/v1/documents",
        &[("authorization", &auth), ("idempotency-key", "doc-zelda-1")],
        Some(
            json!({"client_id": client, "kind": "fact_find", "title": "Fact find: Zelda Quennell"}),
        ),
    ));
    let up = f.raw(crate::api::http::ApiRequest {
        method: Put,
        path: format!("/v1/documents/{doc}/content"),
        query: vec![],
        headers: vec![
            ("authorization".into(), auth.clone()),
            ("content-type".into(), "text/plain".into()),
        ],
        body: b"Zelda Quennell, ZQ9 9ZZ, 07700 900123".to_vec(),
        cf_country: Default::default(),
        request_id: "r".into(),
    });
    assert_eq!(up.status, 200);
    // Audit rows of every change, and cached renderings of each row.
    let patched = f.as_user(
        &admin,
        Patch,
        &format!("/v1/clients/{client}"),
        Some(json!({"notes": "Zelda prefers email"})),
    );
    assert_eq!(patched.status, 200);
    settle(&f);
    for path in [
        format!("/v1/clients/{client}"),
        format!("/v1/documents/{doc}"),
        format!("/v1/users/{adviser}"),
    ] {
        assert_eq!(f.as_user(&admin, Get, &path, None).status, 200);
    }
    // A row read at many versions (each its own rendering once): every one must go.
    for i in 0..12 {
        let r = f.as_user(
            &admin,
            Patch,
            &format!("/v1/clients/{client}"),
            Some(json!({"notes": format!("Zelda Quennell call {i}")})),
        );
        assert_eq!(r.status, 200);
        settle(&f);
        assert_eq!(
            f.as_user(&admin, Get, &format!("/v1/clients/{client}"), None)
                .status,
            200
        );
    }
    assert!(!findings(&f).is_empty(), "the strings are there before");
    assert!(f.count("SHARD_EU_01", "SELECT count(*) FROM audit_log") > 4);

    for (kind, id) in [("client", &client), ("user", &adviser)] {
        let r = f.as_user(
            &admin,
            Post,
            "/v1/erasure-requests",
            Some(json!({"subject_type": kind, "subject_id": id})),
        );
        assert_eq!(r.status, 202);
    }
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(run.outcome, Outcome::Ok, "{run:?}");
    assert_eq!(
        run.counts.to_json()["erasures_completed"],
        2,
        "{:?}",
        run.counts
    );
    // Events through the relay and the consumer: audit rows, derived copies recomputed.
    f.clock.advance(time::Duration::minutes(1));
    block_on(jobs::run(&f, Job::OutboxRelay, None));
    settle(&f);

    assert_eq!(findings(&f), Vec::<String>::new());
    // What is left are pseudonymous ids: the user row (referred to by audit rows) and the
    // erasure's audit trail, which still verifies.
    assert_eq!(
        f.count(
            "SHARD_EU_01",
            &format!("SELECT count(*) FROM users WHERE id = '{adviser}'")
        ),
        1
    );
    let verify = f.as_user(&admin, Get, "/v1/audit/verify", None);
    assert_eq!(verify.body_json().unwrap()["ok"], true);
    // Replaying the original create does not bring the erased response back.
    let replay = f.call(
        Post,
        "/v1/clients",
        &[
            ("authorization", &auth),
            ("idempotency-key", "create-zelda-1"),
        ],
        Some(json!({"forenames": "Someone", "surname": "Else", "status": "active"})),
    );
    let text = String::from_utf8(replay.body_bytes())
        .unwrap()
        .to_lowercase();
    assert!(!text.contains("quennell"), "{text}");
    // Nor does the very same request create the subject again: its key's row stays (ids and
    // digests only) and says the client is gone.
    let clients = f.count("SHARD_EU_01", "SELECT count(*) FROM clients");
    let same = f.call(
        Post,
        "/v1/clients",
        &[
            ("authorization", &auth),
            ("idempotency-key", "create-zelda-1"),
        ],
        Some(original),
    );
    assert_eq!(same.status, 410, "{:?}", same.body_json());
    assert_eq!(
        f.count("SHARD_EU_01", "SELECT count(*) FROM clients"),
        clients
    );
    assert_eq!(findings(&f), Vec::<String>::new());
}

/// A request id is the caller's free text (`x-request-id`): it may name the data subject, and
/// the audit trail it would be copied into is never erased. The event and the audit row keep a
/// digest of it; the response still echoes it as sent.
#[test]
fn a_callers_request_id_naming_a_person_never_reaches_the_event_or_the_audit_trail() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let sent = "create zelda.quennell@example.org";
    // As the platform adapter builds it from `x-request-id`.
    let r = f.raw(crate::api::http::ApiRequest {
        method: Post,
        path: "/v1/clients".into(),
        query: vec![],
        headers: vec![
            ("authorization".into(), format!("Bearer {admin}")),
            ("content-type".into(), "application/json".into()),
        ],
        body: br#"{"forenames": "Zelda", "surname": "Quennell", "status": "active"}"#.to_vec(),
        cf_country: Default::default(),
        request_id: sent.into(),
    });
    assert_eq!(r.status, 201, "{:?}", r.body_json());
    assert_eq!(r.header("x-request-id"), Some(sent), "echoed as sent");
    settle(&f);
    let recorded = crate::domain::personal_data::recorded_request_id(sent);
    for sql in [
        "SELECT body ->> '$.request_id' AS id FROM outbox",
        "SELECT body ->> '$.request_id' AS id FROM audit_log",
    ] {
        let rows = f.shard_db("SHARD_EU_01").query_json(sql);
        assert_eq!(rows.len(), 1, "{sql}");
        assert_eq!(rows[0]["id"], json!(recorded), "{sql}");
    }
    assert!(recorded.starts_with("sha256:"));
}
