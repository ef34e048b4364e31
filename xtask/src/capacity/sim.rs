//! `cargo xtask simulate`: month by month over a seeded population, the product's planner
//! (`shared::domain::planner::{place_new_account, plan}`, imported, not copied) decides where
//! tenants go; the simulation carries out its proposals as an operator would. Deterministic:
//! its own PRNG (splitmix64), no clock, no hash-map iteration in what it writes.

use super::model::{account_d1_queries_per_s, Model};
use super::prices::{bill, Usage};
use crate::Result;
use shared::domain::planner::{self, AccountLoad, Policy, Proposal, ShardLoad, D1_CAP_BYTES};

const DAYS_PER_MONTH: f64 = 30.4375;

/// splitmix64: small, seedable, the same on every platform.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    pub rank: usize,
    pub grown_users: f64,
    pub joins: u32,
    /// Per-tenant multiplier on documents per user (0.5..1.5).
    pub jitter: f64,
    pub d1_bytes: f64,
    pub r2_bytes: f64,
    pub shard: Option<usize>,
    pub promoted: Option<u32>,
    pub users: f64,
}

#[derive(Debug, Clone)]
pub struct Shard {
    pub id: String,
    pub dedicated: bool,
    pub opened: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Month {
    pub month: u32,
    pub tenants: usize,
    pub shared_shards: usize,
    pub dedicated_shards: usize,
    pub max_fill: f64,
    pub mean_shared_fill: f64,
    pub proposals: usize,
    pub moves: usize,
    pub bytes_moved: f64,
    pub move_hours: f64,
    pub promotions: usize,
    pub provisioned: usize,
    pub max_shard_queries_per_s: f64,
    pub account_d1_qps_today: f64,
    pub account_d1_qps_batched: f64,
    pub d1_bytes: f64,
    pub r2_bytes: f64,
    pub bill_usd: f64,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub month: u32,
    pub kind: &'static str,
    pub account: String,
    pub from: String,
    pub to: String,
    pub bytes: u64,
    pub reason: String,
}

pub struct Outcome {
    pub months: Vec<Month>,
    pub events: Vec<Event>,
    pub tenants: Vec<Tenant>,
    pub shards: Vec<Shard>,
    /// Each tenant's bill at list price in the last month (no included usage), by tenant.
    pub last_bills: Vec<f64>,
    pub policy: Policy,
}

pub fn population(m: &Model, n: usize, seed: u64) -> Vec<Tenant> {
    let mut rng = Rng::new(seed);
    let a = &m.a;
    // Size ranks in join order: a seeded shuffle of 1..=n.
    let mut ranks: Vec<usize> = (1..=n).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        ranks.swap(i, j);
    }
    let span = (a.onboarding_years * 12.0).max(0.0);
    ranks
        .into_iter()
        .enumerate()
        .map(|(i, rank)| Tenant {
            id: format!("t{i:05}"),
            rank,
            grown_users: (a.max_users * (rank as f64).powf(-a.zipf_exponent)).max(a.min_users),
            joins: if n <= 1 {
                0
            } else {
                (span * i as f64 / n as f64).floor() as u32
            },
            jitter: 0.5 + rng.unit(),
            d1_bytes: 0.0,
            r2_bytes: 0.0,
            shard: None,
            promoted: None,
            users: 0.0,
        })
        .collect()
}

struct World<'m> {
    m: &'m Model,
    policy: Policy,
    tenants: Vec<Tenant>,
    shards: Vec<Shard>,
    events: Vec<Event>,
}

