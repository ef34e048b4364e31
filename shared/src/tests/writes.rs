//! The write protocol: numbers keep their type on the way to D1, every kind of write leaves an
//! integer version that its ETag names, and settings and holds reach the audit trail.

use super::{client_body, created_id};
use crate::api::http::{ApiRequest, Method::*};
use crate::domain::auth::Role;
use crate::jobs::{self, Job};
use crate::ports::{bind, D1Param, Database, Stmt};
use crate::testing::fakes::{block_on, SqliteDb};
use crate::testing::harness::*;
use serde_json::{json, Value};
use uuid::Uuid;

fn one(db: &SqliteDb, stmt: Stmt) -> serde_json::Map<String, Value> {
    block_on(db.query(stmt))
        .unwrap()
        .rows
        .into_iter()
        .next()
        .unwrap_or_default()
}

#[test]
fn d1_binds_numbers_as_real_so_integers_travel_as_text_cast_to_integer() {
    // What D1 receives: a JS number is a REAL; an integer goes as text under CAST.
    let stmt = Stmt::new(
        "SELECT typeof(?1) AS a, typeof(?2) AS b, json_set('{}', '$.v', ?1) AS j, '?1' AS lit",
        vec![json!(2), json!(2.5)],
    );
    let b = bind(&stmt);
    assert_eq!(
        b.params,
        vec![D1Param::Text("2".into()), D1Param::Real(2.5)]
    );
    assert!(b.sql.contains("typeof(CAST(?1 AS INTEGER))"), "{}", b.sql);
    assert!(
        b.sql.contains("'?1' AS lit"),
        "literals untouched: {}",
        b.sql
    );
    // The fake binds exactly that, so it stores what D1 stores.
    let db = SqliteDb::shard().unwrap();
    let r = one(
        &db,
        Stmt::new(
            "SELECT typeof(?1) AS a, typeof(?2) AS b, json_set('{}', '$.v', ?1) AS j, typeof(?3) AS c",
            vec![json!(2), json!(2.5), json!(i64::MAX)],
        ),
    );
    assert_eq!(r["a"], json!("integer"));
    assert_eq!(r["b"], json!("real"));
    assert_eq!(r["j"], json!("{\"v\":2}"));
    assert_eq!(r["c"], json!("integer"));
    // Without the cast a number is what D1 makes of it: REAL, and json_set writes `2.0`. This is
    // the defect the protocol cannot reintroduce: every bound value goes through `bind`.
    let raw = block_on(db.query(Stmt::new(
        "SELECT json_set('{}', '$.v', CAST(?1 AS REAL)) AS j",
        vec![json!("2")],
    )))
    .unwrap();
    assert_eq!(raw.rows[0]["j"], json!("{\"v\":2.0}"));
}

#[test]
fn bind_casts_exactly_the_placeholders_of_integer_parameters() {
    let mut params = vec![json!(7)];
    params.extend((2..=9).map(|i| json!(format!("s{i}"))));
    params.push(json!("ten")); // ?10 is text: not cast, though it starts like ?1
    params.push(json!(true)); // the bare `?` after ?10 is ?11
    params.push(json!(u64::MAX)); // too large for INTEGER: stays REAL, as D1 has it
    let stmt = Stmt::new(
        "SELECT ?1, ?10 -- ?1 in a comment\n, '?1', \"?1\", /* ?1 */ ?, ?12",
        params,
    );
    let b = bind(&stmt);
    assert_eq!(
        b.sql,
        "SELECT CAST(?1 AS INTEGER), ?10 -- ?1 in a comment\n, '?1', \"?1\", /* ?1 */ CAST(? AS INTEGER), ?12"
    );
    assert_eq!(b.params[10], D1Param::Text("1".into()));
    assert_eq!(b.params[11], D1Param::Real(u64::MAX as f64));
    // A statement without integers is passed through as it is.
    let plain = Stmt::new("SELECT ?1", vec![json!("a")]);
    assert!(matches!(bind(&plain).sql, std::borrow::Cow::Borrowed(_)));
}

