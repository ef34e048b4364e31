//! The optional KV read cache: only the current version, never over a bookmark.

use super::*;

#[test]
fn read_cache_serves_only_the_current_version_and_never_overrides_a_bookmark() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let admin = f.token(acct, Role::Admin);
    let group = created_id(&f.as_user(&admin, Post, "/v1/groups", Some(json!({"name": "Leeds"}))));
    let mut c = client_body();
    c["group_id"] = json!(group);
    let id = created_id(&f.as_user(&admin, Post, "/v1/clients", Some(c)));
    settle(&f);
    let path = format!("/v1/clients/{id}");
    let first = f.as_user(&admin, Get, &path, None);
    assert_eq!(first.header("x-cache"), Some("miss"));
    let second = f.as_user(&admin, Get, &path, None);
    assert_eq!(second.header("x-cache"), Some("hit"));
    assert_eq!(second.body_json(), first.body_json());
    // Prove the hit comes from KV: mark the cached copy.
    for v in f.cache.entries.borrow_mut().values_mut() {
        *v = v.replace("Lovelace", "FromCache");
    }
    assert_eq!(
        f.as_user(&admin, Get, &path, None).body_json().unwrap()["surname"],
        "FromCache"
    );
    // A bookmark bypasses the cache.
    let bm = f.call(
        Get,
        &path,
        &[
            ("authorization", &format!("Bearer {admin}")),
            (
                "x-d1-bookmark",
                "00000000-00000001-00000000-00000000000000000000000000000000",
            ),
        ],
        None,
    );
    assert_eq!(
        (
            bm.header("x-cache"),
            bm.body_json().unwrap()["surname"].clone()
        ),
        (None, json!("Lovelace"))
    );
    // An update moves the version: the old entry can no longer be found.
    let r = f.as_user(&admin, Patch, &path, Some(json!({"surname": "Byron"})));
    assert_eq!(r.status, 200);
    let g = f.as_user(&admin, Get, &path, None);
    assert_eq!(
        (
            g.header("x-cache"),
            g.body_json().unwrap()["surname"].clone()
        ),
        (Some("miss"), json!("Byron"))
    );
    // So does a derived-field update (the consumer re-derived search_text, then a group
    // rename), without moving the user's version.
    settle(&f);
    assert_eq!(
        f.as_user(&admin, Get, &path, None).header("x-cache"),
        Some("miss")
    );
    assert_eq!(
        f.as_user(&admin, Get, &path, None).header("x-cache"),
        Some("hit")
    );
    f.as_user(
        &admin,
        Patch,
        &format!("/v1/groups/{group}"),
        Some(json!({"name": "Leeds North"})),
    );
    settle(&f);
    let g = f.as_user(&admin, Get, &path, None);
    let body = g.body_json().unwrap();
    assert_eq!(
        (body["group_name"].clone(), body["version"].clone()),
        (json!("Leeds North"), json!(2))
    );
    assert!(
        body.get("index_rev").is_none(),
        "internal counter is not shown"
    );
}
