//! The audit writer's published keys: each with its fingerprint (what an auditor pins), and a
//! deployment without them answers a configuration error naming `AUDIT_PUBLIC_KEYS`, never a
//! verification against an empty key ring.

use super::audit_insider::*;
use crate::api::http::Method::*;

#[test]
fn the_published_keys_carry_the_fingerprint_of_each_key() {
    let t = setup();
    let r = t.f.call(Get, "/.well-known/audit-keys", &[], None);
    assert_eq!(r.status, 200);
    let k = &r.body_json().unwrap()["keys"][0];
    let key = t.f.seal.signer.public_key();
    assert_eq!(k["key_id"], key.key_id.as_str());
    assert_eq!(k["fingerprint"], key.fingerprint().unwrap().as_str());
    assert_eq!(k["fingerprint"].as_str().unwrap().len(), 64);
}

#[test]
fn missing_public_keys_are_a_configuration_error_naming_the_setting() {
    let mut t = setup();
    t.events(1);
    t.f.cfg.audit_keys = Vec::new();
    let admin = t.admin();
    for path in [
        "/v1/audit/verify",
        "/v1/audit/checkpoints",
        "/.well-known/audit-keys",
    ] {
        let r = t.f.as_user(&admin, Get, path, None);
        assert_eq!(r.status, 500, "{path}");
        let p = r.body_json().unwrap();
        assert_eq!(
            p["type"], "urn:clientdocs:problem:misconfigured",
            "{path}: {p}"
        );
        assert!(
            p["detail"].as_str().unwrap().contains("AUDIT_PUBLIC_KEYS"),
            "{p}"
        );
    }
}
