//! `scheduled` entrypoint: one cron, one job, one recorded run.

use crate::WorkerPlatform;
use shared::jobs::{self, Job};
use worker::{event, Env, ScheduleContext, ScheduledEvent};

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let cron = event.cron();
    let Some(job) = Job::for_cron(&cron) else {
        worker::console_error!("no job for cron {cron}");
        return;
    };
    let Some(p) = WorkerPlatform::new(env) else {
        worker::console_error!("scheduler bindings missing");
        return;
    };
    let run = jobs::run(&p, job, Some(&cron)).await;
    worker::console_log!("{} {:?} {:?}", job.name(), run.outcome, run.counts);
}
