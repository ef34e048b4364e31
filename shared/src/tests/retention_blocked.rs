//! What the sweep cannot finish is never a silent success: a due row a foreign key keeps makes
//! the run `partial` with the row named; and an erasure whose kept records have all gone leaves
//! no pseudonymised shell of its client behind.

use super::*;
use time::macros::datetime;

fn policy(f: &Fake, admin: &str, document_years: u32, client_years: u32) {
    set_policy(f, admin, |p| {
        p["document_years_after_end"] = json!(document_years);
        p["client_years_after_end"] = json!(client_years);
    });
}

fn body(f: &Fake, table: &str, id: &str) -> Option<serde_json::Value> {
    f.shard_db("SHARD_EU_01")
        .query_json(&format!("SELECT body FROM {table} WHERE id = '{id}'"))
        .first()
        .and_then(|r| r["body"].as_str())
        .and_then(|s| serde_json::from_str(s).ok())
}

/// A soft-deleted user past its grace is due, but a client still names them as adviser: the
/// foreign key refuses the DELETE. The run says so: `partial`, the user named in its detail,
/// counted as blocked; the user stays.
#[test]
fn a_due_row_a_foreign_key_keeps_makes_the_run_partial_and_names_the_row() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let user = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/users",
        Some(json!({"email": "grace@acme.example", "display_name": "Grace", "role": "member"})),
    ));
    let mut c = client_body();
    c["adviser_id"] = json!(user);
    let client = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(c)));
    // Soft-deleted 60 days ago (whatever the API allows, the row may be in that state: an
    // import, an older build).
    f.shard_db("SHARD_EU_01")
        .exec(&format!(
            "UPDATE users SET body = json_set(body, '$.deleted_at', '2026-09-01T00:00:00.000Z') \
             WHERE id = '{user}'"
        ))
        .unwrap();
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(run.outcome, Outcome::Partial, "{run:?}");
    assert!(
        run.detail
            .iter()
            .any(|d| d.contains(&format!("users/{user}"))),
        "the blocked row is named: {:?}",
        run.detail
    );
    assert_eq!(run.counts.to_json()["users_blocked"], 1, "{:?}", run.counts);
    assert!(body(&f, "users", &user).is_some());
    assert!(body(&f, "clients", &client).is_some());
}

/// A former client is due (6 years) while the policy keeps its documents longer (10): the
/// client is kept with them (the longest retention wins), counted as such, and the run is a
/// success; once the documents have gone, so does the client.
#[test]
fn a_due_client_whose_documents_are_kept_is_kept_with_them() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    policy(&f, &admin, 10, 6);
    // The client is due 2024, its documents 2028.
    let (client, doc) = former_client_with_document(&f, &admin, "2018-01-01", "fact_find");
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(run.outcome, Outcome::Ok, "{run:?}");
    let counts = run.counts.to_json();
    assert_eq!(counts["clients_kept_for_documents"], 1, "{counts:?}");
    assert!(counts.get("clients_blocked").is_none(), "{counts:?}");
    assert!(body(&f, "clients", &client).is_some());
    advance_to(&f, datetime!(2028-01-01 02:00 UTC));
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(run.outcome, Outcome::Ok, "{run:?}");
    assert!(body(&f, "documents", &doc).is_none());
    assert!(body(&f, "clients", &client).is_none());
}

/// An erasure keeps a document a law still requires (documents 8 years, the client's 6 are
/// over): the client is pseudonymised, its document restricted. When the document's
/// restriction ends, the review erases it and, with nothing kept referring to it, deletes the
/// client's pseudonymised row too, in that same run, with one disposition event.
#[test]
fn an_erasure_whose_kept_records_are_gone_deletes_the_pseudonymised_client() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    policy(&f, &admin, 8, 6);
    // The client is due 2025, its document 2027-06-01.
    let (client, doc) = former_client_with_document(&f, &admin, "2019-06-01", "fact_find");
    let req = request_erasure(&f, &admin, "client", &client);
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(run.outcome, Outcome::Ok, "{run:?}");
    let shell = body(&f, "clients", &client).expect("pseudonymised, not deleted");
    assert_eq!(shell["surname"], "[erased]", "{shell}");
    assert!(body(&f, "documents", &doc).unwrap()["restricted"].is_object());
    // Later the firm keeps client records longer: the ended-client step no longer disposes
    // of the shell, the erasure must.
    policy(&f, &admin, 8, 12);
    advance_to(&f, datetime!(2027-06-01 02:00 UTC));
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(run.outcome, Outcome::Ok, "{run:?}");
    assert!(body(&f, "documents", &doc).is_none(), "erased at its end");
    assert!(
        body(&f, "clients", &client).is_none(),
        "no pseudonymised shell is left: {:?}",
        body(&f, "clients", &client)
    );
    let done = body(&f, "erasure_requests", &req).unwrap();
    assert_eq!(done["status"], "completed", "{done}");
    let events = f.count(
        "SHARD_EU_01",
        &format!(
            "SELECT count(*) FROM outbox WHERE body ->> '$.subject' = 'clients/{client}' \
             AND body ->> '$.type' IN ('client.erased', 'client.purged')"
        ),
    );
    assert_eq!(events, 2, "pseudonymised once, then deleted once");
}
