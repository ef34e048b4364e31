//! Tenant moves (issue 15): one bounded, idempotent step of a move at a time, resumable from
//! what the move row stores (`domain::moves::Move`), every write of the row a compare-and-set
//! on its `rev`, every write on the target guarded by the target's fence and the lease token of
//! the run (`store::moves::Writer`). The scheduler (`jobs::moves`) takes the lease and calls
//! [`step`] until the move waits or its budget is spent.
//!
//! Copy and catch-up are the same pass: per table, keyset ranges read on both shards and
//! compared row by row (`domain::moves::diff`), what differs copied again, what the source lost
//! deleted. It needs no change stream and nothing the relay may purge: a pass converges on
//! whatever the source holds, however it changed. Verify is that pass with nothing repaired:
//! counts and digests per table, every differing row named. `verifying`: the full verify,
//! unfenced, of every row the source's change log (`move_changes`, filled by triggers since
//! the first catch-up pass) does not name since the last catch-up pass began; then fenced:
//! fence the source, wait until its events are all recorded, a final pass and a verify of the
//! logged rows only (a bounded walk of the log, whatever the tenant's size), then the route
//! flips in the same account-D1 batch as the move enters `cutover`.

use crate::domain::clock::{parse_rfc3339, rfc3339};
use crate::domain::moves::{self, Diff, Move, Phase, Row, Stage, UndoReason};
use crate::ports::*;
use crate::store::moves::{self as sql, Table, Writer, TABLES};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use time::OffsetDateTime;

/// Rows read per range and side.
pub const RANGE_ROWS: i64 = 200;
/// Ranges per step (a step stays far below D1's 1,000 queries and 30 s per invocation).
pub const RANGES_PER_STEP: usize = 10;
/// Statements per repair batch, and body bytes (each statement binds at most 5 parameters and
/// its SQL text is a few hundred bytes: far from 100 parameters and 100 KB).
pub const BATCH_STATEMENTS: usize = 60;
pub const BATCH_BYTES: usize = 900_000;
/// Rows cleanup (or a rollback) deletes per statement, and statements per step.
pub const DELETE_CHUNK: i64 = 1000;
pub const DELETES_PER_STEP: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Rule(#[from] moves::MoveRuleError),
    #[error("another run changed move {0} first; this run stops")]
    Lost(uuid::Uuid),
    #[error("the target's fence is not this run's (lease token {0} is stale); this run stops")]
    FenceLost(i64),
}

/// The databases a step works on, the run's lease token, and the time.
pub struct Ctx<'a, D> {
    pub accounts: &'a D,
    pub source: &'a D,
    pub target: &'a D,
    /// The shards' tiers (the account takes the target's when the route flips, the source's
    /// back on a rollback).
    pub source_tier: String,
    pub target_tier: String,
    pub token: i64,
    pub now: OffsetDateTime,
}

/// What a step did.
#[derive(Debug, Clone, PartialEq)]
pub enum Stepped {
    /// Work done; more to do now.
    Progress,
    /// Nothing to do until later (the drain, the grace period).
    Waiting(&'static str),
    /// The move entered a new phase.
    Entered(Phase),
    /// Terminal: nothing more.
    Finished,
}

impl<D: Database> Ctx<'_, D> {
    fn writer(&self, m: &Move) -> Writer {
        Writer {
            account: m.account_id,
            move_id: m.id,
            token: self.token,
        }
    }
    fn now_s(&self) -> String {
        rfc3339(self.now)
    }
}

/// Load a move.
pub async fn load(db: &impl Database, id: uuid::Uuid) -> Result<Option<Move>, StoreError> {
    Ok(sql::read_move(&db.query(sql::get_move(id)).await?))
}

/// Store the move (compare-and-set on `rev`).
pub async fn save<D: Database>(db: &D, m: &mut Move, now: &str) -> Result<(), MoveError> {
    m.rev += 1;
    m.updated_at = now.into();
    let r = db.query(sql::save_move(m)).await?;
    if r.meta.changes == 0 {
        return Err(MoveError::Lost(m.id));
    }
    Ok(())
}

/// One step of the move, saved. Returns what it did.
pub async fn step<D: Database>(c: &Ctx<'_, D>, m: &mut Move) -> Result<Stepped, MoveError> {
    if m.phase.is_terminal() {
        return Ok(Stepped::Finished);
    }
    let before = m.phase;
    let now = c.now_s();
    let out = if m.undo.is_some() {
        roll_back_step(c, m).await?
    } else {
        match m.phase {
            Phase::Planned => plan(c, m).await?,
            Phase::Copying | Phase::CatchingUp => copy_step(c, m).await?,
            Phase::Verifying => return verify_step(c, m).await,
            Phase::Cutover => {
                m.cleanup_after = Some(rfc3339(
                    c.now + time::Duration::seconds(m.grace_seconds.max(MIN_GRACE_SECONDS)),
                ));
                m.advance(&now)?;
                Stepped::Progress
            }
            Phase::Cleanup => cleanup_step(c, m).await?,
            _ => Stepped::Finished,
        }
    };
    save(c.accounts, m, &now).await?;
    Ok(if m.phase != before {
        Stepped::Entered(m.phase)
    } else {
        out
    })
}

