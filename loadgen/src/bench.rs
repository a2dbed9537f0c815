//! Throughput benchmark of ingest: fill a topic as fast as possible, then time
//! how long the ingest group takes to drain it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::World;
use crate::lag::LagProbe;
use crate::pacer::Pacer;
use crate::population::Population;
use crate::produce::{self, WriteCounters};

/// Produces `count` realistic events without pacing; prints the rate.
///
/// # Errors
/// Bad configuration or an unreachable broker.
pub async fn fill(world: &World, count: u64) -> anyhow::Result<()> {
    let boards = world.board_set()?;
    let population =
        Population::new(world.seed, world.players, world.zipf, world.improve_share)?.with_operator(world.operator()?);
    let counters = Arc::new(WriteCounters::default());
    let started = Instant::now();
    // An effectively unbounded rate: every event is due at once; the producer's
    // queue is the only limit.
    let pacer = Pacer::new(started, 1e12, Some(count));
    let outcome = produce::run(
        crate::producer(world)?,
        produce::Target {
            topic: world.topic.clone(),
            boards,
            scoring: world.scoring(),
            signer: world.sign_key.clone(),
            clock: world.store.clock,
            meta: world.event_meta(),
            repeats: produce::Repeats { run: crate::config::run_id(), ..produce::Repeats::default() },
        },
        population,
        pacer,
        counters.clone(),
        CancellationToken::new(),
    )
    .await?;
    let errors = counters.errors.load(Ordering::Relaxed);
    anyhow::ensure!(errors == 0, "{errors} events failed");
    let secs = outcome.elapsed.as_secs_f64();
    eprintln!("filled {} with {count} events in {secs:.1}s ({:.0} events/s)", world.topic, count as f64 / secs);
    Ok(())
}

/// Waits until the ingest group has committed `expect` records, timing from the
/// first committed progress to lag 0; prints the drain rate.
///
/// # Errors
/// When the broker does not answer or the timeout passes.
pub async fn drain(world: &World, expect: u64, timeout: Duration) -> anyhow::Result<()> {
    let probe = Arc::new(LagProbe::new(world)?);
    let deadline = Instant::now() + timeout;
    let mut started: Option<(Instant, i64)> = None;
    loop {
        let p = probe.clone();
        let lag = tokio::task::spawn_blocking(move || p.lag()).await??;
        let now = Instant::now();
        if started.is_none() && lag < i64::try_from(expect).unwrap_or(i64::MAX) {
            started = Some((now, lag));
        }
        if lag == 0 {
            let (t0, lag0) = started.unwrap_or((now, 0));
            let drained = lag0.max(0) as f64;
            let secs = now.duration_since(t0).as_secs_f64();
            eprintln!(
                "drained {expect} events; {drained:.0} of them in {secs:.1}s after the first commit: {:.0} events/s",
                if secs > 0.0 { drained / secs } else { 0.0 }
            );
            return Ok(());
        }
        anyhow::ensure!(now < deadline, "lag still {lag} after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
