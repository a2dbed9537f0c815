//! The Redis connection a router talks through: one server or a Redis Cluster.
//!
//! Callers group commands by hash tag: every [`redis::Pipeline`] handed to
//! [`Store::run_all`] touches keys of one slot only. The pipelines run
//! concurrently, so a batch that spans several shards costs one round trip to
//! each node involved, in parallel, on either kind of deployment.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Pipeline, Value};

use crate::connection::options::{StoreOptions, manager_config};
use crate::connection::read_from::ReadFrom;
use crate::connection::sentinel::{Role, SentinelConnection, SentinelTarget};
use crate::connection::slot::slot_of;
use crate::{Error, Result};

/// Where Redis is: one server, the seed nodes of a cluster, or the Sentinels of a primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// A single Redis server, e.g. `redis://127.0.0.1:6379`.
    Single(String),
    /// Seed nodes of a Redis Cluster.
    Cluster(Vec<String>),
    /// A primary with replicas under Sentinel, e.g. `redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/lb`.
    Sentinel(SentinelTarget),
}

impl RedisTarget {
    /// Parses a comma-separated list of URLs: one URL is a single server,
    /// several are cluster seed nodes. Prefix with `cluster:` to use a cluster
    /// through a single seed node. `redis+sentinel://h1:p1,h2:p2/service` names
    /// the Sentinels of a primary ([`SentinelTarget`]).
    ///
    /// # Errors
    /// [`Error::InvalidLayout`] when the list is empty or a Sentinel URL is incomplete.
    pub fn parse(urls: &str) -> Result<Self> {
        if let Some(sentinel) = SentinelTarget::parse(urls.trim()) {
            return sentinel.map(Self::Sentinel);
        }
        let (cluster, list) = match urls.strip_prefix("cluster:") {
            Some(rest) => (true, rest),
            None => (false, urls),
        };
        let urls: Vec<String> = list.split(',').map(str::trim).filter(|u| !u.is_empty()).map(String::from).collect();
        match urls.as_slice() {
            [] => Err(Error::InvalidLayout("no redis url given".into())),
            [one] if !cluster => Ok(Self::Single(one.clone())),
            _ => Ok(Self::Cluster(urls)),
        }
    }
}

/// A client for one server's URL, trusting `options.tls_root` for `rediss://` when given.
fn single_client(url: &str, options: StoreOptions) -> Result<redis::Client> {
    install_crypto();
    Ok(match options.tls_root {
        Some(ca) => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates { client_tls: None, root_cert: Some(ca.to_vec()) },
        )?,
        None => redis::Client::open(url)?,
    })
}

/// rustls needs one process-wide crypto provider for `rediss://`: `ring` (installing twice is harmless).
fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A cheap-to-clone handle on Redis; clones share the underlying connections.
#[derive(Clone)]
pub enum Store {
    /// One server, through a reconnecting multiplexed connection.
    Single(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
    /// The primary the Sentinels name, followed across failovers.
    Sentinel(SentinelConnection),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Single(_) => "Store::Single",
            Self::Cluster(_) => "Store::Cluster",
            Self::Sentinel(_) => "Store::Sentinel",
        })
    }
}

impl Store {
    /// Connects to `target`.
    ///
    /// # Errors
    /// [`Error::Redis`] when the URL is invalid or no server answers in time.
    pub async fn connect(target: &RedisTarget, options: StoreOptions) -> Result<Self> {
        match target {
            RedisTarget::Single(url) => {
                let client = single_client(url, options)?;
                Ok(Self::Single(ConnectionManager::new_with_config(client, manager_config(options)).await?))
            }
            RedisTarget::Cluster(urls) => {
                let client = cluster_builder(urls, options).build()?;
                Ok(Self::Cluster(client.get_async_connection().await?))
            }
            RedisTarget::Sentinel(_) if options.tls_root.is_some() => {
                Err(Error::Config("a private CA (--redis-ca) is not supported with redis+sentinel:// yet".into()))
            }
            RedisTarget::Sentinel(target) => Ok(Self::Sentinel(SentinelConnection::connect(target, options).await?)),
        }
    }

    /// Like [`Store::connect`], but a single server is connected on first use,
    /// so a service can start (and report itself not ready) while Redis is
    /// down. A cluster still needs a reachable seed node to learn its slots.
    ///
    /// # Errors
    /// [`Error::Redis`] when the URL is invalid or no cluster node answers.
    pub async fn connect_lazy(target: &RedisTarget, options: StoreOptions) -> Result<Self> {
        match target {
            RedisTarget::Single(url) => {
                let client = single_client(url, options)?;
                Ok(Self::Single(ConnectionManager::new_lazy_with_config(client, manager_config(options))?))
            }
            RedisTarget::Cluster(_) | RedisTarget::Sentinel(_) => Self::connect(target, options).await,
        }
    }

