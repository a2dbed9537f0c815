//! The `api` binary: parses configuration, starts telemetry, serves until SIGINT/SIGTERM.

use anyhow::Context as _;
use api::{Config, telemetry};
use clap::Parser;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    leaderboard_runtime::init_tracing("info");
    let metrics = telemetry::install_recorder().context("installing the metrics recorder")?;
    let state = api::state(&config, Some(metrics)).await?;
    let listener =
        tokio::net::TcpListener::bind(config.addr).await.with_context(|| format!("binding {}", config.addr))?;
    let shutdown = CancellationToken::new();
    let signal =
        leaderboard_runtime::cancel_on_shutdown_signal(shutdown.clone(), || tracing::info!("shutdown requested"));
    api::run(listener, state, config, shutdown).await?;
    signal.abort();
    Ok(())
}
