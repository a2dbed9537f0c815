//! api: the leaderboard's HTTP service (axum).
//!
//! Routes follow `docs/contract.md#http-api`. The first rows of every active board are served
//! from an in-memory cache refreshed in the background ([`cache`]), as ready
//! JSON bytes with an `ETag` (`304` on `If-None-Match`) and
//! `Cache-Control: max-age` of the refresh interval; ranks, percentiles,
//! neighbourhoods and deeper pages are read through the store behind a
//! circuit breaker ([`backend`]), identical concurrent player lookups sharing
//! one read ([`coalesce`]). Every answer is dated (`as_of`) by the watermark
//! ingest publishes, as the node it was read from holds it ([`freshness`]);
//! cached answers also carry `x-data-age-ms`, and `x-data-stale` while Redis is
//! unreachable.
//!
//! Around the routes ([`app`]): per-request timeout (the admin routes their own,
//! `--admin-timeout`), one concurrency limit over every route that sheds excess
//! load with 503, an optional per-client rate limit (429 with `Retry-After`;
//! clients told apart behind trusted proxies, idle ones forgotten:
//! [`client_ip`]), and request metrics labelled by matched route. The probes
//! (`/healthz`, `/readyz`, `/readyz/redis`) and `/metrics` sit outside every
//! limit, so an api under load stays alive and ready ([`health`]); `/metrics`
//! and the probes may also be served on a port of their own ([`metrics_app`]).
//!
//! # Layout
//! - [`config`]: flags and environment; [`state`](mod@state): what handlers share; [`run`]: serve until shutdown.
//! - [`health`]: what the probes answer (can serve, Redis reachable, shutting down).
//! - [`routes`]: the handlers, one module per group: `boards`, `lookup`, `seasons`, `admin`,
//!   `players` (erasure and bans), `ops`, and `read`, the one path every read route answers through (resolve the season, read, date).
//! - [`extract`]: validated parameters; [`error`]: the JSON error type and its OpenAPI rows.
//! - [`cache`], [`backend`]: the top-N cache and the breaker-wrapped router; [`coalesce`]: single flight.
//! - [`season`]: `?season=` and closed seasons; [`freshness`]: the watermark that dates answers;
//!   [`loss`]: noticing a store that lost its data; [`players`]: erasures and bans made
//!   elsewhere reaching the caches.
//! - [`admin`]: admin tokens, scopes and the audit log (the routes are in `routes::admin`).
//! - [`watch`]: live updates (Server-Sent Events of the top and of standings), bounded;
//!   [`conn`]: accepted connections, whose stuck writes drop slow clients.
//! - [`dto`], [`openapi`]: request and response bodies and their OpenAPI document; [`telemetry`]:
//!   metrics and logs; [`client_ip`]: telling clients apart for the rate limit; [`clock`]: RFC 3339
//!   dates; [`tls`]: optional TLS on the listener.
//! - `testing` (feature `testing`, for other crates' tests): an api on a loopback port; a hold on a
//!   player lookup in flight, and on an admin change.

#![recursion_limit = "256"] // the dated, breaker-wrapped router futures nest deeper than the default allows

pub mod admin;
pub mod backend;
pub mod cache;
pub mod client_ip;
pub mod clock;
pub mod coalesce;
pub mod config;
pub mod conn;
pub mod dto;
pub mod error;
pub mod extract;
pub mod freshness;
pub mod health;
pub mod loss;
pub mod openapi;
pub mod players;
pub mod routes;
pub mod season;
pub mod state;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod watch;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::BoxError;
use axum::error_handling::HandleErrorLayer;
use axum::response::IntoResponse;
use leaderboard_store::{RedisTarget, Router, Store, StoreOptions};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::{GovernorError, GovernorLayer};

pub use config::Config;

use crate::backend::Backend;
use crate::cache::TopCache;
use crate::error::ApiError;
use crate::freshness::Freshness;
use crate::state::AppState;

