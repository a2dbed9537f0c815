//! Giving a store that lost its registry (a wipe, a rollback) the erasures
//! and bans kept outside Redis (the players log, a snapshot file), and
//! taking the players they name out of whatever the store holds of them.
//!
//! Recovery runs it before it loads or replays anything: the replay then
//! drops an erased player's earlier records and a banned player's events as
//! the live workers do, and a restored file's rows of them are left out.

use leaderboard_contract::PlayerId;

use crate::Result;
use crate::layout::router::Router;
use crate::marker::registry::{self, PlayerMarks};
use crate::players::remove::Seasons;

/// What a give-back changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct GaveBack {
    /// Players whose erasure the registry lacked (or had an earlier time of).
    pub erasures: u64,
    /// Players whose ban the registry lacked.
    pub bans: u64,
}

impl Router {
    /// Gives the registry back what `marks` holds and it lacks
    /// ([`registry::give_back`]), then takes each player given an erasure out
    /// of every board and season and records the erasure finished, and each
    /// player given a ban out of the boards it covers.
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails (run it again: every step is idempotent).
    pub async fn give_back_registry(&self, marks: &[(PlayerId, PlayerMarks)]) -> Result<GaveBack> {
        let given = registry::give_back(self.store(), marks).await?;
        let mut gave = GaveBack::default();
        for ((player, m), given) in marks.iter().zip(given) {
            if given.erasure {
                self.remove_everywhere(player, |_| true, Seasons::All).await?;
                registry::finish_erasure(self.store(), player).await?;
                gave.erasures += 1;
            }
            if let (true, Some(ban)) = (given.ban, &m.ban) {
                if !given.erasure {
                    let seasons = if ban.closed_seasons { Seasons::All } else { Seasons::Open };
                    self.remove_everywhere(player, |board| ban.boards.covers(board), seasons).await?;
                    registry::touch(self.store()).await?;
                }
                gave.bans += 1;
            }
        }
        Ok(gave)
    }
}
