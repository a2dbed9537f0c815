//! A primary found through Redis Sentinel, followed across failovers.
//!
//! The connection asks the Sentinels for the primary of a service (or, for
//! reads, one of its replicas: [`Role`]) and talks to it through a
//! reconnecting [`ConnectionManager`]. Sentinel does not tell
//! live connections about a `+switch-master`, and a manager reconnects to the
//! address it was given; so whenever a command fails in a way a failover
//! explains (the connection is lost or refused, or the node answers
//! `READONLY` because it was demoted), the connection asks the Sentinels
//! again and, if they name another primary, switches to it. The failed
//! command still fails: callers retry as they would after any connection
//! error, and the retry reaches the new primary.
//!
//! A replica-role connection whose replica dies asks for another replica, or
//! (with `fallback`) for the primary while none answers; it goes back to a
//! replica when [`SentinelConnection::return_to_replica`] finds one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use redis::aio::ConnectionManager;
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{IntoConnectionInfo, TlsMode};
use tokio::sync::Mutex;

use crate::connection::options::StoreOptions;
use crate::connection::options::manager_config;
use crate::{Error, Failure, Result};

/// Where the Sentinels are and what they monitor, parsed from
/// `redis+sentinel://[user:password@]host:port[,host:port...]/service`
/// (`rediss+sentinel://` for TLS to the data nodes and the Sentinels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelTarget {
    /// The Sentinels, as `redis://host:port` (or `rediss://`) URLs.
    pub sentinels: Vec<String>,
    /// The monitored service (`sentinel monitor <service> ...`).
    pub service: String,
    /// Credentials for the data nodes, as the user-info part of a URL (`user:password`).
    userinfo: Option<String>,
    tls: bool,
}

impl SentinelTarget {
    /// Parses a `redis+sentinel://` URL; `None` when `url` has another scheme.
    ///
    /// # Errors
    /// [`Error::InvalidLayout`] when the URL has no Sentinel or no service.
    pub fn parse(url: &str) -> Option<Result<Self>> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("redis+sentinel://") {
            (false, rest)
        } else {
            (true, url.strip_prefix("rediss+sentinel://")?)
        };
        Some(Self::parse_rest(rest, tls))
    }

    fn parse_rest(rest: &str, tls: bool) -> Result<Self> {
        let invalid = || Error::InvalidLayout("expected redis+sentinel://host:port[,host:port...]/service".into());
        let (authority, service) = rest.split_once('/').ok_or_else(invalid)?;
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h),
            None => (None, authority),
        };
        let scheme = if tls { "rediss" } else { "redis" };
        let sentinels: Vec<String> =
            hosts.split(',').map(str::trim).filter(|h| !h.is_empty()).map(|h| format!("{scheme}://{h}")).collect();
        let service = service.trim_end_matches('/').to_string();
        if sentinels.is_empty() || service.is_empty() {
            return Err(invalid());
        }
        Ok(Self { sentinels, service, userinfo, tls })
    }

    /// How to reach the data nodes (credentials, TLS).
    fn node_info(&self) -> Result<SentinelNodeConnectionInfo> {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let auth = self.userinfo.as_ref().map_or(String::new(), |u| format!("{u}@"));
        let probe = format!("{scheme}://{auth}127.0.0.1/").into_connection_info()?;
        let mut info = SentinelNodeConnectionInfo::default().set_redis_connection_info(probe.redis_settings().clone());
        if self.tls {
            info = info.set_tls_mode(TlsMode::Secure);
        }
        Ok(info)
    }
}

/// Which node of the group a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The primary (writers, and readers with the `primary` policy).
    Primary,
    /// A replica; with `fallback`, the primary while no replica answers.
    Replica {
        /// Whether the primary may serve while no replica is available.
        fallback: bool,
    },
}

/// The node in use: its address and a connection to it.
struct Node {
    addr: String,
    /// The connection; clones share it.
    connection: ConnectionManager,
    /// A replica-role connection serving from the primary because no replica was available.
    fallback: bool,
}

struct Shared {
    sentinel: Mutex<Sentinel>,
    target: SentinelTarget,
    node_info: SentinelNodeConnectionInfo,
    options: StoreOptions,
    role: Role,
    node: ArcSwap<Node>,
    /// Bumped at every switch of node: data read under one epoch came from one node.
    epoch: AtomicU64,
    /// When a fallback connection last asked for a replica (ms since `created`).
    last_return_attempt_ms: AtomicU64,
    created: std::time::Instant,
}

/// How often a connection serving from the primary asks the Sentinels whether a replica is back.
const RETURN_ATTEMPT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A cheap-to-clone connection to the node of a Sentinel group its [`Role`] asks for (see the module docs).
#[derive(Clone)]
pub struct SentinelConnection {
    shared: Arc<Shared>,
}

impl SentinelConnection {
    /// Asks the Sentinels for the primary and connects to it.
    ///
    /// # Errors
    /// [`Error::Redis`] when no Sentinel answers, none knows the service, or the primary cannot be reached.
    pub async fn connect(target: &SentinelTarget, options: StoreOptions) -> Result<Self> {
        Self::connect_as(target, Role::Primary, options).await
    }

    /// Asks the Sentinels for a node of `role` and connects to it.
    ///
    /// # Errors
    /// [`Error::Redis`] when no Sentinel answers, or no node of the role can be reached.
    pub async fn connect_as(target: &SentinelTarget, role: Role, options: StoreOptions) -> Result<Self> {
        let node_info = target.node_info()?;
        let mut sentinel = Sentinel::build(target.sentinels.clone())?;
        let node = discover(&mut sentinel, target, &node_info, options, role).await?;
        let shared = Shared {
            sentinel: Mutex::new(sentinel),
            target: target.clone(),
            node_info,
            options,
            role,
            node: ArcSwap::from_pointee(node),
            epoch: AtomicU64::new(0),
            last_return_attempt_ms: AtomicU64::new(0),
            created: std::time::Instant::now(),
        };
        Ok(Self { shared: Arc::new(shared) })
    }

