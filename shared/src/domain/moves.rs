//! Tenant moves (issue 15), pure: the phases of a move and what may follow what, the move's
//! stored document (`moves.body`, account D1), the comparison of one keyset range of a table on
//! both shards (what to copy, what to delete, what cannot be repaired), and the
//! order-independent digest verification records. `services::moves` drives it.
//!
//! `planned -> copying -> catching_up -> verifying -> cutover -> cleanup -> done`; `failed` and
//! `cancelled` are reached through a rollback (`undo`), possible until cleanup starts: the
//! source is untouched until then, and the target stays fenced until cleanup starts.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Planned,
    Copying,
    CatchingUp,
    Verifying,
    Cutover,
    Cleanup,
    Done,
    Failed,
    Cancelled,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Planned => "planned",
            Phase::Copying => "copying",
            Phase::CatchingUp => "catching_up",
            Phase::Verifying => "verifying",
            Phase::Cutover => "cutover",
            Phase::Cleanup => "cleanup",
            Phase::Done => "done",
            Phase::Failed => "failed",
            Phase::Cancelled => "cancelled",
        }
    }
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Done | Phase::Failed | Phase::Cancelled)
    }
    /// Cancel (and rollback) is possible until cleanup starts.
    pub fn can_roll_back(self) -> bool {
        self < Phase::Cleanup
    }
    /// The route points at the target (the flip committed with the move into `cutover`).
    pub fn flipped(self) -> bool {
        matches!(self, Phase::Cutover | Phase::Cleanup | Phase::Done)
    }
    /// The forward successor (None: terminal or cleanup's end is `done`).
    pub fn next(self) -> Option<Phase> {
        Some(match self {
            Phase::Planned => Phase::Copying,
            Phase::Copying => Phase::CatchingUp,
            Phase::CatchingUp => Phase::Verifying,
            Phase::Verifying => Phase::Cutover,
            Phase::Cutover => Phase::Cleanup,
            Phase::Cleanup => Phase::Done,
            _ => return None,
        })
    }
}

/// Why a move is being rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UndoReason {
    Cancel,
    Fail,
}

/// A rollback in progress: its steps, each idempotent, in this order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Undo {
    pub reason: UndoReason,
    /// The route is back on the source (done at once when the move never flipped).
    #[serde(default)]
    pub route_restored: bool,
    /// The source's fence is gone (writes there go on).
    #[serde(default)]
    pub source_unfenced: bool,
    /// Tables of the target already emptied of the tenant (children first).
    #[serde(default)]
    pub target_cleared: Vec<String>,
}

/// Where a pass over the tenant's tables stands: the table (index in the move's table list)
/// and the last key done in it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    pub table: usize,
    #[serde(default)]
    pub after: Option<Value>,
}

/// What one table looked like to a verify pass (or was repaired by a copy pass).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableCounts {
    pub source_rows: u64,
    pub target_rows: u64,
    /// Order-independent digests of `(key, version, body)` (see [`row_digest`]), hex.
    pub source_digest: String,
    pub target_digest: String,
    /// Rows this move wrote (copied or re-copied) and deleted on the target.
    #[serde(default)]
    pub copied: u64,
    #[serde(default)]
    pub deleted: u64,
}

/// Sub-steps of `verifying` (the fenced part of the move).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Fence the tenant on the source.
    #[default]
    Fence,
    /// Wait until every outbox row of the tenant on the source is published and in its audit
    /// trail (no event of the source is in flight when the route flips).
    Drain,
    /// The final catch-up pass, fenced.
    FinalCopy,
    /// The verify pass: nothing repaired, every difference named.
    Verify,
}

