use super::*;
use crate::testing::fakes::{block_on, SqliteDb};

#[test]
fn committed_fingerprints_match_the_migrations() {
    for (name, db, expected) in [
        ("account", SqliteDb::accounts().unwrap(), EXPECTED_ACCOUNT),
        ("shard", SqliteDb::shard().unwrap(), EXPECTED_SHARD),
    ] {
        let got = block_on(fingerprint(&db)).unwrap();
        assert_eq!(
            got,
            expected.trim(),
            "migrations/{name}.schema.sha256 is out of date: write {got} into it"
        );
    }
}

#[test]
fn an_extra_index_changes_the_fingerprint() {
    let db = SqliteDb::shard().unwrap();
    let before = block_on(fingerprint(&db)).unwrap();
    db.exec("CREATE INDEX rogue ON clients (account_id, status)")
        .unwrap();
    assert_ne!(block_on(fingerprint(&db)).unwrap(), before);
}
