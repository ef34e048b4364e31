//! ETags and `If-Match`: an entity's ETag is `"v{version}"`.

use crate::api::http::ApiRequest;

pub fn etag(version: i64) -> String {
    format!("\"v{version}\"")
}

pub(crate) fn if_match(req: &ApiRequest) -> Option<&str> {
    req.header("if-match").map(str::trim)
}

/// The versions an `If-Match` header accepts: None for `*` (any), else the listed ones.
pub(crate) fn if_match_versions(header: &str) -> Option<Vec<i64>> {
    if header == "*" {
        return None;
    }
    Some(
        header
            .split(',')
            .filter_map(|s| {
                s.trim()
                    .trim_start_matches("W/")
                    .strip_prefix("\"v")?
                    .strip_suffix('"')?
                    .parse()
                    .ok()
            })
            .collect(),
    )
}

pub(crate) fn matches_etag(header: &str, version: i64) -> bool {
    let want = etag(version);
    header == "*"
        || header
            .split(',')
            .map(|s| s.trim().trim_start_matches("W/"))
            .any(|s| s == want)
}
