//! The shard-router: how leaderboards live in Redis sorted sets.
//!
//! ingest writes and api reads only through [`Router`], which implements one
//! interface over three layouts ([`LayoutSpec`]):
//!
//! | layout | write batch (round trips) | standing | top-N page | around | lookup of ≤ 100 | memory per player |
//! |---|---|---|---|---|---|---|
//! | `single` | 1 | 1 | 1 | 1 | 1 | one sorted-set member |
//! | `hash:n` | 1 (per node, parallel) | 2 | 1 (fan-out, merge) | 3 | 2 | one member |
//! | `range:b1,..` | 1 + 1 metadata check; +1-2 for players changing shard | 1 (fan-out) | 2 | 2 | 1 | one member |
//!
//! Every write batch also ends by re-reading the board's record (one `SET NX
//! GET`), so a layout migration that starts mid-batch receives the batch
//! ([`migrate`]).
//!
//! Memory: every layout stores exactly one sorted-set member per player (the
//! id complemented plus one byte, see [`member`]) and nothing per player
//! besides; `range` adds one small metadata key per board. Boards with
//! `ties: earliest` ([`rules`]) add 8 bytes to each member and one entry per
//! player in a per-shard index (about 1.8x the memory of a `shared` board;
//! `docs/rules.md`). Each board's rules (order, ties, bounds) are in its record;
//! the layouts store ranking keys, so the tables above hold for every rule. Rank semantics
//! follow `DESIGN.md`: rank = 1 + players strictly above, ties share a rank
//! (on `earliest` boards ranks are positions), lists ordered by ranking key
//! descending (then time, on `earliest` boards) then player id ascending, across shard
//! boundaries too. `range` standings use precomputed shard sizes; see
//! [`range`] for the protocol that keeps moves safe for concurrent readers and
//! for the rank-error bound.
//!
//! [`Oracle`] is the in-memory reference every layout is tested against.
//!
//! # Layout
//! - [`spec`]: layout configuration; [`keys`]: key names and hash tags; [`board_record`]: the layout each board is stored with.
//! - [`store`]: single Redis, Redis Cluster or Sentinel-managed connections; [`sentinel`]: following a failover;
//!   [`read_from`]: reads from the primary or its replicas; [`watermark`]: what ingest has applied, stored beside the data.
//! - [`router`]: the [`Router`]; [`single`], [`hash`], [`range`]: the layouts; [`lookup`]: standings of a list of players.
//! - [`range_meta`], [`rebalance`]: range generations, adaptive boundaries, online rebalance.
//! - [`migrate`]: moving a live board between layouts; [`snapshot`]: reading a board out and writing it back.
//! - [`epoch`]: the marker that tells a wiped store from the one processes knew; [`applied`]: how far the
//!   store has applied the topic, which tells a store that went back in time.
//! - [`rules`]: board rules (order, ties, bounds) and how Redis holds them; [`season`]: season arithmetic.
//! - [`model`]: values read and written; [`oracle`]: the reference model.

pub mod applied;
pub mod audit;
pub mod board_record;
pub mod clock;
pub mod epoch;
mod error;
pub mod hash;
pub mod keys;
pub mod lookup;
pub mod member;
pub mod migrate;
pub mod model;
pub mod oracle;
pub mod range;
pub mod range_meta;
pub mod read_from;
pub mod rebalance;
pub mod router;
pub mod rules;
mod scripts;
pub mod season;
pub mod seasons;
pub mod sentinel;
pub mod single;
pub mod snapshot;
pub mod spec;
pub mod store;
pub mod watermark;

pub use clock::Clock;
pub use error::{Error, Failure, Result};
pub use lookup::{Listed, Lookup, MAX_LOOKUP};
pub use migrate::MigrationOutcome;
pub use model::{BoardStats, Entry, Page, ScoreUpdate, ShardStats, Standing};
pub use oracle::{Oracle, OracleBoard};
pub use read_from::ReadFrom;
pub use rebalance::{RebalanceOptions, RebalanceOutcome, equal_population};
pub use router::{Closed, Router, RouterOptions};
pub use rules::{Order, Rules, Ties};
pub use spec::LayoutSpec;
pub use store::{RedisTarget, Store, StoreOptions};
