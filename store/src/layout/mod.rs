//! The layouts: how a board's players are spread over sorted sets.
//!
//! - [`spec`]: layout configuration; [`keys`]: key names and hash tags;
//!   [`member`]: how a player (and on `earliest` boards the time) is encoded.
//! - [`record`]: the layout and rules each board is stored with.
//! - [`router`]: the [`Router`](router::Router), one interface over every layout;
//!   [`lookup`]: standings of a list of players.
//! - [`single`], [`hash`], [`range`]: the layouts; [`shards`]: what the sharded
//!   ones share; [`scripts`]: the Lua scripts and their replies.
//! - [`tally`]: writes of `last` and `sum` boards, exactly once per record.

pub mod hash;
pub mod keys;
pub mod lookup;
pub mod member;
pub mod range;
pub mod record;
pub mod router;
pub(crate) mod scripts;
pub(crate) mod shards;
pub mod single;
pub mod spec;
pub mod tally;
