//! Erased and banned players in the write stage: the registry's marks of a
//! batch's players read before it is prepared, and read again after its
//! writes, so an erasure or ban made meanwhile takes effect before the
//! batch's offsets are stored (`leaderboard_store::players`, "the race with
//! in-flight writes").

use std::collections::HashSet;
use std::time::{Duration, Instant};

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_store::failpoint::hold_here;
use leaderboard_store::marker::registry::{self, Marks};
use tracing::{info, warn};

use super::{Abandoned, Writer};
use crate::batch::Batch;
use crate::prepare::Prepared;

/// Longest a batch waits for an erasure of one of its players to finish its removal.
pub const ERASURE_WAIT: Duration = Duration::from_secs(30);

/// The registry is read again after this, doubling up to [`ERASURE_POLL_MAX`].
const ERASURE_POLL_MIN: Duration = Duration::from_millis(10);
const ERASURE_POLL_MAX: Duration = Duration::from_millis(200);

/// Whether `batch` holds a record stamped at or after the erasure of a player
/// whose erasure is still removing them.
fn has_new_start_of_unfinished_erasure(batch: &Batch, marks: &Marks) -> bool {
    batch.events.iter().any(|e| {
        marks.erased.contains_key(&e.player)
            && !marks.removed_at_version.contains_key(&e.player)
            && !marks.erased_before(&e.player, batch.accepted[e.record].timestamp_ms.unwrap_or(i64::MIN))
    })
}

impl Writer {
    /// The marks of `batch`'s players, retrying Redis failures by class. A
    /// registry that changed since the last batch clears the best-score
    /// cache: an erased player's cached best must not skip their new start.
    ///
    /// While an erasure of one of the batch's players is still removing
    /// them (its eraser has marked them and not finished), the batch waits,
    /// up to [`ERASURE_WAIT`]: that player's records stamped at or after the
    /// erasure are a new start, and written now, the removal still on its way
    /// would take them out again.
    pub(super) async fn player_marks(&mut self, batch: &Batch) -> Result<Marks, Abandoned> {
        let mut marks = self.read_marks(batch).await?;
        let started = Instant::now();
        let mut delay = ERASURE_POLL_MIN;
        while has_new_start_of_unfinished_erasure(batch, &marks) {
            if started.elapsed() >= ERASURE_WAIT {
                // An eraser that stopped short (`erasure_unfinished`): the new start is written;
                // erasing the player again finishes the erasure (and moves its time past it).
                warn!(waited = ?started.elapsed(), "an erasure is unfinished: a new start is written without it");
                metrics::counter!("ingest_unfinished_erasure_waits_total", "outcome" => "gave_up").increment(1);
                break;
            }
            hold_here("ingest::waiting_for_erasure");
            if !self.retry.pause(delay).await {
                return Err(Abandoned);
            }
            delay = (delay * 2).min(ERASURE_POLL_MAX);
            marks = self.read_marks(batch).await?;
            if !has_new_start_of_unfinished_erasure(batch, &marks) {
                metrics::counter!("ingest_unfinished_erasure_waits_total", "outcome" => "finished").increment(1);
            }
        }
        self.seen_version(marks.version);
        hold_here("ingest::after_player_marks");
        Ok(marks)
    }

    /// After `batch`'s writes, before its offsets are stored: when the
    /// registry changed since `read` was read, takes the players marked
    /// meanwhile out of every board and season the batch wrote them to.
    pub(super) async fn recheck_players(
        &mut self,
        batch: &Batch,
        prepared: &Prepared,
        read: &Marks,
    ) -> Result<(), Abandoned> {
        let version = loop {
            match registry::version(self.redis.router.store()).await {
                Ok(v) => break v,
                Err(e) => self.retry_after(&e).await?,
            }
        };
        if version == read.version {
            return Ok(());
        }
        let now = self.read_marks(batch).await?;
        let written = (0..batch.events.len() + prepared.seasonal.len()).map(|i| prepared.event(batch, i));
        let mut stale: HashSet<(&BoardId, &PlayerId)> = HashSet::new();
        for e in written {
            // Only the records stamped before a new erasure: later ones are the player's new start.
            let stamped = batch.accepted[e.record].timestamp_ms.unwrap_or(i64::MIN);
            let newly_erased =
                now.erased.get(&e.player) != read.erased.get(&e.player) && now.erased_before(&e.player, stamped);
            let newly_banned = now.ban_on(&e.player, &e.board).is_some() && read.ban_on(&e.player, &e.board).is_none();
            if newly_erased || newly_banned {
                stale.insert((&e.board, &e.player));
            }
        }
        if !stale.is_empty() {
            // No player id in the log: an erased player's id is not to be copied anywhere.
            info!(entries = stale.len(), "players erased or banned while this batch was written: removed again");
        }
        for (board, player) in stale {
            while let Err(e) = self.redis.router.remove_player(board, player).await {
                self.retry_after(&e).await?;
            }
        }
        self.seen_version(now.version);
        Ok(())
    }

    /// The registry's marks of `batch`'s players (each asked once), retrying Redis failures by class.
    async fn read_marks(&mut self, batch: &Batch) -> Result<Marks, Abandoned> {
        let players: HashSet<&PlayerId> = batch.events.iter().map(|e| &e.player).collect();
        loop {
            match registry::marks(self.redis.router.store(), players.iter().copied()).await {
                Ok(marks) => return Ok(marks),
                Err(e) => self.retry_after(&e).await?,
            }
        }
    }

    /// Remembers the registry's `version`; a change clears the best-score cache.
    fn seen_version(&mut self, version: u64) {
        if self.players_version.is_some_and(|seen| seen != version) {
            self.shared.cache.clear();
        }
        self.players_version = Some(version);
    }
}
