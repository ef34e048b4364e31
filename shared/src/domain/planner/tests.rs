use super::*;

const GB: u64 = 1_000_000_000;
const MB: u64 = 1_000_000;

fn shard(id: &str, tier: &str, status: &str, capacity: u64, size: u64) -> ShardLoad {
    ShardLoad {
        id: id.into(),
        tier: tier.into(),
        status: status.into(),
        capacity_bytes: capacity,
        size_bytes: size,
        growth_bytes_per_day: 0.0,
    }
}

/// A shared, active, 10 GB shard (soft cap 7 GB under the default policy).
fn shared(id: &str, size: u64) -> ShardLoad {
    shard(id, "shared", "active", D1_CAP_BYTES, size)
}

fn acct(id: &str, shard_id: &str, size: u64, growth: f64) -> AccountLoad {
    AccountLoad {
        account_id: id.into(),
        shard_id: shard_id.into(),
        size_bytes: size,
        growth_bytes_per_day: growth,
        rows_read_per_day: 0,
        rows_written_per_day: 0,
    }
}

fn hot(mut a: AccountLoad, read: u64, written: u64) -> AccountLoad {
    a.rows_read_per_day = read;
    a.rows_written_per_day = written;
    a
}

/// Adds each tenant's size and growth to its shard, on top of the shard's own (overhead).
fn fill(mut shards: Vec<ShardLoad>, accounts: &[AccountLoad]) -> Vec<ShardLoad> {
    for a in accounts {
        if let Some(s) = shards.iter_mut().find(|s| s.id == a.shard_id) {
            add_tenant(s, a.size_bytes, a.growth_bytes_per_day);
        }
    }
    shards
}

fn moves(plan: &[Proposal]) -> Vec<(&str, &str, &str)> {
    plan.iter()
        .filter_map(|p| match p {
            Proposal::Move {
                account_id,
                from_shard,
                to_shard,
                ..
            } => Some((account_id.as_str(), from_shard.as_str(), to_shard.as_str())),
            _ => None,
        })
        .collect()
}

fn dedicated(plan: &[Proposal]) -> Vec<(&str, &str)> {
    plan.iter()
        .filter_map(|p| match p {
            Proposal::Dedicated {
                account_id,
                shard_id,
                ..
            } => Some((account_id.as_str(), shard_id.as_str())),
            _ => None,
        })
        .collect()
}

fn provisions(plan: &[Proposal]) -> Vec<(&str, u64)> {
    plan.iter()
        .filter_map(|p| match p {
            Proposal::ProvisionShard {
                for_shard,
                bytes_needed,
                ..
            } => Some((for_shard.as_str(), *bytes_needed)),
            _ => None,
        })
        .collect()
}

fn reason(p: &Proposal) -> &str {
    match p {
        Proposal::Move { reason, .. }
        | Proposal::Dedicated { reason, .. }
        | Proposal::ProvisionShard { reason, .. } => reason,
    }
}

fn ids<'a>(shards: &[&'a ShardLoad]) -> Vec<&'a str> {
    shards.iter().map(|s| s.id.as_str()).collect()
}

#[test]
fn soft_cap_is_the_ratio_of_the_smaller_of_capacity_and_the_d1_cap() {
    let p = Policy::default();
    let cases: [(&str, u64, Policy, u64); 7] = [
        ("10 GB shard", D1_CAP_BYTES, p.clone(), 7 * GB),
        ("5 GB shard", 5 * GB, p.clone(), 3_500 * MB),
        ("capacity above the D1 cap", 20 * GB, p.clone(), 7 * GB),
        ("zero capacity", 0, p.clone(), 0),
        (
            "NaN ratio counts as 0",
            D1_CAP_BYTES,
            Policy {
                soft_cap_ratio: f64::NAN,
                ..p.clone()
            },
            0,
        ),
        (
            "ratio above 1 is clamped",
            D1_CAP_BYTES,
            Policy {
                soft_cap_ratio: 3.0,
                ..p.clone()
            },
            D1_CAP_BYTES,
        ),
        (
            "negative ratio is clamped",
            D1_CAP_BYTES,
            Policy {
                soft_cap_ratio: -1.0,
                ..p.clone()
            },
            0,
        ),
    ];
    for (name, capacity, policy, want) in cases {
        let s = shard("s", "shared", "active", capacity, 0);
        assert_eq!(soft_cap(&s, &policy), want, "{name}");
    }
}