fn fail(m: &mut Move, why: String) -> Result<Stepped, MoveError> {
    tracing::warn!(move_id = %m.id, error = %why, "move failed; rolling back");
    m.roll_back(UndoReason::Fail, Some(why))?;
    Ok(Stepped::Progress)
}

async fn fence_of<D: Database>(db: &D, m: &Move) -> Result<Option<Value>, StoreError> {
    let r = db.query(sql::fence(m.account_id)).await?;
    Ok(r.first().and_then(|r| col_json(r, "body")))
}

fn is_ours(fence: &Value, m: &Move, role: &str) -> bool {
    fence["move_id"].as_str() == Some(&m.id.to_string()) && fence["role"] == role
}

/// `planned`: the account is on the source, the target holds nothing of it; fence the target.
async fn plan<D: Database>(c: &Ctx<'_, D>, m: &mut Move) -> Result<Stepped, MoveError> {
    let route = c
        .accounts
        .query(crate::store::accounts::body_stmt(m.account_id))
        .await?;
    let on = route
        .first()
        .and_then(|r| col_json(r, "body"))
        .and_then(|b| b["db_shard_id"].as_str().map(str::to_owned));
    if on.as_deref() != Some(m.source_shard.as_str()) {
        return fail(
            m,
            format!("the account is on {on:?}, not on the move's source"),
        );
    }
    match fence_of(c.target, m).await? {
        Some(f) if is_ours(&f, m, "target") => {}
        // The tenant left this shard by an earlier move (A -> B, now B -> A): its `moved`
        // fence becomes this move's target fence once the earlier cleanup emptied the shard.
        Some(f) if f["state"] == "moved" => {
            if let Some(name) = target_rows(c, m).await? {
                return fail(
                    m,
                    format!("the target still holds rows of the tenant ({name}): the earlier move's cleanup has not finished"),
                );
            }
            c.target
                .query(sql::reclaim_fence(m.account_id, m.id, c.token, &c.now_s()))
                .await?;
            match fence_of(c.target, m).await? {
                Some(f) if is_ours(&f, m, "target") => {}
                _ => return fail(m, "another fence took the target first".into()),
            }
        }
        Some(_) => {
            return fail(
                m,
                "the target has a fence of another move for this tenant".into(),
            )
        }
        None => {
            if let Some(name) = target_rows(c, m).await? {
                return fail(
                    m,
                    format!("the target already holds rows of the tenant ({name})"),
                );
            }
            c.target
                .query(sql::put_fence(
                    m.account_id,
                    m.id,
                    "target",
                    c.token,
                    &c.now_s(),
                ))
                .await?;
            match fence_of(c.target, m).await? {
                Some(f) if is_ours(&f, m, "target") => {}
                _ => return fail(m, "another fence took the target first".into()),
            }
        }
    }
    m.advance(&c.now_s())?;
    Ok(Stepped::Progress)
}