impl World<'_> {
    fn provision(&mut self, dedicated: bool, month: u32) -> usize {
        let n = self
            .shards
            .iter()
            .filter(|s| s.dedicated == dedicated)
            .count()
            + 1;
        let id = if dedicated {
            format!("ded-{n:04}")
        } else {
            format!("shared-{n:04}")
        };
        self.shards.push(Shard {
            id,
            dedicated,
            opened: month,
        });
        self.shards.len() - 1
    }

    fn shard_bytes(&self) -> Vec<f64> {
        let mut b = vec![0.0; self.shards.len()];
        for t in &self.tenants {
            if let Some(s) = t.shard {
                b[s] += t.d1_bytes;
            }
        }
        b
    }

    fn loads(&self, month: u32) -> (Vec<ShardLoad>, Vec<AccountLoad>) {
        let bytes = self.shard_bytes();
        let mut growth = vec![0.0; self.shards.len()];
        let mut accounts = Vec::new();
        for t in &self.tenants {
            let Some(s) = t.shard else { continue };
            let (d1, _) = self
                .m
                .growth(self.m.users(t.grown_users, month - t.joins), t.jitter);
            let per_day = d1 / DAYS_PER_MONTH;
            growth[s] += per_day;
            let u = self.m.usage(t.users, t.jitter, t.d1_bytes, t.r2_bytes);
            accounts.push(AccountLoad {
                account_id: t.id.clone(),
                shard_id: self.shards[s].id.clone(),
                size_bytes: t.d1_bytes as u64,
                growth_bytes_per_day: per_day,
                rows_read_per_day: (u.d1_rows_read / DAYS_PER_MONTH) as u64,
                rows_written_per_day: (u.d1_rows_written / DAYS_PER_MONTH) as u64,
            });
        }
        let shards = self
            .shards
            .iter()
            .enumerate()
            .map(|(i, s)| ShardLoad {
                id: s.id.clone(),
                tier: if s.dedicated { "dedicated" } else { "shared" }.into(),
                status: "active".into(),
                capacity_bytes: D1_CAP_BYTES,
                size_bytes: bytes[i] as u64,
                growth_bytes_per_day: growth[i],
            })
            .collect();
        (shards, accounts)
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        self.shards.iter().position(|s| s.id == id)
    }

    fn tenant_of(&self, id: &str) -> Option<usize> {
        self.tenants.iter().position(|t| t.id == id)
    }

    /// Carry out the planner's proposals until it has none it can act on (at most 8 rounds).
    fn rebalance(&mut self, month: u32, row: &mut Month) {
        for _ in 0..8 {
            let (shards, accounts) = self.loads(month);
            let proposals = planner::plan(&shards, &accounts, &self.policy);
            row.proposals += proposals.len();
            let mut acted = false;
            let mut provisioned_shared = false;
            for p in proposals {
                match p {
                    Proposal::Move {
                        account_id,
                        from_shard,
                        to_shard,
                        bytes,
                        reason,
                    } => {
                        let (Some(t), Some(to)) =
                            (self.tenant_of(&account_id), self.index_of(&to_shard))
                        else {
                            continue;
                        };
                        self.tenants[t].shard = Some(to);
                        row.moves += 1;
                        row.bytes_moved += bytes as f64;
                        acted = true;
                        self.events.push(event(
                            month,
                            "move",
                            &account_id,
                            &from_shard,
                            &to_shard,
                            bytes,
                            reason,
                        ));
                    }
                    Proposal::Dedicated {
                        account_id,
                        shard_id,
                        reason,
                    } => {
                        let Some(t) = self.tenant_of(&account_id) else {
                            continue;
                        };
                        let to = self.provision(true, month);
                        let bytes = self.tenants[t].d1_bytes as u64;
                        self.tenants[t].shard = Some(to);
                        self.tenants[t].promoted.get_or_insert(month);
                        row.promotions += 1;
                        row.moves += 1;
                        row.bytes_moved += bytes as f64;
                        acted = true;
                        let to_id = self.shards[to].id.clone();
                        self.events.push(event(
                            month,
                            "dedicated",
                            &account_id,
                            &shard_id,
                            &to_id,
                            bytes,
                            reason,
                        ));
                    }
                    Proposal::ProvisionShard {
                        for_shard,
                        bytes_needed,
                        reason,
                    } => {
                        let dedicated = self
                            .index_of(&for_shard)
                            .is_some_and(|s| self.shards[s].dedicated);
                        if dedicated {
                            // One tenant outgrowing a dedicated D1's soft cap: only splitting the
                            // tenant helps. Recorded; the hard-cap check below still holds.
                            self.events.push(event(
                                month,
                                "dedicated_over_soft_cap",
                                "",
                                &for_shard,
                                "",
                                bytes_needed,
                                reason,
                            ));
                        } else if !provisioned_shared {
                            provisioned_shared = true;
                            let s = self.provision(false, month);
                            row.provisioned += 1;
                            acted = true;
                            let id = self.shards[s].id.clone();
                            self.events.push(event(
                                month,
                                "provision",
                                "",
                                &for_shard,
                                &id,
                                bytes_needed,
                                format!("operator provisions {id}: {reason}"),
                            ));
                        }
                    }
                }
            }
            if !acted {
                break;
            }
        }
    }

    fn check_hard_cap(&self, month: u32) -> Result<()> {
        for (i, b) in self.shard_bytes().iter().enumerate() {
            if *b > D1_CAP_BYTES as f64 {
                return Err(format!(
                    "month {month}: shard {} holds {:.2} GB, over D1's hard cap of 10 GB (a tenant larger than one D1 cannot be placed: split it, or change the assumptions)",
                    self.shards[i].id, b / 1e9
                ));
            }
        }
        Ok(())
    }
}