#[test]
fn projection_adds_growth_over_the_horizon_and_ignores_bad_growth() {
    let p = Policy::default();
    let cases: [(&str, f64, Policy, u64); 8] = [
        ("no growth", 0.0, p.clone(), 6 * GB),
        ("10 MB/day for 30 days", 10e6, p.clone(), 6 * GB + 300 * MB),
        ("negative growth counts as 0", -10e6, p.clone(), 6 * GB),
        ("NaN growth counts as 0", f64::NAN, p.clone(), 6 * GB),
        (
            "infinite growth saturates",
            f64::INFINITY,
            p.clone(),
            u64::MAX,
        ),
        (
            "7-day horizon",
            10e6,
            Policy {
                horizon_days: 7.0,
                ..p.clone()
            },
            6 * GB + 70 * MB,
        ),
        (
            "negative horizon counts as 0",
            10e6,
            Policy {
                horizon_days: -30.0,
                ..p.clone()
            },
            6 * GB,
        ),
        (
            "NaN horizon counts as 0",
            10e6,
            Policy {
                horizon_days: f64::NAN,
                ..p.clone()
            },
            6 * GB,
        ),
    ];
    for (name, growth, policy, want) in cases {
        let mut s = shared("s", 6 * GB);
        s.growth_bytes_per_day = growth;
        assert_eq!(projected(&s, &policy), want, "{name}");
    }
    let mut huge = shared("s", u64::MAX);
    huge.growth_bytes_per_day = 1e9;
    assert_eq!(projected(&huge, &p), u64::MAX, "sizes saturate");
}

#[test]
fn over_soft_cap_lists_shards_over_now_or_within_the_horizon_of_any_tier() {
    let p = Policy::default();
    let mut growing = shared("growing", 6 * GB);
    growing.growth_bytes_per_day = 50e6; // +1.5 GB in 30 days
    let mut slow = shared("slow", 6 * GB);
    slow.growth_bytes_per_day = 10e6; // +0.3 GB
    let shards = vec![
        shared("over-now", 7 * GB + 1),
        shared("at-cap", 7 * GB),
        growing,
        slow,
        shard(
            "dedicated-over",
            "dedicated",
            "active",
            D1_CAP_BYTES,
            8 * GB,
        ),
        shard("draining-over", "shared", "draining", D1_CAP_BYTES, 8 * GB),
        shard("zero-cap", "shared", "active", 0, 1),
        shard("zero-cap-empty", "shared", "active", 0, 0),
    ];
    assert_eq!(
        ids(&over_soft_cap(&shards, &p)),
        [
            "over-now",
            "growing",
            "dedicated-over",
            "draining-over",
            "zero-cap"
        ]
    );
    assert!(over_soft_cap(&[], &p).is_empty());
}

#[test]
fn moves_bring_every_shard_to_or_below_its_soft_cap() {
    let p = Policy::default();
    let mut growing_target = shared("t-growing", 2 * GB);
    growing_target.growth_bytes_per_day = 50e6; // projected 3.5 GB
    let tables: Vec<(&str, Vec<ShardLoad>, Vec<AccountLoad>)> = vec![
        (
            "one oversized shard, two empty ones",
            vec![shared("s1", 0), shared("t1", 0), shared("t2", 0)],
            vec![
                acct("a", "s1", 3 * GB, 0.0),
                acct("b", "s1", 3 * GB, 0.0),
                acct("c", "s1", 2 * GB, 0.0),
                acct("d", "s1", GB, 0.0),
            ],
        ),
        (
            "two oversized shards share three targets",
            vec![
                shared("s1", 0),
                shared("s2", 0),
                shared("t1", 4 * GB),
                shared("t2", 5 * GB),
                shared("t3", 6 * GB),
            ],
            vec![
                acct("a1", "s1", 3 * GB, 0.0),
                acct("a2", "s1", 3 * GB, 0.0),
                acct("a3", "s1", 3 * GB, 0.0),
                acct("b1", "s2", 2 * GB, 0.0),
                acct("b2", "s2", 2 * GB, 0.0),
                acct("b3", "s2", 2 * GB, 0.0),
                acct("b4", "s2", 1500 * MB, 0.0),
                acct("t3-a", "t3", 500 * MB, 0.0),
            ],
        ),
        (
            "growth on both sides",
            vec![shared("s1", 200 * MB), growing_target, shared("t2", 5 * GB)],
            vec![
                acct("a", "s1", 2 * GB, 20e6),
                acct("b", "s1", 2 * GB, 10e6),
                acct("c", "s1", 1500 * MB, 30e6),
                acct("d", "s1", 1500 * MB, 0.0),
            ],
        ),
        (
            "mixed capacities, one above the D1 cap",
            vec![
                shard("small", "shared", "active", 5 * GB, 0),
                shard("big", "shared", "active", 20 * GB, 0),
                shard("mid", "shared", "active", 8 * GB, GB),
            ],
            vec![
                acct("a", "small", 1500 * MB, 0.0),
                acct("b", "small", 1500 * MB, 0.0),
                acct("c", "small", GB, 5e6),
                acct("d", "big", 3 * GB, 0.0),
                acct("e", "big", 2500 * MB, 0.0),
                acct("f", "big", 2 * GB, 0.0),
            ],
        ),
        (
            "many small tenants",
            vec![shared("s1", 0), shared("t1", 6 * GB), shared("t2", 6 * GB)],
            (0..20)
                .map(|i| acct(&format!("a{i:02}"), "s1", 400 * MB + i * MB, 1e6))
                .collect(),
        ),
    ];
    for (name, base, accounts) in tables {
        let shards = fill(base, &accounts);
        assert!(!over_soft_cap(&shards, &p).is_empty(), "{name}: not over");
        let plan = plan(&shards, &accounts, &p);
        assert!(!plan.is_empty(), "{name}: empty plan");
        assert_eq!(moves(&plan).len(), plan.len(), "{name}: {plan:#?}");
        let after = apply(&shards, &accounts, &plan);
        assert!(
            over_soft_cap(&after, &p).is_empty(),
            "{name}: still over {:?}\n{plan:#?}",
            ids(&over_soft_cap(&after, &p))
        );
    }
}