/// Connects to Redis and builds the handler state.
///
/// A single Redis server is connected lazily, so the api starts (and reports
/// not ready) while Redis is down; a cluster needs a reachable seed node.
///
/// # Errors
/// Invalid configuration, or an unreachable cluster.
pub async fn state(
    config: &Config,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> anyhow::Result<AppState> {
    let (layout, target) = config.validate()?;
    let options = StoreOptions {
        connect_timeout: config.redis_timeout,
        response_timeout: config.redis_timeout,
        ..config.store.store_options()?
    };
    let store = Store::connect_reader(&target, config.read_from, options)
        .await
        .with_context(|| format!("connecting to redis (reads from {})", config.read_from))?;
    let freshness = Arc::new(Freshness::new(store.clone(), config.topic.clone(), config.redis_timeout));
    let epoch = Arc::new(loss::StoreEpoch::new(store.clone()));
    let router = Router::new(store, layout, config.store.router_options());
    let admin = if config.admin_tokens.is_empty() {
        None
    } else {
        let tokens = config
            .admin_tokens
            .iter()
            .map(|spec| admin::Token::parse(spec))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("--admin-tokens: {e}"))?;
        let admin_target = match &config.admin_redis {
            Some(url) => RedisTarget::parse(url).map_err(|e| anyhow::anyhow!("--admin-redis: {e}"))?,
            None => target.clone(),
        };
        let primary =
            Store::connect(&admin_target, options).await.context("connecting to the redis primary (admin routes)")?;
        let admin = admin::Admin::new(tokens, primary);
        Some(Arc::new(with_players_log(admin, config)?))
    };
    Ok(AppState {
        backend: Backend::new(router, freshness, epoch, config.breaker_failures, config.breaker_open),
        cache: Arc::new(TopCache::new(config.top_cache_rows, config.top_refresh, config.board_idle)),
        lookups: Arc::default(),
        metrics,
        health: Arc::default(),
        ready_stale_for: config.ready_stale_for,
        admin,
        clock: config.store.clock,
        seasons: Arc::default(),
        streams: Arc::new(watch::Streams::new(config.watch.clone())),
        clients: client_ip::ClientIp::new(
            client_ip::parse_proxies(&config.trusted_proxies).map_err(anyhow::Error::msg)?,
        ),
    })
}

async fn handle_middleware_error(err: BoxError) -> ApiError {
    middleware_error(&err, ApiError::Timeout)
}

/// An admin request cut off by `--admin-timeout`: the change it started goes on ([`admin::Admin::detach`]).
async fn handle_admin_middleware_error(err: BoxError) -> ApiError {
    middleware_error(&err, ApiError::AdminTimeout)
}

fn middleware_error(err: &BoxError, timeout: ApiError) -> ApiError {
    if err.is::<tower::timeout::error::Elapsed>() {
        timeout
    } else if err.is::<tower::load_shed::error::Overloaded>() {
        ApiError::Overloaded
    } else {
        tracing::error!(error = %err, "middleware error");
        ApiError::Internal
    }
}

#[allow(clippy::needless_pass_by_value, reason = "tower_governor hands the error by value")]
fn rate_limited(err: GovernorError) -> axum::response::Response {
    match err {
        GovernorError::TooManyRequests { wait_time, .. } => {
            ApiError::RateLimited { retry_after: Duration::from_secs(wait_time.max(1)) }.into_response()
        }
        GovernorError::UnableToExtractKey | GovernorError::Other { .. } => ApiError::Internal.into_response(),
    }
}

/// The application: routes plus timeouts, load shedding, rate limiting and metrics; and the
/// per-client limiter, when there is one, for [`client_ip::prune`].
///
/// The read routes get `--request-timeout`, the admin routes `--admin-timeout`; both share one
/// concurrency limit (`--max-concurrency` requests in flight over every route: axum layers each
/// route apart, so the semaphore is shared explicitly) and the rate limit. The probes, and
/// `/metrics` unless `--metrics-addr` takes it, sit outside all of them.
///
/// # Errors
/// A `--trusted-proxies` entry that is not an address or CIDR block.
pub fn app(state: AppState, config: &Config) -> anyhow::Result<(axum::Router, Option<client_ip::Limiter>)> {
    let in_flight = Arc::new(Semaphore::new(config.max_concurrency));
    let reads = routes::reads(state.clone()).layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(handle_middleware_error))
            .load_shed()
            .layer(GlobalConcurrencyLimitLayer::with_semaphore(in_flight.clone()))
            .timeout(config.request_timeout),
    );
    let admin = routes::administration(state.clone()).layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(handle_admin_middleware_error))
            .load_shed()
            .layer(GlobalConcurrencyLimitLayer::with_semaphore(in_flight))
            .timeout(config.admin_timeout),
    );
    let mut served = reads.merge(admin);
    let mut limiter = None;
    if config.rate_limit_per_second > 0 {
        let clients = state.clients.clone();
        let governor = GovernorConfigBuilder::default()
            .period(Duration::from_secs(1) / u32::try_from(config.rate_limit_per_second).unwrap_or(u32::MAX))
            .burst_size(config.rate_limit_burst.max(1))
            .key_extractor(clients)
            .finish();
        if let Some(governor) = governor {
            limiter = Some(governor.limiter().clone());
            served = served.layer(GovernorLayer::new(governor).error_handler(rate_limited));
        }
    }
    let app = routes::probes(state, config.metrics_addr.is_none()).merge(served);
    Ok((app.layer(axum::middleware::from_fn(telemetry::track)), limiter))
}

