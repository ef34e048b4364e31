use super::*;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-11-26 10:00 UTC);
pub(crate) const RSA_PEM: &str = include_str!("rsa.pem");
pub(crate) const RSA_PUBLIC_PEM: &str = include_str!("rsa.pub.pem");
pub(crate) const EC_PEM: &str = include_str!("ec.pem");

pub(crate) fn rsa_key(kid: &str) -> PublicKey {
    PublicKey::Rsa {
        kid: kid.into(),
        n: "tP0QOJQUwfFO3UDP8JEowg8Uwa2dAq7KQ79CSAm07pUIw4ZdvZNq8g5T56WPe57W93mWUNfcvvhjx5xOg82fJ9lUoPp8s7ksgUQYsyqPG1FR1GPKPXi2MVTzy6XEJHxr394PkH7HT6ltaEOaECwiRrypSIQTFM7W2DBcE7WlcBpbK2A3XXZdfQQALJy4GZpNb_76Prz6k8N3RJB3IAkj1T9W4UQlRyHZDyIVYLWbVba5ZFxFT1Tpxjx-Mnh4CGLG-aSKQsxiLv51i81q9EKbtY9c1i3D4UpA3vaxnkJNMTlJq3ROTc6h7CZOq98mf6RIXT7ITIcOc4eZsCb43XBOOQ".into(),
        e: "AQAB".into(),
    }
}

pub(crate) fn ec_key(kid: &str) -> PublicKey {
    PublicKey::Ec {
        kid: kid.into(),
        x: "_FsVaM8FiPf_GFTONvTDh6g-s528obQYVbr57M2RStE".into(),
        y: "_UmcMNl4_oX1l3Bo2edO8cmlxe6k_VolVtq_BpuLNb0".into(),
    }
}

pub(crate) fn issuer() -> Issuer {
    Issuer {
        issuer: "https://idp.firm.example".into(),
        audience: "clientdocs".into(),
        jwks_uri: "https://idp.firm.example/keys".into(),
        algorithms: vec![SigningAlg::RS256, SigningAlg::ES256],
        role_claim: Some("roles".into()),
        role_values: RoleValues {
            admin: vec!["ClientDocs.Admin".into()],
            member: vec!["ClientDocs.Adviser".into()],
            readonly: vec![],
        },
        user_claim: "email".into(),
        user_match: UserMatch::Email,
    }
}

pub(crate) fn claims(now: OffsetDateTime) -> Value {
    json!({
        "iss": "https://idp.firm.example", "aud": ["clientdocs", "other"],
        "sub": "00u1", "email": "Ann@Firm.example", "roles": ["ClientDocs.Adviser"],
        "iat": now.unix_timestamp(), "exp": now.unix_timestamp() + 3600,
    })
}

pub(crate) fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = kid.map(str::to_owned);
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()),
        Algorithm::ES256 => EncodingKey::from_ec_pem(EC_PEM.as_bytes()),
        _ => Ok(EncodingKey::from_secret(RSA_PUBLIC_PEM.as_bytes())),
    };
    match key.and_then(|k| jsonwebtoken::encode(&h, claims, &k)) {
        Ok(t) => t,
        Err(e) => panic!("signing a test token: {e}"),
    }
}

fn keys() -> Vec<PublicKey> {
    vec![rsa_key("r1"), ec_key("e1")]
}

#[test]
fn rs256_and_es256_tokens_of_a_trusted_issuer_verify_with_its_keys() {
    for (alg, kid) in [(Algorithm::RS256, "r1"), (Algorithm::ES256, "e1")] {
        let t = sign(alg, Some(kid), &claims(NOW));
        let c = verify(&t, &issuer(), &keys(), NOW).expect("verifies");
        assert_eq!(c["email"], "Ann@Firm.example");
        assert_eq!(role(&c, &issuer()), Some(Role::Member));
        assert_eq!(user_key(&c, &issuer()), Some("Ann@Firm.example"));
    }
}

#[test]
fn an_unknown_kid_is_reported_as_such_so_the_caller_may_refetch() {
    let t = sign(Algorithm::RS256, Some("r2"), &claims(NOW));
    assert_eq!(
        verify(&t, &issuer(), &keys(), NOW),
        Err(AuthError::UnknownKey)
    );
}

#[test]
fn a_kid_of_the_other_key_type_is_not_a_key_for_this_algorithm() {
    // ES256 header naming the RSA key: never verified with it.
    let t = sign(Algorithm::ES256, Some("r1"), &claims(NOW));
    assert_eq!(
        verify(&t, &issuer(), &keys(), NOW),
        Err(AuthError::UnknownKey)
    );
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let t = sign(Algorithm::HS256, Some("r1"), &claims(NOW));
    assert!(matches!(
        verify(&t, &issuer(), &keys(), NOW),
        Err(AuthError::Invalid(_))
    ));
}

