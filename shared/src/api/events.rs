//! The change events of API writes: the event of a request (`new_event`), publishing after the
//! batch committed (`publish`, with local fault injection), and changes of an account's own
//! row (`change_account`).

use crate::api::error::ApiError;
use crate::api::http::ApiRequest;
use crate::api::{ApiConfig, Platform, Tenant};
use crate::domain::auth::Claims;
use crate::domain::clock::uuid_v7;
use crate::domain::event::{Action, Actor, Change, ChangeEvent, Origin};
use crate::ports::Database;
use crate::services::tenancy;
use serde_json::Value;
use uuid::Uuid;

fn actor(c: &Claims) -> Actor {
    Actor::User {
        id: c.sub,
        role: c.role.as_str().into(),
    }
}

/// After the batch committed: send the events (`changes::publish`). Locally, fault injection
/// may skip the send, leaving the rows for the relay as a failed send would.
pub async fn publish<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    t: &Tenant<P::Db>,
    events: Vec<ChangeEvent>,
) {
    if cfg.local {
        if let Some(f) = &t.route.account.faults {
            if tenancy::chance(p.entropy(), f.queue_send_rate) {
                tracing::warn!("fault injection: skipping the queue send; the relay will publish");
                return;
            }
        }
    }
    crate::services::changes::publish(
        p.queue(),
        p.marks(),
        &t.route.shard.binding,
        events,
        t.db.bookmark(),
    )
    .await;
}

/// Change one field of an account's own row through the write protocol
/// (`changes::commit_account`), then move its event into the tenant's shard outbox and send it,
/// when this deployment binds that shard (otherwise the relay forwards it within a minute).
pub(crate) async fn change_account<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    account: Uuid,
    field: &'static str,
    value: Value,
    actor: Actor,
    request_id: &str,
) -> Result<crate::services::changes::AccountOutcome, ApiError> {
    use crate::services::changes::{
        commit_account, forward_account_events, AccountOutcome, AccountWrite,
    };
    let now = p.now();
    let route = p
        .routes()
        .route(|| p.accounts(), account, now)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no account {account}")))?;
    let event = ChangeEvent::new(
        uuid_v7(now, p.entropy()),
        now,
        &Origin {
            deployment: &cfg.deployment,
            shard_id: &route.shard.id,
            account_id: account,
            actor,
            request_id: &crate::domain::personal_data::recorded_request_id(request_id),
        },
        Change {
            entity_type: "accounts",
            entity_singular: "account",
            entity_id: account,
            action: Action::Updated,
            entity_version: 0,
            changed_fields: vec![field.into()],
        },
    );
    let w = AccountWrite {
        account,
        field,
        value,
        event,
    };
    let outcome = commit_account(p.accounts(), &w).await?;
    p.routes().forget(account);
    if let AccountOutcome::Landed { pending, .. } = &outcome {
        if let Some(shard) = p.shard(&route.shard.binding, None) {
            let forwarded = forward_account_events(
                p.accounts(),
                &shard,
                &route.shard.id,
                account,
                pending.clone(),
            )
            .await;
            match forwarded {
                Ok(events) => {
                    crate::services::changes::publish(
                        p.queue(),
                        p.marks(),
                        &route.shard.binding,
                        events,
                        shard.bookmark(),
                    )
                    .await
                }
                Err(e) => {
                    tracing::warn!(error = %e, "forwarding the account's event failed; the relay will")
                }
            }
        }
    }
    Ok(outcome)
}

/// Only the account's admins change (or read, `what` says which) its settings.
pub(crate) fn admins_only<D>(t: &Tenant<D>, what: &str) -> Result<(), ApiError> {
    if t.claims.role != crate::domain::auth::Role::Admin {
        return Err(ApiError::Forbidden(format!("only admins {what}")));
    }
    Ok(())
}

/// The account's settings for a read: its cached route, or, when the request carries a
/// bookmark (the client asks for at least its own latest write, maybe made through another
/// isolate), the account row read afresh from the account D1. Either way the answer carries a
/// shard bookmark (`touch_session`).
pub(crate) async fn settings_route<'t, P: Platform>(
    p: &P,
    t: &'t Tenant<P::Db>,
    req: &ApiRequest,
) -> Result<std::borrow::Cow<'t, tenancy::Route>, ApiError> {
    let route = if req.header(crate::api::BOOKMARK_HEADER).is_some() {
        let fresh = tenancy::load_route(p.accounts(), t.account_id())
            .await?
            .ok_or_else(|| ApiError::NotFound("the account is gone".into()))?;
        std::borrow::Cow::Owned(fresh)
    } else {
        std::borrow::Cow::Borrowed(&*t.route)
    };
    crate::api::extract::touch_session(&t.db, req, &t.route.shard.id).await?;
    Ok(route)
}

/// A tenant admin's change of one account setting (`field` of its row), audited with the
/// admin as the actor; 404 when the account is gone.
pub(crate) async fn change_setting<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    t: &Tenant<P::Db>,
    req: &ApiRequest,
    field: &'static str,
    value: Value,
) -> Result<(), ApiError> {
    let outcome = change_account(
        p,
        cfg,
        t.account_id(),
        field,
        value,
        actor(&t.claims),
        &req.request_id,
    )
    .await?;
    if outcome == crate::services::changes::AccountOutcome::Missing {
        return Err(ApiError::NotFound("the account is gone".into()));
    }
    // The answer carries a bookmark like every answer that wrote D1.
    crate::api::extract::touch_session(&t.db, req, &t.route.shard.id).await
}

pub(crate) fn new_event<P: Platform>(
    p: &P,
    cfg: &ApiConfig,
    t: &Tenant<P::Db>,
    req: &ApiRequest,
    change: Change<'_>,
) -> ChangeEvent {
    let now = p.now();
    ChangeEvent::new(
        uuid_v7(now, p.entropy()),
        now,
        &Origin {
            deployment: &cfg.deployment,
            shard_id: &t.route.shard.id,
            account_id: t.account_id(),
            actor: actor(&t.claims),
            request_id: &crate::domain::personal_data::recorded_request_id(&req.request_id),
        },
        change,
    )
}