    /// Runs `op` on the current node; if it fails in a way a failover
    /// explains, asks the Sentinels again before returning the error.
    pub(crate) async fn run<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let node = self.shared.node.load_full();
        let result = op(node.connection.clone()).await.map_err(Error::from);
        if let Err(e) = &result {
            self.failed(&node, e).await;
        }
        result
    }

    /// A command on `used` failed with `error`: if a failover or a lost
    /// replica explains it, asks the Sentinels for a node again and switches
    /// to it (once, however many commands failed together).
    async fn failed(&self, used: &Arc<Node>, error: &Error) {
        if error.failure() != Failure::Reconnect {
            return;
        }
        let mut sentinel = self.shared.sentinel.lock().await;
        let current = self.shared.node.load();
        if !Arc::ptr_eq(&current, used) {
            return; // another caller switched already
        }
        let shared = &self.shared;
        match discover(&mut sentinel, &shared.target, &shared.node_info, shared.options, shared.role).await {
            Ok(node) if node.addr != current.addr => {
                tracing::warn!(service = %shared.target.service, fallback = node.fallback, "redis: switching to the node the Sentinels name");
                self.switch(node);
            }
            // Same node (it was only a hiccup): its manager reconnects by itself.
            Ok(_) => {}
            Err(e) => tracing::debug!(class = e.failure().as_str(), "redis: Sentinels not answering yet"),
        }
    }

    fn switch(&self, node: Node) {
        self.shared.node.store(Arc::new(node));
        self.shared.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// A replica-role connection serving from the primary (no replica was
    /// available) goes back to a replica if one answers now; otherwise
    /// nothing happens. Asks the Sentinels at most once a second. Returns
    /// whether it switched.
    pub async fn return_to_replica(&self) -> bool {
        if !self.shared.node.load().fallback {
            return false;
        }
        // At most one attempt per RETURN_ATTEMPT_EVERY: each one asks every Sentinel and replica.
        let now_ms = u64::try_from(self.shared.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.shared.last_return_attempt_ms.load(Ordering::Acquire);
        let every = u64::try_from(RETURN_ATTEMPT_EVERY.as_millis()).unwrap_or(u64::MAX);
        if last != 0 && now_ms.saturating_sub(last) < every {
            return false;
        }
        self.shared.last_return_attempt_ms.store(now_ms.max(1), Ordering::Release);
        let Ok(mut sentinel) = self.shared.sentinel.try_lock() else { return false };
        let shared = &self.shared;
        let replica = Role::Replica { fallback: false };
        match discover(&mut sentinel, &shared.target, &shared.node_info, shared.options, replica).await {
            Ok(node) if self.shared.node.load().fallback => {
                tracing::info!(service = %shared.target.service, "redis: a replica answers again; reads go back to it");
                self.switch(node);
                true
            }
            _ => false,
        }
    }

    /// Bumped whenever the connection switches node (see [`crate::Store::epoch`]).
    pub fn epoch(&self) -> u64 {
        self.shared.epoch.load(Ordering::Acquire)
    }
}

async fn discover(
    sentinel: &mut Sentinel,
    target: &SentinelTarget,
    node_info: &SentinelNodeConnectionInfo,
    options: StoreOptions,
    role: Role,
) -> Result<Node> {
    let (client, fallback) = match role {
        Role::Primary => (ask(sentinel, target, node_info, options, false).await?, false),
        Role::Replica { fallback } => match ask(sentinel, target, node_info, options, true).await {
            Ok(client) => (client, false),
            Err(e) if !fallback => return Err(e),
            Err(_) => (ask(sentinel, target, node_info, options, false).await?, true),
        },
    };
    let addr = client.get_connection_info().addr().to_string();
    let connection = ConnectionManager::new_with_config(client, manager_config(options)).await?;
    Ok(Node { addr, connection, fallback })
}

/// Asks the Sentinels for the primary, or a random replica that answers as one.
async fn ask(
    sentinel: &mut Sentinel,
    target: &SentinelTarget,
    node_info: &SentinelNodeConnectionInfo,
    options: StoreOptions,
    replica: bool,
) -> Result<redis::Client> {
    let service = target.service.as_str();
    let found = if replica {
        tokio::time::timeout(options.connect_timeout, sentinel.async_replica_for(service, Some(node_info))).await
    } else {
        tokio::time::timeout(options.connect_timeout, sentinel.async_master_for(service, Some(node_info))).await
    };
    let found = found.map_err(|_| Error::Redis(std::io::Error::from(std::io::ErrorKind::TimedOut).into()))?;
    Ok(found?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sentinel_urls() {
        let t = SentinelTarget::parse("redis+sentinel://a:26379, b:26380/mymaster").expect("sentinel").expect("valid");
        assert_eq!(t.sentinels, ["redis://a:26379", "redis://b:26380"]);
        assert_eq!(t.service, "mymaster");
        let t = SentinelTarget::parse("rediss+sentinel://u:p@a:1/svc").expect("sentinel").expect("valid");
        assert_eq!(t.sentinels, ["rediss://a:1"]);
        assert_eq!(t.userinfo.as_deref(), Some("u:p"));
        assert!(SentinelTarget::parse("redis://a:1").is_none());
        assert!(SentinelTarget::parse("redis+sentinel://a:1").expect("sentinel").is_err());
        assert!(SentinelTarget::parse("redis+sentinel:///svc").expect("sentinel").is_err());
    }
}
