//! Merge patches under contention on workerd: concurrent PATCHes without `If-Match` of different
//! fields all land (0 answers of 409, one version per write); with `If-Match` exactly one of the
//! writers holding the same ETag wins.

use integration_tests::*;
use serde_json::{json, Value};

pub const TESTS: &[NamedTest] = &[
    (
        "contention_eight_concurrent_unconditional_patches_all_land",
        unconditional,
    ),
    (
        "contention_concurrent_patches_under_one_if_match_have_one_winner",
        conditional,
    ),
];

const FIELDS: [&str; 8] = [
    "title",
    "email",
    "phone",
    "notes",
    "date_of_birth",
    "address",
    "dependants",
    "forenames",
];

fn value(field: &str) -> Value {
    match field {
        "email" => json!("ada@example.test"),
        "date_of_birth" => json!("1815-12-10"),
        "address" => json!({"postcode": "W1 1AA"}),
        "dependants" => json!([]),
        f => json!(format!("{f}-set")),
    }
}

fn new_client(env: &Env, t: &TestTenant) -> Result<(String, i64), String> {
    let r = env.call(
        t,
        &t.member,
        "POST",
        "/v1/clients",
        Some(&json!({"forenames": "A", "surname": "Contended", "status": "active"})),
        &[],
    )?;
    expect_status(&r, 201, "create client")?;
    let b = r.json();
    Ok((
        b["id"].as_str().unwrap_or_default().to_string(),
        b["version"].as_i64().unwrap_or(0),
    ))
}

/// The eight PATCHes, sent at once; their replies in field order.
fn patch_all(
    env: &Env,
    t: &TestTenant,
    path: &str,
    if_match: Option<&str>,
) -> Vec<Result<Reply, String>> {
    let extra: Vec<(&str, &str)> = if_match.map(|e| vec![("if-match", e)]).unwrap_or_default();
    std::thread::scope(|s| {
        let handles: Vec<_> = FIELDS
            .iter()
            .map(|field| {
                let extra = extra.clone();
                s.spawn(move || {
                    env.call(
                        t,
                        &t.member,
                        "PATCH",
                        path,
                        Some(&json!({ *field: value(field) })),
                        &extra,
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into())))
            .collect()
    })
}

fn unconditional(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    let (id, start) = new_client(env, &t)?;
    let path = format!("/v1/clients/{id}");
    let replies = patch_all(env, &t, &path, None);
    let mut conflicts = 0;
    for (field, r) in FIELDS.iter().zip(&replies) {
        let r = r.as_ref().map_err(|e| format!("{field}: {e}"))?;
        if r.status == 409 {
            conflicts += 1;
        } else {
            expect_status(r, 200, &format!("PATCH {field}"))?;
        }
    }
    ensure(
        conflicts == 0,
        format!("{conflicts} of 8 non-conflicting patches answered 409"),
    )?;
    let got = env.call(&t, &t.member, "GET", &path, None, &[])?;
    expect_status(&got, 200, "GET")?;
    let b = got.json();
    for field in FIELDS {
        ensure(b[field] == value(field), format!("{field} lost: {b}"))?;
    }
    ensure(
        b["version"].as_i64() == Some(start + 8),
        format!("version {} after 8 writes from {start}", b["version"]),
    )
}

fn conditional(env: &Env) -> TestResult {
    let t = env.tenant(None)?;
    let (id, start) = new_client(env, &t)?;
    let path = format!("/v1/clients/{id}");
    let etag = format!("\"v{start}\"");
    let replies = patch_all(env, &t, &path, Some(&etag));
    let mut statuses = vec![];
    for r in &replies {
        statuses.push(r.as_ref().map_err(Clone::clone)?.status);
    }
    let winners = statuses.iter().filter(|s| **s == 200).count();
    ensure(
        winners == 1,
        format!("{winners} winners under one If-Match: {statuses:?}"),
    )?;
    ensure(
        statuses.iter().all(|s| *s == 200 || *s == 412),
        format!("losers answer 412: {statuses:?}"),
    )?;
    let got = env.call(&t, &t.member, "GET", &path, None, &[])?;
    ensure(
        got.json()["version"].as_i64() == Some(start + 1),
        format!("version {} after one winner", got.json()["version"]),
    )
}
