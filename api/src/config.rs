//! Configuration of the api, from flags and environment variables.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use leaderboard_store::{LayoutSpec, ReadFrom, RedisTarget};

/// The leaderboard HTTP API.
#[derive(Debug, Clone, Parser)]
#[command(name = "api", version, about)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "LB_API_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Serve `/metrics` (and the probes `/healthz`, `/readyz`, `/readyz/redis`) on this address
    /// too, plain HTTP, and take `/metrics` off `--addr`: a port for Prometheus and the kubelet
    /// that is never exposed to clients. Unset: `/metrics` is served on `--addr`.
    #[arg(long, env = "LB_API_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); with `--tls-key`.
    #[arg(long, env = "LB_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, env = "LB_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Redis, the layout of boards, and the size refresh of `range` boards.
    #[command(flatten)]
    pub store: leaderboard_runtime::StoreArgs,
    /// Where reads go: `primary`, `replica` (replicas only), or `prefer-replica` (a replica,
    /// the primary while none answers). Needs a `redis+sentinel://` URL or a cluster to reach replicas.
    #[arg(long, env = "LB_READ_FROM", default_value = "prefer-replica")]
    pub read_from: ReadFrom,
    /// The Kafka topic ingest applies: its watermark dates every answer (`as_of`).
    #[arg(long, env = "LB_TOPIC", default_value = leaderboard_contract::SCORES_TOPIC)]
    pub topic: String,
    /// How often the watermark that dates answers (`as_of`) is read.
    #[arg(long, env = "LB_WATERMARK_REFRESH", default_value = "100ms", value_parser = humantime::parse_duration)]
    pub watermark_refresh: Duration,
    /// How often the store's epoch is checked (a store that lost its data is
    /// not served, 503 `store_lost`, until it is recovered), and Redis pinged
    /// (`/readyz/redis`, `api_redis_up`).
    #[arg(long, env = "LB_LOSS_CHECK", default_value = "1s", value_parser = humantime::parse_duration)]
    pub loss_check: Duration,
    /// How often the top-N cache of each active board is refreshed.
    #[arg(long, env = "LB_TOP_REFRESH", default_value = "1s", value_parser = humantime::parse_duration)]
    pub top_refresh: Duration,
    /// Rows kept in the top-N cache of each board.
    #[arg(long, env = "LB_TOP_CACHE_ROWS", default_value_t = 100)]
    pub top_cache_rows: u64,
    /// A board nobody asked for during this long leaves the cache. It bounds the Redis work one
    /// read can cause: `board_idle / top_refresh` refreshes (30 with the defaults), for at most
    /// `MAX_CACHED_BOARDS` boards at once; a read of a board that left is answered from Redis.
    #[arg(long, env = "LB_BOARD_IDLE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub board_idle: Duration,
    /// Longest time a request may take before it is answered 503 (the admin routes have
    /// `--admin-timeout` instead; the probes and `/metrics` none).
    #[arg(long, env = "LB_REQUEST_TIMEOUT", default_value = "1s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Longest time an admin request waits for its answer before it is answered 503 `timeout`.
    /// A change it started (erase, ban, lift a ban, delete a board, set rules) is finished
    /// anyway, in a task of its own: an erasure or a ban walks every board of the store.
    #[arg(long, env = "LB_ADMIN_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub admin_timeout: Duration,
    /// How long the api stays ready (`/readyz` 200) on its top-N cache alone while Redis does
    /// not answer: until the newest cached page was read this long ago. `0s`: ready only while
    /// Redis answers.
    #[arg(long, env = "LB_READY_STALE_FOR", default_value = "5m", value_parser = humantime::parse_duration)]
    pub ready_stale_for: Duration,
    /// Bearer tokens of the admin routes (`/v1/admin/`), comma-separated, each
    /// `name:sha256-hex-of-the-token:scope+scope` (e.g. `ops:9f86d0...:admin`). Only hashes are
    /// configured; several may be valid at once (rotation). None: every admin request gets 401.
    #[arg(long = "admin-tokens", alias = "admin-token", env = "LB_ADMIN_TOKENS", value_delimiter = ',')]
    pub admin_tokens: Vec<String>,
    /// Redis for the admin routes' writes, as a user that may write (default: `--redis`). With
    /// least-privilege users, `--redis` is the read-only `lb-api` and this the `lb-admin` user.
    #[arg(long, env = "LB_ADMIN_REDIS_URL", hide_env_values = true)]
    pub admin_redis: Option<String>,
    /// Kafka bootstrap servers of the players log: every erasure and ban the admin routes make is
    /// also kept there (`--players-topic`), so a store that loses its registry gets it back.
    /// Unset: erasures and bans live in Redis only, and a wiped store forgets them (a warning at
    /// start).
    #[arg(long, env = "LB_KAFKA_BROKERS")]
    pub brokers: Option<String>,
    /// Extra librdkafka settings (TLS, SASL).
    #[command(flatten)]
    pub kafka: leaderboard_runtime::KafkaOptionsArgs,
    /// The players log's topic.
    #[command(flatten)]
    pub players_log: leaderboard_runtime::PlayersLogArgs,
    /// Longest wait for one Redis reply.
    #[arg(long, env = "LB_REDIS_TIMEOUT", default_value = "500ms", value_parser = humantime::parse_duration)]
    pub redis_timeout: Duration,
    /// Requests served at once; more are shed with 503.
    #[arg(long, env = "LB_MAX_CONCURRENCY", default_value_t = 1024)]
    pub max_concurrency: usize,
    /// Requests per second allowed per client IP (0 = no per-client limit).
    #[arg(long, env = "LB_RATE_LIMIT", default_value_t = 0)]
    pub rate_limit_per_second: u64,
    /// Burst allowed per client IP above the rate.
    #[arg(long, env = "LB_RATE_LIMIT_BURST", default_value_t = 50)]
    pub rate_limit_burst: u32,
    /// Load balancers and proxies whose `X-Forwarded-For` names the client (addresses or
    /// CIDR blocks, comma-separated); from any other peer the header is ignored.
    #[arg(long, env = "LB_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Consecutive Redis failures that open the circuit breaker (it also opens when
    /// fewer than half of the calls of the last 5 s succeed).
    #[arg(long, env = "LB_BREAKER_FAILURES", default_value_t = 200)]
    pub breaker_failures: u32,
    /// How long a write to a client may make no progress before the connection is dropped
    /// (a client that stopped reading: `api::conn`).
    #[arg(long, env = "LB_WRITE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub write_timeout: Duration,
    /// Live streams.
    #[command(flatten)]
    pub watch: crate::watch::WatchOptions,
    /// How long the breaker stays open before letting a probe through (1 s to 30 s; grows, with jitter, up to 30 s).
    #[arg(long, env = "LB_BREAKER_OPEN", default_value = "1s", value_parser = humantime::parse_duration)]
    pub breaker_open: Duration,
}

