//! Shard rebalancing planner: bin-packing of tenants onto D1 shards, with headroom.
//!
//! Pure and sans-IO. It reads per-shard and per-account health figures and returns
//! [`Proposal`]s (move a tenant, give a tenant a dedicated shard, provision a new shard); the
//! caller decides what to carry out. [`apply`] shows what the shards would look like after the
//! moves, so a plan can be checked before it is run.
//!
//! Conventions:
//! - sizes are bytes, growth is bytes per day, and "projected" means size + growth * horizon;
//! - negative or NaN growth (and horizon) count as 0, +inf as `f64::MAX`; byte counts saturate;
//! - a NaN soft-cap ratio counts as 0 and the ratio is clamped to 0..=1 (never past the hard cap);
//! - `tier` and `status` are compared case-insensitively, ignoring surrounding whitespace;
//!   unknown values are neither shared, dedicated nor active;
//! - proposals name shards by id, so a shard whose id repeats an earlier shard's id is ignored
//!   by [`plan`];
//! - every choice is ordered explicitly (overflow, size, headroom, then id), so the plan does
//!   not depend on input order or hashing.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// D1's hard size limit per database.
pub const D1_CAP_BYTES: u64 = 10_000_000_000;

const SHARED: &str = "shared";
const DEDICATED: &str = "dedicated";
const ACTIVE: &str = "active";

/// Health figures of one shard (one D1 database).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardLoad {
    pub id: String,
    /// "shared" | "dedicated"
    pub tier: String,
    /// "active" | "draining" | "readonly" | "provisioning"
    pub status: String,
    pub capacity_bytes: u64,
    pub size_bytes: u64,
    pub growth_bytes_per_day: f64,
}

/// Health figures of one tenant on its shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountLoad {
    pub account_id: String,
    pub shard_id: String,
    pub size_bytes: u64,
    pub growth_bytes_per_day: f64,
    pub rows_read_per_day: u64,
    pub rows_written_per_day: u64,
}

/// Planner thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Share of a shard's capacity (at most the D1 cap) that may be used, e.g. 0.70.
    pub soft_cap_ratio: f64,
    /// How far ahead growth is projected, in days, e.g. 30.
    pub horizon_days: f64,
    /// A tenant using at least this share of its shared shard's soft cap gets a dedicated shard.
    pub dedicated_size_share: f64,
    /// A tenant doing at least this share of its shard's rows read + written per day gets a
    /// dedicated shard.
    pub dedicated_load_share: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            soft_cap_ratio: 0.70,
            horizon_days: 30.0,
            dedicated_size_share: 0.5,
            dedicated_load_share: 0.5,
        }
    }
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Proposal {
    /// Move a tenant to another shared shard.
    Move {
        account_id: String,
        from_shard: String,
        to_shard: String,
        bytes: u64,
        reason: String,
    },
    /// Give a tenant its own shard (it is too big or too hot for a shared one).
    Dedicated {
        account_id: String,
        shard_id: String,
        reason: String,
    },
    /// Nowhere to move it: a new shard must be provisioned.
    ProvisionShard {
        for_shard: String,
        bytes_needed: u64,
        reason: String,
    },
}

/// `min(capacity_bytes, D1_CAP_BYTES) * soft_cap_ratio`, rounded to whole bytes.
pub fn soft_cap(shard: &ShardLoad, policy: &Policy) -> u64 {
    let ratio = if policy.soft_cap_ratio.is_nan() {
        0.0
    } else {
        policy.soft_cap_ratio.clamp(0.0, 1.0)
    };
    to_bytes(shard.capacity_bytes.min(D1_CAP_BYTES) as f64 * ratio)
}

/// Size projected `horizon_days` ahead at current growth.
pub fn projected(shard: &ShardLoad, policy: &Policy) -> u64 {
    shard
        .size_bytes
        .saturating_add(growth_bytes(shard.growth_bytes_per_day, policy))
}

/// Shards above their soft cap now, or projected to pass it within the horizon (input order).
pub fn over_soft_cap<'a>(shards: &'a [ShardLoad], policy: &Policy) -> Vec<&'a ShardLoad> {
    // Growth is never negative, so "projected over" includes "over now".
    shards
        .iter()
        .filter(|s| projected(s, policy) > soft_cap(s, policy))
        .collect()
}

