//! `x-d1-bookmark` (issue 12 item 10): what cannot be a D1 bookmark is a 400 naming it; what
//! the API handed out, and the session constraints, are accepted.

use crate::api::http::Method::*;
use crate::domain::auth::Role;
use crate::testing::harness::*;

#[test]
fn a_made_up_bookmark_is_a_400_invalid_bookmark_and_an_issued_one_is_honoured() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let auth = format!("Bearer {}", f.token(acct, Role::Member));
    let issued = f
        .call(
            Post,
            "/v1/clients",
            &[("authorization", &auth)],
            Some(super::client_body()),
        )
        .header("x-d1-bookmark")
        .unwrap_or_default()
        .to_string();
    assert!(crate::api::tenant::is_bookmark(&issued), "{issued}");
    let get = |b: &str| {
        f.call(
            Get,
            "/v1/clients",
            &[("authorization", &auth), ("x-d1-bookmark", b)],
            None,
        )
    };
    for good in [
        issued.as_str(),
        "00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683",
        "first-primary",
        "first-unconstrained",
    ] {
        assert_eq!(get(good).status, 200, "{good}");
    }
    for bad in [
        "latest",
        "0000000000000001",
        "00000085-0000024c-00004c6d",
        "00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf89168",
        "00000085-0000024c-00004c6d-8E61117BF38D7ADB71B934EBBF891683",
        "0000008g-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683",
        "00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683-00",
    ] {
        let r = get(bad);
        let b = r.body_json().cloned().unwrap_or_default();
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(
            b["type"], "urn:clientdocs:problem:invalid-bookmark",
            "{bad}"
        );
        assert!(
            b["detail"].as_str().unwrap_or_default().contains(bad),
            "{b}"
        );
    }
}
