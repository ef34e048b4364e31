use super::*;
use serde_json::json;

fn client() -> Value {
    json!({"forenames": "Ada", "surname": "Lovelace", "status": "active",
               "dependants": [{"name": "Byron", "relationship": "child"}]})
}

#[test]
fn accepts_a_valid_client() {
    assert_eq!(validate(&CLIENTS, &client()), Ok(()));
}

#[test]
fn rejects_unknown_and_read_only_fields_by_pointer() {
    let mut c = client();
    c["surnmae"] = json!("x");
    c["version"] = json!(3);
    c["group_name"] = json!("x");
    let e = validate(&CLIENTS, &c).unwrap_err();
    let ptrs: Vec<_> = e.iter().map(|e| e.pointer.as_str()).collect();
    assert!(ptrs.contains(&"/surnmae"));
    assert!(ptrs.contains(&"/version"));
    assert!(ptrs.contains(&"/group_name"));
}

#[test]
fn enforces_required_types_lengths_and_nesting() {
    let e = validate(&CLIENTS, &json!({"forenames": "A"})).unwrap_err();
    assert!(e
        .iter()
        .any(|e| e.pointer == "/surname" && e.message == "is required"));
    let mut c = client();
    c["surname"] = json!("x".repeat(201));
    c["status"] = json!("vip");
    c["date_of_birth"] = json!("1815-13-10");
    c["dependants"][0]["age"] = json!(3);
    c["group_id"] = json!("not-a-uuid");
    let e = validate(&CLIENTS, &c).unwrap_err();
    let ptrs: Vec<_> = e.iter().map(|e| e.pointer.as_str()).collect();
    for p in [
        "/surname",
        "/status",
        "/date_of_birth",
        "/dependants/0/age",
        "/group_id",
    ] {
        assert!(ptrs.contains(&p), "{p} in {ptrs:?}");
    }
    let mut c = client();
    c["dependants"] = Value::Array(vec![json!({"name": "x", "relationship": "y"}); 21]);
    assert!(validate(&CLIENTS, &c).is_err());
}

#[test]
fn merge_patch_follows_rfc7396() {
    let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}});
    merge_patch(&mut t, &json!({"a": "z", "c": {"f": null}}));
    assert_eq!(t, json!({"a": "z", "c": {"d": "e"}}));
    let mut t = json!({"a": [1, 2]});
    merge_patch(&mut t, &json!({"a": [3]}));
    assert_eq!(t, json!({"a": [3]}));
    assert_eq!(
        changed_fields(&json!({"a": 1, "b": 2}), &json!({"a": 1, "c": 3})),
        vec!["b", "c"]
    );
}

#[test]
fn depth_counts_nesting() {
    assert_eq!(json_depth(&json!(1)), 0);
    assert_eq!(json_depth(&json!({"a": [{"b": 1}]})), 3);
}

#[test]
fn every_filter_column_has_an_index_in_the_migrations() {
    let sql: String = crate::migrations::SHARD.iter().map(|m| m.sql).collect();
    for e in ALL {
        for f in e.filters {
            let needle = format!(
                "ON {} (account_id, {}, id) WHERE deleted_at IS NULL",
                e.table, f.column
            );
            assert!(sql.contains(&needle), "missing index: {needle}");
        }
    }
}