    /// A connection for reads under `policy` ([`ReadFrom`]); single servers
    /// are connected on first use, as with [`Store::connect_lazy`].
    ///
    /// # Errors
    /// [`Error::Config`] for `replica` on a single URL (it has no replicas);
    /// [`Error::Redis`] as for [`Store::connect`].
    pub async fn connect_reader(target: &RedisTarget, policy: ReadFrom, options: StoreOptions) -> Result<Self> {
        match (target, policy) {
            (_, ReadFrom::Primary) | (RedisTarget::Single(_), ReadFrom::PreferReplica) => {
                Self::connect_lazy(target, options).await
            }
            (RedisTarget::Single(_), ReadFrom::Replica) => Err(Error::Config(
                "reading from replicas needs them named: a redis+sentinel:// URL or a cluster".into(),
            )),
            (RedisTarget::Cluster(urls), _) => {
                let client = cluster_builder(urls, options)
                    .read_routing_strategy(crate::connection::read_from::StickyReplica)
                    .build()?;
                Ok(Self::Cluster(client.get_async_connection().await?))
            }
            (RedisTarget::Sentinel(target), policy) => {
                let role = Role::Replica { fallback: policy == ReadFrom::PreferReplica };
                Ok(Self::Sentinel(SentinelConnection::connect_as(target, role, options).await?))
            }
        }
    }

    /// Changes whenever this handle starts talking to another node (a
    /// Sentinel connection switching after a failover or a lost replica), so
    /// a reader can tell whether two reads came from the same node. Always 0
    /// for single servers and clusters (the cluster client routes per command).
    pub fn epoch(&self) -> u64 {
        match self {
            Self::Sentinel(s) => s.epoch(),
            Self::Single(_) | Self::Cluster(_) => 0,
        }
    }

    /// Upkeep for a reader: a Sentinel replica reader serving from the
    /// primary goes back to a replica if one answers now. Returns whether it switched.
    pub async fn return_to_replica(&self) -> bool {
        match self {
            Self::Sentinel(s) => s.return_to_replica().await,
            Self::Single(_) | Self::Cluster(_) => false,
        }
    }

    /// Whether this is a cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// Runs one command.
    ///
    /// # Errors
    /// [`Error::Redis`] on a connection or server error.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T> {
        Ok(match self {
            Self::Single(con) => cmd.query_async(&mut con.clone()).await?,
            Self::Cluster(con) => cmd.query_async(&mut con.clone()).await?,
            Self::Sentinel(s) => s.run(|mut con| async move { cmd.query_async(&mut con).await }).await?,
        })
    }

    /// Runs one read command on the primary that serves `key`: on a Cluster
    /// whose reads go to replicas, for a read that must not meet replicas
    /// whose lags differ; elsewhere like [`Store::query`].
    ///
    /// # Errors
    /// [`Error::Redis`] on a connection or server error.
    pub async fn query_primary(&self, key: &str, cmd: &Cmd) -> Result<Value> {
        use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
        match self {
            Self::Cluster(con) => {
                let route = Route::new(slot_of(key), SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                Ok(con.clone().route_command(cmd.clone(), routing).await?)
            }
            _ => self.query(cmd).await,
        }
    }

    /// Runs one single-slot pipeline and returns the replies of its commands.
    ///
    /// # Errors
    /// [`Error::Redis`] on a connection error or when any command fails.
    pub async fn run(&self, pipe: &Pipeline) -> Result<Vec<Value>> {
        Ok(match self {
            Self::Single(con) => pipe.query_async(&mut con.clone()).await?,
            Self::Cluster(con) => pipe.query_async(&mut con.clone()).await?,
            Self::Sentinel(s) => s.run(|mut con| async move { pipe.query_async(&mut con).await }).await?,
        })
    }

    /// Runs single-slot pipelines concurrently; replies come back in order.
    ///
    /// # Errors
    /// The first error of any pipeline.
    pub async fn run_all(&self, pipes: &[Pipeline]) -> Result<Vec<Vec<Value>>> {
        futures::future::try_join_all(pipes.iter().map(|p| self.run(p))).await
    }

    /// Waits until `replicas` replicas acknowledged every write this handle
    /// made before (`WAIT`; on a cluster, on every primary, the fewest
    /// counts), or `timeout` passes; returns how many did.
    ///
    /// # Errors
    /// [`Error::Redis`] when a node does not answer.
    pub async fn wait_for_replicas(&self, replicas: u32, timeout: Duration) -> Result<u32> {
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX).max(1);
        self.query(redis::cmd("WAIT").arg(replicas).arg(millis)).await
    }

    /// Checks that every node answers `PING`.
    ///
    /// # Errors
    /// [`Error::Redis`] when a node does not answer.
    pub async fn ping(&self) -> Result<()> {
        let _: String = self.query(&redis::cmd("PING")).await?;
        Ok(())
    }
}

fn cluster_builder(urls: &[String], options: StoreOptions) -> ClusterClientBuilder {
    install_crypto();
    let builder = ClusterClientBuilder::new(urls.iter().map(String::as_str))
        .connection_timeout(options.connect_timeout)
        .response_timeout(options.response_timeout)
        .retries(2);
    match options.tls_root {
        Some(ca) => builder.certs(redis::TlsCertificates { client_tls: None, root_cert: Some(ca.to_vec()) }),
        None => builder,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        assert_eq!(RedisTarget::parse("redis://a:1").unwrap(), RedisTarget::Single("redis://a:1".into()));
        assert_eq!(
            RedisTarget::parse("redis://a:1, redis://b:2").unwrap(),
            RedisTarget::Cluster(vec!["redis://a:1".into(), "redis://b:2".into()])
        );
        assert_eq!(
            RedisTarget::parse("cluster:redis://a:1").unwrap(),
            RedisTarget::Cluster(vec!["redis://a:1".into()])
        );
        assert!(RedisTarget::parse(" , ").is_err());
    }
}
