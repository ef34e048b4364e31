//! Opaque, tamper-evident page cursors (entity lists and the audit list/export): the position
//! as base64url JSON, then `.`, then an HMAC-SHA256 over the account, the query the page
//! belongs to and that JSON, keyed with the `CURSOR_SECRET` Worker secret. A cursor that was
//! altered, forged without the key, or made for another account or another query (filter,
//! collection) fails the MAC and is a 400; no position a client made up is ever queried.

use crate::api::error::ApiError;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

const LABEL: &[u8] = b"clientdocs page cursor v1";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn mac(secret: &str, account: Uuid, scope: &str, payload: &[u8]) -> Result<Hmac<Sha256>, ApiError> {
    if secret.is_empty() {
        return Err(ApiError::Internal(format!(
            "{} is not configured: cursors cannot be made or checked",
            crate::bindings::CURSOR_SECRET
        )));
    }
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|e| ApiError::Internal(format!("cursor key: {e}")))?;
    // Each part length-prefixed: no two (account, scope, payload) triples share an input.
    for part in [
        LABEL,
        account.as_bytes().as_slice(),
        scope.as_bytes(),
        payload,
    ] {
        m.update(&(part.len() as u64).to_be_bytes());
        m.update(part);
    }
    Ok(m)
}

/// The cursor of `position` for `account` and the query `scope`.
pub fn seal<T: serde::Serialize>(
    secret: &str,
    account: Uuid,
    scope: &str,
    position: &T,
) -> Result<String, ApiError> {
    let payload =
        serde_json::to_vec(position).map_err(|e| ApiError::Internal(format!("cursor: {e}")))?;
    let tag = mac(secret, account, scope, &payload)?
        .finalize()
        .into_bytes();
    Ok(format!("{}.{}", B64.encode(&payload), B64.encode(tag)))
}

/// The position a cursor carries, if this deployment made it for this account and query.
pub fn open<T: serde::de::DeserializeOwned>(
    secret: &str,
    account: Uuid,
    scope: &str,
    cursor: &str,
) -> Result<T, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "cursor is invalid: it was altered, or belongs to another account, filter or \
             collection; use the next_cursor of a page of this query",
        )
    };
    let (payload, tag) = cursor.split_once('.').ok_or_else(invalid)?;
    let payload = B64.decode(payload).map_err(|_| invalid())?;
    let tag = B64.decode(tag).map_err(|_| invalid())?;
    // Constant-time comparison (`verify_slice`).
    mac(secret, account, scope, &payload)?
        .verify_slice(&tag)
        .map_err(|_| invalid())?;
    serde_json::from_slice(&payload).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct P {
        id: String,
    }

    #[test]
    fn a_cursor_opens_only_with_its_key_account_and_scope_and_unaltered() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let p = P { id: "x".into() };
        let c = seal("k1", a, "clients?status=active", &p).unwrap();
        assert_eq!(open::<P>("k1", a, "clients?status=active", &c).unwrap(), p);
        assert!(open::<P>("k2", a, "clients?status=active", &c).is_err());
        assert!(open::<P>("k1", b, "clients?status=active", &c).is_err());
        assert!(open::<P>("k1", a, "clients?status=former", &c).is_err());
        let (body, tag) = c.split_once('.').unwrap();
        let forged = B64.encode(br#"{"id":"y"}"#);
        assert!(open::<P>("k1", a, "clients?status=active", &format!("{forged}.{tag}")).is_err());
        assert!(open::<P>("k1", a, "clients?status=active", body).is_err());
        assert!(matches!(seal("", a, "s", &p), Err(ApiError::Internal(_))));
    }
}
