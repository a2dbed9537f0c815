//! Erasing and banning a player: taking them out of every board and season
//! at once ([`crate::board::player`] takes them out of one).
//!
//! A closed season a removal reaches records when it was amended (its
//! entry's `amended_at_ms`).

use leaderboard_contract::{BoardId, PlayerId};

use crate::Result;
use crate::board::rebalance::now_ms;
use crate::layout::record;
use crate::layout::router::Router;
use crate::marker::registry::{self, Ban};

/// Which of a board's seasons a removal reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seasons {
    /// Open seasons only: closed ones stay as they closed.
    Open,
    /// Every season, closed ones included (they are amended).
    All,
}

/// An erasure: when (Redis's clock), and where the player was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    /// The erasure's time, in milliseconds since the Unix epoch: records stamped before it are never applied.
    pub at_ms: i64,
    /// Where the player was taken out of.
    pub removed: Removed,
}

/// Where a removal everywhere found the player.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// The boards and seasons (by stored name) the player was taken out of (where they had a score).
    pub boards: Vec<BoardId>,
    /// The closed seasons among them (amended).
    pub amended: Vec<BoardId>,
}

impl Router {
    /// Erases `player` (docs/contract.md#players-erasure-and-bans): marks them
    /// erased now (by Redis's clock) first, then removes them from every board and
    /// season, closed ones included, then records the removal as finished,
    /// raising the registry's version again (readers that see it see the
    /// removal). The order is what makes a batch or a copy written meanwhile
    /// safe (module docs of [`crate::players`]).
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails (run it again: both steps are idempotent).
    pub async fn erase_player(&self, player: &PlayerId) -> Result<Erased> {
        let at_ms = registry::mark_erased(self.store(), player).await?;
        crate::failpoint::hold_here("store::erasure_after_mark");
        let removed = self.remove_everywhere(player, |_| true, Seasons::All).await?;
        registry::finish_erasure(self.store(), player).await?;
        Ok(Erased { at_ms, removed })
    }

    /// Bans `player` with `ban`, recorded first, then removes them from the
    /// boards it covers (and their closed seasons when `ban.closed_seasons`).
    ///
    /// # Errors
    /// [`crate::Error::Config`] for a ban beyond its bounds; [`crate::Error::Redis`] when Redis fails.
    pub async fn ban_player(&self, player: &PlayerId, ban: &Ban) -> Result<Removed> {
        registry::ban(self.store(), player, ban).await?;
        let seasons = if ban.closed_seasons { Seasons::All } else { Seasons::Open };
        let removed = self.remove_everywhere(player, |board| ban.boards.covers(board), seasons).await?;
        registry::touch(self.store()).await?;
        Ok(removed)
    }

    /// Removes `player` from every board `covers` accepts and from their
    /// seasons (closed ones only with [`Seasons::All`]).
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails; [`crate::Error::Corrupt`] for an unreadable registry of seasons.
    pub async fn remove_everywhere(
        &self,
        player: &PlayerId,
        covers: impl Fn(&BoardId) -> bool,
        seasons: Seasons,
    ) -> Result<Removed> {
        let mut removed = Removed::default();
        for board in record::boards(self.store()).await? {
            if !covers(&board) {
                continue;
            }
            if self.remove_player(&board, player).await? {
                removed.boards.push(board.clone());
            }
            for season in self.seasons(&board).await? {
                let stored = board.season(&season.id);
                if !season.closed() {
                    if self.remove_player(&stored, player).await? {
                        removed.boards.push(stored);
                    }
                    continue;
                }
                // A closed season is marked amended before the player leaves it, so a run cut
                // short between the two steps is finished by the next (it finds them still there);
                // its result's next revision is due once they are out (a run cut short after
                // that step finds them out, and still being taken out).
                if seasons == Seasons::Open {
                    continue;
                }
                if self.standing(&stored, player).await?.is_none() {
                    if season.amending.iter().any(|p| p == player.as_str()) {
                        self.amended_season(&board, &season.id, player.as_str()).await?;
                    }
                    continue;
                }
                self.amend_season(&board, &season.id, now_ms().cast_signed(), Some(player.as_str())).await?;
                self.remove_player(&stored, player).await?;
                self.amended_season(&board, &season.id, player.as_str()).await?;
                removed.amended.push(stored.clone());
                removed.boards.push(stored);
            }
        }
        Ok(removed)
    }
}