#[test]
fn a_whole_number_read_back_from_d1_is_an_integer_as_in_javascript() {
    let db = SqliteDb::shard().unwrap();
    let r = one(&db, Stmt::new("SELECT 2.0 AS whole, 2.5 AS frac", vec![]));
    assert_eq!(r["whole"], json!(2));
    assert_eq!(r["frac"], json!(2.5));
}

/// Every versioned row of the shard: (table, id, typeof version, version).
fn versions(f: &Fake) -> Vec<(String, String, String, Value)> {
    let db = f.shard_db("SHARD_EU_01");
    let mut out = vec![];
    for t in [
        "groups",
        "users",
        "clients",
        "documents",
        "erasure_requests",
    ] {
        for r in db.query_json(&format!(
            "SELECT id, typeof(body ->> '$.version') AS ty, body ->> '$.version' AS v FROM {t}"
        )) {
            out.push((
                t.to_string(),
                r["id"].as_str().unwrap_or_default().to_string(),
                r["ty"].as_str().unwrap_or_default().to_string(),
                r["v"].clone(),
            ));
        }
    }
    out
}

fn assert_integer_versions(f: &Fake, after: &str) {
    for (t, id, ty, v) in versions(f) {
        assert_eq!(
            ty, "integer",
            "after {after}: {t} {id} has version {v} of type {ty}"
        );
    }
}

fn etag_of(r: &crate::api::http::ApiResponse) -> String {
    r.header("etag").unwrap_or_default().to_string()
}

fn upload(f: &Fake, tok: &str, doc: &str, bytes: &[u8], if_match: Option<&str>) -> u16 {
    let mut headers = vec![
        ("authorization".to_string(), format!("Bearer {tok}")),
        ("content-type".to_string(), "application/pdf".to_string()),
        ("host".to_string(), "api.test".to_string()),
    ];
    if let Some(m) = if_match {
        headers.push(("if-match".into(), m.into()));
    }
    f.raw(ApiRequest {
        method: Put,
        path: format!("/v1/documents/{doc}/content"),
        query: vec![],
        headers,
        body: bytes.to_vec(),
        cf_country: Default::default(),
        request_id: "r".into(),
    })
    .status
}