#[test]
fn growth_projection_triggers_moves_for_a_shard_currently_under_its_cap() {
    let p = Policy::default();
    let accounts = vec![
        acct("steady-1", "s1", 2 * GB, 0.0),
        acct("grower", "s1", 2 * GB, 40e6), // +1.2 GB in 30 days
        acct("steady-2", "s1", 2 * GB, 0.0),
    ];
    let shards = fill(vec![shared("s1", 0), shared("t1", 0)], &accounts);
    assert!(shards[0].size_bytes < soft_cap(&shards[0], &p));
    assert_eq!(ids(&over_soft_cap(&shards, &p)), ["s1"]);

    let plan = plan(&shards, &accounts, &p);
    assert_eq!(moves(&plan), [("grower", "s1", "t1")], "{plan:#?}");
    assert!(over_soft_cap(&apply(&shards, &accounts, &plan), &p).is_empty());
}

#[test]
fn largest_tenant_moves_first_to_the_shard_with_most_headroom_ties_by_id() {
    let p = Policy::default();
    let accounts = vec![
        acct("b", "s1", 2 * GB, 0.0),
        acct("a", "s1", 3 * GB, 0.0),
        acct("c", "s1", 2 * GB, 0.0),
        acct("d", "s1", 2 * GB, 0.0),
    ];
    let cases: [(&str, Vec<ShardLoad>, &str); 3] = [
        (
            "most headroom wins",
            vec![shared("t-a", 2 * GB), shared("t-b", GB)],
            "t-b",
        ),
        (
            "equal headroom: lowest id",
            vec![shared("t-b", GB), shared("t-a", GB)],
            "t-a",
        ),
        (
            "headroom counts growth",
            {
                let mut growing = shared("t-a", GB);
                growing.growth_bytes_per_day = 50e6; // projected 2.5 GB
                vec![growing, shared("t-b", 2 * GB)]
            },
            "t-b",
        ),
    ];
    for (name, targets, want) in cases {
        let mut base = vec![shared("s1", 0)];
        base.extend(targets);
        let shards = fill(base, &accounts);
        let plan = plan(&shards, &accounts, &p);
        assert_eq!(moves(&plan), [("a", "s1", want)], "{name}: {plan:#?}");
    }
}

#[test]
fn moves_never_push_a_target_over_its_soft_cap_counting_the_tenants_growth() {
    let p = Policy::default();
    let accounts = vec![
        acct("grower", "s1", 2 * GB, 20e6), // 2.6 GB with 30 days of growth
        acct("b", "s1", 1500 * MB, 0.0),
        acct("c", "s1", 1500 * MB, 0.0),
        acct("d", "s1", 1500 * MB, 0.0),
        acct("e", "s1", 1500 * MB, 0.0),
    ];
    // s1: 8.0 GB, projected 8.6 GB; t1 has 2.0 GB of headroom.
    let shards = fill(vec![shared("s1", 0), shared("t1", 5 * GB)], &accounts);
    let plan = plan(&shards, &accounts, &p);
    assert_eq!(moves(&plan), [("b", "s1", "t1")], "{plan:#?}");
    assert_eq!(provisions(&plan), [("s1", 100 * MB)], "{plan:#?}");
    let after = apply(&shards, &accounts, &plan);
    assert_eq!(projected(&after[1], &p), 6500 * MB);
    assert_eq!(projected(&after[0], &p), 7100 * MB);
}