/// Where to put a NEW account: the least-full active shared shard whose size is below its soft
/// cap (ties: by id). None if none has room.
///
/// "Least full" is the lowest size / soft cap ratio, so shards of different capacities compare
/// fairly.
pub fn place_new_account<'a>(shards: &'a [ShardLoad], policy: &Policy) -> Option<&'a ShardLoad> {
    shards
        .iter()
        .map(|s| (s, soft_cap(s, policy)))
        // `size < cap` also rules out a zero cap, so the ratios below are well defined.
        .filter(|(s, cap)| is_shared_active(s) && s.size_bytes < *cap)
        .min_by(|(a, cap_a), (b, cap_b)| {
            // a.size / cap_a vs b.size / cap_b, exactly, without division.
            let fill_a = u128::from(a.size_bytes) * u128::from(*cap_b);
            let fill_b = u128::from(b.size_bytes) * u128::from(*cap_a);
            fill_a.cmp(&fill_b).then_with(|| a.id.cmp(&b.id))
        })
        .map(|(s, _)| s)
}

/// The plan. Deterministic for the same input.
///
/// Over-soft-cap shards are handled largest overflow first (ties by id):
/// - a shared, active shard first gets `Dedicated` for each tenant that is too big or too hot
///   (those no longer count toward it), then moves its other tenants, largest (size + growth
///   over the horizon) first, each to the active shared shard with the most soft-cap headroom
///   that can take it with its growth (ties by id), until its projected size is at or below its
///   soft cap; whatever is still over becomes one `ProvisionShard`;
/// - a dedicated shard cannot shed tenants, so it gets a `ProvisionShard`;
/// - shared shards that are not active (draining, readonly, provisioning) are left alone.
pub fn plan(shards: &[ShardLoad], accounts: &[AccountLoad], policy: &Policy) -> Vec<Proposal> {
    // Proposals name shards by id: only the first shard with a given id is addressable.
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, s) in shards.iter().enumerate() {
        index.entry(s.id.as_str()).or_insert(i);
    }
    let addressable: Vec<bool> = shards
        .iter()
        .enumerate()
        .map(|(i, s)| index.get(s.id.as_str()) == Some(&i))
        .collect();

    let mut tenants: Vec<Vec<&AccountLoad>> = vec![Vec::new(); shards.len()];
    for a in accounts {
        if let Some(&i) = index.get(a.shard_id.as_str()) {
            tenants[i].push(a);
        }
    }

    let caps: Vec<u64> = shards.iter().map(|s| soft_cap(s, policy)).collect();
    let mut over: Vec<(usize, u64)> = shards
        .iter()
        .enumerate()
        .filter(|(i, _)| addressable[*i])
        .filter_map(|(i, s)| {
            let overflow = projected(s, policy).saturating_sub(caps[i]);
            (overflow > 0).then_some((i, overflow))
        })
        .collect();
    over.sort_by(|(a, overflow_a), (b, overflow_b)| {
        overflow_b
            .cmp(overflow_a)
            .then_with(|| shards[*a].id.cmp(&shards[*b].id))
    });

    let mut planner = Planner {
        policy,
        movable: shards
            .iter()
            .enumerate()
            .map(|(i, s)| addressable[i] && is_shared_active(s))
            .collect(),
        caps,
        state: shards.to_vec(),
        out: Vec::new(),
    };
    for (src, _) in over {
        if is(&shards[src].tier, DEDICATED) {
            planner.provision_dedicated(src);
        } else if planner.movable[src] {
            planner.rebalance(src, &tenants[src]);
        }
    }
    planner.out
}

/// Apply Move proposals to the sizes (what the shards would look like afterwards); used by
/// tests and by the caller to check a plan.
///
/// A move shifts `bytes` and the tenant's growth (from `accounts`; 0 if it is not listed) from
/// one shard to the other. Other proposals change nothing, and moves naming an unknown shard, or
/// the same shard twice, are skipped.
pub fn apply(
    shards: &[ShardLoad],
    accounts: &[AccountLoad],
    proposals: &[Proposal],
) -> Vec<ShardLoad> {
    let mut out = shards.to_vec();
    for p in proposals {
        let Proposal::Move {
            account_id,
            from_shard,
            to_shard,
            bytes,
            ..
        } = p
        else {
            continue;
        };
        let from = out.iter().position(|s| s.id == *from_shard);
        let to = out.iter().position(|s| s.id == *to_shard);
        let (Some(from), Some(to)) = (from, to) else {
            continue;
        };
        if from == to {
            continue;
        }
        let growth = accounts
            .iter()
            .find(|a| a.account_id == *account_id && a.shard_id == *from_shard)
            .or_else(|| accounts.iter().find(|a| a.account_id == *account_id))
            .map_or(0.0, |a| a.growth_bytes_per_day);
        remove_tenant(&mut out[from], *bytes, growth);
        add_tenant(&mut out[to], *bytes, growth);
    }
    out
}

