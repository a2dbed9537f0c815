//! An api in the test's own process, on a loopback port: the one way the integration tests of
//! every crate (api, ingest, loadgen, lb-admin) start and stop it. Built with the `testing`
//! feature only, which those crates enable as a dev-dependency; the `api` binary never has it.
//!
//! Also holds ([`TestHold`]): on a player lookup, so a test can make a request arrive while
//! a lookup read before some change is still in flight, by construction rather than by timing;
//! and on an admin change, so a test can cut its request off (the admin
//! timeout) or fill the changes that may run at once.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_store::{RedisTarget, Store, StoreOptions};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
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
    /// Where `/metrics` and the probes listen, when the configuration has `--metrics-addr` (bound
    /// as given: pass `127.0.0.1:0`).
    pub metrics_addr: Option<SocketAddr>,
    state: AppState,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    /// Builds the state for `config` (recording metrics into `metrics`, if given) and serves
    /// it until `shutdown` is cancelled or [`TestServer::stop`] is called.
    ///
    /// # Errors
    /// When the state cannot be built ([`crate::state()`]) or no loopback port can be bound.
    pub async fn start(
        config: Config,
        metrics: Option<PrometheusHandle>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let state = crate::state(&config, metrics).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let metrics_listener = match config.metrics_addr {
            Some(at) => Some(tokio::net::TcpListener::bind(at).await?),
            None => None,
        };
        let metrics_addr = metrics_listener.as_ref().map(TcpListener::local_addr).transpose()?;
        let listeners = crate::Listeners { api: listener, metrics: metrics_listener };
        let task = tokio::spawn(crate::run(listeners, state.clone(), config, shutdown.clone()));
        Ok(Self { addr, metrics_addr, state, shutdown, task })
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

/// Holds armed, by what they hold: `lookup <board> <player>` or `admin <action> <target>`.
static HOLDS: Mutex<Vec<(String, Arc<Hold>)>> = Mutex::new(Vec::new());

#[derive(Debug, Default)]
struct Hold {
    reached: Notify,
    released: Notify,
}

impl Hold {
    fn arm(key: String) -> Arc<Self> {
        let hold = Arc::new(Self::default());
        HOLDS.lock().unwrap_or_else(PoisonError::into_inner).push((key, hold.clone()));
        hold
    }

    fn disarm(hold: &Arc<Self>) {
        HOLDS.lock().unwrap_or_else(PoisonError::into_inner).retain(|(_, armed)| !Arc::ptr_eq(armed, hold));
        hold.released.notify_one();
    }

    /// Waits at the point named `key` while a hold is armed there (the first to arrive only).
    async fn wait_at(key: &str) {
        let hold = {
            let mut holds = HOLDS.lock().unwrap_or_else(PoisonError::into_inner);
            let at = holds.iter().position(|(armed, _)| armed == key);
            at.map(|at| holds.swap_remove(at).1)
        };
        if let Some(hold) = hold {
            hold.reached.notify_one();
            hold.released.notified().await;
        }
    }
}

fn lookup_key(stored: &BoardId, player: &PlayerId) -> String {
    format!("lookup {stored} {player}")
}

fn admin_key(action: &str, target: &str) -> String {
    format!("admin {action} {target}")
}

/// Holds the first request that reaches a place until [`TestHold::release`] (or the hold is
/// dropped); later ones pass:
/// - [`TestHold::lookup`]: the next player lookup of one player on one stored board
///   (`<board>@<season>` for a season), once it has read Redis: requests for the same player
///   meanwhile find its flight in progress ([`crate::routes::read::standing`]);
/// - [`TestHold::admin_change`]: the next admin change `action` (`erase_player`, `ban_player`,
///   `unban_player`, `delete_board`, `set_rules`) on `target` (the player or board), in its own
///   task, once it holds one of the permits of the changes running and before it touches the store.
#[derive(Debug)]
pub struct TestHold {
    hold: Arc<Hold>,
}

impl TestHold {
    /// Arms the hold for the next lookup of `player` on `stored`.
    pub fn lookup(stored: &BoardId, player: &PlayerId) -> Self {
        Self { hold: Hold::arm(lookup_key(stored, player)) }
    }

    /// Arms the hold for the next change `action` on `target`.
    pub fn admin_change(action: &str, target: &str) -> Self {
        Self { hold: Hold::arm(admin_key(action, target)) }
    }

    /// Waits until a request is held there.
    pub async fn reached(&self) {
        self.hold.reached.notified().await;
    }

    /// Lets the held request go on (or the next one not hold, if none was yet).
    pub fn release(&self) {
        self.hold.released.notify_one();
    }
}

impl Drop for TestHold {
    fn drop(&mut self) {
        Hold::disarm(&self.hold);
    }
}

/// Where a lookup has read Redis and not yet answered: waits there while a [`TestHold::lookup`] for
/// `player` on `stored` holds it (the first such lookup only).
pub(crate) async fn lookup_read(stored: &BoardId, player: &PlayerId) {
    Hold::wait_at(&lookup_key(stored, player)).await;
}

/// Where an admin change starts, in its own task ([`crate::admin::Admin::detach`]): waits there
/// while an [`TestHold::admin_change`] for `action` on `target` holds it.
pub(crate) async fn admin_change(action: &str, target: &str) {
    Hold::wait_at(&admin_key(action, target)).await;
}
