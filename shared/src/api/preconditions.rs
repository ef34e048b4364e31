//! ETags and `If-Match`: an entity's ETag is `"v{version}"`, always strong. `If-Match` uses the
//! strong comparison of RFC 9110 §8.8.3.2 (§13.1.1): a weak tag (`W/"v4"`) never matches, and
//! `*` matches any current representation (the row exists and is live).

use crate::api::http::ApiRequest;

pub fn etag(version: i64) -> String {
    format!("\"v{version}\"")
}

pub(crate) fn if_match(req: &ApiRequest) -> Option<&str> {
    req.header("if-match").map(str::trim)
}

/// The strong entity tags an `If-Match` list names (weak ones dropped: they never match).
fn strong_tags(header: &str) -> impl Iterator<Item = &str> {
    header
        .split(',')
        .map(str::trim)
        .filter(|s| s.len() >= 2 && s.starts_with('"') && s.ends_with('"'))
}

/// The versions an `If-Match` header accepts: None for `*` (any), else the strong `"vN"` tags
/// listed (an empty list matches nothing).
pub(crate) fn if_match_versions(header: &str) -> Option<Vec<i64>> {
    if header == "*" {
        return None;
    }
    Some(
        strong_tags(header)
            .filter_map(|s| s.strip_prefix("\"v")?.strip_suffix('"')?.parse().ok())
            .collect(),
    )
}

/// Whether `If-Match: header` holds for the representation tagged `tag` (a strong ETag as the
/// API sends it, quotes included).
pub(crate) fn matches_tag(header: &str, tag: &str) -> bool {
    header == "*" || strong_tags(header).any(|s| s == tag)
}

pub(crate) fn matches_etag(header: &str, version: i64) -> bool {
    matches_tag(header, &etag(version))
}
