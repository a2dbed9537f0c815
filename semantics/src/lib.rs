//! What leaderboard answers mean, with no I/O: the rules a board ranks by,
//! season arithmetic, the clock seasons are decided by, ranks and lists, and
//! the in-memory oracle every layout is tested against.
//!
//! Nothing here talks to Redis or Kafka (the crate does not depend on a
//! client), so the semantics of the contract (`docs/contract.md`) can be read, tested and fuzzed on
//! their own; the store (`leaderboard-store`) encodes them in Redis and ingest
//! and the api apply them.
//!
//! Rank semantics follow `docs/contract.md#rank-semantics`: rank = 1 + players strictly above, ties
//! share a rank (on `earliest` boards ranks are positions), lists ordered by
//! ranking key descending (then time, on `earliest` boards) then player id
//! ascending.
//!
//! # Layout
//! - [`rules`]: board rules (order, ties, bounds) and the ranking key Redis holds.
//! - [`season`]: which season an event time belongs to, season ids and boundaries.
//! - [`season_result`]: the record a closed season leaves for reward services.
//! - [`clock`]: the system, offset or simulated clock seasons are decided by.
//! - [`model`]: the values read and written (updates, entries, pages,
//!   standings, lookups), board order, ranks and percentiles.
//! - [`tally`]: the `last` and `sum` operators: records' sources, sums, idempotency keys.
//! - [`oracle`]: the reference model.

pub mod clock;
pub mod model;
pub mod oracle;
pub mod rules;
pub mod season;
pub mod season_result;
pub mod tally;

pub use clock::Clock;
pub use model::{BoardStats, Entry, Listed, Lookup, MAX_LOOKUP, Page, ScoreUpdate, ShardStats, Standing};
pub use oracle::{Oracle, OracleBoard};
pub use rules::{Operator, Order, Rules, Ties};
pub use tally::{IdKey, Source};