/// The first table in which the target holds rows of the tenant.
async fn target_rows<D: Database>(
    c: &Ctx<'_, D>,
    m: &Move,
) -> Result<Option<&'static str>, StoreError> {
    let mut names: Vec<&'static str> = TABLES.iter().map(|t| t.name).collect();
    names.push("audit_checkpoints");
    for name in names {
        let r = c.target.query(sql::any_rows(name, m.account_id)).await?;
        if r.first().and_then(|r| col_i64(r, "n")).unwrap_or(0) != 0 {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// Make the target's fence this run's (a run that took the lease over has a larger token).
async fn take_target<D: Database>(c: &Ctx<'_, D>, m: &Move) -> Result<(), MoveError> {
    let r = c
        .target
        .query(sql::take_fence(m.account_id, m.id, c.token))
        .await?;
    if r.meta.changes == 0 {
        return Err(MoveError::FenceLost(c.token));
    }
    Ok(())
}

/// `copying` / `catching_up`: ranges of a repairing pass; a finished pass decides what next.
async fn copy_step<D: Database>(c: &Ctx<'_, D>, m: &mut Move) -> Result<Stepped, MoveError> {
    take_target(c, m).await?;
    if m.phase == Phase::CatchingUp && m.cursor == Default::default() {
        // From the first catch-up pass on, the source logs the tenant's changes; every row
        // changed after this pass began may differ afterwards, and is re-checked fenced.
        c.source
            .query(sql::start_tracking(m.account_id, m.id, &c.now_s()))
            .await?;
        m.pass_log_from = last_change(c, m).await?;
    }
    if !pass(c, m, true, None).await? {
        return Ok(Stepped::Progress);
    }
    m.passes += 1;
    m.last_pass_repaired = Some(m.pass_repaired);
    m.pass_repaired = 0;
    m.cursor = Default::default();
    if m.phase == Phase::Copying || m.lag_is_small() {
        if m.phase == Phase::CatchingUp {
            m.log_from = m.pass_log_from;
            m.pre_verified = false;
        }
        m.advance(&c.now_s())?;
    }
    Ok(Stepped::Progress)
}

async fn last_change<D: Database>(c: &Ctx<'_, D>, m: &Move) -> Result<i64, StoreError> {
    let r = c.source.query(sql::last_change(m.account_id)).await?;
    Ok(r.first().and_then(|r| col_i64(r, "seq")).unwrap_or(0))
}

/// Log entries read per page.
pub const LOG_PAGE: i64 = 500;
/// The pre-fence verify skips the rows the log names since `log_from`; more entries than this
/// (counted as read, so at most `MAX_LOGGED / LOG_PAGE + 1` pages a step, however often one
/// row changed) and the tenant changes too fast to fence: catch up again.
pub const MAX_LOGGED: usize = 20_000;

/// The shortest grace between the flip and the first delete on the source: an isolate may
/// still read with the old route for [`ACCOUNT_CHECK_INTERVAL`] after the flip, and a request
/// that resolved its route then may still be reading (10 s more). Deleting sooner would turn
/// such reads into 404s and short list pages. A shorter `grace_seconds` is raised to this.
///
/// [`ACCOUNT_CHECK_INTERVAL`]: crate::services::tenancy::ACCOUNT_CHECK_INTERVAL
pub const MIN_GRACE_SECONDS: i64 =
    crate::services::tenancy::ACCOUNT_CHECK_INTERVAL.whole_seconds() + 10;

/// (seq, table, key) of the log entries after `after`, one page.
async fn log_page<D: Database>(
    c: &Ctx<'_, D>,
    m: &Move,
    after: i64,
) -> Result<Vec<(i64, String, Value)>, StoreError> {
    let r = c
        .source
        .query(sql::changes_after(m.account_id, after, LOG_PAGE))
        .await?;
    Ok(r.rows
        .iter()
        .filter_map(|r| {
            let seq = col_i64(r, "seq")?;
            let t = col_str(r, "t")?.to_string();
            let k = match r.get("k")? {
                Value::String(s) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
                other => other.clone(),
            };
            Some((seq, t, k))
        })
        .collect())
}

/// Every key the log names after `m.log_from` (None: more than [`MAX_LOGGED`] entries).
async fn logged_keys<D: Database>(
    c: &Ctx<'_, D>,
    m: &Move,
) -> Result<Option<BTreeSet<(String, String)>>, StoreError> {
    let (mut after, mut out, mut read) = (m.log_from, BTreeSet::new(), 0);
    loop {
        let page = log_page(c, m, after).await?;
        let full = page.len() as i64 == LOG_PAGE;
        read += page.len();
        for (seq, t, k) in page {
            after = seq;
            out.insert((t, key_text(&k)));
        }
        if read > MAX_LOGGED {
            return Ok(None);
        }
        if !full {
            return Ok(Some(out));
        }
    }
}

fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        k => k.to_string(),
    }
}

/// One page of the fenced keyed pass: the rows the log names after the cursor (from
/// `log_from`), compared on both shards table by table and repaired (`repair`) or counted as
/// differences. True when the log is done.
async fn keyed_pass<D: Database>(
    c: &Ctx<'_, D>,
    m: &mut Move,
    repair: bool,
) -> Result<bool, MoveError> {
    let after = m
        .cursor
        .after
        .as_ref()
        .and_then(Value::as_i64)
        .unwrap_or(m.log_from);
    let page = log_page(c, m, after).await?;
    let done = (page.len() as i64) < LOG_PAGE;
    let mut wanted: std::collections::BTreeMap<usize, BTreeSet<String>> = Default::default();
    let mut raw: std::collections::BTreeMap<(usize, String), Value> = Default::default();
    for (_, t, k) in &page {
        if let Some(i) = TABLES.iter().position(|x| x.name == t) {
            wanted.entry(i).or_default().insert(key_text(k));
            raw.insert((i, key_text(k)), k.clone());
        }
    }
    for (i, keys) in wanted {
        let t = &TABLES[i];
        let keys: Vec<Value> = keys
            .iter()
            .filter_map(|k| raw.get(&(i, k.clone())).cloned())
            .collect();
        for chunk in keys.chunks(90) {
            let (s, tg) = (
                c.source.query(sql::by_keys(t, m.account_id, chunk)),
                c.target.query(sql::by_keys(t, m.account_id, chunk)),
            );
            let (s, tg) = (sql::read_rows(t, &s.await?), sql::read_rows(t, &tg.await?));
            let d = moves::diff(t.kind, &s, &tg);
            if repair {
                if conflicting(m, t, &d)? {
                    return Ok(false);
                }
                let counts = m.tables.entry(t.name.to_string()).or_default();
                counts.copied += d.upsert.len() as u64;
                counts.deleted += d.delete.len() as u64;
                apply(c, m, t, &d).await?;
            } else {
                note_differences(m, t, &d);
            }
        }
    }
    if let Some((seq, _, _)) = page.last() {
        m.cursor.after = Some(json!(seq));
    }
    Ok(done)
}