/// What `--metrics-addr` serves: `/metrics` and the probes, without limits, plain HTTP.
pub fn metrics_app(state: AppState) -> axum::Router {
    routes::probes(state, true).layer(axum::middleware::from_fn(telemetry::track))
}

/// The bound listeners [`run`] serves on.
#[derive(Debug)]
pub struct Listeners {
    /// The routes (`--addr`).
    pub api: TcpListener,
    /// `/metrics` and the probes (`--metrics-addr`), when set.
    pub metrics: Option<TcpListener>,
}

impl Listeners {
    /// Binds `--addr` and, when set, `--metrics-addr`.
    ///
    /// # Errors
    /// When an address cannot be bound (the error names it).
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        let api = TcpListener::bind(config.addr).await.with_context(|| format!("binding {}", config.addr))?;
        let metrics = match config.metrics_addr {
            Some(addr) => {
                Some(TcpListener::bind(addr).await.with_context(|| format!("binding metrics address {addr}"))?)
            }
            None => None,
        };
        Ok(Self { api, metrics })
    }
}

/// Serves on `listeners` until `shutdown`, then finishes requests in flight and the admin
/// changes running (up to `--admin-timeout`). The metrics listener serves until all that is
/// done, its `/readyz` answering 503 `shutting_down` meanwhile.
///
/// # Errors
/// When a listener fails.
pub async fn run(
    listeners: Listeners,
    state: AppState,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Listeners { api: listener, metrics: metrics_listener } = listeners;
    state.health.shut_down_by(&shutdown);
    let freshness = state.backend.freshness().clone();
    // The first claim is read before serving, so answers are dated from the start.
    if let Err(e) = freshness.refresh().await {
        tracing::warn!(
            class = e.failure().as_str(),
            "watermark not readable at start-up; answers dated 1970 until it is"
        );
    }
    let watermark = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { freshness.run(config.watermark_refresh, shutdown).await })
    };
    let health = state.health.clone();
    let read_store = state.backend.router().store().clone();
    health.check_redis(&read_store, config.redis_timeout).await;
    let redis_watch = {
        let (every, timeout, shutdown) = (config.loss_check, config.redis_timeout, shutdown.clone());
        tokio::spawn(async move { health.watch_redis(read_store, every, timeout, shutdown).await })
    };
    let epoch = state.backend.epoch().clone();
    if let Err(e) = epoch.check().await {
        tracing::warn!(class = e.failure().as_str(), "store epoch not readable at start-up; not ready until it is");
    }
    // Serving from here on: the first checks are done, so the probes answer what they found.
    let metrics_stop = CancellationToken::new();
    let metrics_server = match metrics_listener {
        Some(listener) => {
            tracing::info!(addr = %listener.local_addr()?, "metrics and probes listening");
            let app = metrics_app(state.clone());
            let stop = metrics_stop.clone().cancelled_owned();
            Some(tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(stop).await }))
        }
        None => None,
    };
    let loss_watch = {
        let (shutdown, cache) = (shutdown.clone(), state.cache.clone());
        tokio::spawn(async move { epoch.run(config.loss_check, shutdown, || cache.clear()).await })
    };
    let refresher =
        tokio::spawn(state.cache.clone().run_refresher(state.backend.clone(), config.top_refresh, shutdown.clone()));
    let players = tokio::spawn(players::watch(state.clone(), config.watermark_refresh, shutdown.clone()));
    let breaker = tokio::spawn(watch_breaker(state.backend.clone(), shutdown.clone()));
    let standings =
        tokio::spawn(watch::standing::Hub::run(state.clone(), config.watch.watch_standing_every, shutdown.clone()));
    // Live streams end when shutdown begins: a graceful shutdown waits for every response to end.
    let streams_end = {
        let (streams, shutdown) = (state.streams.clone(), shutdown.clone());
        tokio::spawn(async move {
            shutdown.cancelled().await;
            streams.end_all();
        })
    };
    tracing::info!(addr = %listener.local_addr()?, layout = %state.backend.router().spec(), "api listening");
    let admin = state.admin.clone();
    let (app, limiter) = app(state, &config)?;
    let pruner = limiter.map(|l| tokio::spawn(client_ip::prune(l, shutdown.clone())));
    let service = app.into_make_service_with_connect_info::<conn::Peer>();
    let served = match config.tls_files() {
        None => axum::serve(conn::Listener::new(listener, config.write_timeout), service)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .await
            .context("serving http"),
        Some(files) => serve_https(listener, service, &files, &config, &shutdown).await,
    };
    shutdown.cancel();
    if let Some(admin) = admin {
        admin.drain(config.admin_timeout).await;
    }
    if let Some(pruner) = pruner {
        pruner.await.context("rate limiter pruner")?;
    }
    refresher.await.context("cache refresher")?;
    players.await.context("player registry watcher")?;
    watermark.await.context("watermark reader")?;
    loss_watch.await.context("epoch watcher")?;
    redis_watch.await.context("redis watcher")?;
    breaker.await.context("breaker watcher")?;
    standings.await.context("watched standings reader")?;
    streams_end.await.context("live streams")?;
    metrics_stop.cancel();
    if let Some(server) = metrics_server {
        server.await.context("metrics server")?.context("serving metrics")?;
    }
    served
}

