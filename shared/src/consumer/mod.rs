//! Layer 3, the consumer (mirrors `consumers/change-events`): the queue consumers' decisions,
//! platform-free. Each message gets exactly one decision; the Worker acks, retries or
//! dead-letters it and never returns `Err`. The consumer uses services, store, ports and domain;
//! never the API or the jobs.
#![allow(async_fn_in_trait)]

pub mod dead_letters;
pub mod platform_events;
pub mod validate;

use crate::domain::event::{decode, ChangeEvent};
use crate::domain::tenancy::Faults;
use crate::ports::{Database, Stmt, StoreError};
use crate::services::audit::{self, Appended, ChainHead, Seal};
use crate::services::tenancy::chance;
use crate::store::accounts::{placements_stmt, read_placements};
use crate::store::event_evidence::{evidence_stmt, read_evidence};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use time::OffsetDateTime;
use uuid::Uuid;
pub use validate::Reason;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Ack,
    Retry {
        delay_seconds: u32,
    },
    /// Will never succeed: record it in the dead-letter queue with the reason, then ack.
    DeadLetter {
        reason: Reason,
    },
}

pub trait ConsumerPlatform {
    type Db: Database;
    type Entropy: crate::domain::clock::Entropy;
    type Queue: crate::ports::EventQueue;
    /// Producer of the `index-jobs` queue (fan-out continuations; None: the binding is missing,
    /// and only the messages that need it are retried).
    fn index_jobs(&self) -> Option<&Self::Queue>;
    fn accounts(&self) -> &Self::Db;
    /// A session on a shard binding this consumer has (None: not bound).
    fn shard(&self, binding: &str) -> Option<Self::Db>;
    fn now(&self) -> OffsetDateTime;
    fn entropy(&self) -> &Self::Entropy;
    /// The audit writer's signing key and the keys its earlier receipts verify with (None: not
    /// configured, and nothing can be appended).
    fn seal(&self) -> Option<&Seal>;
    type Checkpoints: crate::ports::ImmutableStore;
    /// The write-once checkpoint bucket, where the writer anchors every head it signs
    /// (`audit-heads/`). None: not bound; heads are then not anchored (logged).
    fn checkpoints(&self) -> Option<&Self::Checkpoints>;
    /// The local environment honours per-account fault injection.
    fn local(&self) -> bool {
        false
    }
}

/// Delay before a retry after a lost race on the chain head (another batch appended first).
pub const RACE_RETRY_SECONDS: u32 = 1;
/// Appends tried within one invocation when another batch keeps winning the chain head.
pub const CHAIN_RACE_ATTEMPTS: usize = 5;
/// Delay before a retry after a storage failure.
pub const STORAGE_RETRY_SECONDS: u32 = 10;

const STORAGE_RETRY: Decision = Decision::Retry {
    delay_seconds: STORAGE_RETRY_SECONDS,
};

/// An event that passed every check, with its shard's binding.
struct Checked {
    ev: ChangeEvent,
    binding: String,
}

/// What the checks of a batch found out besides each message's verdict.
#[derive(Default)]
struct Learned {
    /// Chain heads read with the evidence (one call per account).
    heads: HashMap<Uuid, ChainHead>,
    /// Accounts whose first event is already recorded: their run goes one event at a time.
    recorded_first: HashSet<Uuid>,
    faults: HashMap<Uuid, Faults>,
    /// The head's seq as read, sealed or not.
    tails: HashMap<Uuid, i64>,
}

