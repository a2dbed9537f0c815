//! The store: how leaderboards live in Redis sorted sets.
//!
//! ingest writes and the api reads only through [`Router`], which implements
//! one interface over three layouts ([`LayoutSpec`]):
//!
//! | layout | write batch (round trips) | standing | top-N page | around | lookup of ≤ 100 | memory per player |
//! |---|---|---|---|---|---|---|
//! | `single` | 1 | 1 | 1 | 1 | 1 | one sorted-set member |
//! | `hash:n` | 1 (per node, parallel) | 2 | 1 (fan-out, merge) | 3 | 2 | one member |
//! | `range:b1,..` | 1 + 1 metadata check; +1-2 for players changing shard | 1 (fan-out) | 2 | 2 | 1 | one member |
//!
//! Every write batch also ends by re-reading the board's record (one `SET NX
//! GET`), so a layout migration that starts mid-batch receives the batch
//! ([`board::migrate`]).
//!
//! Memory: every layout stores exactly one sorted-set member per player (the
//! id complemented plus one byte, see [`layout::member`]) and nothing per
//! player besides; `range` adds one small metadata key per board. Boards with
//! `ties: earliest` add 8 bytes to each member and one entry per player in a
//! per-shard index (about 1.8x the memory of a `shared` board;
//! `docs/rules.md`). Each board's rules (order, ties, bounds) are in its
//! record; the layouts store ranking keys, so the tables above hold for every
//! rule. What ranks, ties and lists mean is in `leaderboard-semantics`, which
//! has no I/O; `range` standings use precomputed shard sizes, see
//! [`layout::range`] for the protocol that keeps moves safe for concurrent
//! readers and for the rank-error bound.
//!
//! # Layout
//! Each folder depends only on the ones listed before it.
//! - [`connection`]: single Redis, Redis Cluster or Sentinel-managed
//!   connections ([`Store`]), following a failover, reads from the primary or
//!   its replicas, and keys kept once per Cluster primary.
//! - [`marker`]: store-wide markers: the epoch that tells a wiped store from
//!   the one processes knew, the loss note, the applied offsets that tell a
//!   store that went back in time, the freshness watermark, the audit log.
//! - [`layout`]: the [`Router`] and the three layouts: key names, the member
//!   encoding, each board's record, the Lua scripts, and the range layout's
//!   metadata, reads and writes.
//! - [`board`]: a board's lifecycle over the router: range rebalances,
//!   migrations between layouts, seasons, snapshots.
//! - [`players`]: players across every board: the registry of erasures and
//!   bans, and removing a player from every board and season.

pub mod board;
pub mod connection;
mod error;
pub mod failpoint;
pub mod layout;
pub mod marker;
pub mod players;

pub use board::migrate::MigrationOutcome;
pub use board::rebalance::{RebalanceOptions, RebalanceOutcome, equal_population};
pub use connection::options::StoreOptions;
pub use connection::read_from::ReadFrom;
pub use connection::store::{RedisTarget, Store};
pub use error::{Error, Failure, Result};
pub use layout::router::{Closed, Router, RouterOptions};
pub use layout::spec::LayoutSpec;
pub use layout::tally::{Applied, Overflowed};