/// Serves `service` over TLS until `shutdown`: requests in flight finish; connections still
/// open after the request timeout are closed.
async fn serve_https(
    listener: TcpListener,
    service: axum::extract::connect_info::IntoMakeServiceWithConnectInfo<axum::Router, conn::Peer>,
    files: &tls::TlsFiles,
    config: &Config,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let tls = axum_server::tls_rustls::RustlsConfig::from_config(tls::server_config(files)?);
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls)
        .acceptor(conn::SlowClients { write_timeout: config.write_timeout });
    let handle = axum_server::Handle::new();
    let stop = {
        let (handle, shutdown, grace) = (handle.clone(), shutdown.clone(), config.request_timeout);
        tokio::spawn(async move {
            shutdown.cancelled().await;
            handle.graceful_shutdown(Some(grace));
        })
    };
    let served = axum_server::from_tcp(listener.into_std().context("the listener")?)
        .acceptor(acceptor)
        .handle(handle)
        .serve(service)
        .await
        .context("serving https");
    stop.abort();
    served
}

/// Exports the breaker state as a gauge.
async fn watch_breaker(backend: Backend, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => metrics::gauge!("api_breaker_open").set(if backend.is_closed() { 0.0 } else { 1.0 }),
        }
    }
}

/// The admin routes with the players log `config` names, or without one (a warning).
fn with_players_log(admin: admin::Admin, config: &Config) -> anyhow::Result<admin::Admin> {
    let Some(brokers) = &config.brokers else {
        tracing::warn!(
            "no --brokers (LB_KAFKA_BROKERS): erasures and bans are kept in Redis only, and a store that loses its \
             data forgets them (docs/players.md)"
        );
        return Ok(admin);
    };
    #[cfg(feature = "players-log")]
    {
        let settings = config.kafka.settings().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let topic = config.players_log.players_topic.clone();
        let log = leaderboard_players_log::PlayersLog::new(brokers.clone(), settings, topic)
            .with_timeout(config.players_log.players_log_timeout);
        Ok(admin.with_players_log(log.publisher().context("the players log's producer")?))
    }
    #[cfg(not(feature = "players-log"))]
    {
        anyhow::bail!("--brokers {brokers}: this api was built without the players log (feature `players-log`)")
    }
}
