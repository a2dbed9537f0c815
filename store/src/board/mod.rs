//! A board's lifecycle, over the [`Router`](crate::Router): operations that
//! move, split, close or copy a live board.
//!
//! - [`rebalance`]: a range board's adaptive boundaries and online rebalance.
//! - [`migrate`]: moving a live board between layouts.
//! - [`seasons`]: a board's seasons: opening, closing, retention.
//! - [`manual`]: the resets that make a `manual` board's seasons.
//! - [`results`]: what a closed season leaves for reward services.
//! - [`snapshot`]: reading a board out and writing it back.
//! - [`player`]: taking one player out of a board's storage.
//! - [`scan`]: reading a board's members in pages, which all of these share.
//! - [`copy`]: one chunk of a rebalance's or migration's copy, guarded
//!   against erasures and bans made while it runs.

/// A script over one season's registry entry (`KEYS[1]` the registry, `ARGV[1]` the season id):
/// the entry as `entry`, decoded, and 0 when there is none; then `$body`.
macro_rules! season_entry_script {
    ($body:literal) => {
        concat!(
            r"
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local entry = cjson.decode(raw)
",
            $body
        )
    };
}

mod copy;
pub mod manual;
pub mod migrate;
pub mod player;
pub mod rebalance;
pub mod results;
mod scan;
pub mod seasons;
pub mod snapshot;