struct Planner<'a> {
    policy: &'a Policy,
    caps: Vec<u64>,
    /// May be a source or a target of moves: shared, active and addressable.
    movable: Vec<bool>,
    /// The shards after the moves proposed so far (exactly what `apply` would give).
    state: Vec<ShardLoad>,
    out: Vec<Proposal>,
}

impl Planner<'_> {
    fn header(&self, src: usize) -> String {
        let s = &self.state[src];
        format!(
            "{} projected {} in {} days, soft cap {}",
            s.id,
            fmt_bytes(projected(s, self.policy)),
            rate(self.policy.horizon_days),
            fmt_bytes(self.caps[src])
        )
    }

    fn provision_dedicated(&mut self, src: usize) {
        let need = projected(&self.state[src], self.policy).saturating_sub(self.caps[src]);
        let reason = format!(
            "dedicated shard {}; it cannot shed tenants: split the tenant or move it to a bigger \
             plan ({} over)",
            self.header(src),
            fmt_bytes(need)
        );
        self.out.push(Proposal::ProvisionShard {
            for_shard: self.state[src].id.clone(),
            bytes_needed: need,
            reason,
        });
    }

    fn rebalance(&mut self, src: usize, tenants: &[&AccountLoad]) {
        let policy = self.policy;
        let cap = self.caps[src];
        let header = self.header(src);
        let src_id = self.state[src].id.clone();

        let mut order: Vec<(u64, &AccountLoad)> =
            tenants.iter().map(|a| (footprint(a, policy), *a)).collect();
        order.sort_by(|(fp_a, a), (fp_b, b)| {
            fp_b.cmp(fp_a).then_with(|| a.account_id.cmp(&b.account_id))
        });
        let total_load: u128 = tenants.iter().map(|a| load(a)).sum();

        // The source as the remaining moves see it: without tenants proposed for a dedicated
        // shard. `state` keeps them, as they are still there until they go.
        let mut effective = self.state[src].clone();
        let mut movable = Vec::new();
        let mut dedicated = 0usize;
        for (fp, a) in order {
            match dedicated_reason(a, &src_id, cap, total_load, policy) {
                Some(reason) => {
                    remove_tenant(&mut effective, a.size_bytes, a.growth_bytes_per_day);
                    dedicated += 1;
                    self.out.push(Proposal::Dedicated {
                        account_id: a.account_id.clone(),
                        shard_id: src_id.clone(),
                        reason,
                    });
                }
                None => movable.push((fp, a)),
            }
        }

        let mut moved = 0usize;
        for (fp, a) in movable {
            if projected(&effective, policy) <= cap {
                break;
            }
            if fp == 0 {
                continue; // moving it would not help
            }
            let Some((to, headroom)) = self.pick_target(src, a) else {
                continue;
            };
            let reason = format!(
                "{header}: move {} ({} with {} days of growth) to {}, which has {} of headroom",
                a.account_id,
                fmt_bytes(fp),
                rate(policy.horizon_days),
                self.state[to].id,
                fmt_bytes(headroom)
            );
            self.out.push(Proposal::Move {
                account_id: a.account_id.clone(),
                from_shard: src_id.clone(),
                to_shard: self.state[to].id.clone(),
                bytes: a.size_bytes,
                reason,
            });
            remove_tenant(&mut self.state[src], a.size_bytes, a.growth_bytes_per_day);
            add_tenant(&mut self.state[to], a.size_bytes, a.growth_bytes_per_day);
            remove_tenant(&mut effective, a.size_bytes, a.growth_bytes_per_day);
            moved += 1;
        }

        let left = projected(&effective, policy);
        if left > cap {
            let need = left - cap;
            let reason = if moved + dedicated == 0 {
                format!(
                    "{header}; no active shared shard has room for its tenants: provision a new \
                     shard for {}",
                    fmt_bytes(need)
                )
            } else {
                format!(
                    "{header}; still {} after {moved} move(s) and {dedicated} dedicated, and no \
                     active shared shard has room for the rest: provision a new shard for {}",
                    fmt_bytes(left),
                    fmt_bytes(need)
                )
            };
            self.out.push(Proposal::ProvisionShard {
                for_shard: src_id,
                bytes_needed: need,
                reason,
            });
        }
    }

    /// The movable shard (not `src`) with the most soft-cap headroom that can take `a` and its
    /// growth without passing its soft cap; ties by id. Returns it with its headroom.
    fn pick_target(&self, src: usize, a: &AccountLoad) -> Option<(usize, u64)> {
        let mut best: Option<(usize, u64)> = None;
        for (i, s) in self.state.iter().enumerate() {
            if i == src || !self.movable[i] {
                continue;
            }
            let mut after = s.clone();
            add_tenant(&mut after, a.size_bytes, a.growth_bytes_per_day);
            if projected(&after, self.policy) > self.caps[i] {
                continue;
            }
            let headroom = self.caps[i].saturating_sub(projected(s, self.policy));
            let better = match best {
                None => true,
                Some((b, best_headroom)) => {
                    headroom > best_headroom
                        || (headroom == best_headroom && s.id < self.state[b].id)
                }
            };
            if better {
                best = Some((i, headroom));
            }
        }
        best
    }
}