#[test]
fn a_tenant_above_the_size_share_gets_dedicated_not_move() {
    let p = Policy::default(); // threshold: 50% of 7 GB = 3.5 GB
    let cases: [(&str, u64); 2] = [("57% of the soft cap", 4 * GB), ("exactly 50%", 3500 * MB)];
    for (name, big) in cases {
        let mut accounts = vec![acct("big", "s1", big, 0.0)];
        accounts.extend((0..4).map(|i| acct(&format!("small-{i}"), "s1", 1200 * MB, 0.0)));
        let shards = fill(vec![shared("s1", 0), shared("t1", 0)], &accounts);
        let plan = plan(&shards, &accounts, &p);
        assert_eq!(dedicated(&plan), [("big", "s1")], "{name}: {plan:#?}");
        // Without it the rest fits: nothing else to do.
        assert_eq!(plan.len(), 1, "{name}: {plan:#?}");
        assert!(reason(&plan[0]).contains("soft cap 7.0 GB"), "{name}");
    }
}

#[test]
fn a_dedicated_tenant_no_longer_counts_toward_its_source() {
    // Soft cap 6.0 GB; size threshold 3.0 GB.
    let p = Policy {
        soft_cap_ratio: 0.6,
        ..Policy::default()
    };
    let accounts = vec![
        acct("big", "s1", 3 * GB, 0.0),
        acct("r1", "s1", 2500 * MB, 0.0),
        acct("r2", "s1", 2 * GB, 0.0),
        acct("r3", "s1", 1900 * MB, 0.0),
    ];
    let shards = fill(vec![shared("s1", 0), shared("t1", 0)], &accounts);
    let plan = plan(&shards, &accounts, &p);
    // 9.4 GB less the dedicated 3.0 GB is 6.4 GB: one move (the largest) is enough.
    assert_eq!(dedicated(&plan), [("big", "s1")], "{plan:#?}");
    assert_eq!(moves(&plan), [("r1", "s1", "t1")], "{plan:#?}");
    assert_eq!(plan.len(), 2, "{plan:#?}");
}

#[test]
fn a_hot_tenant_gets_dedicated_not_move() {
    let p = Policy::default();
    // (case, hot tenant's rows read and written, expect Dedicated)
    let cases: [(&str, u64, u64, bool); 4] = [
        ("60% of the load", 500_000, 100_000, true),
        ("exactly 50%", 300_000, 100_000, true),
        ("40%: not hot", 200_000, 66_667, false),
        ("no load on the shard", 0, 0, false),
    ];
    for (name, read, written, want_dedicated) in cases {
        let others = if read + written == 0 { 0 } else { 100_000 };
        let accounts = vec![
            hot(acct("hot", "s1", 2 * GB, 0.0), read, written),
            hot(acct("b", "s1", 2 * GB, 0.0), others, 0),
            hot(acct("c", "s1", 2 * GB, 0.0), others, 0),
            hot(acct("d", "s1", 2 * GB, 0.0), others, others),
        ];
        let shards = fill(vec![shared("s1", 0), shared("t1", 0)], &accounts);
        let plan = plan(&shards, &accounts, &p);
        if want_dedicated {
            assert_eq!(dedicated(&plan), [("hot", "s1")], "{name}: {plan:#?}");
            assert!(moves(&plan).iter().all(|m| m.0 != "hot"), "{name}");
            assert!(reason(&plan[0]).contains("rows read+written"), "{name}");
        } else {
            assert!(dedicated(&plan).is_empty(), "{name}: {plan:#?}");
            assert_eq!(moves(&plan).len(), 1, "{name}: {plan:#?}");
        }
    }
}

#[test]
fn no_room_anywhere_yields_provision_shard_with_the_remaining_overflow() {
    let p = Policy::default();
    let four_tenants = |shard: &str| -> Vec<AccountLoad> {
        (0..4)
            .map(|i| acct(&format!("{shard}-{i}"), shard, 2 * GB, 0.0))
            .collect()
    };
    let cases: Vec<(&str, Vec<ShardLoad>, Vec<AccountLoad>, u64)> = vec![
        (
            "the only shard",
            vec![shared("s1", 0)],
            four_tenants("s1"),
            GB,
        ),
        (
            "every other shard is full",
            vec![shared("s1", 0), shared("t1", 6 * GB), shared("t2", 7 * GB)],
            four_tenants("s1"),
            GB,
        ),
        (
            "the empty shards are not active or not shared",
            vec![
                shared("s1", 0),
                shard("t1", "shared", "draining", D1_CAP_BYTES, 0),
                shard("t2", "shared", "readonly", D1_CAP_BYTES, 0),
                shard("t3", "shared", "provisioning", D1_CAP_BYTES, 0),
                shard("t4", "dedicated", "active", D1_CAP_BYTES, 0),
                shard("t5", "Shared", "Paused", D1_CAP_BYTES, 0),
            ],
            four_tenants("s1"),
            GB,
        ),
        (
            "overflow from growth",
            vec![shared("s1", 0)],
            (0..4)
                .map(|i| acct(&format!("g{i}"), "s1", 1625 * MB, 12.5e6))
                .collect(),
            GB,
        ),
        (
            "a shard with no tenants listed",
            vec![shared("s1", 7500 * MB), shared("t1", 0)],
            vec![],
            500 * MB,
        ),
    ];
    for (name, base, accounts, need) in cases {
        let shards = fill(base, &accounts);
        let plan = plan(&shards, &accounts, &p);
        assert_eq!(provisions(&plan), [("s1", need)], "{name}: {plan:#?}");
        assert_eq!(plan.len(), 1, "{name}: {plan:#?}");
        assert!(reason(&plan[0]).contains("provision a new shard"), "{name}");
    }
}

