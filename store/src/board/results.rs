//! Season results: what a closed season leaves for reward services, read
//! from the frozen season, and the registry's note of what was produced.
//!
//! # Never lost, never early
//! Closing a season records, in the same compare-and-set as `closed_at`, that
//! revision 1 of its result is due (an amendment records the next one):
//! [`SeasonEntry::result_due`]. Whoever produces it (any closer, on any pass)
//! reads the frozen season, produces the record, waits for the broker's
//! acknowledgement, then records the revision produced
//! ([`Router::result_produced`], which only ever raises it). A closer that
//! dies anywhere in between leaves the revision due, and the next pass of
//! any closer produces it again: at least once, with the same `id` and
//! `revision`. Only closed seasons are due, and a closed season's content is
//! final (its fence), except by an amendment, which changes the content
//! before it raises the revision, so a revision is never produced with less
//! than its amendment. Retention keeps a closed season until its result is
//! produced.

use leaderboard_contract::BoardId;
use leaderboard_semantics::season_result::{ResultParts, SeasonResult};

use crate::board::seasons::SeasonEntry;
use crate::layout::keys;
use crate::layout::router::Router;
use crate::{Error, Result};

/// `PRODUCED registry id revision` → 1 when the entry now records `revision`
/// as produced, 0 when it recorded as much or more already (or is gone).
const PRODUCED: &str = season_entry_script!(
    r"
local revision = tonumber(ARGV[2])
if (entry['produced'] or 0) >= revision then return 0 end
entry['produced'] = revision
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
return 1
"
);

/// The seasons among `entries` (a registry, newest first) whose result is due, oldest first.
pub fn due(entries: &mut [SeasonEntry]) -> impl Iterator<Item = &mut SeasonEntry> {
    entries.iter_mut().rev().filter(|e| e.result_due())
}

impl Router {
    /// The result of the closed season `entry` of `board` at its current
    /// revision: its total and first `top` rows, read from the frozen season.
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails; [`Error::Corrupt`] for a season that is not closed.
    pub async fn season_result(&self, board: &BoardId, entry: &SeasonEntry, top: usize) -> Result<SeasonResult> {
        let closed_at_ms = entry
            .closed_at_ms
            .ok_or_else(|| Error::Corrupt(format!("season {} of {board} has no result: it is open", entry.id)))?;
        let stored = board.season(&entry.id);
        let page = self.top(&stored, 0, top as u64).await?;
        let parts = ResultParts {
            board: board.as_str(),
            season: &entry.id,
            revision: entry.revision,
            start_ms: entry.start_ms,
            end_ms: entry.end_ms,
            closed_at_ms,
            amended_at_ms: entry.amended_at_ms,
        };
        Ok(SeasonResult::new(&parts, page.total, page.entries))
    }

    /// Records that `revision` of season `id`'s result was acknowledged by
    /// the results topic; `false` when as much was recorded already.
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails.
    pub async fn result_produced(&self, board: &BoardId, id: &str, revision: u32) -> Result<bool> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(PRODUCED).arg(1).arg(keys::seasons(board)).arg(id).arg(revision);
        let raised: i64 = self.store().query(&cmd).await?;
        Ok(raised == 1)
    }
}