/// A configuration rule that does not hold.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The layout or Redis target does not parse.
    #[error("{0}")]
    Router(#[from] leaderboard_store::Error),
    /// A range rule.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// The certificate and key to serve HTTPS with, when both are given.
    pub fn tls_files(&self) -> Option<crate::tls::TlsFiles> {
        Some(crate::tls::TlsFiles { cert: self.tls_cert.clone()?, key: self.tls_key.clone()? })
    }

    /// Checks the rules and returns the parsed layout and Redis target.
    ///
    /// # Errors
    /// [`ConfigError`] naming the broken rule.
    pub fn validate(&self) -> Result<(LayoutSpec, RedisTarget), ConfigError> {
        let layout = self.store.layout()?;
        let target = self.store.target()?;
        if !(1..=1000).contains(&self.top_cache_rows) {
            return Err(ConfigError::Invalid("--top-cache-rows must be 1..=1000".into()));
        }
        if self.top_refresh.is_zero()
            || self.request_timeout.is_zero()
            || self.admin_timeout.is_zero()
            || self.breaker_open.is_zero()
            || self.watermark_refresh.is_zero()
            || self.loss_check.is_zero()
            || self.write_timeout.is_zero()
        {
            return Err(ConfigError::Invalid("durations must be positive".into()));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(30)).contains(&self.breaker_open) {
            return Err(ConfigError::Invalid("--breaker-open must be 1s..=30s".into()));
        }
        if self.metrics_addr == Some(self.addr) && self.addr.port() != 0 {
            return Err(ConfigError::Invalid("--metrics-addr must differ from --addr".into()));
        }
        self.watch.validate().map_err(ConfigError::Invalid)?;
        if self.max_concurrency == 0 || self.breaker_failures == 0 {
            return Err(ConfigError::Invalid("--max-concurrency and --breaker-failures must be positive".into()));
        }
        Ok((layout, target))
    }

    /// The defaults, as the binary would see them with no flags or environment.
    pub fn defaults() -> Self {
        Self::parse_from(["api"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_do_not() {
        assert!(Config::defaults().validate().is_ok());
        let bad = |args: &[&str]| {
            Config::try_parse_from(std::iter::once("api").chain(args.iter().copied()))
                .map_or(true, |c| c.validate().is_err())
        };
        assert!(bad(&["--layout", "hash:0"]));
        assert!(bad(&["--top-cache-rows", "0"]));
        assert!(bad(&["--max-concurrency", "0"]));
        assert!(bad(&["--top-refresh", "0s"]));
        assert!(bad(&["--admin-timeout", "0s"]));
        assert!(bad(&["--metrics-addr", "not-an-addr"]));
        assert!(bad(&["--addr", "127.0.0.1:9000", "--metrics-addr", "127.0.0.1:9000"]));
        assert!(bad(&["--breaker-open", "200ms"]));
        assert!(bad(&["--addr", "not-an-addr"]));
        assert!(bad(&["--write-timeout", "0s"]));
        assert!(bad(&["--watch-max-streams", "0"]));
        assert!(bad(&["--watch-heartbeat", "10ms"]));
    }
}