#[test]
fn after_every_kind_of_write_the_version_is_an_integer_that_the_etag_names() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Admin);
    let get = |path: &str| f.as_user(&tok, Get, path, None);
    let client = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let cpath = format!("/v1/clients/{client}");
    assert_eq!(etag_of(&get(&cpath)), "\"v1\"");
    assert_integer_versions(&f, "create");

    // Hold on, hold off: each moves the version by one, and the hold lifts.
    let hold = |on: bool| {
        f.as_user(
            &tok,
            Put,
            &format!("{cpath}/legal-hold"),
            Some(json!({ "hold": on })),
        )
    };
    let r = hold(true);
    assert_eq!((r.status, etag_of(&r)), (200, "\"v2\"".into()));
    assert_integer_versions(&f, "hold on");
    let r = hold(false);
    assert_eq!(
        (r.status, etag_of(&r)),
        (200, "\"v3\"".into()),
        "a lifted hold lifts"
    );
    assert_eq!(r.body_json().unwrap()["legal_hold"], json!(false));
    assert_eq!(etag_of(&get(&cpath)), "\"v3\"");
    // Still writable with the ETag GET returned.
    let r = f.call(
        Patch,
        &cpath,
        &[
            ("authorization", &format!("Bearer {tok}")),
            ("if-match", "\"v3\""),
        ],
        Some(json!({"surname": "Byron"})),
    );
    assert_eq!((r.status, etag_of(&r)), (200, "\"v4\"".into()));
    assert_integer_versions(&f, "patch after holds");

    // A document: upload, PATCH with the returned ETag, re-upload, DELETE with If-Match.
    let doc = created_id(&f.as_user(
        &tok,
        Post,
        "/v1/documents",
        Some(json!({"client_id": client, "kind": "identity", "title": "Passport"})),
    ));
    let dpath = format!("/v1/documents/{doc}");
    assert_eq!(upload(&f, &tok, &doc, b"%PDF-1", None), 200);
    assert_integer_versions(&f, "content upload");
    let e = etag_of(&get(&dpath));
    assert_eq!(e, "\"v2\"");
    let r = f.call(
        Patch,
        &dpath,
        &[
            ("authorization", &format!("Bearer {tok}")),
            ("if-match", &e),
        ],
        Some(json!({"title": "Passport (2026)"})),
    );
    assert_eq!((r.status, etag_of(&r)), (200, "\"v3\"".into()));
    assert_eq!(upload(&f, &tok, &doc, b"%PDF-2", Some("\"v3\"")), 200);
    assert_eq!(etag_of(&get(&dpath)), "\"v4\"");
    assert_integer_versions(&f, "second upload");
    let r = f.call(
        Delete,
        &dpath,
        &[
            ("authorization", &format!("Bearer {tok}")),
            ("if-match", "\"v4\""),
        ],
        None,
    );
    assert_eq!(r.status, 204);
    assert_integer_versions(&f, "delete");

    // Every other entity and the erasure request.
    for (path, body) in [
        ("/v1/groups", json!({"name": "North"})),
        (
            "/v1/users",
            json!({"email": "a@example.com", "display_name": "A", "role": "member"}),
        ),
    ] {
        let id = created_id(&f.as_user(&tok, Post, path, Some(body)));
        let r = f.as_user(&tok, Patch, &format!("{path}/{id}"), Some(json!({})));
        assert!(r.status == 200, "{path}: {:?}", r.body_json());
        assert_eq!(
            f.as_user(&tok, Delete, &format!("{path}/{id}"), None)
                .status,
            204
        );
    }
    let r = f.as_user(
        &tok,
        Post,
        "/v1/erasure-requests",
        Some(json!({"subject_type": "client", "subject_id": client})),
    );
    assert_eq!(r.status, 202, "{:?}", r.body_json());
    assert_integer_versions(&f, "every kind of write");
}

#[test]
fn a_version_stored_as_real_reads_as_an_integer_and_the_migration_repairs_it() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    let client = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let db = f.shard_db("SHARD_EU_01");
    // What the old binding left behind.
    db.exec(&format!(
        "UPDATE clients SET body = json_set(body, '$.version', 2.0) WHERE id = '{client}'"
    ))
    .unwrap();
    let cpath = format!("/v1/clients/{client}");
    let r = f.as_user(&tok, Get, &cpath, None);
    assert_eq!(etag_of(&r), "\"v2\"", "readers accept 2.0 as 2");
    let r = f.call(
        Patch,
        &cpath,
        &[
            ("authorization", &format!("Bearer {tok}")),
            ("if-match", "\"v2\""),
        ],
        Some(json!({"surname": "B"})),
    );
    assert_eq!((r.status, etag_of(&r)), (200, "\"v3\"".into()));
    // The repair migration turns what is left as REAL into INTEGER.
    db.exec(&format!(
        "UPDATE clients SET body = json_set(body, '$.version', 7.0) WHERE id = '{client}'"
    ))
    .unwrap();
    let repair = crate::migrations::SHARD
        .iter()
        .find(|m| m.name.contains("integer_versions"))
        .expect("the repair migration");
    db.exec(repair.sql).unwrap();
    assert_integer_versions(&f, "the repair migration");
    assert_eq!(etag_of(&f.as_user(&tok, Get, &cpath, None)), "\"v7\"");
}