/// Up to [`RANGES_PER_STEP`] ranges from the cursor; true when the pass is complete.
/// `repair`: copy what differs (else record counts, digests and differences: verify).
async fn pass<D: Database>(
    c: &Ctx<'_, D>,
    m: &mut Move,
    repair: bool,
    skip: Option<&BTreeSet<(String, String)>>,
) -> Result<bool, MoveError> {
    for _ in 0..RANGES_PER_STEP {
        let Some(t) = TABLES.get(m.cursor.table) else {
            return Ok(true);
        };
        let after = m.cursor.after.clone();
        let (s, tg) = (
            c.source
                .query(sql::range(t, m.account_id, after.as_ref(), RANGE_ROWS)),
            c.target
                .query(sql::range(t, m.account_id, after.as_ref(), RANGE_ROWS)),
        );
        let (mut s, mut tg) = (sql::read_rows(t, &s.await?), sql::read_rows(t, &tg.await?));
        // The range ends where the shorter full side ends (None: both sides are done).
        let full = |v: &Vec<Row>| {
            (v.len() as i64 == RANGE_ROWS)
                .then(|| v.last().map(|r| r.key.clone()))
                .flatten()
        };
        let upper = match (full(&s), full(&tg)) {
            (Some(a), Some(b)) => Some(if key_le(&a, &b) { a } else { b }),
            (a, b) => a.or(b),
        };
        if let Some(u) = &upper {
            s.retain(|r| key_le(&r.key, u));
            tg.retain(|r| key_le(&r.key, u));
        }
        if let Some(skip) = skip {
            // Rows the change log names: re-checked while fenced.
            let logged = |r: &Row| skip.contains(&(t.name.to_string(), key_text(&r.key)));
            s.retain(|r| !logged(r));
            tg.retain(|r| !logged(r));
        }
        let d = moves::diff(t.kind, &s, &tg);
        if repair {
            if conflicting(m, t, &d)? {
                return Ok(false);
            }
            let counts = m.tables.entry(t.name.to_string()).or_default();
            counts.copied += d.upsert.len() as u64;
            counts.deleted += d.delete.len() as u64;
            m.pass_repaired += d.len() as u64;
            apply(c, m, t, &d).await?;
        } else {
            let counts = m.tables.entry(t.name.to_string()).or_default();
            counts.source_rows += s.len() as u64;
            counts.target_rows += tg.len() as u64;
            counts.source_digest = moves::add_digest(&counts.source_digest, t.name, &s);
            counts.target_digest = moves::add_digest(&counts.target_digest, t.name, &tg);
            note_differences(m, t, &d);
        }
        match upper {
            Some(u) => m.cursor.after = Some(u),
            None => {
                m.cursor.table += 1;
                m.cursor.after = None;
            }
        }
    }
    Ok(m.cursor.table >= TABLES.len())
}

/// Rows of an append-only table that differ cannot be rewritten: the move fails naming them
/// (true).
fn conflicting(m: &mut Move, t: &Table, d: &Diff) -> Result<bool, MoveError> {
    if d.conflicts.is_empty() {
        return Ok(false);
    }
    let named = name_rows(t, &d.conflicts);
    m.differences = named.clone();
    fail(
        m,
        format!(
            "{} rows of {} differ and cannot be rewritten: {}",
            d.conflicts.len(),
            t.name,
            named.join(", ")
        ),
    )?;
    Ok(true)
}

/// A verify's differences, named (at most [`moves::MAX_NAMED`]).
fn note_differences(m: &mut Move, t: &Table, d: &Diff) {
    let mut keys: Vec<Value> = d.upsert.iter().map(|r| r.key.clone()).collect();
    keys.extend(d.delete.iter().cloned());
    keys.extend(d.conflicts.iter().cloned());
    for n in name_rows(t, &keys) {
        if m.differences.len() < moves::MAX_NAMED {
            m.differences.push(n);
        }
    }
}

fn key_le(a: &Value, b: &Value) -> bool {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => x <= y,
        _ => a.as_str().unwrap_or("") <= b.as_str().unwrap_or(""),
    }
}

