//! Process plumbing shared by the binaries (ingest, api, loadgen, lb-admin):
//! structured logs, the process-wide Prometheus recorder, the SIGINT/SIGTERM
//! signal ([`cancel_on_shutdown_signal`]), how to reach Redis ([`RedisArgs`],
//! which lb-admin takes too), the store options every service takes
//! ([`StoreArgs`], with the season clock) and where the players log is
//! ([`PlayersLogArgs`], the api's and lb-admin's), with their Kafka client
//! settings ([`KafkaOptionsArgs`]).

use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use leaderboard_store::{LayoutSpec, RedisTarget, RouterOptions};
use tokio_util::sync::CancellationToken;

/// How to reach Redis: `--redis` and `--redis-ca`, the same for the services and lb-admin.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisArgs {
    /// Redis: a URL (`rediss://` for TLS), comma-separated cluster seed URLs (`cluster:` prefix
    /// for a single seed), or the Sentinels of a primary, `redis+sentinel://s1:26379,s2:26379/<service>`.
    #[arg(long, global = true, env = "LB_REDIS_URL", default_value = "redis://127.0.0.1:6379", hide_env_values = true)]
    pub redis: String,
    /// `rediss://`: a PEM file of the CA certificates to verify Redis with, instead of the public
    /// web roots (single servers and clusters).
    #[arg(long, global = true, env = "LB_REDIS_CA")]
    pub redis_ca: Option<std::path::PathBuf>,
}

impl RedisArgs {
    /// The parsed Redis target.
    ///
    /// # Errors
    /// When the URL list is empty or a Sentinel URL is incomplete.
    pub fn target(&self) -> Result<RedisTarget, leaderboard_store::Error> {
        RedisTarget::parse(&self.redis)
    }

    /// Connection options: the defaults, with `--redis-ca` read (once per process: it is kept
    /// for the process's lifetime, as every connection may need it).
    ///
    /// # Errors
    /// When `--redis-ca` cannot be read.
    pub fn store_options(&self) -> anyhow::Result<leaderboard_store::StoreOptions> {
        store_options(self.redis_ca.as_deref())
    }

    /// A connection of its own.
    ///
    /// # Errors
    /// A URL that does not parse, an unreadable CA file, or Redis unreachable.
    pub async fn connect(&self) -> anyhow::Result<leaderboard_store::Store> {
        let options = self.store_options()?;
        leaderboard_store::Store::connect(&self.target()?, options).await.context("connecting to redis")
    }
}

/// Where the leaderboards live and how new boards are laid out: the options
/// every binary shares, flattened into each one's command line.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// How to reach Redis.
    #[command(flatten)]
    pub connection: RedisArgs,
    /// Layout of boards: `single`, `hash:<shards>` or `range:<b1>,<b2>,...`. Each board records the
    /// layout it was created with; a process configured with another one gets an error naming both.
    #[arg(long, global = true, env = "LB_LAYOUT", default_value = "single")]
    pub layout: String,
    /// `range` layout: how long precomputed shard sizes are reused before a reader refreshes them.
    #[arg(long, global = true, env = "LB_SIZE_REFRESH", default_value = "1s", value_parser = humantime::parse_duration)]
    pub size_refresh: Duration,
    /// The clock seasons are decided by: `system`; for tests and demos `offset:<ms>` (skewed) or
    /// `sim:<anchor_ms>:<start_ms>:<speed>` (simulated, shared by every process of a run).
    #[arg(long, global = true, env = "LB_CLOCK", default_value = "system")]
    pub clock: leaderboard_semantics::Clock,
}

impl StoreArgs {
    /// The parsed Redis target.
    ///
    /// # Errors
    /// When the URL list is empty or a Sentinel URL is incomplete.
    pub fn target(&self) -> Result<RedisTarget, leaderboard_store::Error> {
        self.connection.target()
    }

    /// The parsed layout.
    ///
    /// # Errors
    /// When the layout does not parse.
    pub fn layout(&self) -> Result<LayoutSpec, leaderboard_store::Error> {
        self.layout.parse()
    }

    /// Connection options: the defaults, with `--redis-ca` read (once per process: it is kept
    /// for the process's lifetime, as every connection may need it).
    ///
    /// # Errors
    /// When `--redis-ca` cannot be read.
    pub fn store_options(&self) -> anyhow::Result<leaderboard_store::StoreOptions> {
        self.connection.store_options()
    }

    /// The router's tuning.
    pub fn router_options(&self) -> RouterOptions {
        RouterOptions { size_refresh: self.size_refresh, ..RouterOptions::default() }
    }
}