fn audit_items(f: &Fake, acct: Uuid) -> Vec<Value> {
    let r = f.as_user(
        &f.token(acct, Role::Admin),
        Get,
        "/v1/audit?limit=200",
        None,
    );
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    r.body_json().unwrap()["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn retention_settings_and_account_holds_reach_the_audit_trail_with_actor_and_before_after() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let mut policy = f
        .as_user(&admin, Get, "/v1/settings/retention", None)
        .body_json()
        .cloned()
        .unwrap();
    policy["soft_delete_grace_days"] = json!(45);
    let r = f.as_user(&admin, Put, "/v1/settings/retention", Some(policy));
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    let r = f.admin(
        Put,
        &format!("/admin/v1/accounts/{acct}/legal-hold"),
        Some(json!({"hold": true})),
    );
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    assert_eq!(r.body_json().unwrap()["legal_hold"], json!(true));
    // The same value again is no change: no event.
    f.admin(
        Put,
        &format!("/admin/v1/accounts/{acct}/legal-hold"),
        Some(json!({"hold": true})),
    );
    f.drain_queue();
    let items = audit_items(&f, acct);
    let of = |field: &str| -> Vec<&Value> {
        items
            .iter()
            .filter(|e| e["action"] == "account.updated" && e["changed_fields"] == json!([field]))
            .collect()
    };
    let settings = of("retention");
    assert_eq!(settings.len(), 1, "{items:#?}");
    assert_eq!(settings[0]["actor"]["type"], "user");
    assert_eq!(
        settings[0]["changes"]["retention"]["after"]["soft_delete_grace_days"],
        json!(45)
    );
    // Before: the policy as it was (not yet the 45 days it became).
    let before = &settings[0]["changes"]["retention"]["before"];
    assert_ne!(before["soft_delete_grace_days"], json!(45), "{before}");
    let holds = of("legal_hold");
    assert_eq!(holds.len(), 1, "{items:#?}");
    assert_eq!(
        holds[0]["actor"],
        json!({"type": "system", "id": "operator:local-operator@ops.localhost"})
    );
    assert_eq!(
        holds[0]["changes"]["legal_hold"],
        json!({"before": false, "after": true})
    );
    // The account's version moved once per change, as an integer.
    let row = f
        .accounts
        .query_json(&format!(
            "SELECT typeof(body ->> '$.version') AS ty, body ->> '$.version' AS v, \
             body -> '$.pending_events' AS p FROM accounts WHERE id = '{acct}'"
        ))
        .remove(0);
    assert_eq!(
        (row["ty"].clone(), row["v"].clone()),
        (json!("integer"), json!(3))
    );
    assert!(row["p"].is_null(), "forwarded: {row:?}");
    let v = f.as_user(&admin, Get, "/v1/audit/verify", None);
    assert_eq!(
        v.body_json().unwrap()["ok"],
        json!(true),
        "{:?}",
        v.body_json()
    );
}

#[test]
fn an_account_change_left_in_its_row_is_forwarded_by_the_relay_once() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    // The change lands in the account D1 and the isolate dies before forwarding it.
    let ev = system_event(
        acct,
        0x5e77,
        ("accounts", "account", acct),
        crate::domain::event::Action::Updated,
        "operator",
    );
    let w = crate::services::changes::AccountWrite {
        account: acct,
        field: "legal_hold",
        value: json!(true),
        event: ev,
    };
    let out = block_on(crate::services::changes::commit_account(&*f.accounts, &w)).unwrap();
    assert!(
        matches!(
            out,
            crate::services::changes::AccountOutcome::Landed { version: 2, .. }
        ),
        "{out:?}"
    );
    let outbox = |f: &Fake| {
        f.count(
            "SHARD_EU_01",
            "SELECT count(*) FROM outbox WHERE id = '00000000-0000-0000-0000-000000005e77'",
        )
    };
    assert_eq!(outbox(&f), 0);
    for _ in 0..2 {
        block_on(jobs::run(&f, Job::OutboxRelay, None));
    }
    assert_eq!(
        outbox(&f),
        1,
        "forwarded once, however often the relay runs"
    );
}

