//! Players as a whole, across every board: erasure (a GDPR request) and bans.
//!
//! What is remembered of erased and banned players (ids, times, ban scopes;
//! never their scores) is the registry, a store-wide marker
//! ([`crate::marker::registry`]).
//! - [`remove`]: taking a player out of a board's storage, whatever its
//!   layout, and out of every board and season at once.
//! - [`standings`]: where a player stands across the store.
//! - [`give_back`]: giving a store that lost its registry the marks kept
//!   outside Redis, and taking the players they name out again.
//!
//! # The race with in-flight writes
//! An eraser marks the player (raising the version) and then removes them
//! everywhere. A writer reads the marks of its batch's players with the
//! version before writing, and the version again after its writes are
//! acknowledged. A batch that read the marks after the mark skips the player;
//! one that read them before either finished writing before the mark (so the
//! removal, which follows the mark, takes its writes away) or sees another
//! version afterwards and removes the newly marked players from the boards
//! it wrote itself, before its offsets are stored. No order of the two
//! leaves an erased player's earlier records applied (`docs/players.md`).

pub mod give_back;
pub mod remove;
pub mod standings;