pub fn run(m: &Model, n: usize, years: u32, seed: u64) -> Result<Outcome> {
    let policy = Policy {
        soft_cap_ratio: m.a.soft_cap_ratio,
        horizon_days: m.a.horizon_days,
        ..Policy::default()
    };
    let mut w = World {
        m,
        policy,
        tenants: population(m, n, seed),
        shards: Vec::new(),
        events: Vec::new(),
    };
    w.provision(false, 0);
    let mut months = Vec::new();
    let mut last_bills = Vec::new();
    for month in 0..years * 12 {
        let mut row = Month {
            month,
            ..Month::default()
        };
        // Joins: where the planner would put a new account; none has room: provision one.
        for t in 0..w.tenants.len() {
            if w.tenants[t].joins != month {
                continue;
            }
            let (shards, _) = w.loads(month);
            let to = match planner::place_new_account(&shards, &w.policy) {
                Some(s) => w.index_of(&s.id),
                None => None,
            };
            let to = match to {
                Some(i) => i,
                None => {
                    let i = w.provision(false, month);
                    row.provisioned += 1;
                    let (id, acct) = (w.shards[i].id.clone(), w.tenants[t].id.clone());
                    w.events.push(event(month, "provision", &acct, "", &id, 0, format!("no shared shard below its soft cap for a new account: operator provisions {id}")));
                    i
                }
            };
            w.tenants[t].shard = Some(to);
        }
        // A month of growth, then the hard cap must hold before anyone acts on it.
        for t in w.tenants.iter_mut().filter(|t| t.shard.is_some()) {
            t.users = m.users(t.grown_users, month - t.joins);
            let (d1, r2) = m.growth(t.users, t.jitter);
            t.d1_bytes += d1;
            t.r2_bytes += r2;
        }
        w.check_hard_cap(month)?;
        w.rebalance(month, &mut row);
        w.check_hard_cap(month)?;
        // What the month looks like after the planner's proposals were carried out.
        row.move_hours = row.bytes_moved / m.move_bytes_per_s / 3600.0;
        let bytes = w.shard_bytes();
        let mut qps = vec![0.0; w.shards.len()];
        let mut rates = Vec::new();
        let mut total = Usage::default();
        last_bills.clear();
        for t in w.tenants.iter().filter(|t| t.shard.is_some()) {
            qps[t.shard.unwrap_or(0)] += m.peak_queries_per_s(t.users);
            rates.push(t.users / m.a.think_time_s);
            let u = m.usage(t.users, t.jitter, t.d1_bytes, t.r2_bytes);
            last_bills.push(bill(&u, false));
            total += u;
            row.tenants += 1;
            row.d1_bytes += t.d1_bytes;
            row.r2_bytes += t.r2_bytes;
        }
        let soft = D1_CAP_BYTES as f64;
        let shared: Vec<f64> = w
            .shards
            .iter()
            .zip(&bytes)
            .filter(|(s, _)| !s.dedicated)
            .map(|(_, b)| b / soft)
            .collect();
        row.shared_shards = shared.len();
        row.dedicated_shards = w.shards.len() - shared.len();
        row.max_fill = bytes.iter().fold(0.0f64, |a, b| a.max(b / soft));
        row.mean_shared_fill = shared.iter().sum::<f64>() / shared.len().max(1) as f64;
        row.max_shard_queries_per_s = qps.iter().fold(0.0f64, |a, b| a.max(*b));
        (row.account_d1_qps_today, row.account_d1_qps_batched) =
            account_d1_queries_per_s(&m.a, &rates);
        row.bill_usd = bill(&total, true);
        months.push(row);
    }
    Ok(Outcome {
        months,
        events: w.events,
        tenants: w.tenants,
        shards: w.shards,
        last_bills,
        policy: w.policy,
    })
}

fn event(
    month: u32,
    kind: &'static str,
    account: &str,
    from: &str,
    to: &str,
    bytes: u64,
    reason: String,
) -> Event {
    Event {
        month,
        kind,
        account: account.into(),
        from: from.into(),
        to: to.into(),
        bytes,
        reason,
    }
}