/// Validate a batch (see `validate`): one account-D1 query for every account of the batch,
/// then per account one shard call holding the chain head and, per event id, its outbox row
/// and whether it is recorded. A checked message leaves here carrying the OUTBOX's event (the
/// message is only a pointer); one already recorded leaves as `Err(Ack)`. A storage failure,
/// or a shard this consumer does not bind, retries the messages it concerns.
async fn check_batch<P: ConsumerPlatform>(
    p: &P,
    bodies: &[Value],
    seal: &Seal,
) -> (Vec<Result<Checked, Decision>>, Learned) {
    let refuse = |reason| Err(Decision::DeadLetter { reason });
    let mut out: Vec<Result<Checked, Decision>> = bodies
        .iter()
        .map(|b| match decode(b) {
            Err(e) => refuse(Reason::Undecodable(e.to_string())),
            Ok(ev) => match validate::check_spelling(&ev, b)
                .and_then(|()| validate::check_envelope(&ev))
            {
                Err(r) => refuse(r),
                Ok(()) => Ok(Checked {
                    ev,
                    binding: String::new(),
                }),
            },
        })
        .collect();
    let mut learned = Learned::default();
    let mut accounts: Vec<Uuid> = out
        .iter()
        .filter_map(|c| c.as_ref().ok().map(|c| c.ev.account_id))
        .collect();
    accounts.sort();
    accounts.dedup();
    if accounts.is_empty() {
        return (out, learned);
    }
    let placements = match p.accounts().query(placements_stmt(&accounts)).await {
        Ok(rows) => read_placements(&rows),
        Err(e) => {
            tracing::warn!(error = %e, "registry unavailable; retrying the batch");
            for c in out.iter_mut().filter(|c| c.is_ok()) {
                *c = Err(STORAGE_RETRY);
            }
            return (out, learned);
        }
    };
    if p.local() {
        learned.faults = placements
            .iter()
            .filter_map(|(a, pl)| pl.faults.clone().map(|f| (*a, f)))
            .collect();
    }
    let mut groups: Vec<(String, Uuid, Vec<usize>)> = Vec::new();
    for (i, c) in out.iter_mut().enumerate() {
        let Ok(checked) = c else { continue };
        let binding =
            match validate::check_placement(&checked.ev, placements.get(&checked.ev.account_id)) {
                Ok(b) if p.shard(b).is_some() => b.to_string(),
                // A configuration error (the shard is registered, this consumer does not bind
                // it): retried until fixed or moved to the dead-letter queue by max_retries.
                Ok(_) | Err(Reason::ShardNotBound(_)) => {
                    tracing::error!(
                        shard = %checked.ev.shard_id,
                        "shard not bound by this consumer; retrying its events"
                    );
                    *c = Err(STORAGE_RETRY);
                    continue;
                }
                Err(r) => {
                    *c = refuse(r);
                    continue;
                }
            };
        let account = checked.ev.account_id;
        checked.binding = binding.clone();
        match groups
            .iter_mut()
            .find(|(b, a, _)| *b == binding && *a == account)
        {
            Some((_, _, g)) => g.push(i),
            None => groups.push((binding, account, vec![i])),
        }
    }
    for (binding, account, members) in groups {
        let Some(db) = p.shard(&binding) else {
            continue;
        };
        let ids: Vec<Uuid> = members
            .iter()
            .filter_map(|i| out[*i].as_ref().ok().map(|c| c.ev.id))
            .collect();
        let Some(first) = ids.first() else {
            continue;
        };
        let stmts = vec![
            audit::head_stmt(account, *first),
            evidence_stmt(account, &ids),
        ];
        let results = match db.batch(stmts).await {
            Err(e) => {
                tracing::warn!(error = %e, "shard unavailable; retrying its events");
                for i in &members {
                    out[*i] = Err(STORAGE_RETRY);
                }
                continue;
            }
            Ok(results) => results,
        };
        match results
            .first()
            .map(|r| audit::read_head(r, account, &seal.keys))
        {
            Some(audit::HeadLookup::Head(h)) => {
                learned.tails.insert(account, h.seq);
                learned.heads.insert(account, h);
            }
            // Appended one by one, after the writer's record of the unsigned links.
            Some(audit::HeadLookup::Unsealed(h)) => {
                learned.tails.insert(account, h.seq);
            }
            Some(audit::HeadLookup::AlreadyRecorded) | None => {
                learned.recorded_first.insert(account);
            }
        }
        let evidence = results
            .get(1)
            .map(|r| read_evidence(r, ids.len()))
            .unwrap_or_default();
        // `members` holds exactly the checked messages `ids` came from, in order.
        for (i, e) in members.iter().zip(evidence) {
            let Ok(c) = &mut out[*i] else { continue };
            out[*i] = match validate::check_evidence(&c.ev, &e) {
                Ok(validate::Verdict::Record(row)) => {
                    c.ev = *row;
                    continue;
                }
                // Nothing to append: acknowledged as the duplicate it is.
                Ok(validate::Verdict::Recorded) => Err(Decision::Ack),
                Err(r) => refuse(r),
            };
        }
    }
    (out, learned)
}

