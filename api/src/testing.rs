//! An api in the test's own process, on a loopback port: the one way the integration tests of
//! every crate (api, ingest, loadgen, lb-admin) start and stop it. Built with the `testing`
//! feature only, which those crates enable as a dev-dependency; the `api` binary never has it.

use std::net::SocketAddr;

use leaderboard_store::{RedisTarget, Store, StoreOptions};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Config;

/// Gives the store at `redis` an epoch unless it has one, as a deployment's first ingest
/// worker does: an api serves only a store that has one.
///
/// # Errors
/// When `redis` does not parse, or the store cannot be reached or written.
pub async fn ensure_epoch(redis: &str) -> anyhow::Result<()> {
    let store = Store::connect(&RedisTarget::parse(redis)?, StoreOptions::default()).await?;
    leaderboard_store::marker::epoch::create_new(&store).await?;
    Ok(())
}

/// An api serving from a task of its own on `127.0.0.1`, port 0, until stopped.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    /// Builds the state for `config` (recording metrics into `metrics`, if given) and serves
    /// it until `shutdown` is cancelled or [`TestServer::stop`] is called.
    ///
    /// # Errors
    /// When the state cannot be built ([`crate::state`]) or no loopback port can be bound.
    pub async fn start(
        config: Config,
        metrics: Option<PrometheusHandle>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let state = crate::state(&config, metrics).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(crate::run(listener, state, config, shutdown.clone()));
        Ok(Self { addr, shutdown, task })
    }

    /// Its base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Cancels its shutdown token and waits until it has finished the requests in flight.
    ///
    /// # Errors
    /// When serving failed, or the task panicked.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await?
    }
}
