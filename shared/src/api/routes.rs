//! The API's one route table: every path template the API Worker serves, with its methods and
//! handler. Dispatch, 404, 405 and the `Allow` header are all derived from [`ROUTES`]; HEAD is
//! served wherever GET is. A test checks that the table and the OpenAPI document name the same
//! (path, method) pairs.

use crate::api::http::Method;
use crate::domain::entity::{EntitySpec, CLIENTS, DOCUMENTS, GROUPS, USERS};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The methods a route is declared with (HEAD is derived from GET), in `Allow` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verb {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
        }
    }

    /// The declared verb that serves `m` (HEAD is served as GET); None for any other method.
    pub fn of(m: &Method) -> Option<Verb> {
        Some(match m {
            Method::Get | Method::Head => Verb::Get,
            Method::Post => Verb::Post,
            Method::Put => Verb::Put,
            Method::Patch => Verb::Patch,
            Method::Delete => Verb::Delete,
            Method::Options | Method::Other(_) => return None,
        })
    }
}

/// Unauthenticated routes.
#[derive(Debug, Clone, Copy)]
pub enum Public {
    Health,
    OpenApi,
    /// The audit writer's public keys, for anyone verifying a trail offline.
    AuditKeys,
}

/// Tenant routes (`/v1`): a verified JWT, routed to the tenant's shard.
#[derive(Debug, Clone, Copy)]
pub enum Tenant {
    List(&'static EntitySpec),
    Create(&'static EntitySpec),
    Get(&'static EntitySpec),
    Update(&'static EntitySpec),
    Delete(&'static EntitySpec),
    ClientHold,
    Restrict,
    Unrestrict,
    PutContent,
    GetContent,
    CreateErasure,
    GetErasure,
    GetRetention,
    PutRetention,
    GetIdentity,
    PutIdentity,
    GetCors,
    PutCors,
    ListAudit,
    ExportAudit,
    VerifyAudit,
    AuditCheckpoints,
}

#[derive(Debug, Clone, Copy)]
pub enum Handler {
    Public(Public),
    Tenant(Tenant),
}

/// One (path template, method) pair. `{name}` in a template matches one path segment.
#[derive(Debug)]
pub struct Route {
    pub path: &'static str,
    pub verb: Verb,
    pub handler: Handler,
}

const fn r(path: &'static str, verb: Verb, handler: Handler) -> Route {
    Route {
        path,
        verb,
        handler,
    }
}

use Handler::{Public as P, Tenant as T};
use Verb::*;

macro_rules! entity_routes {
    ($spec:expr, $list:literal, $item:literal) => {
        [
            r($list, Get, T(Tenant::List(&$spec))),
            r($list, Post, T(Tenant::Create(&$spec))),
            r($item, Get, T(Tenant::Get(&$spec))),
            r($item, Patch, T(Tenant::Update(&$spec))),
            r($item, Delete, T(Tenant::Delete(&$spec))),
        ]
    };
}

static GROUP_ROUTES: [Route; 5] = entity_routes!(GROUPS, "/v1/groups", "/v1/groups/{id}");
static USER_ROUTES: [Route; 5] = entity_routes!(USERS, "/v1/users", "/v1/users/{id}");
static CLIENT_ROUTES: [Route; 5] = entity_routes!(CLIENTS, "/v1/clients", "/v1/clients/{id}");
static DOCUMENT_ROUTES: [Route; 5] =
    entity_routes!(DOCUMENTS, "/v1/documents", "/v1/documents/{id}");

static OTHER_ROUTES: &[Route] = &[
    r("/health", Get, P(Public::Health)),
    r("/openapi.json", Get, P(Public::OpenApi)),
    r("/.well-known/audit-keys", Get, P(Public::AuditKeys)),
    r("/v1/clients/{id}/legal-hold", Put, T(Tenant::ClientHold)),
    r("/v1/clients/{id}/restriction", Put, T(Tenant::Restrict)),
    r(
        "/v1/clients/{id}/restriction",
        Delete,
        T(Tenant::Unrestrict),
    ),
    r("/v1/documents/{id}/content", Get, T(Tenant::GetContent)),
    r("/v1/documents/{id}/content", Put, T(Tenant::PutContent)),
    r("/v1/erasure-requests", Post, T(Tenant::CreateErasure)),
    r("/v1/erasure-requests/{id}", Get, T(Tenant::GetErasure)),
    r("/v1/settings/retention", Get, T(Tenant::GetRetention)),
    r("/v1/settings/retention", Put, T(Tenant::PutRetention)),
    r("/v1/settings/identity", Get, T(Tenant::GetIdentity)),
    r("/v1/settings/identity", Put, T(Tenant::PutIdentity)),
    r("/v1/settings/cors", Get, T(Tenant::GetCors)),
    r("/v1/settings/cors", Put, T(Tenant::PutCors)),
    r("/v1/audit", Get, T(Tenant::ListAudit)),
    r("/v1/audit/export", Get, T(Tenant::ExportAudit)),
    r("/v1/audit/verify", Get, T(Tenant::VerifyAudit)),
    r("/v1/audit/checkpoints", Get, T(Tenant::AuditCheckpoints)),
];

/// Every route of the API Worker.
pub fn all() -> impl Iterator<Item = &'static Route> {
    GROUP_ROUTES
        .iter()
        .chain(&USER_ROUTES)
        .chain(&CLIENT_ROUTES)
        .chain(&DOCUMENT_ROUTES)
        .chain(OTHER_ROUTES)
}

/// Who may reach a path: by its prefix, so a path no route serves is refused (401) before it
/// is answered 404 or 405, exactly as a served one would be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Public,
    Tenant,
}

pub fn area(path: &str) -> Area {
    let p = path.trim_start_matches('/');
    if p == "v1" || p.starts_with("v1/") {
        Area::Tenant
    } else {
        Area::Public
    }
}

/// What the table says about a request.
#[derive(Debug)]
pub enum Found<'a> {
    /// The route and its path parameters in template order.
    Route(&'static Route, Vec<&'a str>),
    /// The path exists with other methods: the `Allow` header.
    MethodNotAllowed(&'static str),
    NotFound,
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.trim_matches('/').split('/')
}

/// The path parameters if `path` fits `template`.
pub(crate) fn fit<'a>(template: &str, path: &'a str) -> Option<Vec<&'a str>> {
    let mut params = vec![];
    let mut t = segments(template);
    let mut p = segments(path);
    loop {
        match (t.next(), p.next()) {
            (None, None) => return Some(params),
            (Some(ts), Some(ps)) if ts.starts_with('{') && ts.ends_with('}') => {
                if ps.is_empty() {
                    return None;
                }
                params.push(ps);
            }
            (Some(ts), Some(ps)) if ts == ps => {}
            _ => return None,
        }
    }
}

/// The `Allow` header of each template of a route table: its verbs in [`Verb`] order, HEAD
/// after GET, and OPTIONS (answered for every path the table serves) last. Shared with the
/// operator plane's table.
pub(crate) fn allow_table(
    routes: impl Iterator<Item = (&'static str, Verb)>,
) -> BTreeMap<&'static str, String> {
    let mut verbs: BTreeMap<&'static str, Vec<Verb>> = BTreeMap::new();
    for (path, verb) in routes {
        verbs.entry(path).or_default().push(verb);
    }
    verbs
        .into_iter()
        .map(|(path, mut vs)| {
            vs.sort();
            vs.dedup();
            let mut names: Vec<&str> = vs
                .iter()
                .flat_map(|v| match v {
                    Verb::Get => vec!["GET", "HEAD"],
                    v => vec![v.as_str()],
                })
                .collect();
            names.push("OPTIONS");
            (path, names.join(", "))
        })
        .collect()
}

fn allow_of(template: &'static str) -> &'static str {
    static ALLOW: OnceLock<BTreeMap<&'static str, String>> = OnceLock::new();
    ALLOW
        .get_or_init(|| allow_table(all().map(|r| (r.path, r.verb))))
        .get(template)
        .map(String::as_str)
        .unwrap_or("")
}

/// The `Allow` header of the path (an OPTIONS answer), None when no route serves it.
pub fn allow(path: &str) -> Option<&'static str> {
    all()
        .find(|r| fit(r.path, path).is_some())
        .map(|r| allow_of(r.path))
}

/// Look a request up in the table.
pub fn find<'a>(method: &Method, path: &'a str) -> Found<'a> {
    let verb = Verb::of(method);
    let mut allowed = None;
    for route in all() {
        if let Some(params) = fit(route.path, path) {
            if Some(route.verb) == verb {
                return Found::Route(route, params);
            }
            allowed = Some(route.path);
        }
    }
    match allowed {
        Some(template) => Found::MethodNotAllowed(allow_of(template)),
        None => Found::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_route_table_and_the_openapi_document_name_the_same_paths_and_methods() {
        let doc = crate::api::openapi::document(None);
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(path, item)| {
                item.as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| k.as_str() != "parameters")
                    .map(move |(m, _)| (path.clone(), m.to_ascii_uppercase()))
            })
            .collect();
        let served: BTreeSet<(String, String)> = all()
            .map(|r| (r.path.to_string(), r.verb.as_str().to_string()))
            .collect();
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty() && unserved.is_empty(),
            "served but not documented: {undocumented:?}; documented but not served: {unserved:?}"
        );
    }

    #[test]
    fn every_template_names_each_method_once() {
        let mut seen = BTreeSet::new();
        for r in all() {
            assert!(
                seen.insert((r.path, r.verb)),
                "{} {:?} twice",
                r.path,
                r.verb
            );
        }
    }

    #[test]
    fn allow_lists_the_methods_of_a_path_in_a_stable_order_with_head_after_get() {
        assert!(matches!(
            find(&Method::Put, "/v1/clients"),
            Found::MethodNotAllowed("GET, HEAD, POST, OPTIONS")
        ));
        assert!(matches!(
            find(&Method::Post, "/v1/clients/x"),
            Found::MethodNotAllowed("GET, HEAD, PATCH, DELETE, OPTIONS")
        ));
        assert!(matches!(
            find(&Method::Other("QUERY".into()), "/health"),
            Found::MethodNotAllowed("GET, HEAD, OPTIONS")
        ));
        assert!(matches!(
            find(&Method::Head, "/openapi.json"),
            Found::Route(_, _)
        ));
        assert!(matches!(find(&Method::Get, "/v1/nothing"), Found::NotFound));
        assert!(matches!(
            find(&Method::Get, "/v1/clients//legal-hold"),
            Found::NotFound
        ));
        match find(&Method::Put, "/v1/clients/abc/legal-hold") {
            Found::Route(r, params) => {
                assert_eq!(
                    (r.path, params),
                    ("/v1/clients/{id}/legal-hold", vec!["abc"])
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn paths_are_in_the_area_of_their_prefix() {
        assert_eq!(area("/v1/clients"), Area::Tenant);
        assert_eq!(area("/v1"), Area::Tenant);
        assert_eq!(area("/v1x"), Area::Public);
        assert_eq!(area("/health"), Area::Public);
        for r in all() {
            let expected = match r.handler {
                Handler::Public(_) => Area::Public,
                Handler::Tenant(_) => Area::Tenant,
            };
            assert_eq!(area(r.path), expected, "{}", r.path);
        }
    }
}
