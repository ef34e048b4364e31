//! `scheduled` entrypoint.

use platform::{CryptoEntropy, Queue, D1};
use shared::bindings as b;
use shared::jobs::{self, Job, SchedulerPlatform};
use worker::{event, Env, ScheduleContext, ScheduledEvent};

struct WorkerPlatform {
    env: Env,
    accounts: D1,
    served: Vec<String>,
    queue: Queue,
}

impl SchedulerPlatform for WorkerPlatform {
    type Db = D1;
    type Queue = Queue;
    type Entropy = CryptoEntropy;
    fn accounts(&self) -> &D1 {
        &self.accounts
    }
    fn shards(&self) -> Vec<(String, D1)> {
        self.served
            .iter()
            .filter_map(|s| {
                D1::from_env(&self.env, s, Some("first-primary")).map(|d| (s.clone(), d))
            })
            .collect()
    }
    fn queue(&self) -> &Queue {
        &self.queue
    }
    fn now(&self) -> time::OffsetDateTime {
        platform::now()
    }
    fn entropy(&self) -> &CryptoEntropy {
        &CryptoEntropy
    }
    fn relay_min_age(&self) -> time::Duration {
        platform::var(&self.env, b::RELAY_MIN_AGE_VAR)
            .and_then(|s| s.parse::<i64>().ok())
            .map(time::Duration::seconds)
            .unwrap_or(jobs::RELAY_MIN_AGE)
    }
}

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let cron = event.cron();
    let Some(job) = Job::for_cron(&cron) else {
        worker::console_error!("no job for cron {cron}");
        return;
    };
    let (Some(accounts), Ok(queue)) = (
        D1::from_env(&env, b::ACCOUNTS_DB, Some("first-primary")),
        env.queue(b::CHANGE_EVENTS_QUEUE),
    ) else {
        worker::console_error!("scheduler bindings missing");
        return;
    };
    let p = WorkerPlatform {
        served: platform::list_var(&env, b::SHARD_BINDINGS_VAR),
        env,
        accounts,
        queue: Queue(queue),
    };
    let run = jobs::run(&p, job, Some(&cron)).await;
    worker::console_log!("{} {:?} {:?}", job.name(), run.outcome, run.counts);
}
