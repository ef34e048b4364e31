//! Restrictions end: a record whose `restricted.until` has passed is no longer restricted (the
//! API serves and changes it as any other from that instant, `domain::restriction::in_force`).
//! The sweep acts on it the night after: a record then due is disposed of as any other, its
//! disposal event naming the restriction that ended (`changes.restricted`: its terms, then
//! null; [`ended_in`]); once an account's disposals are done, every ended restriction left on
//! a kept record is lifted through the write protocol with a `*.unrestricted` event carrying the
//! same `changes`, like an admin's lift. A client's lift reaches its documents' copies in the
//! same batch. Conditional on the version read: of two overlapping runs one lifts it, one
//! event.

use super::{AccountCtx, Deleter};
use crate::domain::clock::rfc3339;
use crate::domain::event::Action;
use crate::jobs::report::{RetentionCounts, Tally};
use crate::jobs::SchedulerPlatform;
use crate::ports::*;
use crate::services::changes::{self, version_of, Edit, Expect, Write};
use crate::store::retention as sql;
use serde_json::{json, Value};
use uuid::Uuid;

/// Restrictions lifted per table per account per run at most (the rest the next night; a
/// restriction past its end refuses nothing meanwhile).
pub const MAX_LIFTS_PER_RUN: i64 = 200;

/// Lift the account's restrictions that ended at or before now (clients first: their
/// documents' copies go with them).
pub(super) async fn lift_ended<P: SchedulerPlatform>(
    d: &mut Deleter<'_, P>,
    acct: &AccountCtx,
    counts: &mut RetentionCounts,
) -> Result<(), StoreError> {
    let now = rfc3339(d.p.now());
    for (table, singular) in [("clients", "client"), ("documents", "document")] {
        let rows =
            d.db.query(sql::restrictions_ended(
                table,
                acct.id,
                &now,
                MAX_LIFTS_PER_RUN,
            ))
            .await?;
        for r in &rows.rows {
            let (Some(id), Some(body)) = (
                col_str(r, "id").and_then(|s| Uuid::parse_str(s).ok()),
                col_json(r, "body"),
            ) else {
                continue;
            };
            let ended = &body["restricted"];
            let mut event = d.event(
                acct.id,
                (table, singular),
                id,
                "restricted",
                Action::Unrestricted,
            );
            event.changes = Some(json!({"restricted": {
                "before": {"reason": ended["reason"], "until": ended["until"]},
                "after": Value::Null,
            }}));
            let write = Write {
                table,
                id,
                edit: Edit::Set(vec![("restricted", Value::Null)]),
                expect: Expect::Version(version_of(&body)),
                live_only: false,
                event,
                with: vec![],
            };
            if changes::commit(d.db, &write).await?.is_some() {
                counts.restrictions_lifted.add(1);
            }
        }
    }
    Ok(())
}

/// A disposal event's `changes` naming the record's own restriction that had ended (the sweep
/// disposes of nothing a restriction in force protects), or None when it had none.
pub(super) fn ended_in(body: &Value) -> Option<Value> {
    let r = &body["restricted"];
    r.is_object().then(|| {
        json!({"restricted": {
            "before": {"reason": r["reason"], "until": r["until"]},
            "after": Value::Null,
        }})
    })
}
