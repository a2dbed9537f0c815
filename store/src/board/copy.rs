//! One chunk of a copy (a range rebalance's or a layout migration's),
//! guarded against erasures and bans made while it runs.
//!
//! A chunk is read from the source and written to the target some time
//! later. An erasure or a ban in between removes the player from both sides,
//! and the write would then bring them back into the target. So a copy does
//! what a writer does with a batch ([`crate::players`], "the race with
//! in-flight writes"):
//! 1. it reads the registry's version *before* the `ZSCAN`;
//! 2. after it, it reads the marks of the chunk's players and leaves out
//!    those [`Marks::stale_in_copy`] names: banned from the board, or erased
//!    by an erasure whose removal had not finished by step 1;
//! 3. after the write it reads the version again; when it moved, it reads the
//!    marks again and takes the players they now name out of the board.
//!
//! An erasure marked after step 3's read removes the player after the write,
//! so its removal takes the copy away. One marked before it is seen in step 3:
//! if its removal finished before step 1, the source held no record of the
//! player from before it when the chunk was read, and what the chunk holds is
//! a new start, which is copied; otherwise the player leaves the target.

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::ScoreUpdate;

use crate::Result;
use crate::board::scan::{ScanPage, scan_page};
use crate::failpoint::hold_here;
use crate::layout::router::Router;
use crate::marker::registry::{self, Marks};

/// A chunk read from a copy's source, with what the registry said of its players.
pub(crate) struct Chunk {
    /// The `ZSCAN` cursor after it (`0`: the key is done).
    pub cursor: u64,
    /// The members to write to the target: the chunk without the players left out.
    pub updates: Vec<ScoreUpdate>,
    /// The registry's version before the `ZSCAN`.
    since: u64,
    /// The registry's version when the chunk's marks were read.
    checked: u64,
}

impl Router {
    /// Reads one chunk of `key` (a shard of `board`) from `cursor`, without
    /// the players a copy must leave out (module docs, steps 1 and 2).
    pub(crate) async fn read_chunk(&self, board: &BoardId, key: &str, cursor: u64, count: usize) -> Result<Chunk> {
        let since = registry::version(self.store()).await?;
        let ScanPage { cursor, mut updates } = scan_page(self.store(), board, key, cursor, count).await?;
        let marks = registry::marks(self.store(), updates.iter().map(|u| &u.player)).await?;
        updates.retain(|u| !marks.stale_in_copy(&u.player, board, since));
        hold_here("store::copy_before_write");
        Ok(Chunk { cursor, updates, since, checked: marks.version })
    }

    /// After `chunk` was written to the target: when the registry changed
    /// since its marks were read, takes the players an erasure or a ban now
    /// reaches out of `board` (module docs, step 3). Returns how many.
    pub(crate) async fn recheck_chunk(&self, board: &BoardId, chunk: &Chunk) -> Result<usize> {
        if registry::version(self.store()).await? == chunk.checked {
            return Ok(0);
        }
        let marks: Marks = registry::marks(self.store(), chunk.updates.iter().map(|u| &u.player)).await?;
        let stale: Vec<&PlayerId> =
            chunk.updates.iter().map(|u| &u.player).filter(|p| marks.stale_in_copy(p, board, chunk.since)).collect();
        for player in &stale {
            self.remove_player(board, player).await?;
        }
        Ok(stale.len())
    }
}