fn name_rows(t: &Table, keys: &[Value]) -> Vec<String> {
    keys.iter()
        .take(moves::MAX_NAMED)
        .map(|k| match k {
            Value::String(s) => format!("{}/{s}", t.name),
            k => format!("{}/{k}", t.name),
        })
        .collect()
}

/// Write a range's repairs on the target, in batches each opening and closing the fence. A
/// row whose parent the target lacks yet (created after its table's range was copied) fails
/// on the foreign key: the batch is retried with the parents copied first.
async fn apply<D: Database>(
    c: &Ctx<'_, D>,
    m: &Move,
    t: &Table,
    d: &Diff,
) -> Result<(), MoveError> {
    let w = c.writer(m);
    let mut groups: Vec<(Vec<Stmt>, Vec<&Row>)> = vec![];
    let (mut cur, mut rows, mut bytes) = (vec![], vec![], 0usize);
    for key in &d.delete {
        cur.extend(w.delete(t, key));
    }
    for r in &d.upsert {
        if cur.len() >= BATCH_STATEMENTS || (bytes + r.body.len() > BATCH_BYTES && !cur.is_empty())
        {
            groups.push((std::mem::take(&mut cur), std::mem::take(&mut rows)));
            bytes = 0;
        }
        bytes += r.body.len();
        cur.push(w.upsert(t, r));
        rows.push(r);
    }
    if !cur.is_empty() {
        groups.push((cur, rows));
    }
    for (stmts, rows) in groups {
        match run_guarded(c, &w, stmts.clone()).await {
            Err(MoveError::Store(StoreError::Constraint(msg))) if msg.contains("FOREIGN KEY") => {
                let mut with = parent_upserts(c, m, t, &rows).await?;
                with.extend(stmts);
                run_guarded(c, &w, with).await?;
            }
            other => other?,
        }
    }
    Ok(())
}

async fn run_guarded<D: Database>(
    c: &Ctx<'_, D>,
    w: &Writer,
    stmts: Vec<Stmt>,
) -> Result<(), MoveError> {
    let mut all = Vec::with_capacity(stmts.len() + 2);
    all.push(w.open());
    all.extend(stmts);
    all.push(w.close());
    let r = c.target.batch(all).await?;
    if r.first().map(|r| r.meta.changes).unwrap_or(0) == 0 {
        return Err(MoveError::FenceLost(c.token));
    }
    Ok(())
}