/// Why `a` should get a dedicated shard, if it should.
fn dedicated_reason(
    a: &AccountLoad,
    shard_id: &str,
    cap: u64,
    total_load: u128,
    policy: &Policy,
) -> Option<String> {
    let size_share = policy.dedicated_size_share;
    // A NaN or non-positive share disables the rule (it would otherwise take every tenant).
    if cap > 0 && size_share > 0.0 && a.size_bytes as f64 >= size_share * cap as f64 {
        return Some(format!(
            "{} uses {}, {:.0}% of {shard_id}'s soft cap {} (threshold {:.0}%)",
            a.account_id,
            fmt_bytes(a.size_bytes),
            a.size_bytes as f64 / cap as f64 * 100.0,
            fmt_bytes(cap),
            size_share * 100.0
        ));
    }
    let load_share = policy.dedicated_load_share;
    let rows = load(a);
    if total_load > 0 && load_share > 0.0 && rows as f64 >= load_share * total_load as f64 {
        return Some(format!(
            "{} does {:.0}% of {shard_id}'s rows read+written per day ({rows} of {total_load}; \
             threshold {:.0}%)",
            a.account_id,
            rows as f64 / total_load as f64 * 100.0,
            load_share * 100.0
        ));
    }
    None
}

fn is(value: &str, want: &str) -> bool {
    value.trim().eq_ignore_ascii_case(want)
}

fn is_shared_active(s: &ShardLoad) -> bool {
    is(&s.tier, SHARED) && is(&s.status, ACTIVE)
}

/// A rate or duration made safe: NaN and negatives count as 0, +inf as `f64::MAX`.
fn rate(x: f64) -> f64 {
    if x > 0.0 {
        x.min(f64::MAX)
    } else {
        0.0
    }
}

/// Rounds to whole bytes; `as` saturates (+inf becomes `u64::MAX`, NaN 0).
fn to_bytes(x: f64) -> u64 {
    x.round() as u64
}

fn growth_bytes(per_day: f64, policy: &Policy) -> u64 {
    to_bytes(rate(per_day) * rate(policy.horizon_days))
}

/// What a tenant will take up at the end of the horizon.
fn footprint(a: &AccountLoad, policy: &Policy) -> u64 {
    a.size_bytes
        .saturating_add(growth_bytes(a.growth_bytes_per_day, policy))
}

fn load(a: &AccountLoad) -> u128 {
    u128::from(a.rows_read_per_day) + u128::from(a.rows_written_per_day)
}

// `plan` and `apply` move tenants with these same two functions, so a plan's bookkeeping and
// the applied result agree to the byte.
fn add_tenant(shard: &mut ShardLoad, bytes: u64, growth: f64) {
    shard.size_bytes = shard.size_bytes.saturating_add(bytes);
    shard.growth_bytes_per_day = (rate(shard.growth_bytes_per_day) + rate(growth)).min(f64::MAX);
}

fn remove_tenant(shard: &mut ShardLoad, bytes: u64, growth: f64) {
    shard.size_bytes = shard.size_bytes.saturating_sub(bytes);
    shard.growth_bytes_per_day = (rate(shard.growth_bytes_per_day) - rate(growth)).max(0.0);
}

/// Decimal units, one decimal place: "7.4 GB".
fn fmt_bytes(bytes: u64) -> String {
    const UNITS: [(f64, &str); 4] = [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")];
    let b = bytes as f64;
    for (scale, unit) in UNITS {
        if b >= scale {
            return format!("{:.1} {unit}", b / scale);
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests;
