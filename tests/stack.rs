//! Integration tests on the real local runtime: one `wrangler dev` (workerd) with every Worker,
//! started on a free port with a fresh persist directory, stopped at the end.
//! Each test makes its own tenants, so tests are independent of order and of each other.

use integration_tests::*;
use libtest_mimic::{Arguments, Trial};
use std::sync::Arc;
use std::time::Duration;
use xtask::stack::{self, Stack};

mod api;
mod audit;
mod contention;
mod http;
mod identity;
mod moves;
mod operator;
mod pipeline;
mod routing;
mod twin;
mod writes;

fn main() {
    let args = Arguments::from_args();
    let tests: Vec<NamedTest> = [
        api::TESTS,
        audit::TESTS,
        contention::TESTS,
        identity::TESTS,
        http::TESTS,
        operator::TESTS,
        pipeline::TESTS,
        routing::TESTS,
        twin::TESTS,
        writes::TESTS,
    ]
    .concat();
    // Tests that change a whole shard for a while (schema drift) or reach the D1 files through
    // `wrangler d1 execute` (another process on the same SQLite files: the stack's own writes
    // meet SQLITE_BUSY meanwhile) run afterwards, one at a time (`Env::outside` refuses them
    // before).
    let exclusive: Vec<NamedTest> = [
        audit::EXCLUSIVE,
        pipeline::EXCLUSIVE,
        twin::EXCLUSIVE,
        writes::EXCLUSIVE,
        moves::TESTS,
    ]
    .concat();
    let wanted = tests.iter().chain(&exclusive).any(|(name, _)| {
        args.filter.as_deref().is_none_or(|f| {
            if args.exact {
                *name == f
            } else {
                name.contains(f)
            }
        })
    });
    if args.list || !wanted {
        let trials = tests
            .iter()
            .chain(&exclusive)
            .map(|(n, _)| Trial::test(*n, || Ok(())))
            .collect();
        libtest_mimic::run(&args, trials).exit();
    }
    let (mut s, persist) = match start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("could not start the local stack: {e}");
            std::process::exit(1);
        }
    };
    let env = Arc::new(Env::new(
        Client::new(&s.url()),
        s.log.clone().unwrap_or_default(),
        persist,
    ));
    let trials = tests
        .into_iter()
        .map(|(name, f)| {
            let env = env.clone();
            Trial::test(name, move || f(&env).map_err(Into::into))
        })
        .collect();
    let mut conclusion = libtest_mimic::run(&args, trials);
    let trials: Vec<Trial> = exclusive
        .into_iter()
        .map(|(name, f)| {
            let env = env.clone();
            Trial::test(name, move || f(&env).map_err(Into::into))
        })
        .collect();
    env.enter_exclusive_phase();
    let mut one_at_a_time = args.clone();
    one_at_a_time.test_threads = Some(1);
    let second = libtest_mimic::run(&one_at_a_time, trials);
    conclusion.num_passed += second.num_passed;
    conclusion.num_failed += second.num_failed;
    conclusion.num_filtered_out += second.num_filtered_out;
    if conclusion.has_failed() {
        eprintln!("{}", s.log_tail());
    }
    s.stop();
    conclusion.exit();
}

fn start() -> Result<(Stack, std::path::PathBuf), String> {
    let persist = stack::fresh_state_dir("it")?;
    stack::prepare(&persist)?;
    let mut s = Stack::start(stack::Options {
        port: stack::free_port()?,
        log: Some(persist.join("wrangler.log")),
        persist: persist.clone(),
        // The KV read cache is off by default; the tests run with it on so that its
        // invalidation is checked on the real runtime (the default path is the bookmark path).
        vars: vec![("READ_CACHE".into(), "on".into())],
        local_traces: false,
    })?;
    s.wait_healthy(Duration::from_secs(90))?;
    Ok((s, persist))
}
