//! Which requests write their "request done" line (`api::http::RequestLog`): every write,
//! error and slow read; of the other reads one in `reads_every`, by request id.

use crate::api::http::{Method, RequestLog};

fn ids(n: usize) -> impl Iterator<Item = String> {
    (0..n).map(|i| format!("req-{i:06}"))
}

#[test]
fn writes_errors_and_slow_reads_are_always_logged() {
    let p = RequestLog::from_var(None);
    assert_eq!(p.reads_every, RequestLog::DEFAULT_READS_EVERY);
    for id in ids(500) {
        for m in [Method::Post, Method::Patch, Method::Put, Method::Delete] {
            assert_eq!(p.line(&m, 201, 3, &id), Some(1), "{m:?} {id}");
        }
        for status in [400, 401, 404, 409, 412, 503] {
            assert_eq!(
                p.line(&Method::Get, status, 3, &id),
                Some(1),
                "{status} {id}"
            );
        }
        assert_eq!(p.line(&Method::Get, 200, RequestLog::SLOW_MS, &id), Some(1));
    }
}

#[test]
fn one_read_in_reads_every_is_logged_and_says_so() {
    let p = RequestLog::from_var(Some("20"));
    let logged: Vec<Option<u32>> = ids(20_000)
        .map(|id| p.line(&Method::Get, 200, 3, &id))
        .filter(Option::is_some)
        .collect();
    // About 1,000 of 20,000 (a fixed hash of fixed ids: the count is the same every run).
    assert!((800..1200).contains(&logged.len()), "{}", logged.len());
    assert!(logged.iter().all(|s| *s == Some(20)));
    // The choice belongs to the request id: HEAD and GET of one id agree, every time.
    for id in ids(200) {
        assert_eq!(
            p.line(&Method::Get, 200, 3, &id).is_some(),
            p.line(&Method::Head, 204, 3, &id).is_some()
        );
    }
}

#[test]
fn every_read_is_logged_when_asked_and_bad_settings_fall_back_to_the_default() {
    for v in ["1", " 1 "] {
        let p = RequestLog::from_var(Some(v));
        assert!(ids(300).all(|id| p.line(&Method::Get, 200, 3, &id) == Some(1)));
    }
    assert!(ids(300).all(|id| RequestLog::ALL.line(&Method::Get, 200, 0, &id) == Some(1)));
    for v in ["0", "-5", "often", ""] {
        assert_eq!(
            RequestLog::from_var(Some(v)).reads_every,
            RequestLog::DEFAULT_READS_EVERY,
            "{v:?}"
        );
    }
}
