//! Derived fields stay true after purges and erasures: a kept client's `document_count` is
//! recomputed in the very batch that purges one of its documents, and names removed by an
//! erasure leave no denormalised copy (`adviser_name`, `search_text`) behind.

use super::*;

fn client_field(f: &Fake, id: &str, field: &str) -> serde_json::Value {
    f.shard_db("SHARD_EU_01").query_json(&format!(
        "SELECT body -> '$.{field}' AS v FROM clients WHERE id = '{id}'"
    ))[0]["v"]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(serde_json::Value::Null)
}

#[test]
fn a_kept_clients_document_count_is_recomputed_when_retention_purges_its_documents() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let mut c = client_body();
    // AML evidence went on 2026-06-01 (5 years); the client and its other documents stay
    // until 2027-06-01 (6 years).
    c["relationship_ended_on"] = json!("2021-06-01");
    let client = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(c)));
    for kind in ["aml_evidence", "identity", "fact_find"] {
        created_id(&f.as_user(
            &admin,
            Post,
            "/v1/documents",
            Some(json!({"client_id": client, "kind": kind, "title": kind})),
        ));
    }
    settle(&f);
    assert_eq!(client_field(&f, &client, "document_count"), 3);
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(
        run.counts.to_json()["documents_deleted"],
        2,
        "{:?}",
        run.counts
    );
    // At once, in the purge's own batch (the purged documents' events cannot name the client).
    assert_eq!(client_field(&f, &client, "document_count"), 1);
    // And still after the consumer has seen the purge events.
    f.clock.advance(time::Duration::minutes(1));
    block_on(jobs::run(&f, Job::OutboxRelay, None));
    settle(&f);
    assert_eq!(client_field(&f, &client, "document_count"), 1);
}

#[test]
fn an_erased_adviser_and_an_erased_client_leave_no_name_in_denormalised_copies() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let adviser = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/users",
        Some(json!({"email": "ann@acme.example", "display_name": "Ann Adviser", "role": "member"})),
    ));
    let mut clients = Vec::new();
    for surname in ["Lovelace", "Babbage"] {
        let mut c = client_body();
        c["surname"] = json!(surname);
        c["adviser_id"] = json!(adviser);
        c["address"] = json!({"postcode": "N1 1AA"});
        clients.push(created_id(&f.as_user(&admin, Post, "/v1/clients", Some(c))));
    }
    // AML evidence keeps the first client's row (pseudonymised) after its erasure.
    created_id(&f.as_user(
        &admin,
        Post,
        "/v1/documents",
        Some(json!({"client_id": clients[0], "kind": "aml_evidence", "title": "Passport"})),
    ));
    settle(&f);
    assert_eq!(client_field(&f, &clients[0], "adviser_name"), "Ann Adviser");
    for (kind, id) in [("user", &adviser), ("client", &clients[0])] {
        let r = f.as_user(
            &admin,
            Post,
            "/v1/erasure-requests",
            Some(json!({"subject_type": kind, "subject_id": id})),
        );
        assert_eq!(r.status, 202);
    }
    block_on(jobs::run(&f, Job::Retention, None));
    f.clock.advance(time::Duration::minutes(1));
    block_on(jobs::run(&f, Job::OutboxRelay, None));
    settle(&f);
    let rows = f
        .shard_db("SHARD_EU_01")
        .query_json("SELECT body FROM clients");
    let text = format!("{rows:?}").to_lowercase();
    assert!(!text.contains("ann adviser"), "{text}");
    assert!(
        !text.contains("lovelace") && !text.contains("n1 1aa n1"),
        "the erased client's name is gone from its search key: {text}"
    );
    assert_eq!(
        client_field(&f, &clients[1], "adviser_name"),
        serde_json::Value::Null
    );
    assert_eq!(
        client_field(&f, &clients[1], "search_text"),
        "babbage ada n1 1aa"
    );
    assert_eq!(
        client_field(&f, &clients[0], "search_text"),
        "[erased] [erased]"
    );
}
