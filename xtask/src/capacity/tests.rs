use super::assumptions::Assumptions;
use super::measure::Inputs;
use super::model::Model;
use super::*;
use shared::domain::planner::D1_CAP_BYTES;

fn args(tenants: usize, years: u32, seed: u64, a: Assumptions) -> Args {
    Args {
        tenants,
        years,
        seed,
        assumptions: a,
        out: PathBuf::new(),
    }
}

fn inputs() -> Inputs {
    Inputs::committed().unwrap()
}

#[test]
fn same_seed_gives_byte_identical_output() {
    let a = render(&args(200, 4, 7, Assumptions::default()), &inputs()).unwrap();
    let b = render(&args(200, 4, 7, Assumptions::default()), &inputs()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn another_seed_gives_another_population_and_output() {
    let a = render(&args(200, 4, 1, Assumptions::default()), &inputs()).unwrap();
    let b = render(&args(200, 4, 2, Assumptions::default()), &inputs()).unwrap();
    let csv = |f: &[(String, String)]| {
        f.iter()
            .find(|(n, _)| n == "tenants.csv")
            .unwrap()
            .1
            .clone()
    };
    assert_ne!(csv(&a), csv(&b));
}

#[test]
fn the_assumptions_file_holds_the_defaults() {
    let file = Assumptions::load(&crate::root().join("bench/capacity/assumptions.json")).unwrap();
    assert_eq!(file, Assumptions::default());
    let mut a = Assumptions::default();
    a.set("zipf_exponent=1.3").unwrap();
    assert_eq!(a.zipf_exponent, 1.3);
    assert!(a.set("no_such=1").is_err());
}

#[test]
fn the_largest_tenant_holds_the_reference_bytes_after_ten_years() {
    // The calibration the model states: documents per user-month make the 4000-user tenant
    // reach the seed's 5 GB (D1 + R2) in 120 months.
    let a = Assumptions {
        initial_user_share: 0.4,
        ..Assumptions::default()
    };
    let m = Model::new(&a, &inputs()).unwrap();
    let (mut d1, mut r2) = (0.0, 0.0);
    for age in 0..120 {
        let (d, r) = m.growth(m.users(a.max_users, age), 1.0);
        d1 += d;
        r2 += r;
    }
    assert!((d1 + r2 - a.reference_tenant_bytes_10y).abs() / a.reference_tenant_bytes_10y < 1e-9);
    let per_doc = inputs().document_row_bytes.value;
    assert!(
        m.d1_bytes_per_document > per_doc,
        "a document's D1 share includes its row"
    );
}

#[test]
fn the_simulation_places_tenants_where_the_products_planner_says() {
    // A new account goes where `place_new_account` puts it, and a full shard's tenants move
    // where `plan` proposes: through the same functions the shard_health job calls.
    let m = Model::new(
        &Assumptions {
            d1_retention_reclaim_share: 0.0,
            r2_mean_document_bytes: 0.0,
            ..Assumptions::default()
        },
        &inputs(),
    )
    .unwrap();
    let o = sim::run(&m, 400, 8, 3).unwrap();
    let moves: Vec<_> = o
        .events
        .iter()
        .filter(|e| e.kind == "move" || e.kind == "dedicated")
        .collect();
    assert!(
        !moves.is_empty(),
        "all-D1 tenants fill shards: the planner must act"
    );
    for e in moves {
        assert!(
            e.reason.contains(&e.account),
            "{}: the planner's own reason names the tenant",
            e.reason
        );
    }
}

fn assert_under_hard_cap(o: &sim::Outcome) {
    for r in &o.months {
        assert!(r.max_fill <= 1.0, "month {}: fill {}", r.month, r.max_fill);
    }
    let mut per_shard = vec![0.0; o.shards.len()];
    for t in &o.tenants {
        if let Some(s) = t.shard {
            per_shard[s] += t.d1_bytes;
        }
    }
    assert!(per_shard.iter().all(|b| *b <= D1_CAP_BYTES as f64));
}

#[test]
fn no_shard_ever_exceeds_the_hard_cap_over_seeds_and_assumptions() {
    let inputs = inputs();
    let mut rng = sim::Rng::new(99);
    for case in 0..12 {
        let a = Assumptions {
            zipf_exponent: 0.6 + rng.unit() * 1.0,
            // From metadata-only tenants (all 5 GB in D1) to the default split.
            r2_mean_document_bytes: if case % 3 == 0 {
                0.0
            } else {
                rng.unit() * 400_000.0
            },
            user_growth_per_year: rng.unit() * 0.6,
            onboarding_years: 0.5 + rng.unit() * 4.0,
            soft_cap_ratio: 0.5 + rng.unit() * 0.4,
            ..Assumptions::default()
        };
        let m = Model::new(&a, &inputs).unwrap();
        let seed = rng.next_u64();
        match sim::run(&m, 150, 6, seed) {
            Ok(o) => assert_under_hard_cap(&o),
            Err(e) => assert!(e.contains("hard cap"), "case {case}: {e}"),
        }
    }
}

#[test]
fn a_tenant_bigger_than_one_d1_is_refused_not_placed_over_the_cap() {
    let a = Assumptions {
        reference_tenant_bytes_10y: 30e9,
        r2_mean_document_bytes: 0.0,
        ..Assumptions::default()
    };
    let m = Model::new(&a, &inputs()).unwrap();
    let e = sim::run(&m, 20, 10, 1)
        .err()
        .expect("a 30 GB D1 tenant cannot fit one D1");
    assert!(e.contains("over D1's hard cap"), "{e}");
}

#[test]
fn batched_probe_cuts_the_account_d1_load() {
    let a = Assumptions::default();
    let rates: Vec<f64> = (1..=1000).map(|k| 400.0 / k as f64).collect();
    let (today, batched) = model::account_d1_queries_per_s(&a, &rates);
    assert!(today > batched * 3.0, "{today} vs {batched}");
}
