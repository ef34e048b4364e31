//! Layer 3, the consumer (mirrors `consumers/change-events`): the queue consumers' decisions,
//! platform-free. Each message gets exactly one decision; the Worker acks, retries or
//! dead-letters it and never returns `Err`. The consumer uses services, store, ports and domain;
//! never the API or the jobs.
#![allow(async_fn_in_trait)]

pub mod dead_letters;
pub mod platform_events;

use crate::domain::event::{decode, ChangeEvent};
use crate::domain::tenancy::Faults;
use crate::ports::{col_str, Database, Stmt, StoreError};
use crate::services::audit::{self, Appended, ChainHead};
use crate::services::tenancy::chance;
use serde_json::Value;
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Ack,
    Retry {
        delay_seconds: u32,
    },
    /// Will never succeed: record it in the dead-letter queue with the reason, then ack.
    DeadLetter {
        reason: String,
    },
}

pub trait ConsumerPlatform {
    type Db: Database;
    type Entropy: crate::domain::clock::Entropy;
    type Queue: crate::ports::EventQueue;
    /// Producer of the `index-jobs` queue (fan-out continuations).
    fn index_jobs(&self) -> &Self::Queue;
    fn accounts(&self) -> &Self::Db;
    /// A session on a shard binding this consumer has (None: not bound).
    fn shard(&self, binding: &str) -> Option<Self::Db>;
    fn now(&self) -> OffsetDateTime;
    fn entropy(&self) -> &Self::Entropy;
    /// The local environment honours per-account fault injection.
    fn local(&self) -> bool {
        false
    }
}

/// Accounts with fault injection configured (local environment only; one query per batch).
async fn faults(db: &impl Database) -> HashMap<Uuid, Faults> {
    let rows = match db
        .query(Stmt::new(
            "SELECT id, body -> '$.faults' AS faults FROM accounts WHERE body ->> '$.faults' IS NOT NULL",
            vec![],
        ))
        .await
    {
        Ok(r) => r,
        Err(_) => return HashMap::new(),
    };
    rows.rows
        .iter()
        .filter_map(|r| {
            let id = Uuid::parse_str(col_str(r, "id")?).ok()?;
            let f: Faults = serde_json::from_str(col_str(r, "faults")?).ok()?;
            Some((id, f))
        })
        .collect()
}

/// Delay before a retry after a lost race on the chain head (another batch appended first).
pub const RACE_RETRY_SECONDS: u32 = 1;
/// Appends tried within one invocation when another batch keeps winning the chain head.
pub const CHAIN_RACE_ATTEMPTS: usize = 5;
/// Delay before a retry after a storage failure.
pub const STORAGE_RETRY_SECONDS: u32 = 10;

pub async fn process_batch<P: ConsumerPlatform>(p: &P, bodies: &[Value]) -> Vec<Decision> {
    let bindings = match crate::store::registry::shard_bindings(p.accounts()).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "registry unavailable; retrying the batch");
            return bodies
                .iter()
                .map(|_| Decision::Retry {
                    delay_seconds: STORAGE_RETRY_SECONDS,
                })
                .collect();
        }
    };
    let faults = if p.local() {
        faults(p.accounts()).await
    } else {
        HashMap::new()
    };
    // Chain heads this invocation appended, so consecutive events of one account cost one query.
    let mut heads: HashMap<Uuid, ChainHead> = HashMap::new();
    let fault_of = |body: &Value| {
        body.get("account_id")
            .and_then(|a| a.as_str())
            .and_then(|a| Uuid::parse_str(a).ok())
            .and_then(|a| faults.get(&a))
    };
    let mut done = append_runs(p, &bindings, &mut heads, bodies, |b| fault_of(b).is_some()).await;
    let mut out = Vec::with_capacity(bodies.len());
    for (i, body) in bodies.iter().enumerate() {
        if let Some(d) = done[i].take() {
            out.push(d);
            continue;
        }
        let fault = fault_of(body);
        let mut d = process_one(p, &bindings, &mut heads, body).await;
        if let Some(f) = fault {
            if f.duplicate_delivery && d == Decision::Ack {
                d = process_one(p, &bindings, &mut heads, body).await;
            }
            if d == Decision::Ack && chance(p.entropy(), f.consumer_retry_rate) {
                d = Decision::Retry { delay_seconds: 0 };
            }
        }
        out.push(d);
    }
    out
}

/// A message of the batch, decoded, with its index statements.
type Pending = (usize, ChangeEvent, Vec<Stmt>);

