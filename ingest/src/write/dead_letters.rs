//! What the write stage sets aside, and how: the records behind updates the
//! store refuses or a season's fence closed, and the events of boards this
//! worker cannot use, sent to the dead-letter topic (the format is
//! [`crate::dead_letter`]'s) and retried until the broker acknowledges them.

use std::collections::HashSet;

use leaderboard_contract::{Rejection, RejectionCode};
use leaderboard_store::Failure;

use super::updates::base_board;
use super::{Abandoned, Writer};
use crate::batch::Batch;
use crate::dead_letter::Reject;
use crate::health::Step;
use crate::prepare::{BoardPlayer, BoardPlayers, Prepared, Unwritable};
use crate::shared::Counter;

/// Why records are set aside: their dead letter's code and detail.
#[derive(Debug, Clone, Copy)]
pub(super) struct Why {
    code: RejectionCode,
    detail: &'static str,
}

/// The dead letter of an event its season's fence refused.
pub(super) const LATE: Why = Why {
    code: RejectionCode::SeasonClosed,
    detail: "the season closed before this event was written; it counts for all-time",
};

/// The dead letter of an update the store refuses for good.
pub(super) const REFUSED: Why =
    Why { code: RejectionCode::Unwritable, detail: "the store refuses writes to this board" };

impl Writer {
    /// Sends `rejects` to the dead-letter topic, retrying what was not acknowledged.
    pub(super) async fn dead_letter(&mut self, rejects: &[Reject]) -> Result<(), Abandoned> {
        if rejects.is_empty() {
            return Ok(());
        }
        if self.replay.is_some() {
            // The live workers dead-lettered these when the records first came; counted, and
            // the ones signed with a key the replay lacks fail the recovery ([`crate::recovery`]).
            metrics::counter!("ingest_replay_rejects_total").increment(rejects.len() as u64);
            self.shared.counters.add(Counter::DeadLettered, rejects.len() as u64);
            let unverifiable = rejects.iter().filter(|r| r.record.unverifiable).count();
            self.shared.counters.add(Counter::Unverifiable, unverifiable as u64);
            return Ok(());
        }
        let mut sent = vec![false; rejects.len()];
        while let Err(e) = self.dead_letters.send(rejects, &mut sent).await {
            // The broker is unreachable or refuses: offsets stay where they are until it accepts.
            metrics::counter!("ingest_dead_letter_failures_total").increment(e.failed as u64);
            if !self.retry.wait(&self.shared.health, Step::DeadLetter, Failure::Transient, &e).await {
                return Err(Abandoned);
            }
        }
        self.retry.succeeded(&self.shared.health, Step::DeadLetter);
        self.shared.counters.add(Counter::DeadLettered, rejects.len() as u64);
        for r in rejects {
            metrics::counter!("ingest_events_dead_lettered_total", "reason" => r.rejection.code.as_str()).increment(1);
        }
        Ok(())
    }

    /// Dead-letters the records behind the events at `sources` whose (board,
    /// player) is in `keys`, for `why`.
    pub(super) async fn set_aside(
        &mut self,
        batch: &Batch,
        prepared: &Prepared,
        sources: &[usize],
        keys: &BoardPlayers<'_>,
        why: Why,
    ) -> Result<(), Abandoned> {
        if keys.is_empty() {
            return Ok(());
        }
        let rejects: Vec<Reject> = sources
            .iter()
            .map(|&i| prepared.event(batch, i))
            .filter(|e| keys.contains(&BoardPlayer::from(*e)))
            .map(|e| Reject {
                record: batch.accepted[e.record].clone(),
                rejection: Rejection::new(why.code, why.detail),
            })
            .collect();
        self.dead_letter(&rejects).await
    }
}

/// One dead letter per record behind the events at `stuck`, with why its board is unwritable.
pub(super) fn unwritable_letters(
    batch: &Batch,
    prepared: &Prepared,
    stuck: &[usize],
    unwritable: &Unwritable,
) -> Vec<Reject> {
    let mut records = HashSet::new();
    stuck
        .iter()
        .map(|&i| prepared.event(batch, i))
        .filter(|e| records.insert(e.record))
        .map(|e| {
            let why = unwritable.get(base_board(&e.board)).cloned().unwrap_or_default();
            Reject {
                record: batch.accepted[e.record].clone(),
                rejection: Rejection::new(RejectionCode::Unwritable, why),
            }
        })
        .collect()
}