/// The move's document (`moves.body`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Move {
    pub id: Uuid,
    pub account_id: Uuid,
    pub source_shard: String,
    pub target_shard: String,
    pub phase: Phase,
    /// Moves by one with every write of the row (compare-and-set): two drivers never both
    /// advance it.
    pub rev: i64,
    #[serde(default)]
    pub proposal_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Seconds between the route's flip and the deletion of the source's copy.
    pub grace_seconds: i64,
    #[serde(default)]
    pub cursor: Cursor,
    #[serde(default)]
    pub stage: Stage,
    /// Completed copy/catch-up passes, and rows the last one repaired.
    #[serde(default)]
    pub passes: u32,
    #[serde(default)]
    pub pass_repaired: u64,
    #[serde(default)]
    pub last_pass_repaired: Option<u64>,
    /// Per table: the last verify pass's counts and digests, rows written and deleted.
    #[serde(default)]
    pub tables: BTreeMap<String, TableCounts>,
    /// The audit chain head verified equal on both shards: (seq, hash).
    #[serde(default)]
    pub audit_head: Option<(i64, String)>,
    /// Times the fenced drain gave up and the fence was lifted to catch up again.
    #[serde(default)]
    pub drain_retries: u32,
    #[serde(default)]
    pub fenced_at: Option<String>,
    #[serde(default)]
    pub flipped_at: Option<String>,
    /// The fenced window: from the source's fence to the route's flip, in milliseconds.
    #[serde(default)]
    pub fenced_ms: Option<i64>,
    /// When cleanup may start deleting the source's copy (or, a rollback after the flip, the
    /// target's).
    #[serde(default)]
    pub cleanup_after: Option<String>,
    /// Every phase entered, with its time.
    #[serde(default)]
    pub history: Vec<(Phase, String)>,
    #[serde(default)]
    pub undo: Option<Undo>,
    #[serde(default)]
    pub error: Option<String>,
    /// Rows that differ, named `table/key` (at most [`MAX_NAMED`]).
    #[serde(default)]
    pub differences: Vec<String>,
    /// The full verify ran before the fence (counts and digests of every row the source's
    /// change log does not name since [`Move::log_from`]): the fenced part re-checks only the
    /// rows the log names (false: a move from before the change log: full fenced passes).
    #[serde(default)]
    pub pre_verified: bool,
    /// The source's change log (`move_changes`) position when the last catch-up pass began:
    /// every row changed since it may differ, and is re-checked while fenced.
    #[serde(default)]
    pub log_from: i64,
    /// The log position when the current catch-up pass began.
    #[serde(default)]
    pub pass_log_from: i64,
}

/// Differences named in a failed move.
pub const MAX_NAMED: usize = 50;
/// A catch-up pass that repaired at most this many rows is small enough to fence after.
pub const SMALL_LAG: u64 = 200;
/// Catch-up passes before fencing whatever the lag (the fenced pass copies the rest).
pub const MAX_PASSES: u32 = 6;
/// Drains that may give up (fence lifted, catch up again) before the move fails.
pub const MAX_DRAIN_RETRIES: u32 = 3;
/// How long the fenced drain waits for the source's events to be recorded.
pub const DRAIN_DEADLINE: time::Duration = time::Duration::seconds(60);
pub const DEFAULT_GRACE_SECONDS: i64 = 300;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MoveRuleError {
    #[error("the move is {0:?}: nothing more to do")]
    Terminal(Phase),
    #[error("the move is in {0:?}: the route has flipped and cleanup started, it can no longer be cancelled")]
    TooLate(Phase),
    #[error("the move is already being rolled back")]
    RollingBack,
}

impl Move {
    pub fn new(
        id: Uuid,
        account_id: Uuid,
        source: &str,
        target: &str,
        grace_seconds: i64,
        now: &str,
    ) -> Move {
        Move {
            id,
            account_id,
            source_shard: source.into(),
            target_shard: target.into(),
            phase: Phase::Planned,
            rev: 1,
            proposal_id: None,
            created_at: now.into(),
            updated_at: now.into(),
            grace_seconds,
            cursor: Cursor::default(),
            stage: Stage::default(),
            passes: 0,
            pass_repaired: 0,
            last_pass_repaired: None,
            tables: BTreeMap::new(),
            audit_head: None,
            drain_retries: 0,
            fenced_at: None,
            flipped_at: None,
            fenced_ms: None,
            cleanup_after: None,
            history: vec![(Phase::Planned, now.into())],
            undo: None,
            error: None,
            differences: vec![],
            pre_verified: false,
            log_from: 0,
            pass_log_from: 0,
        }
    }

    /// Enter the next phase (cursor and pass counters reset). Terminal phases stay.
    pub fn advance(&mut self, now: &str) -> Result<Phase, MoveRuleError> {
        if self.undo.is_some() {
            return Err(MoveRuleError::RollingBack);
        }
        let next = self
            .phase
            .next()
            .ok_or(MoveRuleError::Terminal(self.phase))?;
        self.enter(next, now);
        Ok(next)
    }

    fn enter(&mut self, phase: Phase, now: &str) {
        self.phase = phase;
        self.cursor = Cursor::default();
        self.stage = Stage::default();
        self.history.push((phase, now.into()));
    }

