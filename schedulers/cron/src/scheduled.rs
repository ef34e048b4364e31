//! `scheduled` entrypoint: one cron, one job, one recorded run.

use crate::WorkerPlatform;
use platform::logging;
use shared::bindings as b;
use shared::jobs::{self, Job, Outcome};
use tracing::Instrument;
use worker::{event, Env, ScheduleContext, ScheduledEvent};

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let started = logging::now_ms();
    let cron = event.cron();
    let job = Job::for_cron(&cron);
    let span = tracing::info_span!(
        "cron_run",
        cron = %cron,
        job = job.map(Job::name),
        deployment = platform::var(&env, b::DEPLOYMENT_VAR),
    );
    run(job, &cron, env, started).instrument(span).await;
}

/// The run and its completion line: outcome, the job's counts and duration.
async fn run(job: Option<Job>, cron: &str, env: Env, started: f64) {
    let Some(job) = job else {
        tracing::error!("no job for this cron");
        return;
    };
    let Some(p) = WorkerPlatform::new(env) else {
        tracing::error!("scheduler bindings missing");
        return;
    };
    let run = jobs::run(&p, job, Some(cron)).await;
    let counts = serde_json::Value::Object(run.counts.to_json());
    let detail = (!run.detail.is_empty()).then(|| run.detail.join("; "));
    let duration_ms = logging::elapsed_ms(started);
    let (level, outcome) = match run.outcome {
        Outcome::Ok => (tracing::Level::INFO, "ok"),
        Outcome::Partial => (tracing::Level::WARN, "partial"),
        Outcome::Failed => (tracing::Level::ERROR, "failed"),
        // Another run of the job holds every shard's lease: nothing to do, nothing wrong.
        Outcome::Skipped => (tracing::Level::INFO, "skipped"),
    };
    logging::event_at!(
        level,
        outcome,
        run_id = %run.id,
        counts = %counts,
        detail,
        duration_ms,
        "cron run done"
    );
}