/// The default connection options with the CA file `redis_ca` (`--redis-ca`) read, once per
/// process: every connection may need it, so it is kept for the process's lifetime.
///
/// # Errors
/// When the file cannot be read.
pub fn store_options(redis_ca: Option<&std::path::Path>) -> anyhow::Result<leaderboard_store::StoreOptions> {
    static CA: std::sync::OnceLock<&'static [u8]> = std::sync::OnceLock::new();
    let tls_root = match redis_ca {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| anyhow::anyhow!("--redis-ca {}: {e}", path.display()))?;
            Some(*CA.get_or_init(|| Box::leak(pem.into_boxed_slice())))
        }
        None => None,
    };
    Ok(leaderboard_store::StoreOptions { tls_root, ..leaderboard_store::StoreOptions::default() })
}

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Structured logs to stderr. `RUST_LOG` overrides `default_filter`;
/// `LB_LOG_FORMAT=json` switches to JSON lines (for containers).
pub fn init_tracing(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("LB_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Installs the process-wide Prometheus recorder once, with histogram buckets
/// per metric name, and returns its handle (the same handle on later calls).
///
/// # Errors
/// When another recorder was installed first, or a bucket list is empty.
pub fn install_recorder(buckets: &[(&str, &[f64])]) -> anyhow::Result<PrometheusHandle> {
    // A lock, not a check-then-set: two callers at once (tests in one process) must not both install.
    static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);
    let mut slot = HANDLE.lock().map_err(|_| anyhow::anyhow!("the recorder lock is poisoned"))?;
    if let Some(h) = slot.as_ref() {
        return Ok(h.clone());
    }
    let mut builder = PrometheusBuilder::new();
    for (name, values) in buckets {
        builder = builder.set_buckets_for_metric(Matcher::Full((*name).to_string()), values)?;
    }
    let handle = builder.install_recorder()?;
    *slot = Some(handle.clone());
    Ok(handle)
}

/// Cancels `shutdown` on SIGINT (Ctrl-C) or SIGTERM, after calling `on_signal` (each binary
/// says in its own words what stopping means for it). The task runs until the signal comes;
/// abort it once the work it guards is done, so a late signal does not fire into a finished run.
pub fn cancel_on_shutdown_signal(
    shutdown: CancellationToken,
    on_signal: impl FnOnce() + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        shutdown_signal().await;
        on_signal();
        shutdown.cancel();
    })
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the process"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Callers racing to install get the one recorder (tests install it from many threads).
    #[test]
    fn racing_callers_share_one_recorder() {
        let start = std::sync::Arc::new(std::sync::Barrier::new(8));
        let callers: Vec<_> = (0..8)
            .map(|_| {
                let start = start.clone();
                std::thread::spawn(move || {
                    start.wait();
                    install_recorder(&[("x_seconds", &[0.1, 1.0])]).is_ok()
                })
            })
            .collect();
        assert!(callers.into_iter().all(|c| c.join().expect("thread")), "a caller failed to get the recorder");
    }
}

/// Where the players log is (`leaderboard_players_log`: erasures and bans kept outside Redis): its
/// topic and how long a write may take. The brokers and client settings are each process's own Kafka flags.
#[derive(Debug, Clone, clap::Args)]
pub struct PlayersLogArgs {
    /// Compacted topic keeping the player registry (erasures and bans) outside Redis.
    #[arg(long, env = "LB_PLAYERS_TOPIC", default_value = leaderboard_contract::PLAYERS_TOPIC)]
    pub players_topic: String,
    /// How long a write to the players log may take before the change is reported as not kept.
    #[arg(long, env = "LB_PLAYERS_LOG_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub players_log_timeout: Duration,
}

/// Extra librdkafka settings (TLS, SASL): one flag for every binary with a Kafka client besides
/// ingest, which takes the same items ([`KafkaOption`]) and also refuses the settings it owns.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KafkaOptionsArgs {
    /// Extra librdkafka settings as `key=value` (TLS, SASL), repeatable; from the environment:
    /// comma-separated. `--kafka-option` is the earlier name.
    #[arg(
        long = "kafka-options",
        alias = "kafka-option",
        env = "LB_KAFKA_OPTIONS",
        value_delimiter = ',',
        value_parser = KafkaOption::parse,
        hide_env_values = true
    )]
    pub kafka_options: Vec<KafkaOption>,
}

impl KafkaOptionsArgs {
    /// The settings, without empty items.
    pub fn settings(&self) -> impl Iterator<Item = (&str, &str)> {
        KafkaOption::settings(&self.kafka_options)
    }
}

/// One `key=value` librdkafka setting; an empty item (as in `LB_KAFKA_OPTIONS=""`) sets nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaOption(pub Option<(String, String)>);

impl KafkaOption {
    /// Parses one item of `--kafka-options`.
    ///
    /// # Errors
    /// An item that is not `key=value`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Ok(Self(None));
        }
        match s.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok(Self(Some((k.trim().to_string(), v.trim().to_string())))),
            _ => Err(format!("expected key=value, got {s:?}")),
        }
    }

    /// The settings `options` make, without empty items.
    pub fn settings(options: &[Self]) -> impl Iterator<Item = (&str, &str)> {
        options.iter().filter_map(|o| o.0.as_ref().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}