#[test]
fn partial_room_moves_what_fits_and_provisions_the_rest() {
    let p = Policy::default();
    let accounts = vec![
        acct("a", "s1", 3 * GB, 0.0),
        acct("b", "s1", 2500 * MB, 0.0),
        acct("c", "s1", 2 * GB, 0.0),
        acct("d", "s1", GB, 0.0),
    ];
    // s1 is 8.5 GB; t1 has 1.0 GB of headroom, only enough for d.
    let shards = fill(vec![shared("s1", 0), shared("t1", 6 * GB)], &accounts);
    let plan = plan(&shards, &accounts, &p);
    assert_eq!(moves(&plan), [("d", "s1", "t1")], "{plan:#?}");
    assert_eq!(provisions(&plan), [("s1", 500 * MB)], "{plan:#?}");
    assert!(matches!(plan.last(), Some(Proposal::ProvisionShard { .. })));
}

#[test]
fn an_over_cap_dedicated_shard_yields_provision_shard_not_moves() {
    let p = Policy::default();
    let accounts = vec![acct("whale", "d1", 8 * GB, 0.0)];
    let shards = fill(
        vec![
            shard("d1", "dedicated", "active", D1_CAP_BYTES, 0),
            shared("t1", 0),
        ],
        &accounts,
    );
    let plan = plan(&shards, &accounts, &p);
    assert_eq!(provisions(&plan), [("d1", GB)], "{plan:#?}");
    assert_eq!(plan.len(), 1, "{plan:#?}");
    let why = reason(&plan[0]);
    assert!(why.contains("dedicated") && why.contains("split"), "{why}");
}

#[test]
fn shared_shards_that_are_not_active_are_never_sources() {
    let p = Policy::default();
    for status in ["draining", "readonly", "provisioning", "unknown"] {
        let accounts: Vec<AccountLoad> = (0..4)
            .map(|i| acct(&format!("a{i}"), "s1", 2 * GB, 0.0))
            .collect();
        let shards = fill(
            vec![
                shard("s1", "shared", status, D1_CAP_BYTES, 0),
                shared("t1", 0),
            ],
            &accounts,
        );
        assert_eq!(ids(&over_soft_cap(&shards, &p)), ["s1"], "{status}");
        assert!(plan(&shards, &accounts, &p).is_empty(), "{status}");
    }
}

#[test]
fn moves_only_target_active_shared_shards() {
    let p = Policy::default();
    let accounts: Vec<AccountLoad> = (0..5)
        .map(|i| acct(&format!("a{i}"), "s1", 2 * GB, 0.0))
        .collect();
    let shards = fill(
        vec![
            shared("s1", 0),
            shard("a-draining", "shared", "draining", D1_CAP_BYTES, 0),
            shard("b-readonly", "shared", "readonly", D1_CAP_BYTES, 0),
            shard("c-provisioning", "shared", "provisioning", D1_CAP_BYTES, 0),
            shard("d-dedicated", "dedicated", "active", D1_CAP_BYTES, 0),
            shard("e-active", " SHARED ", "Active", D1_CAP_BYTES, 4 * GB),
        ],
        &accounts,
    );
    // s1 is 10 GB; e-active has room for one tenant, the others have room for all.
    let plan = plan(&shards, &accounts, &p);
    assert_eq!(moves(&plan), [("a0", "s1", "e-active")], "{plan:#?}");
    assert_eq!(provisions(&plan), [("s1", GB)], "{plan:#?}");
}

#[test]
fn the_largest_overflow_is_served_first() {
    let p = Policy::default();
    let accounts = vec![
        // s-small: 8 GB, 1 GB over.
        acct("x1", "s-small", 2 * GB, 0.0),
        acct("x2", "s-small", 2 * GB, 0.0),
        acct("x3", "s-small", 2 * GB, 0.0),
        acct("x4", "s-small", 2 * GB, 0.0),
        // s-big: 9 GB, 2 GB over.
        acct("y1", "s-big", 3 * GB, 0.0),
        acct("y2", "s-big", 3 * GB, 0.0),
        acct("y3", "s-big", 3 * GB, 0.0),
    ];
    // t1 has 3 GB of headroom: room for one of them only.
    let shards = fill(
        vec![
            shared("s-small", 0),
            shared("t1", 4 * GB),
            shared("s-big", 0),
        ],
        &accounts,
    );
    let plan = plan(&shards, &accounts, &p);
    assert_eq!(moves(&plan), [("y1", "s-big", "t1")], "{plan:#?}");
    assert_eq!(provisions(&plan), [("s-small", GB)], "{plan:#?}");
}