/// An event by a system actor (`actor`), for driving the protocol directly.
pub(super) fn system_event(
    acct: Uuid,
    n: u128,
    (table, singular, id): (&str, &str, Uuid),
    action: crate::domain::event::Action,
    actor: &str,
) -> crate::domain::event::ChangeEvent {
    crate::domain::event::ChangeEvent::new(
        Uuid::from_u128(n),
        START,
        &crate::domain::event::Origin {
            deployment: "d",
            shard_id: "shard-eu-01",
            account_id: acct,
            actor: crate::domain::event::Actor::System { id: actor.into() },
            request_id: "r",
        },
        crate::domain::event::Change {
            entity_type: table,
            entity_singular: singular,
            entity_id: id,
            action,
            entity_version: 0,
            changed_fields: vec![],
        },
    )
}

#[test]
fn a_hard_delete_that_removed_nothing_writes_no_disposition_event() {
    // Two overlapping runs disposing of one row: only the DELETE that removed it emits.
    let db = SqliteDb::shard().unwrap();
    let acct = Uuid::from_u128(1);
    let id = Uuid::from_u128(2);
    db.exec(&format!(
        "INSERT INTO groups (account_id, id, body) VALUES ('{acct}', '{id}', '{{\"name\": \"g\"}}')"
    ))
    .unwrap();
    for n in [10u128, 11] {
        let ev = system_event(
            acct,
            n,
            ("groups", "group", id),
            crate::domain::event::Action::Purged,
            "retention",
        );
        block_on(db.batch(vec![
            Stmt::new(
                "DELETE FROM groups WHERE account_id = ?1 AND id = ?2",
                vec![json!(acct), json!(id)],
            ),
            crate::services::changes::purge_event(&ev, "groups", &id.to_string()),
        ]))
        .unwrap();
    }
    let n = db.query_json("SELECT count(*) AS n FROM outbox")[0]["n"].clone();
    assert_eq!(n, json!(1), "one disposition event");
}

#[test]
fn a_document_edit_keeps_the_relationship_end_the_row_has_now() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Admin);
    let client = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    let doc = created_id(&f.as_user(
        &tok,
        Post,
        "/v1/documents",
        Some(json!({"client_id": client, "kind": "identity", "title": "P"})),
    ));
    let db = f.shard_db("SHARD_EU_01");
    // The client's relationship ended after the document was read by a concurrent editor
    // (the propagation moves `client_ended_on` without moving the document's version).
    db.exec(&format!(
        "UPDATE documents SET body = json_set(body, '$.client_ended_on', '2026-01-31') WHERE id = '{doc}'"
    ))
    .unwrap();
    // The editor's write carries the body it read before that (no relationship end).
    let stale = json!({"client_id": client, "kind": "identity", "title": "Q", "version": 1});
    let doc_id = Uuid::parse_str(&doc).unwrap();
    let w = crate::services::changes::Write {
        table: "documents",
        id: doc_id,
        edit: crate::services::changes::Edit::Replace(stale),
        expect: crate::services::changes::Expect::Version(1),
        live_only: true,
        event: system_event(
            acct,
            99,
            ("documents", "document", doc_id),
            crate::domain::event::Action::Updated,
            "editor",
        ),
        with: vec![],
    };
    let landed = block_on(crate::services::changes::commit(&*db, &w)).unwrap();
    assert_eq!(landed.map(|l| l.version), Some(2));
    let row = db.query_json(&format!(
        "SELECT body ->> '$.client_ended_on' AS e FROM documents WHERE id = '{doc}'"
    ));
    assert_eq!(row[0]["e"], json!("2026-01-31"));
}

#[test]
fn the_relays_look_for_waiting_account_events_reads_only_the_partial_index() {
    let db = SqliteDb::accounts().unwrap();
    let stmt = crate::services::changes::accounts_with_pending_events("shard-eu-01");
    let plan = crate::testing::fakes::query_plan(&db, &stmt).join(" | ");
    assert!(plan.contains("accounts_pending_events"), "{plan}");
}
