//! SQL of identity: the account D1's `account_issuers` index (which account trusts an
//! (issuer, audience) pair), and the lookup of the user a verified token names in its shard.

use crate::ports::Stmt;
use serde_json::{json, Value};
use uuid::Uuid;

/// Claim `key` for `account` (nothing happens if anyone, this account included, holds it).
pub fn claim_issuer(key: &str, account: Uuid, iss: &str, aud: &str, now: &str) -> Stmt {
    Stmt::new(
        "INSERT INTO account_issuers (id, body) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
        vec![
            json!(key),
            json!(
                json!({"account_id": account, "issuer": iss, "audience": aud, "claimed_at": now})
                    .to_string()
            ),
        ],
    )
}

/// The account holding `key` (`account_id`), by primary key.
pub fn issuer_owner(key: &str) -> Stmt {
    Stmt::new(
        "SELECT body ->> '$.account_id' AS account_id FROM account_issuers WHERE id = ?1",
        vec![json!(key)],
    )
}

/// Release every pair `account` holds but `keep` (keys) does not name.
pub fn release_issuers(account: Uuid, keep: &[String]) -> Stmt {
    Stmt::new(
        "DELETE FROM account_issuers WHERE account_id = ?1 \
         AND id NOT IN (SELECT value FROM json_each(?2))",
        vec![
            json!(account),
            json!(Value::from(keep.to_vec()).to_string()),
        ],
    )
}

/// A live user by login email, case-insensitively (`users_by_email`): `id`, `role`.
pub fn user_by_email(account: Uuid, email: &str) -> Stmt {
    Stmt::new(
        "SELECT id, role FROM users WHERE account_id = ?1 AND email_lc = lower(?2) \
         AND deleted_at IS NULL",
        vec![json!(account), json!(email)],
    )
}

/// A live user by id (`users_live`): `id`, `role`.
pub fn user_by_id(account: Uuid, id: Uuid) -> Stmt {
    Stmt::new(
        "SELECT id, role FROM users WHERE account_id = ?1 AND id = ?2 AND deleted_at IS NULL",
        vec![json!(account), json!(id)],
    )
}