pub async fn process_batch<P: ConsumerPlatform>(p: &P, bodies: &[Value]) -> Vec<Decision> {
    let Some(seal) = p.seal() else {
        tracing::error!("the audit writer's key (AUDIT_SIGNING_KEY) is missing or malformed; the batch is retried");
        return vec![STORAGE_RETRY; bodies.len()];
    };
    let (checked, mut learned) = check_batch(p, bodies, seal).await;
    let faults = std::mem::take(&mut learned.faults);
    let fault_of = |c: &Checked| faults.get(&c.ev.account_id);
    let mut cut = cut_trails(p, &learned, seal).await;
    let read = learned.heads.clone();
    let mut done = append_runs(p, &checked, &mut learned, seal, |c| {
        fault_of(c).is_some() || cut.contains_key(&c.ev.account_id)
    })
    .await;
    let mut heads = learned.heads;
    let mut out = Vec::with_capacity(bodies.len());
    for (i, c) in checked.iter().enumerate() {
        if let Some(d) = done[i].take() {
            out.push(d);
            continue;
        }
        let c = match c {
            Ok(c) => c,
            Err(d) => {
                out.push(d.clone());
                continue;
            }
        };
        let mut d = process_one(p, c, &mut heads, &mut cut, seal).await;
        if let Some(f) = fault_of(c) {
            if f.duplicate_delivery && d == Decision::Ack {
                d = process_one(p, c, &mut heads, &mut cut, seal).await;
            }
            if d == Decision::Ack && chance(p.entropy(), f.consumer_retry_rate) {
                d = Decision::Retry { delay_seconds: 0 };
            }
        }
        out.push(d);
    }
    anchor_heads(p, &read, &heads, seal).await;
    out
}

/// Accounts of the batch whose trail's head is below a head the writer signed and anchored
/// outside D1 (the trail was cut): account -> that anchored seq. One listing per account; a
/// bucket that does not answer is logged and checked again next batch.
async fn cut_trails<P: ConsumerPlatform>(
    p: &P,
    learned: &Learned,
    seal: &Seal,
) -> HashMap<Uuid, i64> {
    let mut cut = HashMap::new();
    let Some(bucket) = p.checkpoints() else {
        return cut;
    };
    for (account, tail) in &learned.tails {
        match crate::services::checkpoints::anchors_above(bucket, &seal.keys, *account, *tail).await
        {
            Ok(above) => {
                if let Some(a) = above.signed {
                    tracing::error!(account = %account, head = tail, anchored = a.seq,
                        "the audit trail's head is below a head the writer anchored: the trail was cut");
                    cut.insert(*account, a.seq);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, account = %account, "listing anchored heads failed")
            }
        }
    }
    cut
}

/// Anchor every head the batch appended outside D1 (`audit-heads/{account}/{seq}`), and again
/// the head it started from (created only if absent: a failed earlier anchor is retried). A
/// failed create is logged; the event is recorded all the same.
async fn anchor_heads<P: ConsumerPlatform>(
    p: &P,
    read: &HashMap<Uuid, ChainHead>,
    heads: &HashMap<Uuid, ChainHead>,
    seal: &Seal,
) {
    let moved: Vec<(&Uuid, &ChainHead)> = heads
        .iter()
        .filter(|(a, h)| read.get(*a) != Some(*h))
        .collect();
    if moved.is_empty() {
        return;
    }
    let Some(bucket) = p.checkpoints() else {
        tracing::error!(
            "the checkpoint bucket (AUDIT_CHECKPOINTS) is not bound: heads not anchored"
        );
        return;
    };
    use crate::services::checkpoints::anchor_head;
    for (account, head) in moved {
        let earlier = read.get(account).filter(|h| h.seq > 0 && h.seq < head.seq);
        for h in earlier.into_iter().chain([head]) {
            if let Err(e) = anchor_head(bucket, &seal.signer, *account, h).await {
                tracing::warn!(error = %e, account = %account, seq = h.seq,
                    "anchoring the audit head failed; retried with the next run");
            }
        }
    }
}

