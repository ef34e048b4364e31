//! The audit trail as tenants read it: lists and exports by filter, verify naming a tampered or missing row, deletions refused.

use super::*;

#[test]
fn a_tampered_audit_row_is_named_by_verify() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    for _ in 0..3 {
        created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    }
    f.drain_queue();
    let db = f.shard_db("SHARD_EU_01");
    assert!(
        db.exec("UPDATE audit_log SET body = body WHERE seq = 2")
            .is_err(),
        "append-only trigger"
    );
    db.exec(
        "DROP TRIGGER audit_log_no_update; \
         UPDATE audit_log SET body = json_set(body, '$.actor.role', 'admin') WHERE seq = 2;",
    )
    .unwrap();
    let v = f.as_user(&f.token(acct, Role::Admin), Get, "/v1/audit/verify", None);
    let v = v.body_json().unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_broken_seq"], 2);
}

#[test]
fn audit_trail_lists_by_target_and_exports_json_lines_to_admins_only() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Admin);
    let a = created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    f.clock.advance(time::Duration::seconds(1));
    let r = f.as_user(
        &tok,
        Patch,
        &format!("/v1/clients/{a}"),
        Some(json!({"status": "former"})),
    );
    assert_eq!(r.status, 200);
    f.drain_queue();
    let r = f.as_user(
        &tok,
        Get,
        &format!("/v1/audit?target_type=clients&target_id={a}"),
        None,
    );
    let items = r.body_json().unwrap()["items"].as_array().cloned().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["client.created", "client.updated"]);
    assert_eq!(items[1]["changed_fields"], json!(["status"]));
    // Pages.
    let p1 = f.as_user(&tok, Get, "/v1/audit?limit=2", None);
    let p1 = p1.body_json().unwrap();
    assert_eq!(p1["items"].as_array().unwrap().len(), 2);
    let c = p1["next_cursor"].as_str().unwrap();
    let p2 = f.as_user(&tok, Get, &format!("/v1/audit?limit=2&cursor={c}"), None);
    assert_eq!(p2.body_json().unwrap()["items"][0]["seq"], 3);
    // Export.
    let e = f.as_user(&tok, Get, "/v1/audit/export", None);
    assert_eq!(e.header("content-type"), Some("application/x-ndjson"));
    let text = String::from_utf8(e.body_bytes()).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    // Members do not read the audit trail; unknown filters are refused.
    assert_eq!(
        f.as_user(&f.token(acct, Role::Member), Get, "/v1/audit", None)
            .status,
        403
    );
    assert_eq!(
        f.as_user(&tok, Get, "/v1/audit?entity=clients", None)
            .status,
        400
    );
}

#[test]
fn deleting_audit_rows_is_refused_and_a_missing_first_row_is_reported() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let tok = f.token(acct, Role::Member);
    for _ in 0..3 {
        created_id(&f.as_user(&tok, Post, "/v1/clients", Some(client_body())));
    }
    f.drain_queue();
    let db = f.shard_db("SHARD_EU_01");
    assert!(
        db.exec("DELETE FROM audit_log WHERE seq = 1").is_err(),
        "append-only"
    );
    db.exec("DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq = 1;")
        .unwrap();
    let v = f.as_user(&f.token(acct, Role::Admin), Get, "/v1/audit/verify", None);
    let v = v.body_json().unwrap();
    assert_eq!(
        (v["ok"].clone(), v["first_broken_seq"].clone()),
        (json!(false), json!(2))
    );
    assert_eq!(
        f.as_user(&tok, Get, "/v1/audit/verify", None).status,
        403,
        "admins only"
    );
}
