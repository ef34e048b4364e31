//! Erasure against the requests that race it: every content object under an erased document's
//! prefix goes (listed, not only the one its row names), an upload that lost its race removes
//! the object it stored, and no document is created for a client whose erasure was requested,
//! refused inside the INSERT itself.

use super::retention_review::{r2_hits, upload};
use super::*;

fn erasure(f: &Fake, admin: &str, client: &str) {
    request_erasure(f, admin, "client", client);
}

/// A document's row names one object; another sits under its prefix (an upload whose metadata
/// write had not landed when the erasure read the row). Erasure lists the prefix: none is left.
#[test]
fn erasure_removes_every_object_under_the_documents_prefix() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let client = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(client_body())));
    let doc = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/documents",
        Some(json!({"client_id": client, "kind": "fact_find", "title": "FF"})),
    ));
    assert_eq!(
        upload(&f, &admin, &doc, b"ada lovelace, first version"),
        200
    );
    let doc_id = Uuid::parse_str(&doc).unwrap();
    let racing = crate::domain::content::blob_key(acct, doc_id, &"ab".repeat(32));
    f.blobs.objects.borrow_mut().insert(
        racing.clone(),
        crate::ports::Blob {
            bytes: b"ada lovelace, racing upload".to_vec(),
            content_type: "text/plain".into(),
        },
    );
    erasure(&f, &admin, &client);
    let run = block_on(jobs::run(&f, Job::Retention, None));
    assert_eq!(run.outcome, Outcome::Ok, "{run:?}");
    let prefix = crate::domain::content::blob_prefix(acct, doc_id);
    let left: Vec<String> = f
        .blobs
        .objects
        .borrow()
        .keys()
        .filter(|k| k.starts_with(&prefix))
        .cloned()
        .collect();
    assert_eq!(left, Vec::<String>::new(), "objects left under {prefix}");
    assert_eq!(r2_hits(&f, "lovelace"), Vec::<String>::new());
    assert_eq!(
        run.counts.to_json()["contents_deleted"],
        2,
        "{:?}",
        run.counts
    );
}

/// The fake lists as R2 does: by prefix, in byte order, strictly after `start_after`, at most
/// `limit` keys.
#[test]
fn the_blob_fake_lists_like_r2() {
    use crate::ports::BlobStore;
    let b = crate::testing::fakes::MemBlobs::default();
    for k in ["a/2", "a/10", "a/1", "ab/1", "b/1"] {
        block_on(b.put(
            k,
            crate::ports::Blob {
                bytes: vec![],
                content_type: "text/plain".into(),
            },
        ))
        .unwrap();
    }
    assert_eq!(
        block_on(b.list("a/", None, 10)).unwrap(),
        ["a/1", "a/10", "a/2"]
    );
    assert_eq!(
        block_on(b.list("a/", Some("a/1"), 10)).unwrap(),
        ["a/10", "a/2"]
    );
    assert_eq!(block_on(b.list("a/", None, 2)).unwrap(), ["a/1", "a/10"]);
    assert_eq!(
        block_on(b.list("c/", None, 2)).unwrap(),
        Vec::<String>::new()
    );
}

/// An upload whose metadata write loses its race (the document changed between its read and
/// its write) answers 409 and leaves no object behind.
#[test]
fn an_upload_that_lost_its_race_leaves_no_object() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let client = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(client_body())));
    let doc = created_id(&f.as_user(
        &admin,
        Post,
        "/v1/documents",
        Some(json!({"client_id": client, "kind": "fact_find", "title": "FF"})),
    ));
    let shard = f.shard_db("SHARD_EU_01");
    let (s, d) = (shard.clone(), doc.clone());
    shard.before_next_batch(move || {
        s.exec(&format!(
            "UPDATE documents SET body = json_set(body, '$.version', 7) WHERE id = '{d}'"
        ))
        .unwrap();
    });
    assert_eq!(upload(&f, &admin, &doc, b"ada lovelace, lost upload"), 409);
    assert_eq!(r2_hits(&f, "lost upload"), Vec::<String>::new());
}

/// No document is created for a client whose erasure was requested: 409 `client-erased`,
/// nothing written (no row, no event). The refusal is the INSERT's own (no read of the request
/// first), so an insert racing the request is refused the same way.
#[test]
fn no_document_is_created_for_a_client_whose_erasure_was_requested() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", Some("shard-eu-01"));
    let admin = f.token(acct, Role::Admin);
    let client = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(client_body())));
    let other = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(client_body())));
    erasure(&f, &admin, &client);
    let body = |c: &str| json!({"client_id": c, "kind": "fact_find", "title": "FF"});
    let r = f.as_user(&admin, Post, "/v1/documents", Some(body(&client)));
    assert_eq!(r.status, 409, "{:?}", r.body_json());
    let p = r.body_json().unwrap();
    assert!(
        p["type"]
            .as_str()
            .unwrap_or_default()
            .ends_with("client-erased"),
        "{p}"
    );
    assert_eq!(
        f.count(
            "SHARD_EU_01",
            "SELECT count(*) FROM outbox WHERE body ->> '$.type' = 'document.created'"
        ),
        0
    );
    assert_eq!(f.count("SHARD_EU_01", "SELECT count(*) FROM documents"), 0);
    // Another client's documents are not affected.
    let r = f.as_user(&admin, Post, "/v1/documents", Some(body(&other)));
    assert_eq!(r.status, 201, "{:?}", r.body_json());
}
