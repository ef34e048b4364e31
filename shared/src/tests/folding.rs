//! Case-insensitive prefix search folds non-ASCII letters the same on write (the generated
//! columns of migration 0013) and on query (`domain::entity::fold`).

use crate::api::http::Method::*;
use crate::domain::auth::Role;
use crate::domain::entity::fold;
use crate::testing::fakes::{block_on, SqliteDb};
use crate::testing::harness::*;
use serde_json::json;

const MIGRATION: &str = "0013_folded_search.sql";

/// What migration 0013 must say: every folded column is `fold::sql_stages` of its field.
fn expected_migration() -> String {
    let mut out = String::from(
        "-- Case-insensitive prefix search folds non-ASCII letters (Ø/ø, É/é, ß/ss) the same on write\n\
         -- and on query: lower() folds ASCII only, so each folded column is the fold table of\n\
         -- shared::domain::entity::fold applied in SQL (fold::sql_stages: stages of generated columns,\n\
         -- D1 refuses expressions deeper than 100; tests/folding.rs checks this file against it), and\n\
         -- list queries fold the prefix with fold::fold. VIRTUAL: computed for existing rows too, no\n\
         -- backfill. The ASCII-only indexes they replace are dropped.\n",
    );
    for (table, column, field, index, old) in [
        (
            "groups",
            "name_fold",
            "$.name",
            "groups_by_name_fold",
            "groups_by_name",
        ),
        (
            "clients",
            "surname_fold",
            "$.surname",
            "clients_by_surname_fold",
            "clients_by_surname",
        ),
        (
            "clients",
            "search_fold",
            "$.search_text",
            "clients_by_search_fold",
            "clients_by_search",
        ),
    ] {
        for (name, sql) in fold::sql_stages(&format!("body ->> '{field}'"), column) {
            out += &format!(
                "ALTER TABLE {table} ADD COLUMN {name} TEXT GENERATED ALWAYS AS ({sql}) VIRTUAL;\n"
            );
        }
        out += &format!(
            "CREATE INDEX {index} ON {table} (account_id, {column}, id) WHERE deleted_at IS NULL;\n\
             DROP INDEX {old};\n"
        );
    }
    out
}

#[test]
fn migration_0013_folds_with_the_same_table_as_the_list_queries() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../migrations/shard/0013_folded_search.sql"
    );
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    if on_disk != expected_migration() {
        let out = std::env::temp_dir().join(MIGRATION);
        let _ = std::fs::write(&out, expected_migration());
        panic!(
            "{MIGRATION} differs from fold::sql_stages; the expected text is in {}",
            out.display()
        );
    }
}

#[test]
fn sqlite_and_rust_fold_every_letter_of_the_table_alike() {
    let db = SqliteDb::shard().unwrap();
    let mut all: String = fold::pairs().iter().map(|(c, _)| *c).collect();
    all += "ABCXYZ abc øéß Ꭰ";
    let q = |sql: &'static str, params: Vec<serde_json::Value>| {
        block_on(crate::ports::Database::query(
            &db,
            crate::ports::Stmt::new(sql, params),
        ))
        .unwrap()
    };
    q(
        "INSERT INTO groups (account_id, id, body) VALUES ('a', 'g', json_object('name', ?1))",
        vec![json!(all)],
    );
    let r = q("SELECT name_fold FROM groups WHERE id = 'g'", vec![]);
    assert_eq!(r.rows[0]["name_fold"], json!(fold::fold(&all)));
}

#[test]
fn prefix_search_finds_o_slash_and_e_acute_in_either_case() {
    let f = Fake::new();
    let (acct, _) = f.account("acme", None);
    let auth = format!("Bearer {}", f.token(acct, Role::Admin));
    let h = [("authorization", auth.as_str())];
    for (forenames, surname) in [("Ole", "Øster"), ("Éloise", "Éclair"), ("Ann", "Strauß")] {
        let r = f.call(
            Post,
            "/v1/clients",
            &h,
            Some(json!({"forenames": forenames, "surname": surname, "status": "active"})),
        );
        assert_eq!(r.status, 201, "{:?}", r.body_json());
    }
    f.drain_queue(); // the consumer writes search_text
    let surnames = |q: &str| -> Vec<String> {
        let r = f.call(Get, &format!("/v1/clients?{q}"), &h, None);
        assert_eq!(r.status, 200, "{q}: {:?}", r.body_json());
        r.body_json().unwrap()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["surname"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    for q in ["ø", "Ø", "øst", "ØST"] {
        assert_eq!(surnames(&format!("surname_prefix={q}")), ["Øster"], "{q}");
        assert_eq!(surnames(&format!("search_prefix={q}")), ["Øster"], "{q}");
    }
    for q in ["é", "É", "écl"] {
        assert_eq!(surnames(&format!("surname_prefix={q}")), ["Éclair"], "{q}");
    }
    assert_eq!(surnames("surname_prefix=strauss"), ["Strauß"]);
    assert_eq!(surnames("surname_prefix=STRAUSS"), ["Strauß"]);
    let g = f.call(
        Post,
        "/v1/groups",
        &h,
        Some(json!({"name": "Øresund office"})),
    );
    assert_eq!(g.status, 201);
    let r = f.call(Get, "/v1/groups?name_prefix=øRE", &h, None);
    assert_eq!(r.body_json().unwrap()["items"][0]["name"], "Øresund office");
}