    /// Back from the fenced drain to catching up (the fence was lifted).
    pub fn retry_catch_up(&mut self, now: &str) {
        self.drain_retries += 1;
        self.pre_verified = false;
        self.fenced_at = None;
        self.enter(Phase::CatchingUp, now);
    }

    /// Ask for a rollback (cancel by an operator, or a failure the move cannot get past).
    pub fn roll_back(
        &mut self,
        reason: UndoReason,
        error: Option<String>,
    ) -> Result<(), MoveRuleError> {
        if self.phase.is_terminal() {
            return Err(MoveRuleError::Terminal(self.phase));
        }
        if !self.phase.can_roll_back() {
            return Err(MoveRuleError::TooLate(self.phase));
        }
        if self.undo.is_some() {
            return Err(MoveRuleError::RollingBack);
        }
        self.undo = Some(Undo {
            reason,
            route_restored: !self.phase.flipped(),
            source_unfenced: false,
            target_cleared: vec![],
        });
        if error.is_some() {
            self.error = error;
        }
        Ok(())
    }

    /// The rollback is complete: `failed` or `cancelled`.
    pub fn finish_rollback(&mut self, now: &str) {
        let phase = match self.undo.as_ref().map(|u| u.reason) {
            Some(UndoReason::Fail) => Phase::Failed,
            _ => Phase::Cancelled,
        };
        self.undo = None;
        self.enter(phase, now);
    }

    /// A catch-up pass ended: should the move fence now?
    pub fn lag_is_small(&self) -> bool {
        self.last_pass_repaired.is_some_and(|n| n <= SMALL_LAG) || self.passes >= MAX_PASSES
    }

    /// The move's account in a route-flipping account batch uses this to name the move.
    pub fn subject(&self) -> String {
        format!("moves/{}", self.id)
    }
}

/// One row as a range read returns it: its key (text id or integer sequence) and body text.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub key: Value,
    pub body: String,
}

/// How a table may be repaired on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Rows change and disappear: copy (upsert) what differs, delete what the source lost.
    Mutable,
    /// Rows never change once written (audit links, disposals): copy what is missing, delete
    /// what the source disposed of; a row that differs cannot be repaired and stops the move.
    AppendOnly,
}

/// What the target needs for one range to equal the source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    pub upsert: Vec<Row>,
    pub delete: Vec<Value>,
    /// Keys present on both with different bodies in an append-only table.
    pub conflicts: Vec<Value>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.upsert.is_empty() && self.delete.is_empty() && self.conflicts.is_empty()
    }
    pub fn len(&self) -> usize {
        self.upsert.len() + self.delete.len() + self.conflicts.len()
    }
}

fn key_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.as_str().unwrap_or("").cmp(b.as_str().unwrap_or("")),
    }
}

