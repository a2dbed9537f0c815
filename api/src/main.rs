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
    let listeners = api::Listeners::bind(&config).await?;
    let shutdown = CancellationToken::new();
    let signal =
        leaderboard_runtime::cancel_on_shutdown_signal(shutdown.clone(), || tracing::info!("shutdown requested"));
    api::run(listeners, state, config, shutdown).await?;
    signal.abort();
    Ok(())
}
