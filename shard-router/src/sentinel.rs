//! A primary found through Redis Sentinel, followed across failovers.
//!
//! The connection asks the Sentinels for the primary of a service and talks to
//! it through a reconnecting [`ConnectionManager`]. Sentinel does not tell
//! live connections about a `+switch-master`, and a manager reconnects to the
//! address it was given; so whenever a command fails in a way a failover
//! explains (the connection is lost or refused, or the node answers
//! `READONLY` because it was demoted), the connection asks the Sentinels
//! again and, if they name another primary, switches to it. The failed
//! command still fails: callers retry as they would after any connection
//! error, and the retry reaches the new primary.

use std::sync::Arc;

use arc_swap::ArcSwap;
use redis::aio::ConnectionManager;
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{IntoConnectionInfo, TlsMode};
use tokio::sync::Mutex;

use crate::store::{StoreOptions, manager_config};
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

/// The current primary: its address and a connection to it.
struct Primary {
    addr: String,
    /// The connection; clones share it.
    connection: ConnectionManager,
}

struct Shared {
    sentinel: Mutex<Sentinel>,
    target: SentinelTarget,
    node: SentinelNodeConnectionInfo,
    options: StoreOptions,
    primary: ArcSwap<Primary>,
}

/// A cheap-to-clone connection to the primary the Sentinels name (see the module docs).
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
        let node = target.node_info()?;
        let mut sentinel = Sentinel::build(target.sentinels.clone())?;
        let primary = discover(&mut sentinel, target, &node, options).await?;
        let shared = Shared {
            sentinel: Mutex::new(sentinel),
            target: target.clone(),
            node,
            options,
            primary: ArcSwap::from_pointee(primary),
        };
        Ok(Self { shared: Arc::new(shared) })
    }

    /// Runs `op` on the current primary; if it fails in a way a failover
    /// explains, asks the Sentinels again before returning the error.
    pub(crate) async fn run<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let primary = self.shared.primary.load_full();
        let result = op(primary.connection.clone()).await.map_err(Error::from);
        if let Err(e) = &result {
            self.failed(&primary, e).await;
        }
        result
    }

    /// A command on `used` failed with `error`:
    /// if a failover explains it, asks the Sentinels for the primary again and
    /// switches to it (once, however many commands failed together).
    async fn failed(&self, used: &Arc<Primary>, error: &Error) {
        if error.failure() != Failure::Reconnect {
            return;
        }
        let mut sentinel = self.shared.sentinel.lock().await;
        let current = self.shared.primary.load();
        if !Arc::ptr_eq(&current, used) {
            return; // another caller switched already
        }
        match discover(&mut sentinel, &self.shared.target, &self.shared.node, self.shared.options).await {
            Ok(primary) if primary.addr != current.addr => {
                tracing::warn!(service = %self.shared.target.service, "redis: the Sentinels name a new primary; switching");
                self.shared.primary.store(Arc::new(primary));
            }
            // Same primary (it was only a hiccup): its manager reconnects by itself.
            Ok(_) => {}
            Err(e) => tracing::debug!(class = e.failure().as_str(), "redis: Sentinels not answering yet"),
        }
    }

    /// The address of the primary in use (for tests and logs).
    pub fn primary_addr(&self) -> String {
        self.shared.primary.load().addr.clone()
    }
}

async fn discover(
    sentinel: &mut Sentinel,
    target: &SentinelTarget,
    node: &SentinelNodeConnectionInfo,
    options: StoreOptions,
) -> Result<Primary> {
    let client = tokio::time::timeout(options.connect_timeout, sentinel.async_master_for(&target.service, Some(node)))
        .await
        .map_err(|_| Error::Redis(std::io::Error::from(std::io::ErrorKind::TimedOut).into()))??;
    let addr = client.get_connection_info().addr().to_string();
    let connection = ConnectionManager::new_with_config(client, manager_config(options)).await?;
    Ok(Primary { addr, connection })
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