/// Compare one keyset range, both sides sorted by key (SQL `ORDER BY key`). Bodies compare as
/// JSON values (D1 and SQLite may differ in whitespace, never in content).
pub fn diff(kind: Kind, source: &[Row], target: &[Row]) -> Diff {
    let mut out = Diff::default();
    let (mut i, mut j) = (0, 0);
    let same = |a: &str, b: &str| {
        a == b
            || matches!((serde_json::from_str::<Value>(a), serde_json::from_str::<Value>(b)),
                (Ok(x), Ok(y)) if x == y)
    };
    while i < source.len() || j < target.len() {
        let ord = match (source.get(i), target.get(j)) {
            (Some(s), Some(t)) => key_order(&s.key, &t.key),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match ord {
            std::cmp::Ordering::Less => {
                out.upsert.push(source[i].clone());
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.delete.push(target[j].key.clone());
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                if !same(&source[i].body, &target[j].body) {
                    match kind {
                        Kind::Mutable => out.upsert.push(source[i].clone()),
                        Kind::AppendOnly => out.conflicts.push(source[i].key.clone()),
                    }
                }
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// One row's contribution to a table digest: the first 8 bytes of
/// SHA-256(`table`, key, version, canonical body). Added (wrapping) over a table, so the digest
/// does not depend on the order rows were read in, and a verify pass can resume.
pub fn row_digest(table: &str, row: &Row) -> u64 {
    let body: Value = serde_json::from_str(&row.body).unwrap_or(Value::Null);
    let version = body
        .get("version")
        .map(|v| v.to_string())
        .unwrap_or_default();
    let mut h = Sha256::new();
    h.update(table.as_bytes());
    h.update([0]);
    h.update(row.key.to_string().as_bytes());
    h.update([0]);
    h.update(version.as_bytes());
    h.update([0]);
    h.update(body.to_string().as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b)
}

/// Add rows to a stored digest (hex of a u64; empty is zero).
pub fn add_digest(current: &str, table: &str, rows: &[Row]) -> String {
    let mut n = u64::from_str_radix(current, 16).unwrap_or(0);
    for r in rows {
        n = n.wrapping_add(row_digest(table, r));
    }
    format!("{n:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(k: &str, b: &str) -> Row {
        Row {
            key: Value::String(k.into()),
            body: b.into(),
        }
    }

    #[test]
    fn diff_copies_missing_and_changed_rows_and_deletes_what_the_source_lost() {
        let s = [
            row("a", r#"{"v":1}"#),
            row("b", r#"{"v":2}"#),
            row("d", "{}"),
        ];
        let t = [
            row("a", r#"{ "v": 1 }"#),
            row("b", r#"{"v":1}"#),
            row("c", "{}"),
        ];
        let d = diff(Kind::Mutable, &s, &t);
        assert_eq!(
            d.upsert.iter().map(|r| r.key.clone()).collect::<Vec<_>>(),
            ["b", "d"]
        );
        assert_eq!(d.delete, [Value::String("c".into())]);
        let d = diff(Kind::AppendOnly, &s, &t);
        assert_eq!(d.conflicts, [Value::String("b".into())]);
    }

    #[test]
    fn digest_ignores_order_and_sees_any_change() {
        let a = [row("a", r#"{"version":1}"#), row("b", r#"{"version":2}"#)];
        let b = [a[1].clone(), a[0].clone()];
        assert_eq!(add_digest("", "t", &a), add_digest("", "t", &b));
        let c = [row("a", r#"{"version":1}"#), row("b", r#"{"version":3}"#)];
        assert_ne!(add_digest("", "t", &a), add_digest("", "t", &c));
        let half = add_digest("", "t", &a[..1]);
        assert_eq!(add_digest(&half, "t", &a[1..]), add_digest("", "t", &a));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Advance,
        Cancel,
        Fail,
        FinishRollback,
        RetryCatchUp,
        Crash,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => Just(Op::Advance),
            1 => Just(Op::Cancel),
            1 => Just(Op::Fail),
            2 => Just(Op::FinishRollback),
            1 => Just(Op::RetryCatchUp),
            2 => Just(Op::Crash),
        ]
    }

    proptest! {
        /// Whatever runs, crashes (the row re-read as stored) or cancels: phases only move
        /// forward or into a rollback; a rollback never starts once cleanup has; `done` is
        /// reached only through cleanup, after a flip; a terminal move never changes again.
        #[test]
        fn phases_only_move_as_the_state_machine_allows(ops in proptest::collection::vec(op(), 0..60)) {
            let mut m = Move::new(Uuid::nil(), Uuid::nil(), "a", "b", 0, "t0");
            for (i, o) in ops.into_iter().enumerate() {
                let before = m.clone();
                let now = format!("t{i}");
                match o {
                    Op::Advance => { let _ = m.advance(&now); }
                    Op::Cancel => { let _ = m.roll_back(UndoReason::Cancel, None); }
                    Op::Fail => { let _ = m.roll_back(UndoReason::Fail, Some("x".into())); }
                    Op::FinishRollback => if m.undo.is_some() { m.finish_rollback(&now) },
                    Op::RetryCatchUp => if m.phase == Phase::Verifying && m.undo.is_none() { m.retry_catch_up(&now) },
                    Op::Crash => {
                        let stored = serde_json::to_string(&m).unwrap();
                        m = serde_json::from_str(&stored).unwrap();
                        prop_assert_eq!(&m, &before);
                    }
                }
                if before.phase.is_terminal() {
                    prop_assert_eq!(&m, &before);
                }
                if m.undo.is_some() && before.undo.is_none() {
                    prop_assert!(before.phase.can_roll_back());
                }
                if before.phase >= Phase::Cleanup && !before.phase.is_terminal() {
                    prop_assert!(m.phase >= before.phase && m.phase != Phase::Cancelled && m.phase != Phase::Failed);
                }
                if m.phase == Phase::Done {
                    let seen: Vec<Phase> = m.history.iter().map(|(p, _)| *p).collect();
                    prop_assert!(seen.contains(&Phase::Cutover) && seen.contains(&Phase::Cleanup));
                }
                if m.phase != before.phase && !m.phase.is_terminal() && m.phase != Phase::CatchingUp {
                    prop_assert_eq!(before.phase.next(), Some(m.phase));
                }
            }
        }
    }
}
