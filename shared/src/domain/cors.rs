//! Per-account CORS, sans-IO: the origins an account lets browsers call its API from (the
//! `cors` field of its row, set by its admins through `PUT /v1/settings/cors`), and the headers
//! a preflight or an actual response carries for one request. None configured: no CORS header,
//! ever. A preflight carries no credentials, so the account is the one whose custom domain the
//! request came to (on the shared API host no account is known and no CORS header is sent).

use serde::{Deserialize, Serialize};

pub const MAX_ORIGINS: usize = 20;
pub const DEFAULT_MAX_AGE_SECONDS: u32 = 600;
/// The longest preflight cache browsers honour (Firefox: 24 h).
pub const MAX_MAX_AGE_SECONDS: u32 = 86_400;

/// Request headers a browser may send cross-origin (beyond the CORS-safelisted ones).
pub const ALLOWED_HEADERS: &str =
    "authorization, content-type, if-match, if-none-match, idempotency-key, x-d1-bookmark, x-request-id";
/// Response headers a browser script may read.
pub const EXPOSED_HEADERS: &str = "etag, location, retry-after, x-request-id, x-d1-bookmark, \
     idempotent-replayed, www-authenticate, content-disposition, allow";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CorsSettings {
    /// Exact origins (`https://app.firm.example`, a port if not the default); no wildcard.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// How long a browser may cache a preflight answer.
    #[serde(default = "default_max_age")]
    pub max_age_seconds: u32,
}

fn default_max_age() -> u32 {
    DEFAULT_MAX_AGE_SECONDS
}