#[test]
fn reasons_are_sentences_with_the_numbers() {
    let p = Policy::default();
    let accounts = vec![
        acct("acct-1", "shard-eu-01", 2 * GB, 0.0),
        acct("acct-2", "shard-eu-01", 2 * GB, 0.0),
        acct("acct-3", "shard-eu-01", 2 * GB, 0.0),
        acct("acct-4", "shard-eu-01", 1400 * MB, 0.0),
    ];
    let shards = fill(
        vec![shared("shard-eu-01", 0), shared("shard-eu-02", 3 * GB)],
        &accounts,
    );
    let plan = plan(&shards, &accounts, &p);
    assert_eq!(plan.len(), 1, "{plan:#?}");
    let why = reason(&plan[0]);
    assert!(
        why.starts_with("shard-eu-01 projected 7.4 GB in 30 days, soft cap 7.0 GB"),
        "{why}"
    );
    assert!(
        why.contains("acct-1") && why.contains("shard-eu-02"),
        "{why}"
    );
    assert!(why.contains("4.0 GB of headroom"), "{why}");
}

#[test]
fn place_new_account_picks_the_least_full_shard_below_its_soft_cap() {
    let p = Policy::default();
    let cases: Vec<(&str, Vec<ShardLoad>, Option<&str>)> = vec![
        (
            "least full",
            vec![
                shared("a", 5 * GB),
                shared("b", 2 * GB),
                shared("c", 3 * GB),
            ],
            Some("b"),
        ),
        (
            "ties by id",
            vec![shared("b", 2 * GB), shared("a", 2 * GB)],
            Some("a"),
        ),
        (
            "never above or at the soft cap",
            vec![
                shared("a", 7500 * MB),
                shared("b", 7 * GB),
                shared("c", 6900 * MB),
            ],
            Some("c"),
        ),
        (
            "least full is by share of the soft cap",
            vec![
                shared("a", 3500 * MB),                     // 50% of 7 GB
                shard("b", "shared", "active", 5 * GB, GB), // 29% of 3.5 GB
            ],
            Some("b"),
        ),
        (
            "draining, readonly, provisioning and dedicated shards are never picked",
            vec![
                shard("a", "shared", "draining", D1_CAP_BYTES, 0),
                shard("b", "shared", "readonly", D1_CAP_BYTES, 0),
                shard("c", "shared", "provisioning", D1_CAP_BYTES, 0),
                shard("d", "dedicated", "active", D1_CAP_BYTES, 0),
                shared("e", 6 * GB),
            ],
            Some("e"),
        ),
        (
            "all full",
            vec![shared("a", 7 * GB), shared("b", 9 * GB)],
            None,
        ),
        (
            "only non-active shards have room",
            vec![
                shared("a", 8 * GB),
                shard("b", "shared", "draining", D1_CAP_BYTES, 0),
                shard("c", "shared", "readonly", D1_CAP_BYTES, 0),
            ],
            None,
        ),
        (
            "zero capacity",
            vec![shard("a", "shared", "active", 0, 0)],
            None,
        ),
        ("no shards", vec![], None),
    ];
    for (name, shards, want) in cases {
        let got = place_new_account(&shards, &p);
        assert_eq!(got.map(|s| s.id.as_str()), want, "{name}");
        if let Some(s) = got {
            assert!(s.size_bytes < soft_cap(s, &p), "{name}");
            assert!(is_shared_active(s), "{name}");
        }
    }
}

#[test]
fn apply_moves_size_and_growth_and_ignores_other_proposals() {
    let p = Policy::default();
    let accounts = vec![acct("a", "s1", 2 * GB, 10e6), acct("b", "s1", GB, 0.0)];
    let shards = fill(vec![shared("s1", 0), shared("t1", GB)], &accounts);
    let proposals = vec![
        Proposal::Move {
            account_id: "a".into(),
            from_shard: "s1".into(),
            to_shard: "t1".into(),
            bytes: 2 * GB,
            reason: String::new(),
        },
        Proposal::Move {
            account_id: "b".into(),
            from_shard: "s1".into(),
            to_shard: "nowhere".into(),
            bytes: GB,
            reason: String::new(),
        },
        Proposal::Move {
            account_id: "b".into(),
            from_shard: "s1".into(),
            to_shard: "s1".into(),
            bytes: GB,
            reason: String::new(),
        },
        Proposal::Dedicated {
            account_id: "b".into(),
            shard_id: "s1".into(),
            reason: String::new(),
        },
        Proposal::ProvisionShard {
            for_shard: "s1".into(),
            bytes_needed: GB,
            reason: String::new(),
        },
    ];
    let after = apply(&shards, &accounts, &proposals);
    assert_eq!(after[0].size_bytes, GB);
    assert_eq!(projected(&after[0], &p), GB);
    assert_eq!(after[1].size_bytes, 3 * GB);
    assert_eq!(projected(&after[1], &p), 3 * GB + 300 * MB);
    assert_eq!(apply(&shards, &accounts, &[]), shards);
}

