//! Derived fields recomputed by the consumer: group renames in chunks, advisers, documents, search text, a client's relationship end on its documents.

use super::*;

#[test]
fn renaming_a_group_reaches_every_client_in_chunks() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let group = created_id(&f.as_user(&admin, Post, "/v1/groups", Some(json!({"name": "Leeds"}))));
    let n = crate::services::derived::CHUNK as usize * 2 + 7;
    for i in 0..n {
        let mut c = client_body();
        c["surname"] = json!(format!("S{i:05}"));
        c["group_id"] = json!(group);
        created_id(&f.as_user(&admin, Post, "/v1/clients", Some(c)));
    }
    settle(&f);
    let named = |name: &str| {
        f.count(
            "SHARD_EU_01",
            &format!("SELECT count(*) FROM clients WHERE body ->> '$.group_name' = '{name}'"),
        )
    };
    assert_eq!(named("Leeds"), n as i64);
    let r = f.as_user(
        &admin,
        Patch,
        &format!("/v1/groups/{group}"),
        Some(json!({"name": "Leeds North"})),
    );
    assert_eq!(r.status, 200);
    let follow_ups = settle(&f);
    assert_eq!(
        follow_ups, 2,
        "two chunks after the first, each its own message"
    );
    assert_eq!(named("Leeds North"), n as i64);
    // Replaying the rename event changes nothing further.
    assert_eq!(named("Leeds"), 0);
}

#[test]
fn index_fields_follow_advisers_documents_and_search() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let adviser = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/users",
        Some(json!({"email": "a@acme.example", "display_name": "Alex", "role": "member"})),
    ));
    let mut c = client_body();
    c["adviser_id"] = json!(adviser);
    c["address"] = json!({"postcode": "SW1Y 4JH"});
    let client = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(c)));
    for kind in ["identity", "fact_find"] {
        created_id(&f.as_user(
            &admin,
            Post,
            "/v1/documents",
            Some(json!({"client_id": client, "kind": kind, "title": "t"})),
        ));
    }
    settle(&f);
    let get = |f: &Fake| {
        f.as_user(&admin, Get, &format!("/v1/clients/{client}"), None)
            .body_json()
            .cloned()
            .unwrap()
    };
    let v = get(&f);
    assert_eq!(v["adviser_name"], "Alex");
    assert_eq!(v["document_count"], 2);
    assert_eq!(v["search_text"], "lovelace ada sw1y 4jh");
    f.as_user(
        &admin,
        Patch,
        &format!("/v1/users/{adviser}"),
        Some(json!({"display_name": "Alexandra"})),
    );
    settle(&f);
    assert_eq!(get(&f)["adviser_name"], "Alexandra");
    let found = f.as_user(&admin, Get, "/v1/clients?search_prefix=LOVE", None);
    assert_eq!(
        found.body_json().unwrap()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A document cannot move to another client (its count would be wrong).
    let docs = f.as_user(
        &admin,
        Get,
        &format!("/v1/documents?client_id={client}"),
        None,
    );
    let doc = docs.body_json().unwrap()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = f.as_user(
        &admin,
        Patch,
        &format!("/v1/documents/{doc}"),
        Some(json!({"client_id": Uuid::from_u128(5)})),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        f.as_user(&admin, Delete, &format!("/v1/documents/{doc}"), None)
            .status,
        204
    );
    settle(&f);
    assert_eq!(get(&f)["document_count"], 1);
}

#[test]
fn fan_out_chunks_search_the_group_and_adviser_indexes() {
    let db = SqliteDb::shard().unwrap();
    for kind in [
        crate::services::derived::FanOut::GroupName,
        crate::services::derived::FanOut::AdviserName,
    ] {
        let plan = query_plan(
            &db,
            &crate::services::derived::fan_out_chunk(kind, "a", "g", ""),
        )
        .join(" | ");
        // The adviser's fan-out reaches soft-deleted clients too (an erased name must not
        // survive in them): the index of all clients by adviser.
        assert!(
            plan.contains("USING INDEX clients_by_")
                || plan.contains("USING INDEX clients_all_by_adviser"),
            "{plan}"
        );
        assert!(!plan.contains("SCAN clients"), "{plan}");
    }
}

#[test]
fn documents_carry_their_clients_relationship_end_hidden_and_kept_in_step() {
    let f = Fake::new();
    let (acct, _) = f.account("ended", Some("shard-eu-01"));
    let tok = f.token(acct, Role::Member);
    let mut c = client_body();
    c["relationship_ended_on"] = json!("2015-03-31");
    let client = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(c)));
    let doc = |title: &str| {
        f.as_user(
            &tok,
            Post,
            "/v1/documents",
            Some(json!({"client_id": client, "kind": "fact_find", "title": title})),
        )
    };
    let d1 = doc("one");
    let d1_id = created_id(&d1);
    assert!(
        d1.body_json().unwrap().get("client_ended_on").is_none(),
        "never shown"
    );
    let stored = |id: &str| {
        f.count(
            "SHARD_EU_01",
            &format!("SELECT count(*) FROM documents WHERE id = '{id}' AND client_ended_on = '2015-03-31'"),
        )
    };
    assert_eq!(stored(&d1_id), 1, "copied at creation");
    // The client's end changes: every document follows in the same batch.
    let r = f.as_user(
        &tok,
        Patch,
        &format!("/v1/clients/{client}"),
        Some(json!({"relationship_ended_on": "2016-01-31"})),
    );
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    assert_eq!(
        f.count("SHARD_EU_01", &format!("SELECT count(*) FROM documents WHERE id = '{d1_id}' AND client_ended_on = '2016-01-31'")),
        1
    );
    // Cleared: the copy goes too (no nulls stored).
    f.as_user(
        &tok,
        Patch,
        &format!("/v1/clients/{client}"),
        Some(json!({"relationship_ended_on": null})),
    );
    assert_eq!(
        f.count("SHARD_EU_01", &format!("SELECT count(*) FROM documents WHERE id = '{d1_id}' AND body ->> '$.client_ended_on' IS NULL AND body NOT LIKE '%client_ended_on%'")),
        1
    );
    // A document PATCH keeps the server's copy, and clients cannot set it.
    let refused = f.as_user(
        &tok,
        Patch,
        &format!("/v1/documents/{d1_id}"),
        Some(json!({"client_ended_on": "2000-01-01"})),
    );
    assert_eq!(refused.status, 400, "{:?}", refused.body_json());
    // An unknown client is still refused by the foreign key.
    let orphan = f.as_user(
        &tok,
        Post,
        "/v1/documents",
        Some(json!({"client_id": Uuid::from_u128(99), "kind": "fact_find", "title": "x"})),
    );
    assert_eq!(orphan.status, 422, "{:?}", orphan.body_json());
}