/// The batch's events grouped by account (order kept within each), each group appended with
/// its index fields in one D1 batch: one call per account instead of two queries per event.
/// Returns a decision for each message it recorded; the rest (undecodable, unbound, fan-outs,
/// fault injection, or a group whose batch failed: an event already recorded, a lost race for
/// the chain head, a storage error) go through [`process_one`], which sorts each of them out.
async fn append_runs<P: ConsumerPlatform>(
    p: &P,
    bindings: &HashMap<String, String>,
    heads: &mut HashMap<Uuid, ChainHead>,
    bodies: &[Value],
    one_by_one: impl Fn(&Value) -> bool,
) -> Vec<Option<Decision>> {
    let mut done: Vec<Option<Decision>> = vec![None; bodies.len()];
    let mut groups: Vec<(String, Uuid, Vec<Pending>)> = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        if one_by_one(body) {
            continue;
        }
        let Ok(ev) = decode(body) else { continue };
        let Some(binding) = bindings.get(&ev.shard_id) else {
            continue;
        };
        let Some(extra) = crate::services::derived::statements(&ev) else {
            continue;
        };
        let account = ev.account_id;
        match groups
            .iter_mut()
            .find(|(b, a, _)| b == binding && *a == account)
        {
            Some((_, _, g)) => g.push((i, ev, extra)),
            None => groups.push((binding.clone(), account, vec![(i, ev, extra)])),
        }
    }
    for (binding, account, group) in groups {
        let Some(db) = p.shard(&binding) else {
            continue;
        };
        let head = match heads.get(&account) {
            Some(h) => h.clone(),
            None => match db.query(audit::head_stmt(account, group[0].1.id)).await {
                Ok(rows) => match audit::read_head(&rows) {
                    audit::HeadLookup::Head(h) => h,
                    audit::HeadLookup::AlreadyRecorded => continue,
                },
                Err(_) => continue,
            },
        };
        let run: Vec<(&ChangeEvent, &[Stmt])> =
            group.iter().map(|(_, ev, x)| (ev, x.as_slice())).collect();
        match audit::append_run(&db, &run, &head, p.now()).await {
            Ok(h) => {
                heads.insert(account, h);
                for (i, _, _) in &group {
                    done[*i] = Some(Decision::Ack);
                }
            }
            Err(_) => {
                heads.remove(&account);
            }
        }
    }
    done
}

async fn process_one<P: ConsumerPlatform>(
    p: &P,
    bindings: &HashMap<String, String>,
    heads: &mut HashMap<Uuid, ChainHead>,
    body: &Value,
) -> Decision {
    let ev: ChangeEvent = match decode(body) {
        Ok(ev) => ev,
        Err(e) => {
            return Decision::DeadLetter {
                reason: e.to_string(),
            }
        }
    };
    let Some(db) = bindings.get(&ev.shard_id).and_then(|b| p.shard(b)) else {
        return Decision::DeadLetter {
            reason: format!("shard {} is not bound by this consumer", ev.shard_id),
        };
    };
    // A lost race for the next sequence number (another batch appended first) is retried here
    // with a fresh head, so contention does not use up the queue's max_retries.
    let mut attempt = 0;
    let appended = loop {
        let r = audit::append(&db, &ev, heads.get(&ev.account_id), p.now()).await;
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
            heads.insert(ev.account_id, head);
        }
        Ok(Appended::Duplicate) => {}
        Err(StoreError::Constraint(_)) => {
            heads.remove(&ev.account_id);
            return Decision::Retry {
                delay_seconds: RACE_RETRY_SECONDS,
            };
        }
        Err(e) => {
            tracing::warn!(error = %e, event = %ev.id, "audit append failed");
            heads.remove(&ev.account_id);
            return Decision::Retry {
                delay_seconds: STORAGE_RETRY_SECONDS,
            };
        }
    }
    // Index fields after the audit row: a retry finds the event recorded and redoes only this.
    match crate::services::derived::apply(&db, &ev).await {
        Ok(jobs) => send_jobs(p, jobs).await,
        Err(e) => {
            tracing::warn!(error = %e, event = %ev.id, "index update failed");
            Decision::Retry {
                delay_seconds: STORAGE_RETRY_SECONDS,
            }
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
    match p.index_jobs().send_batch(msgs).await {
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
                reason: "not an index job".into(),
            });
            continue;
        };
        let Some(db) = bindings.get(&job.shard_id).and_then(|b| p.shard(b)) else {
            out.push(Decision::DeadLetter {
                reason: format!("shard {} is not bound by this consumer", job.shard_id),
            });
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