#[test]
fn proposals_serialize_with_a_snake_case_kind_tag() {
    let cases = [
        (
            Proposal::Move {
                account_id: "a".into(),
                from_shard: "s1".into(),
                to_shard: "t1".into(),
                bytes: 5,
                reason: "r".into(),
            },
            serde_json::json!({"kind": "move", "account_id": "a", "from_shard": "s1",
                    "to_shard": "t1", "bytes": 5, "reason": "r"}),
        ),
        (
            Proposal::Dedicated {
                account_id: "a".into(),
                shard_id: "s1".into(),
                reason: "r".into(),
            },
            serde_json::json!({"kind": "dedicated", "account_id": "a", "shard_id": "s1",
                    "reason": "r"}),
        ),
        (
            Proposal::ProvisionShard {
                for_shard: "s1".into(),
                bytes_needed: 7,
                reason: "r".into(),
            },
            serde_json::json!({"kind": "provision_shard", "for_shard": "s1",
                    "bytes_needed": 7, "reason": "r"}),
        ),
    ];
    for (proposal, want) in cases {
        let json = serde_json::to_value(&proposal).ok();
        assert_eq!(json, Some(want.clone()));
        let back: Option<Proposal> = serde_json::from_value(want).ok();
        assert_eq!(back, Some(proposal));
    }
    let policy: Option<Policy> = serde_json::to_value(Policy::default())
        .ok()
        .and_then(|v| serde_json::from_value(v).ok());
    assert_eq!(policy, Some(Policy::default()));
}

#[test]
fn degenerate_inputs_do_not_panic() {
    let bad_policies = [
        Policy::default(),
        Policy {
            soft_cap_ratio: f64::NAN,
            horizon_days: f64::NAN,
            dedicated_size_share: f64::NAN,
            dedicated_load_share: f64::NAN,
        },
        Policy {
            soft_cap_ratio: f64::INFINITY,
            horizon_days: f64::INFINITY,
            dedicated_size_share: 0.0,
            dedicated_load_share: -1.0,
        },
        Policy {
            soft_cap_ratio: -0.5,
            horizon_days: -30.0,
            dedicated_size_share: f64::INFINITY,
            dedicated_load_share: f64::INFINITY,
        },
    ];
    let mut nan = shared("nan", 8 * GB);
    nan.growth_bytes_per_day = f64::NAN;
    let mut neg = shared("neg", 8 * GB);
    neg.growth_bytes_per_day = -1e12;
    let mut inf = shared("inf", GB);
    inf.growth_bytes_per_day = f64::INFINITY;
    let worlds: Vec<(Vec<ShardLoad>, Vec<AccountLoad>)> = vec![
        (vec![], vec![]),
        (vec![], vec![acct("orphan", "gone", GB, 1.0)]),
        (vec![shard("zero", "shared", "active", 0, 0)], vec![]),
        (
            vec![shard("zero", "shared", "active", 0, GB), shared("t", 0)],
            vec![acct("a", "zero", GB, 0.0), acct("z", "zero", 0, 0.0)],
        ),
        (
            vec![nan, neg, inf, shared("t", 0), shared("t", 0)],
            vec![
                acct("a", "nan", 8 * GB, f64::NAN),
                acct("b", "neg", 8 * GB, -5.0),
                acct("c", "inf", GB, f64::INFINITY),
                hot(acct("d", "neg", 0, 0.0), u64::MAX, u64::MAX),
                acct("a", "nan", u64::MAX, f64::MAX),
            ],
        ),
        (
            vec![
                shard("max", "shared", "active", u64::MAX, u64::MAX),
                shard("", "", "", u64::MAX, 0),
                shard("ded", "dedicated", "readonly", 1, u64::MAX),
            ],
            vec![acct("m", "max", u64::MAX, f64::MAX), acct("", "", 0, 0.0)],
        ),
    ];
    for policy in &bad_policies {
        for (shards, accounts) in &worlds {
            for s in shards {
                let _ = (soft_cap(s, policy), projected(s, policy));
            }
            let _ = over_soft_cap(shards, policy);
            let _ = place_new_account(shards, policy);
            let plan = plan(shards, accounts, policy);
            let after = apply(shards, accounts, &plan);
            assert_eq!(after.len(), shards.len());
            for p in &plan {
                assert!(!reason(p).is_empty());
            }
        }
    }
}