#[test]
fn alg_none_is_refused_before_anything_else() {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let t = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","kid":"r1"}"#),
        b64.encode(claims(NOW).to_string())
    );
    assert!(inspect(&t).is_err());
    assert!(verify(&t, &issuer(), &keys(), NOW).is_err());
}

#[test]
fn an_algorithm_the_account_does_not_list_is_refused_even_with_a_good_signature() {
    let mut only_rsa = issuer();
    only_rsa.algorithms = vec![SigningAlg::RS256];
    let t = sign(Algorithm::ES256, Some("e1"), &claims(NOW));
    assert!(matches!(
        verify(&t, &only_rsa, &keys(), NOW),
        Err(AuthError::Invalid(_))
    ));
}

#[test]
fn wrong_issuer_wrong_audience_and_missing_exp_are_refused() {
    let mut c = claims(NOW);
    c["iss"] = json!("https://evil.example");
    assert!(verify(
        &sign(Algorithm::RS256, Some("r1"), &c),
        &issuer(),
        &keys(),
        NOW
    )
    .is_err());
    let mut c = claims(NOW);
    c["aud"] = json!("someone-else");
    assert!(verify(
        &sign(Algorithm::RS256, Some("r1"), &c),
        &issuer(),
        &keys(),
        NOW
    )
    .is_err());
    let mut c = claims(NOW);
    c.as_object_mut().map(|o| o.remove("exp"));
    assert!(verify(
        &sign(Algorithm::RS256, Some("r1"), &c),
        &issuer(),
        &keys(),
        NOW
    )
    .is_err());
}

#[test]
fn expiry_is_checked_against_the_injected_clock_with_sixty_seconds_of_skew() {
    let t = sign(Algorithm::RS256, Some("r1"), &claims(NOW));
    let exp = NOW + time::Duration::hours(1);
    assert!(verify(&t, &issuer(), &keys(), exp + time::Duration::seconds(60)).is_ok());
    assert_eq!(
        verify(&t, &issuer(), &keys(), exp + time::Duration::seconds(61)),
        Err(AuthError::Expired)
    );
    assert_eq!(
        verify(&t, &issuer(), &keys(), NOW - time::Duration::seconds(61)),
        Err(AuthError::NotYetValid)
    );
}

#[test]
fn jwks_parsing_keeps_only_rsa_and_p256_signing_keys_with_a_kid() {
    let body = json!({"keys": [
        {"kty": "RSA", "kid": "r1", "n": "AQAB", "e": "AQAB", "use": "sig", "alg": "RS256"},
        {"kty": "RSA", "kid": "r-enc", "n": "AQAB", "e": "AQAB", "use": "enc"},
        {"kty": "RSA", "kid": "r-ps", "n": "AQAB", "e": "AQAB", "alg": "PS256"},
        {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
        {"kty": "EC", "kid": "e1", "crv": "P-256", "x": "x", "y": "y"},
        {"kty": "EC", "kid": "e384", "crv": "P-384", "x": "x", "y": "y"},
        {"kty": "oct", "kid": "h1", "k": "c2VjcmV0"},
        {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "x"}
    ]});
    let keys = parse_jwks(body.to_string().as_bytes()).expect("parses");
    let kids: Vec<&str> = keys.iter().map(PublicKey::kid).collect();
    assert_eq!(kids, ["r1", "e1"]);
    assert!(parse_jwks(b"{}").is_err());
}

#[test]
fn the_highest_role_present_in_the_role_claim_wins_and_none_without_a_match() {
    let iss = issuer();
    let mut c = claims(NOW).as_object().cloned().unwrap_or_default();
    c.insert(
        "roles".into(),
        json!(["ClientDocs.Adviser", "ClientDocs.Admin"]),
    );
    assert_eq!(role(&c, &iss), Some(Role::Admin));
    c.insert("roles".into(), json!("ClientDocs.Admin"));
    assert_eq!(role(&c, &iss), Some(Role::Admin));
    c.insert("roles".into(), json!(["Payroll"]));
    assert_eq!(role(&c, &iss), None);
}

#[test]
fn settings_refuse_plain_http_when_deployed_duplicates_and_empty_algorithm_lists() {
    let ok = IdentitySettings {
        issuers: vec![issuer()],
    };
    assert_eq!(ok.validate(false), Ok(()));
    let mut http = ok.clone();
    http.issuers[0].jwks_uri = "http://idp.firm.example/keys".into();
    assert!(http.validate(false).is_err());
    assert_eq!(http.validate(true), Ok(()));
    let mut dup = ok.clone();
    dup.issuers.push(issuer());
    assert!(dup.validate(false).is_err());
    let mut none = ok.clone();
    none.issuers[0].algorithms.clear();
    assert!(none.validate(false).is_err());
    assert!(serde_json::from_value::<Issuer>(json!({
        "issuer": "https://a", "audience": "b", "jwks_uri": "https://a/k", "algorithms": ["HS256"]
    }))
    .is_err());
}