/// A checked message of the batch, with its index statements.
type Pending<'a> = (usize, &'a ChangeEvent, Vec<Stmt>);

/// The batch's checked events grouped by account (order kept within each), each group
/// appended with its index fields in one D1 batch: one call per account instead of two
/// queries per event. Returns a decision for each message it recorded or whose group's shard
/// failed (retried); the rest (refused, fan-outs, fault injection, or a group whose batch hit a
/// constraint: an event already recorded, a lost race for the chain head) go through
/// [`process_one`] or keep the verdict of the checks.
async fn append_runs<P: ConsumerPlatform>(
    p: &P,
    checked: &[Result<Checked, Decision>],
    learned: &mut Learned,
    seal: &Seal,
    one_by_one: impl Fn(&Checked) -> bool,
) -> Vec<Option<Decision>> {
    let mut done: Vec<Option<Decision>> = vec![None; checked.len()];
    let mut groups: Vec<(&str, Uuid, Vec<Pending<'_>>)> = Vec::new();
    for (i, c) in checked.iter().enumerate() {
        let Ok(c) = c else { continue };
        if one_by_one(c) {
            continue;
        }
        let Some(extra) = crate::services::derived::statements(&c.ev) else {
            continue;
        };
        let account = c.ev.account_id;
        match groups
            .iter_mut()
            .find(|(b, a, _)| *b == c.binding && *a == account)
        {
            Some((_, _, g)) => g.push((i, &c.ev, extra)),
            None => groups.push((&c.binding, account, vec![(i, &c.ev, extra)])),
        }
    }
    for (binding, account, group) in groups {
        if learned.recorded_first.contains(&account) {
            continue;
        }
        let Some(db) = p.shard(binding) else {
            continue;
        };
        let Some((_, first, _)) = group.first() else {
            continue;
        };
        let head = match learned.heads.get(&account) {
            Some(h) => h.clone(),
            None => match db.query(audit::head_stmt(account, first.id)).await {
                Ok(rows) => match audit::read_head(&rows, account, &seal.keys) {
                    audit::HeadLookup::Head(h) => h,
                    audit::HeadLookup::AlreadyRecorded | audit::HeadLookup::Unsealed(_) => continue,
                },
                Err(_) => continue,
            },
        };
        let run: Vec<(&ChangeEvent, &[Stmt])> =
            group.iter().map(|(_, ev, x)| (*ev, x.as_slice())).collect();
        match audit::append_run(&db, &run, &head, p.now(), seal).await {
            Ok(h) => {
                learned.heads.insert(account, h);
                for (i, _, _) in &group {
                    done[*i] = Some(Decision::Ack);
                }
            }
            // An event already recorded, or another batch moved the head: one by one.
            Err(StoreError::Constraint(_)) => {
                learned.heads.remove(&account);
            }
            // The shard failed: calling it again per event would only fail more slowly.
            Err(e) => {
                tracing::warn!(error = %e, "appending a run failed; retrying its events");
                learned.heads.remove(&account);
                for (i, _, _) in &group {
                    done[*i] = Some(STORAGE_RETRY);
                }
            }
        }
    }
    done
}

async fn process_one<P: ConsumerPlatform>(
    p: &P,
    c: &Checked,
    heads: &mut HashMap<Uuid, ChainHead>,
    cut: &mut HashMap<Uuid, i64>,
    seal: &Seal,
) -> Decision {
    let ev = &c.ev;
    let Some(db) = p.shard(&c.binding) else {
        // Checked as bound a moment ago: a configuration change; retried, not refused.
        return STORAGE_RETRY;
    };
    // A lost race for the next sequence number (another batch appended first) is retried here
    // with a fresh head, so contention does not use up the queue's max_retries.
    let mut attempt = 0;
    let appended = loop {
        let gone = cut.get(&ev.account_id).copied();
        let r = audit::append(&db, ev, heads.get(&ev.account_id), gone, p.now(), seal).await;
        match r {
            Err(StoreError::Constraint(_)) if attempt < CHAIN_RACE_ATTEMPTS => {
                heads.remove(&ev.account_id);
                attempt += 1;
            }
            other => break other,
        }
    };
    match appended {
        Ok(Appended::New(head)) => {
            cut.remove(&ev.account_id);
            heads.insert(ev.account_id, head);
        }
        Ok(Appended::AfterUnsigned {
            from,
            to,
            cut: gone,
            head,
        }) => {
            tracing::error!(
                account = %ev.account_id,
                from,
                to,
                cut = gone,
                "audit links without the writer's receipt (or a cut trail) recorded by the writer; the trail carries on"
            );
            cut.remove(&ev.account_id);
            heads.insert(ev.account_id, head);
        }
        Ok(Appended::Duplicate) => {}
        Ok(Appended::UnsealedHead { seq }) => {
            heads.remove(&ev.account_id);
            tracing::error!(
                account = %ev.account_id,
                seq,
                "audit chain ends in a link the writer did not sign and no signed link was found below it; event dead-lettered for replay"
            );
            return Decision::DeadLetter {
                reason: Reason::UnsealedChainHead { seq },
            };
        }
        Err(StoreError::Constraint(_)) => {
            heads.remove(&ev.account_id);
            return Decision::Retry {
                delay_seconds: RACE_RETRY_SECONDS,
            };
        }
        Err(e) => {
            tracing::warn!(error = %e, event = %ev.id, "audit append failed");
            heads.remove(&ev.account_id);
            return STORAGE_RETRY;
        }
    }
    // Index fields after the audit row: a retry finds the event recorded and redoes only this.
    match crate::services::derived::apply(&db, ev).await {
        Ok(jobs) => send_jobs(p, jobs).await,
        Err(e) => {
            tracing::warn!(error = %e, event = %ev.id, "index update failed");
            STORAGE_RETRY
        }
    }
}

async fn send_jobs<P: ConsumerPlatform>(
    p: &P,
    jobs: Vec<crate::services::derived::IndexJob>,
) -> Decision {
    use crate::ports::EventQueue;
    if jobs.is_empty() {
        return Decision::Ack;
    }
    let msgs = jobs
        .iter()
        .filter_map(|j| serde_json::to_value(j).ok())
        .collect();
    let Some(queue) = p.index_jobs() else {
        tracing::error!("the index-jobs queue binding is missing; retrying");
        return STORAGE_RETRY;
    };
    match queue.send_batch(msgs).await {
        Ok(()) => Decision::Ack,
        Err(e) => {
            tracing::warn!(error = %e, "sending index follow-ups failed");
            Decision::Retry {
                delay_seconds: STORAGE_RETRY_SECONDS,
            }
        }
    }
}

/// The `index-jobs` queue: one fan-out chunk per message, then the next chunk as a new message.
pub async fn process_index_jobs<P: ConsumerPlatform>(p: &P, bodies: &[Value]) -> Vec<Decision> {
    let bindings = match crate::store::registry::shard_bindings(p.accounts()).await {
        Ok(b) => b,
        Err(_) => {
            return bodies
                .iter()
                .map(|_| Decision::Retry {
                    delay_seconds: STORAGE_RETRY_SECONDS,
                })
                .collect()
        }
    };
    let mut out = Vec::with_capacity(bodies.len());
    for body in bodies {
        let Some(job) = crate::services::derived::decode_job(body) else {
            out.push(Decision::DeadLetter {
                reason: Reason::NotAnIndexJob,
            });
            continue;
        };
        let Some(binding) = bindings.get(&job.shard_id) else {
            out.push(Decision::DeadLetter {
                reason: Reason::ShardNotBound(job.shard_id.clone()),
            });
            continue;
        };
        let Some(db) = p.shard(binding) else {
            // A registered shard this consumer does not bind: a configuration error, retried.
            tracing::error!(shard = %job.shard_id, "shard not bound by this consumer; retrying");
            out.push(STORAGE_RETRY);
            continue;
        };
        out.push(match crate::services::derived::run_chunk(&db, &job).await {
            Ok(next) => send_jobs(p, next.into_iter().collect()).await,
            Err(_) => Decision::Retry {
                delay_seconds: STORAGE_RETRY_SECONDS,
            },
        });
    }
    out
}