/// A small deterministic generator, so the property test needs no dependency.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        if n == 0 {
            0
        } else {
            (self.0 >> 33) % n
        }
    }
}

fn random_world(rng: &mut Lcg) -> (Vec<ShardLoad>, Vec<AccountLoad>) {
    const TIERS: [&str; 4] = ["shared", "shared", "shared", "dedicated"];
    const STATUSES: [&str; 6] = [
        "active",
        "active",
        "active",
        "draining",
        "readonly",
        "provisioning",
    ];
    const CAPACITIES: [u64; 4] = [D1_CAP_BYTES, D1_CAP_BYTES, 5 * GB, 20 * GB];
    let mut shards = Vec::new();
    let mut accounts = Vec::new();
    for i in 0..1 + rng.below(7) {
        let id = format!("s{i}");
        let tier = TIERS[rng.below(4) as usize];
        shards.push(shard(
            &id,
            tier,
            STATUSES[rng.below(6) as usize],
            CAPACITIES[rng.below(4) as usize],
            rng.below(500) * MB,
        ));
        let tenants = if tier == "dedicated" { 1 } else { rng.below(8) };
        for j in 0..tenants {
            let growth = match rng.below(10) {
                0 => f64::NAN,
                1 => -1e6,
                _ => rng.below(40) as f64 * 1e6,
            };
            let mut a = acct(&format!("a{i}-{j}"), &id, rng.below(3000) * MB, growth);
            if rng.below(3) == 0 {
                a.rows_read_per_day = rng.below(1_000_000);
                a.rows_written_per_day = rng.below(100_000);
            }
            accounts.push(a);
        }
    }
    (fill(shards, &accounts), accounts)
}

#[test]
fn plans_are_deterministic_and_keep_their_invariants() {
    let p = Policy::default();
    let mut rng = Lcg(42);
    let mut with_moves = 0;
    for case in 0..500 {
        let (shards, accounts) = random_world(&mut rng);
        let plan = plan(&shards, &accounts, &p);
        let by_id = |id: &str| shards.iter().find(|s| s.id == id);

        // Same input, same output; input order does not matter either.
        assert_eq!(super::plan(&shards, &accounts, &p), plan, "case {case}");
        let mut rev_shards = shards.clone();
        rev_shards.reverse();
        let mut rev_accounts = accounts.clone();
        rev_accounts.reverse();
        assert_eq!(
            super::plan(&rev_shards, &rev_accounts, &p),
            plan,
            "case {case}"
        );

        let moved = moves(&plan);
        let ded = dedicated(&plan);
        let prov = provisions(&plan);
        for &(account, from, to) in &moved {
            assert_ne!(from, to, "case {case}: moved onto its source");
            for end in [from, to] {
                let s = by_id(end);
                assert!(s.is_some_and(is_shared_active), "case {case}: {end} {s:?}");
            }
            assert!(
                accounts
                    .iter()
                    .any(|a| a.account_id == account && a.shard_id == from),
                "case {case}: {account} is not on {from}"
            );
            assert!(
                !ded.iter().any(|d| d.0 == account),
                "case {case}: {account}"
            );
            assert_eq!(moved.iter().filter(|m| m.0 == account).count(), 1);
        }
        for &(account, shard_id) in &ded {
            let s = by_id(shard_id);
            assert!(s.is_some_and(is_shared_active), "case {case}: {shard_id}");
            assert!(accounts.iter().any(|a| a.account_id == account));
        }
        for &(shard_id, need) in &prov {
            assert!(need > 0, "case {case}");
            assert_eq!(prov.iter().filter(|x| x.0 == shard_id).count(), 1);
        }

        // Targets stay within their soft caps; any shared active shard still over is
        // covered by a Dedicated or a ProvisionShard, and every over-cap dedicated shard
        // gets a ProvisionShard.
        let after = apply(&shards, &accounts, &plan);
        for &(_, _, to) in &moved {
            let t = after.iter().find(|s| s.id == to);
            assert!(
                t.is_some_and(|t| projected(t, &p) <= soft_cap(t, &p)),
                "case {case}: target {to} over\n{plan:#?}"
            );
        }
        for s in over_soft_cap(&after, &p) {
            if is_shared_active(s) {
                assert!(
                    prov.iter().any(|x| x.0 == s.id) || ded.iter().any(|d| d.1 == s.id),
                    "case {case}: {} left over\n{plan:#?}",
                    s.id
                );
            } else if is(&s.tier, DEDICATED) {
                assert!(prov.iter().any(|x| x.0 == s.id), "case {case}: {}", s.id);
            } else {
                assert!(!moved.iter().any(|m| m.1 == s.id), "case {case}");
            }
        }
        with_moves += usize::from(!moved.is_empty());
    }
    assert!(
        with_moves > 50,
        "the generator should exercise moves: {with_moves}"
    );
}
