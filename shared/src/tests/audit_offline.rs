//! The README's offline flow end to end: what the API hands out (the export's text, the
//! checkpoints page, the keys document) written to files as `curl ... > file` would, then the
//! offline verifier run on them with the key's fingerprint pinned, as printed in the README.

use super::audit_insider::*;
use crate::api::http::Method::*;
use crate::domain::clock::Clock;
use time::Duration;

#[test]
fn the_readme_commands_verify_what_the_api_hands_out_and_fail_once_it_is_altered() {
    let t = setup();
    t.events(3);
    t.f.clock.advance(Duration::minutes(65));
    t.job();
    t.events(2);
    t.f.clock.advance(Duration::hours(1));
    t.job();
    let dir = std::env::temp_dir().join(format!("audit-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let admin = t.admin();
    let fetch = |path: &str, file: &str| {
        let r = t.f.as_user(&admin, Get, path, None);
        assert_eq!(r.status, 200, "{path}");
        std::fs::write(dir.join(file), r.body_bytes()).unwrap();
        r
    };
    fetch("/v1/audit/export", "trail.jsonl");
    fetch("/v1/audit/checkpoints?limit=500", "checkpoints.json");
    let keys = t.f.call(Get, "/.well-known/audit-keys", &[], None);
    assert_eq!(keys.status, 200);
    std::fs::write(dir.join("keys.json"), keys.body_bytes()).unwrap();
    let fingerprint = keys.body_json().unwrap()["keys"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let arg = |a: &str| dir.join(a).display().to_string();
    let run = || {
        audit_verify::run_cli(
            [
                "--trail".to_string(),
                arg("trail.jsonl"),
                "--checkpoints".into(),
                arg("checkpoints.json"),
                "--keys".into(),
                arg("keys.json"),
                "--pin".into(),
                fingerprint.clone(),
            ],
            t.f.clock.now(),
        )
        .unwrap()
    };
    let r = run();
    assert!(r.ok, "{r:?}");
    assert_eq!((r.rows, r.checkpoints), (5, 2));
    // The last two lines cut from the export: it falls short of the writer's anchored head.
    let text = std::fs::read_to_string(dir.join("trail.jsonl")).unwrap();
    let cut: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("trail.jsonl"), cut).unwrap();
    let r = run();
    assert!(!r.ok, "{r:?}");
    // A line edited.
    std::fs::write(
        dir.join("trail.jsonl"),
        text.replacen("\"success\"", "\"failure\"", 1),
    )
    .unwrap();
    let r = run();
    assert_eq!(r.first_broken.map(|b| b.seq), Some(1));
    std::fs::remove_dir_all(&dir).ok();
}
