//! The operator Worker's one route table: every path template it serves, with its method,
//! handler and (for the actions) the name the platform audit trail records. 404, 405 and
//! `Allow` are derived from [`ROUTES`]; HEAD is served wherever GET is. A test checks it
//! against the operator OpenAPI document.

use crate::api::http::Method;
use crate::api::routes::{allow_table, fit, Verb};
use std::collections::BTreeMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    Health,
    OpenApi,
    ListShards,
    ShardHealth,
    Proposals,
    PlatformEvents,
    CreateAccount,
    GetAccount,
    Deactivate,
    Reactivate,
    MintToken,
    AddDomain,
    SetIdentity,
    JobRuns,
    RunJob,
    SetFaults,
    AccountHold,
    DeadLetters,
    InjectMessage,
    ReplayDeadLetter,
    ListAudit,
    VerifyAudit,
    ListMoves,
    CreateMove,
    GetMove,
    CancelMove,
    StepMove,
    ActivateShard,
}

/// What the platform audit trail calls an action, and the kind of its target; None: a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Audited {
    pub action: &'static str,
    pub target: &'static str,
}

#[derive(Debug)]
pub struct Route {
    pub path: &'static str,
    pub verb: Verb,
    pub handler: Handler,
    /// Unauthenticated (health, this API's document).
    pub public: bool,
    pub audited: Option<Audited>,
}

use Handler as H;
use Verb::*;

const fn read(path: &'static str, handler: Handler) -> Route {
    Route {
        path,
        verb: Get,
        handler,
        public: false,
        audited: None,
    }
}

const fn act(
    path: &'static str,
    verb: Verb,
    handler: Handler,
    action: &'static str,
    target: &'static str,
) -> Route {
    Route {
        path,
        verb,
        handler,
        public: false,
        audited: Some(Audited { action, target }),
    }
}

pub static ROUTES: &[Route] = &[
    Route {
        path: "/health",
        verb: Get,
        handler: H::Health,
        public: true,
        audited: None,
    },
    Route {
        path: "/openapi.json",
        verb: Get,
        handler: H::OpenApi,
        public: true,
        audited: None,
    },
    read("/admin/v1/shards", H::ListShards),
    read("/admin/v1/shards/{id}/health", H::ShardHealth),
    act(
        "/admin/v1/shards/{id}/activate",
        Post,
        H::ActivateShard,
        "shard.activate",
        "shard",
    ),
    read("/admin/v1/rebalance-proposals", H::Proposals),
    read("/admin/v1/platform-events", H::PlatformEvents),
    read("/admin/v1/job-runs", H::JobRuns),
    act(
        "/admin/v1/jobs/{job}/run",
        Post,
        H::RunJob,
        "job.run",
        "job",
    ),
    act(
        "/admin/v1/accounts",
        Post,
        H::CreateAccount,
        "account.create",
        "account",
    ),
    read("/admin/v1/accounts/{id}", H::GetAccount),
    act(
        "/admin/v1/accounts/{id}/deactivate",
        Post,
        H::Deactivate,
        "account.deactivate",
        "account",
    ),
    act(
        "/admin/v1/accounts/{id}/reactivate",
        Post,
        H::Reactivate,
        "account.reactivate",
        "account",
    ),
    act(
        "/admin/v1/accounts/{id}/tokens",
        Post,
        H::MintToken,
        "account.token_mint",
        "account",
    ),
    act(
        "/admin/v1/accounts/{id}/domains",
        Post,
        H::AddDomain,
        "account.domain_add",
        "account",
    ),
    act(
        "/admin/v1/accounts/{id}/identity",
        Put,
        H::SetIdentity,
        "account.identity_set",
        "account",
    ),
    act(
        "/admin/v1/accounts/{id}/faults",
        Put,
        H::SetFaults,
        "account.faults_set",
        "account",
    ),
    act(
        "/admin/v1/accounts/{id}/legal-hold",
        Put,
        H::AccountHold,
        "account.legal_hold_set",
        "account",
    ),
    read("/admin/v1/dead-letters", H::DeadLetters),
    act(
        "/admin/v1/dead-letters/{id}/replay",
        Post,
        H::ReplayDeadLetter,
        "dead_letter.replay",
        "dead_letter",
    ),
    act(
        "/admin/v1/change-events",
        Post,
        H::InjectMessage,
        "change_event.inject",
        "queue",
    ),
    read("/admin/v1/moves", H::ListMoves),
    act(
        "/admin/v1/moves",
        Post,
        H::CreateMove,
        "move.create",
        "move",
    ),
    read("/admin/v1/moves/{id}", H::GetMove),
    act(
        "/admin/v1/moves/{id}/cancel",
        Post,
        H::CancelMove,
        "move.cancel",
        "move",
    ),
    act(
        "/admin/v1/moves/{id}/step",
        Post,
        H::StepMove,
        "move.step",
        "move",
    ),
    read("/admin/v1/audit", H::ListAudit),
    read("/admin/v1/audit/verify", H::VerifyAudit),
];

pub enum Found<'a> {
    Route(&'static Route, Vec<&'a str>),
    /// The path exists with other methods: the `Allow` header.
    MethodNotAllowed(&'static str),
    NotFound,
}

/// The `Allow` header of each template (OPTIONS included, as on the tenant API).
fn allow_of(template: &'static str) -> &'static str {
    static ALLOW: OnceLock<BTreeMap<&'static str, String>> = OnceLock::new();
    ALLOW
        .get_or_init(|| allow_table(ROUTES.iter().map(|r| (r.path, r.verb))))
        .get(template)
        .map(String::as_str)
        .unwrap_or("")
}

/// The `Allow` header of the path (an OPTIONS answer), None when no route serves it.
pub fn allow(path: &str) -> Option<&'static str> {
    ROUTES
        .iter()
        .find(|r| fit(r.path, path).is_some())
        .map(|r| allow_of(r.path))
}

pub fn find<'a>(method: &Method, path: &'a str) -> Found<'a> {
    let verb = Verb::of(method);
    let mut allowed = None;
    for r in ROUTES {
        if let Some(params) = fit(r.path, path) {
            if Some(r.verb) == verb {
                return Found::Route(r, params);
            }
            allowed = Some(r.path);
        }
    }
    match allowed {
        Some(t) => Found::MethodNotAllowed(allow_of(t)),
        None => Found::NotFound,
    }
}
