//! An api in the test's own process, on a loopback port: the one way the integration tests of
//! every crate (api, ingest, loadgen, lb-admin) start and stop it. Built with the `testing`
//! feature only, which those crates enable as a dev-dependency; the `api` binary never has it.
//!
//! Also a hold on a player lookup ([`LookupHold`]), so a test can make a request arrive while
//! a lookup read before some change is still in flight, by construction rather than by timing.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_store::{RedisTarget, Store, StoreOptions};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::state::AppState;

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
    state: AppState,
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
        let task = tokio::spawn(crate::run(listener, state.clone(), config, shutdown.clone()));
        Ok(Self { addr, state, shutdown, task })
    }

    /// Its base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What its handlers share (to observe its caches and lookups in flight).
    pub fn state(&self) -> &AppState {
        &self.state
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

/// Lookups armed to be held, by stored board and player.
static HOLDS: Mutex<Vec<(BoardId, PlayerId, Arc<Hold>)>> = Mutex::new(Vec::new());

#[derive(Debug, Default)]
struct Hold {
    reached: Notify,
    released: Notify,
}

/// Holds the next player lookup of one player on one stored board (`<board>@<season>` for a
/// season) once it has read Redis, until [`LookupHold::release`] (or the hold is dropped):
/// requests for the same player meanwhile find its flight in progress
/// ([`crate::routes::read::standing`]). Only the first lookup to read is held.
#[derive(Debug)]
pub struct LookupHold {
    hold: Arc<Hold>,
}

impl LookupHold {
    /// Arms the hold for the next lookup of `player` on `stored`.
    pub fn arm(stored: &BoardId, player: &PlayerId) -> Self {
        let hold = Arc::new(Hold::default());
        HOLDS.lock().unwrap_or_else(PoisonError::into_inner).push((stored.clone(), player.clone(), hold.clone()));
        Self { hold }
    }

    /// Waits until a lookup has read Redis and is held.
    pub async fn reached(&self) {
        self.hold.reached.notified().await;
    }

    /// Lets the held lookup answer (or the next one not hold, if none was yet).
    pub fn release(&self) {
        self.hold.released.notify_one();
    }
}

impl Drop for LookupHold {
    fn drop(&mut self) {
        HOLDS.lock().unwrap_or_else(PoisonError::into_inner).retain(|(_, _, hold)| !Arc::ptr_eq(hold, &self.hold));
        self.release();
    }
}

/// Where a lookup has read Redis and not yet answered: waits there while a [`LookupHold`] for
/// `player` on `stored` holds it (the first such lookup only).
pub(crate) async fn lookup_read(stored: &BoardId, player: &PlayerId) {
    let hold = {
        let mut holds = HOLDS.lock().unwrap_or_else(PoisonError::into_inner);
        let at = holds.iter().position(|(b, p, _)| b == stored && p == player);
        at.map(|at| holds.swap_remove(at).2)
    };
    if let Some(hold) = hold {
        hold.reached.notify_one();
        hold.released.notified().await;
    }
}