/// Upserts of the rows' parents (and theirs), read from the source, ancestors first.
async fn parent_upserts<D: Database>(
    c: &Ctx<'_, D>,
    m: &Move,
    t: &Table,
    rows: &[&Row],
) -> Result<Vec<Stmt>, MoveError> {
    let w = c.writer(m);
    let mut levels: Vec<Vec<Stmt>> = vec![];
    let mut frontier: Vec<(&'static str, Row)> =
        rows.iter().map(|r| (t.name, (*r).clone())).collect();
    for _ in 0..3 {
        let mut wanted: std::collections::BTreeMap<&'static str, BTreeSet<String>> =
            Default::default();
        for (table, r) in &frontier {
            let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
            for (col, parent) in sql::parents(table) {
                if let Some(id) = body[*col].as_str() {
                    wanted.entry(parent).or_default().insert(id.to_string());
                }
            }
        }
        if wanted.is_empty() {
            break;
        }
        let mut level = vec![];
        let mut next = vec![];
        for (parent, ids) in wanted {
            let Some(pt) = sql::table(parent) else {
                continue;
            };
            let ids: Vec<String> = ids.into_iter().collect();
            for chunk in ids.chunks(90) {
                let got = sql::read_rows(
                    pt,
                    &c.source
                        .query(sql::by_ids(parent, m.account_id, chunk))
                        .await?,
                );
                for r in got {
                    level.push(w.upsert(pt, &r));
                    next.push((pt.name, r));
                }
            }
        }
        levels.push(level);
        frontier = next;
    }
    Ok(levels.into_iter().rev().flatten().collect())
}

/// `verifying`: fence the source, drain, final pass, verify pass, flip.
async fn verify_step<D: Database>(c: &Ctx<'_, D>, m: &mut Move) -> Result<Stepped, MoveError> {
    let now = c.now_s();
    let before = m.phase;
    let out = match m.stage {
        Stage::Fence if target_provisioning(c, m).await? => {
            // A new dedicated shard fills while it is provisioning; the tenant is fenced and
            // routed there only once an operator activated it (its deployment serves).
            return Ok(Stepped::Waiting(
                "the target shard is provisioning: activate it (POST /admin/v1/shards/{id}/activate)",
            ));
        }
        Stage::Fence if !m.pre_verified => pre_verify(c, m).await?,
        Stage::Fence => {
            c.source
                .query(sql::put_fence(m.account_id, m.id, "source", c.token, &now))
                .await?;
            match fence_of(c.source, m).await? {
                Some(f) if is_ours(&f, m, "source") => {
                    // From the fence row's own time: a step killed after fencing and before its
                    // save put it there earlier, and writes were refused since.
                    m.fenced_at.get_or_insert_with(|| {
                        f["at"].as_str().map_or_else(|| now.clone(), str::to_owned)
                    });
                    m.stage = Stage::Drain;
                    Stepped::Progress
                }
                _ => fail(m, "the source has another fence for this tenant".into())?,
            }
        }
        Stage::Drain => {
            let r = c.source.query(sql::undrained(m.account_id)).await?;
            let left = r.first().and_then(|r| col_i64(r, "n")).unwrap_or(0);
            let fenced = m
                .fenced_at
                .as_deref()
                .and_then(parse_rfc3339)
                .unwrap_or(c.now);
            if left == 0 {
                m.stage = Stage::FinalCopy;
                m.cursor = Default::default();
                Stepped::Progress
            } else if c.now - fenced > moves::DRAIN_DEADLINE {
                c.source
                    .query(sql::lift_fence(m.account_id, m.id, "source"))
                    .await?;
                if m.drain_retries >= moves::MAX_DRAIN_RETRIES {
                    fail(m, format!("{left} events of the source were still not recorded after the drain deadline, {} times", m.drain_retries + 1))?
                } else {
                    m.retry_catch_up(&now);
                    Stepped::Progress
                }
            } else {
                Stepped::Waiting("the source's events are being recorded")
            }
        }
        Stage::FinalCopy if m.pre_verified => {
            // Only the rows changed since the last catch-up pass began (the change log).
            take_target(c, m).await?;
            if keyed_pass(c, m, true).await? && m.undo.is_none() {
                m.stage = Stage::Verify;
                m.cursor = Default::default();
                m.differences.clear();
            }
            Stepped::Progress
        }
        Stage::FinalCopy => {
            take_target(c, m).await?;
            if pass(c, m, true, None).await? && m.undo.is_none() {
                m.stage = Stage::Verify;
                m.cursor = Default::default();
                clear_counts(m);
            }
            Stepped::Progress
        }
        Stage::Verify if m.pre_verified => {
            if !keyed_pass(c, m, false).await? {
                Stepped::Progress
            } else {
                return finish_verify(c, m).await;
            }
        }
        Stage::Verify => {
            if !pass(c, m, false, None).await? {
                Stepped::Progress
            } else {
                return finish_verify(c, m).await;
            }
        }
    };
    save(c.accounts, m, &now).await?;
    Ok(if m.phase != before {
        Stepped::Entered(m.phase)
    } else {
        out
    })
}

/// Whether the move's target is still `provisioning` in the registry.
async fn target_provisioning<D: Database>(c: &Ctx<'_, D>, m: &Move) -> Result<bool, StoreError> {
    let r = c
        .accounts
        .query(crate::store::registry::shard_stmt(&m.target_shard))
        .await?;
    Ok(r.first()
        .and_then(|r| col_json(r, "body"))
        .is_some_and(|b| b["status"] == "provisioning"))
}

fn clear_counts(m: &mut Move) {
    for t in m.tables.values_mut() {
        t.source_rows = 0;
        t.target_rows = 0;
        t.source_digest.clear();
        t.target_digest.clear();
    }
    m.differences.clear();
}

/// Before the fence: the full verify (counts, digests, every row compared) of every row the
/// change log does not name since `log_from`; those are re-checked while fenced. A difference
/// outside the log fails the move, as a fenced verify would.
async fn pre_verify<D: Database>(c: &Ctx<'_, D>, m: &mut Move) -> Result<Stepped, MoveError> {
    if m.cursor == Default::default() {
        clear_counts(m);
    }
    let Some(skip) = logged_keys(c, m).await? else {
        // The tenant changes faster than a pass: catch up again (the source is not fenced).
        m.retry_catch_up(&c.now_s());
        return Ok(Stepped::Progress);
    };
    if !pass(c, m, false, Some(&skip)).await? {
        return Ok(Stepped::Progress);
    }
    m.cursor = Default::default();
    let differ = digests_differ(m);
    if !m.differences.is_empty() || !differ.is_empty() {
        let why = format!(
            "verify found differences: rows {:?}; tables {:?}",
            m.differences, differ
        );
        fail(m, why)?;
        return Ok(Stepped::Progress);
    }
    m.pre_verified = true;
    Ok(Stepped::Progress)
}

fn digests_differ(m: &Move) -> Vec<String> {
    m.tables
        .iter()
        .filter(|(_, t)| t.source_rows != t.target_rows || t.source_digest != t.target_digest)
        .map(|(n, t)| {
            format!(
                "{n}: {} rows / {} on the target, digest {} / {}",
                t.source_rows, t.target_rows, t.source_digest, t.target_digest
            )
        })
        .collect()
}

async fn head_of<D: Database>(db: &D, m: &Move) -> Result<Option<(i64, String)>, StoreError> {
    let r = db.query(sql::audit_head(m.account_id)).await?;
    Ok(r.first().map(|r| {
        (
            col_i64(r, "seq").unwrap_or(0),
            col_str(r, "hash").unwrap_or_default().to_string(),
        )
    }))
}

/// The verify pass is complete: any difference fails the move; else the route flips in one
/// account-D1 batch with the move's entry into `cutover`.
async fn finish_verify<D: Database>(c: &Ctx<'_, D>, m: &mut Move) -> Result<Stepped, MoveError> {
    let now = c.now_s();
    // The flip needs the source fenced by this move, now: a drain that gave up lifted it, and
    // a redo after that step's lost save would otherwise verify and flip while writes land
    // unfenced (their differences are then expected: catch up again, do not fail).
    match fence_of(c.source, m).await? {
        Some(f) if is_ours(&f, m, "source") && f["state"] == "fenced" => {}
        _ => {
            m.retry_catch_up(&now);
            save(c.accounts, m, &now).await?;
            return Ok(Stepped::Progress);
        }
    }
    let (hs, ht) = (head_of(c.source, m).await?, head_of(c.target, m).await?);
    let digests_differ = digests_differ(m);
    if !m.differences.is_empty() || !digests_differ.is_empty() || hs != ht {
        let why = format!(
            "verify found differences: rows {:?}; tables {:?}; audit head {:?} / {:?} on the target",
            m.differences, digests_differ, hs, ht
        );
        fail(m, why)?;
        save(c.accounts, m, &now).await?;
        return Ok(Stepped::Progress);
    }
    m.audit_head = hs;
    let rev = m.rev;
    m.flipped_at = Some(now.clone());
    m.fenced_ms = m
        .fenced_at
        .as_deref()
        .and_then(parse_rfc3339)
        .map(|f| (c.now - f).whole_milliseconds() as i64);
    m.advance(&now)?;
    m.rev += 1;
    m.updated_at = now.clone();
    let r = c
        .accounts
        .batch(vec![
            sql::flip_route(
                m.account_id,
                &m.source_shard,
                &m.target_shard,
                &c.target_tier,
                m.id,
                rev,
                &now,
            ),
            sql::save_move(m),
        ])
        .await?;
    if r.get(1).map(|r| r.meta.changes).unwrap_or(0) == 0 {
        return Err(MoveError::Lost(m.id));
    }
    if r.first().map(|r| r.meta.changes).unwrap_or(0) == 0 {
        // The account was no longer on the source (moved by hand?): never flip blindly.
        fail(
            m,
            "the account's route was not on the source at the flip".into(),
        )?;
        // The route did not move: nothing to restore.
        if let Some(u) = m.undo.as_mut() {
            u.route_restored = true;
        }
        save(c.accounts, m, &now).await?;
        return Ok(Stepped::Progress);
    }
    tracing::info!(move_id = %m.id, fenced_ms = ?m.fenced_ms, "route flipped");
    Ok(Stepped::Entered(Phase::Cutover))
}

/// `cleanup`: the source's fence says `moved` for good, the target's fence goes (writes land
/// there now), then after the grace period the source's rows go in chunks.
async fn cleanup_step<D: Database>(c: &Ctx<'_, D>, m: &mut Move) -> Result<Stepped, MoveError> {
    if m.stage == Stage::Fence {
        let head = json!(m.audit_head);
        c.source
            .query(sql::fence_moved(m.account_id, m.id, &head))
            .await?;
        c.source.query(sql::stop_tracking(m.account_id)).await?;
        c.target
            .query(sql::lift_fence(m.account_id, m.id, "target"))
            .await?;
        m.stage = Stage::Drain;
        return Ok(Stepped::Progress);
    }
    let due = m
        .cleanup_after
        .as_deref()
        .and_then(parse_rfc3339)
        .unwrap_or(c.now);
    if c.now < due {
        return Ok(Stepped::Waiting(
            "grace period before the source's copy is deleted",
        ));
    }
    let before: u64 = deleted(m);
    let done = delete_tenant(c.source, m, "source").await?;
    let gone = deleted(m) - before;
    if gone > 0 || done {
        // Deleting a tenant's rows is an audited system action (platform audit trail).
        let action = crate::domain::operator::Action {
            operator: crate::domain::operator::Operator::system("scheduler/moves"),
            action: "move.cleanup".into(),
            target: crate::domain::operator::Target {
                kind: "account".into(),
                id: m.account_id.to_string(),
            },
            details: json!({"move_id": m.id, "shard": m.source_shard, "rows_deleted": gone,
                            "complete": done}),
            request_id: format!("move-{}-rev-{}", m.id, m.rev),
        };
        if let Err(e) = crate::services::platform_audit::append(c.accounts, &action, c.now).await {
            // The rows are gone either way; the move row counts them.
            tracing::error!(move_id = %m.id, error = %e, "recording the cleanup failed");
        }
    }
    if done {
        m.advance(&c.now_s())?;
    }
    Ok(Stepped::Progress)
}

fn deleted(m: &Move) -> u64 {
    m.tables
        .iter()
        .filter(|(k, _)| k.ends_with(":source_deleted"))
        .map(|(_, t)| t.deleted)
        .sum()
}

/// Delete the tenant's rows on a shard (children first), a bounded number of chunks; true when
/// none are left. What went is counted in the move (`deleted_source` / `deleted_target`).
async fn delete_tenant<D: Database>(db: &D, m: &mut Move, role: &str) -> Result<bool, MoveError> {
    let tables = sql::cleanup_tables();
    let mut statements = 0;
    while let Some(name) = tables.get(m.cursor.table) {
        let r = db
            .query(sql::delete_chunk(
                name,
                m.account_id,
                m.id,
                role,
                DELETE_CHUNK,
            ))
            .await?;
        statements += 1;
        let n = r.meta.changes;
        let key = format!("{name}:{role}_deleted");
        let e = m.tables.entry(key).or_default();
        e.deleted += n;
        if (n as i64) < DELETE_CHUNK {
            m.cursor.table += 1;
        }
        if statements >= DELETES_PER_STEP {
            return Ok(m.cursor.table >= tables.len());
        }
    }
    Ok(true)
}

/// One step of a rollback: route back, source unfenced, target emptied and unfenced.
async fn roll_back_step<D: Database>(c: &Ctx<'_, D>, m: &mut Move) -> Result<Stepped, MoveError> {
    let now = c.now_s();
    let Some(undo) = m.undo.clone() else {
        return Ok(Stepped::Progress);
    };
    if !undo.route_restored {
        // The flip, reversed, in the same way (the target is still fenced: nothing landed there).
        let r = c
            .accounts
            .query(sql::flip_route(
                m.account_id,
                &m.target_shard,
                &m.source_shard,
                &c.source_tier,
                m.id,
                m.rev,
                &now,
            ))
            .await?;
        tracing::info!(move_id = %m.id, changed = r.meta.changes, "route restored to the source");
        if let Some(u) = m.undo.as_mut() {
            u.route_restored = true;
        }
        // After a flip, isolates may still read the target with its route: its copy stays for
        // the same grace a source gets.
        if m.flipped_at.is_some() {
            m.cleanup_after = Some(rfc3339(c.now + time::Duration::seconds(MIN_GRACE_SECONDS)));
        }
        return Ok(Stepped::Progress);
    }
    if !undo.source_unfenced {
        c.source
            .query(sql::lift_fence(m.account_id, m.id, "source"))
            .await?;
        c.source.query(sql::stop_tracking(m.account_id)).await?;
        c.source.query(sql::drop_change_log(m.account_id)).await?;
        if let Some(u) = m.undo.as_mut() {
            u.source_unfenced = true;
        }
        m.cursor = Default::default();
        return Ok(Stepped::Progress);
    }
    if let Some(after) = m.cleanup_after.as_deref().and_then(parse_rfc3339) {
        if c.now < after {
            return Ok(Stepped::Waiting(
                "grace before the target's copy is deleted (the route was flipped back)",
            ));
        }
    }
    if delete_tenant(c.target, m, "target").await? {
        // A target the tenant had left before gets its `moved` fence back; else none.
        c.target
            .query(sql::restore_fence(m.account_id, m.id))
            .await?;
        c.target
            .query(sql::lift_fence(m.account_id, m.id, "target"))
            .await?;
        m.finish_rollback(&now);
    }
    Ok(Stepped::Progress)
}

/// What a move would carry (dry run): rows and body bytes per table on the source.
pub async fn estimate(db: &impl Database, account: uuid::Uuid) -> Result<Value, StoreError> {
    let mut tables = serde_json::Map::new();
    let (mut rows, mut bytes) = (0i64, 0i64);
    for t in TABLES {
        let r = db.query(sql::size(t.name, account)).await?;
        let (n, b) = r
            .first()
            .map(|r| {
                (
                    col_i64(r, "n").unwrap_or(0),
                    col_i64(r, "bytes").unwrap_or(0),
                )
            })
            .unwrap_or((0, 0));
        rows += n;
        bytes += b;
        tables.insert(t.name.into(), json!({"rows": n, "bytes": b}));
    }
    Ok(json!({"rows": rows, "bytes": bytes, "tables": tables}))
}
