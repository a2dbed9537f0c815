//! Closing seasons by the data: every worker checks every board with a reset
//! once per `--season-check` and closes the seasons whose end plus
//! `late_grace` has passed both by its clock and by the topic's watermark
//! (every record that reached Kafka before then is applied:
//! [`leaderboard_store::marker::watermark`]), so a season never closes while ingest is
//! behind and events produced in time are still on their way
//! (docs/contract.md#seasons; the fence in Redis makes closing exactly-once whichever worker
//! gets there first), produces the result of every closed season whose result
//! is due to the results topic (at least once: [`leaderboard_store::board::results`]),
//! then deletes those beyond `keep_seasons`.

use std::sync::Arc;
use std::time::Duration;

use leaderboard_contract::BoardId;
use leaderboard_semantics::Clock;
use leaderboard_store::Router;
use leaderboard_store::board::results;
use leaderboard_store::board::seasons::{SeasonEntry, seasonal_boards};
use leaderboard_store::failpoint::hold_here;
use leaderboard_store::layout::record;
use leaderboard_store::marker::watermark;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::loss::Guard;

/// The closing task of one worker.
pub struct Closer {
    /// Its own router (a connection the writer does not wait on).
    pub router: Router,
    /// The topic whose watermark says what has been applied.
    pub topic: String,
    /// The clock seasons are decided by.
    pub clock: Clock,
    /// How often every seasonal board is checked.
    pub interval: Duration,
    /// The store's epoch: nothing is closed while the store is lost, since a
    /// recovery may still be writing the seasons' events ([`crate::loss`]).
    pub guard: Arc<Guard>,
    /// Where closed seasons' results go.
    pub results: Results,
}

/// Where and how closed seasons' results are produced.
pub struct Results {
    /// The producer (the dead letters': `acks=all`, idempotent, failing within 30 s).
    pub producer: FutureProducer,
    /// The results topic.
    pub topic: String,
    /// Rows per result.
    pub top: usize,
}

/// Why a pass failed.
#[derive(Debug, thiserror::Error)]
enum PassError {
    #[error("redis: {0}")]
    Store(#[from] leaderboard_store::Error),
    #[error("producing a season result: {0}")]
    Produce(#[from] rdkafka::error::KafkaError),
}

impl PassError {
    /// The kind of failure, for logs (no internals).
    fn failure(&self) -> &'static str {
        match self {
            Self::Store(e) => e.failure().as_str(),
            Self::Produce(_) => "results_topic",
        }
    }
}

impl Closer {
    /// Checks every `interval` until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.pass().await {
                Ok(()) if failing => {
                    failing = false;
                    info!("seasons: closing works again");
                }
                Ok(()) => {}
                Err(e) => {
                    metrics::counter!("ingest_season_close_errors_total").increment(1);
                    if !failing {
                        // One line per change, not one per second while Redis is away.
                        warn!(failure = e.failure(), "seasons: a closing pass failed; retrying");
                        failing = true;
                    }
                }
            }
        }
    }

    /// One pass over every seasonal board; a board that fails does not stop
    /// the others (the pass reports the last failure).
    async fn pass(&self) -> Result<(), PassError> {
        if self.guard.is_lost() {
            return Ok(());
        }
        // Read before the boards: what it says applied stays applied, so a season judged by it
        // is complete. Without one (no worker of the topic has claimed anything yet), nothing closes.
        let Some(applied_before) = watermark::read(self.router.store(), &self.topic).await? else { return Ok(()) };
        let applied_before_ms = self.clock.at(applied_before);
        let mut failed = None;
        for board in seasonal_boards(self.router.store()).await? {
            if let Err(e) = self.close(&board, applied_before_ms).await {
                failed = Some(e);
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Closes what is due on one board, by the rules in its record (whatever
    /// layout this worker is configured with: seasons keep their own).
    async fn close(&self, board: &BoardId, applied_before_ms: i64) -> Result<(), PassError> {
        let Some(record) = record::recorded(self.router.store(), board).await? else { return Ok(()) };
        if record.rules.reset.is_none() {
            return Ok(());
        }
        // One read of the registry per pass: closing, results and retention go on from it.
        let mut closing = self.router.close_due(board, &record.rules, self.clock.now_ms(), applied_before_ms).await?;
        metrics::counter!("ingest_seasons_closed_total").increment(closing.closed.len() as u64);
        for entry in results::due(&mut closing.entries) {
            self.produce(board, entry).await?;
            entry.produced = entry.revision;
        }
        // Retention after the results: a season beyond `keep_seasons` goes once its result is out.
        let removed = self.router.remove_beyond_kept(board, &record.rules, &closing.entries).await?;
        metrics::counter!("ingest_seasons_removed_total").increment(removed.len() as u64);
        for id in &removed {
            info!(%board, season = id, "season removed (beyond keep_seasons)");
        }
        Ok(())
    }

    /// Produces the due revision of a closed season's result, waits for the
    /// broker's acknowledgement, then records it produced. Dying anywhere in
    /// between leaves it due: the next pass (this worker's or another's)
    /// produces it again, with the same `id` and `revision`.
    async fn produce(&self, board: &BoardId, entry: &SeasonEntry) -> Result<(), PassError> {
        let result = self.router.season_result(board, entry, self.results.top).await?;
        let payload = serde_json::to_vec(&result).expect("a result serialises");
        hold_here("ingest::before_season_result");
        let record = FutureRecord::to(&self.results.topic).key(board.as_str()).payload(&payload);
        self.results.producer.send(record, Duration::from_secs(5)).await.map_err(|(e, _)| e)?;
        hold_here("ingest::after_season_result");
        self.router.result_produced(board, &entry.id, entry.revision).await?;
        metrics::counter!("ingest_season_results_produced_total").increment(1);
        info!(%board, season = %entry.id, revision = entry.revision, "season result produced");
        Ok(())
    }
}
