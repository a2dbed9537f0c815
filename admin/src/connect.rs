//! Reaching Redis: the `--redis` and `--redis-ca` flags, and the connection they make.
//!
//! Every command connects once with them; a replay's pipeline ([`crate::recover`])
//! makes connections of its own with the same flags.

use std::path::PathBuf;

use anyhow::Context as _;
use shard_router::Store;

/// How to reach Redis: the services' `--redis` and `--redis-ca`, with their environment variables.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisArgs {
    /// Redis (same syntax as the services' `--redis`).
    #[arg(long, global = true, env = "LB_REDIS_URL", default_value = "redis://127.0.0.1:6379", hide_env_values = true)]
    pub redis: String,
    /// `rediss://`: a PEM file of the CA certificates to verify Redis with (as the services' `--redis-ca`).
    #[arg(long, global = true, env = "LB_REDIS_CA")]
    pub redis_ca: Option<PathBuf>,
}

impl RedisArgs {
    /// A connection of its own.
    ///
    /// # Errors
    /// A URL that does not parse, an unreadable CA file, or Redis unreachable.
    pub async fn connect(&self) -> anyhow::Result<Store> {
        let target = shard_router::RedisTarget::parse(&self.redis)?;
        let options = leaderboard_runtime::store_options(self.redis_ca.as_deref())?;
        Store::connect(&target, options).await.context("connecting to redis")
    }
}
