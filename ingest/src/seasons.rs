//! Closing seasons by the data: every worker checks every board with a reset
//! once per `--season-check` and closes the seasons whose end plus
//! `late_grace` has passed both by its clock and by the topic's watermark
//! (every record that reached Kafka before then is applied:
//! [`leaderboard_store::marker::watermark`]), so a season never closes while ingest is
//! behind and events produced in time are still on their way
//! (docs/contract.md#seasons; the fence in Redis makes closing exactly-once whichever worker
//! gets there first), then deletes those beyond `keep_seasons`.

use std::sync::Arc;
use std::time::Duration;

use leaderboard_contract::BoardId;
use leaderboard_semantics::Clock;
use leaderboard_store::Router;
use leaderboard_store::board::seasons::seasonal_boards;
use leaderboard_store::layout::record;
use leaderboard_store::marker::watermark;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::loss::Guard;

/// The closing task of one worker.
#[derive(Debug)]
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
                        warn!(failure = e.failure().as_str(), "seasons: a closing pass failed; retrying");
                        failing = true;
                    }
                }
            }
        }
    }

    /// One pass over every seasonal board; a board that fails does not stop
    /// the others (the pass reports the last failure).
    async fn pass(&self) -> Result<(), leaderboard_store::Error> {
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
    async fn close(&self, board: &BoardId, applied_before_ms: i64) -> Result<(), leaderboard_store::Error> {
        let Some(record) = record::recorded(self.router.store(), board).await? else { return Ok(()) };
        if record.rules.reset.is_none() {
            return Ok(());
        }
        let report = self.router.close_due(board, &record.rules, self.clock.now_ms(), applied_before_ms).await?;
        metrics::counter!("ingest_seasons_closed_total").increment(report.closed.len() as u64);
        metrics::counter!("ingest_seasons_removed_total").increment(report.removed.len() as u64);
        for id in &report.removed {
            info!(%board, season = id, "season removed (beyond keep_seasons)");
        }
        Ok(())
    }
}
