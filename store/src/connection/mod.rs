//! Talking to Redis: one server, a Redis Cluster, or a primary under Sentinel.
//!
//! - [`options`]: timeouts and TLS roots; [`reply`]: decoding replies;
//!   [`slot`]: which Cluster slot a key lives in.
//! - [`sentinel`]: following a Sentinel-managed primary across failovers.
//! - [`read_from`]: reads from the primary or its replicas.
//! - [`store`]: the [`Store`](store::Store) every other part talks through.
//! - [`node`]: keys kept once per Cluster primary.

pub mod node;
pub mod options;
pub mod read_from;
pub(crate) mod reply;
pub mod sentinel;
pub mod slot;
pub mod store;