/// Why an origin cannot be allowed.
fn origin_problem(o: &str, local: bool) -> Option<String> {
    let Some((scheme, rest)) = o.split_once("://") else {
        return Some(format!("{o:?} is not an origin (scheme://host[:port])"));
    };
    match scheme {
        "https" => {}
        "http" if local => {}
        _ => return Some(format!("{o:?}: only https origins may be allowed")),
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    if let Some(p) = port {
        // As a browser serialises an origin: no default port, no leading zero.
        let default = if scheme == "https" { "443" } else { "80" };
        if p.is_empty()
            || !p.bytes().all(|b| b.is_ascii_digit())
            || p.starts_with('0')
            || p.parse::<u16>().is_err()
            || p == default
        {
            return Some(format!(
                "{o:?}: bad port (a browser sends no default port and no leading zero)"
            ));
        }
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        return Some(format!(
            "{o:?}: the host must be a lower-case DNS name (no path, wildcard, user or trailing slash)"
        ));
    }
    None
}

impl CorsSettings {
    /// `local`: the local stack may allow `http://` origins (a developer's page on localhost).
    pub fn validate(&self, local: bool) -> Result<(), String> {
        if self.allowed_origins.len() > MAX_ORIGINS {
            return Err(format!("at most {MAX_ORIGINS} allowed origins"));
        }
        if self.max_age_seconds > MAX_MAX_AGE_SECONDS {
            return Err(format!("max_age_seconds is at most {MAX_MAX_AGE_SECONDS}"));
        }
        for (i, o) in self.allowed_origins.iter().enumerate() {
            if let Some(p) = origin_problem(o, local) {
                return Err(p);
            }
            if self.allowed_origins[..i].contains(o) {
                return Err(format!("{o:?} is listed twice"));
            }
        }
        Ok(())
    }

    /// The request's `Origin`, if this account allows it (exact, case-sensitive as browsers
    /// send it: serialised origins are lower-case).
    fn allows<'a>(&self, origin: Option<&'a str>) -> Option<&'a str> {
        origin.filter(|o| self.allowed_origins.iter().any(|a| a == o))
    }

    /// Headers of an actual (non-preflight) response to `origin`. Once any origin is allowed
    /// the answer depends on `Origin`, so `Vary: Origin` goes on every answer (a cache must not
    /// hand one origin's answer to another).
    pub fn response_headers(&self, origin: Option<&str>) -> Vec<(String, String)> {
        if self.allowed_origins.is_empty() {
            return Vec::new();
        }
        let mut h = vec![("vary".to_string(), "Origin".to_string())];
        if let Some(o) = self.allows(origin) {
            h.push(("access-control-allow-origin".into(), o.into()));
            h.push((
                "access-control-expose-headers".into(),
                EXPOSED_HEADERS.into(),
            ));
        }
        h
    }

    /// Headers of a preflight answer: `allow` is the path's `Allow` (the route table); the
    /// requested method must be one of them and every requested header one of ours.
    pub fn preflight_headers(
        &self,
        origin: Option<&str>,
        method: Option<&str>,
        request_headers: Option<&str>,
        allow: &str,
    ) -> Vec<(String, String)> {
        if self.allowed_origins.is_empty() {
            return Vec::new();
        }
        let Some(o) = self.allows(origin) else {
            return vec![("vary".into(), "Origin".into())];
        };
        let method_ok = method.is_some_and(|m| allow.split(", ").any(|a| a == m));
        let headers_ok = request_headers.unwrap_or("").split(',').all(|h| {
            let h = h.trim().to_ascii_lowercase();
            h.is_empty() || ALLOWED_HEADERS.split(", ").any(|a| a == h)
        });
        if !method_ok || !headers_ok {
            // The browser refuses the call: nothing to grant (Vary still applies).
            return vec![("vary".into(), "Origin".into())];
        }
        vec![
            ("access-control-allow-origin".into(), o.into()),
            ("access-control-allow-methods".into(), allow.into()),
            (
                "access-control-allow-headers".into(),
                ALLOWED_HEADERS.into(),
            ),
            (
                "access-control-max-age".into(),
                self.max_age_seconds.to_string(),
            ),
            ("vary".into(), "Origin".into()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(origins: &[&str]) -> CorsSettings {
        CorsSettings {
            allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
            max_age_seconds: 600,
        }
    }

    #[test]
    fn only_exact_https_origins_validate() {
        assert!(s(&["https://app.firm.example", "https://a.b:8443"])
            .validate(false)
            .is_ok());
        for bad in [
            "*",
            "https://*.firm.example",
            "http://app.firm.example",
            "https://app.firm.example/",
            "https://App.firm.example",
            "https://user@app.firm.example",
            "https://app.firm.example:99999",
            "https://app.firm.example:",
            "https://app.firm.example:443",
            "https://app.firm.example:0443",
            "app.firm.example",
            "null",
        ] {
            assert!(s(&[bad]).validate(false).is_err(), "{bad}");
        }
        assert!(s(&["http://localhost:5173"]).validate(true).is_ok());
        assert!(s(&["https://a.example", "https://a.example"])
            .validate(false)
            .is_err());
        let many: Vec<String> = (0..21).map(|i| format!("https://a{i}.example")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(s(&refs).validate(false).is_err());
    }

    #[test]
    fn a_preflight_grants_only_an_allowed_origin_method_and_headers() {
        let c = s(&["https://app.firm.example"]);
        let allow = "GET, HEAD, POST, OPTIONS";
        let h = c.preflight_headers(
            Some("https://app.firm.example"),
            Some("POST"),
            Some("Authorization, Content-Type, Idempotency-Key"),
            allow,
        );
        assert!(h.contains(&(
            "access-control-allow-origin".into(),
            "https://app.firm.example".into()
        )));
        assert!(h.iter().any(|(k, _)| k == "access-control-max-age"));
        let none = |o, m, hs| {
            c.preflight_headers(o, m, hs, allow)
                .iter()
                .all(|(k, _)| k != "access-control-allow-origin")
        };
        assert!(none(Some("https://evil.example"), Some("POST"), None));
        assert!(none(Some("https://app.firm.example"), Some("DELETE"), None));
        assert!(none(
            Some("https://app.firm.example"),
            Some("POST"),
            Some("x-evil")
        ));
        assert!(none(None, Some("POST"), None));
        assert!(CorsSettings::default()
            .preflight_headers(Some("https://app.firm.example"), Some("GET"), None, allow)
            .is_empty());
    }

    #[test]
    fn an_actual_response_names_the_origin_only_when_allowed() {
        let c = s(&["https://app.firm.example"]);
        assert!(c
            .response_headers(Some("https://app.firm.example"))
            .contains(&(
                "access-control-allow-origin".into(),
                "https://app.firm.example".into()
            )));
        for other in [Some("https://other.example"), None] {
            let h = c.response_headers(other);
            assert_eq!(h, vec![("vary".into(), "Origin".into())], "{other:?}");
        }
        assert!(CorsSettings::default()
            .response_headers(Some("https://app.firm.example"))
            .is_empty());
    }
}
