//! Helpers shared by the integration tests of every crate.
//!
//! Tests talk to the real servers that `scripts/infra.sh up` starts; their
//! addresses come from the environment that script writes, with the script's
//! defaults as fallback. Every test uses names of its own ([`unique`]) so tests
//! run in parallel against the same servers. A test that stops, kills or rolls
//! back a Redis starts one of its own ([`PrivateRedis`], [`PrivateSentinel`],
//! [`PrivateCluster`]), so no other test is disturbed.
//!
//! Everything is re-exported here, flat (`testkit::unique`, `testkit::PrivateRedis`):
//! the modules are where things live, not paths the tests spell.
//!
//! # Layout
//! - `servers`: where the shared servers are (`LB_REDIS_URL`, `LB_KAFKA_BROKERS`, ...).
//! - `names`: names and ports no other test uses.
//! - `redis`: [`PrivateRedis`], one Redis of a test's own, and its [`Checkpoint`]s.
//! - `sentinel`: [`PrivateSentinel`], a primary, two replicas and three Sentinels.
//! - `cluster`: [`PrivateCluster`], a Redis Cluster of three primaries and their replicas.
//! - `nodes`: starting `redis-server` processes and signalling them, for the three above.
//! - `inspect`: what a Redis node says of itself (`redis-cli`: command counts, keys, role).
//! - `pki`: [`TestPki`], a CA and a certificate for the servers a test runs with TLS.
//! - `hold`: [`FailHold`], holding a task at a fail point until the test releases it.

// Test helpers fail the test by panicking, with a message saying what is missing.
#![allow(clippy::missing_panics_doc)]

mod cluster;
mod hold;
mod inspect;
mod names;
mod nodes;
mod pki;
mod redis;
mod sentinel;
mod servers;

pub use cluster::PrivateCluster;
pub use hold::FailHold;
pub use inspect::{command_calls, is_replica, keys_matching, replication_info};
pub use names::{free_port, unique};
pub use pki::TestPki;
pub use redis::{Checkpoint, PrivateRedis};
pub use sentinel::PrivateSentinel;
pub use servers::{brokers, cluster_urls, ports_of, redis_url, redis_user_url, sentinel_url};
