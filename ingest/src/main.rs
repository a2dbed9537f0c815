//! The `ingest` binary: parses configuration, starts logs, runs the worker until SIGINT or SIGTERM.

use anyhow::Context as _;
use clap::Parser;
use ingest::{Config, telemetry};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    leaderboard_runtime::init_tracing("info,rdkafka=warn");
    // Fail points (the `failpoints` feature, fault tests only) read `FAILPOINTS` here.
    let _failpoints = fail::FailScenario::setup();
    config.validate().context("invalid configuration")?;
    let shutdown = CancellationToken::new();
    let listener = telemetry::bind_metrics(config.metrics_addr).await?;
    let signal = leaderboard_runtime::cancel_on_shutdown_signal(shutdown.clone(), || {
        tracing::info!("shutdown requested: draining");
    });
    let report = ingest::run(config, listener, shutdown).await;
    signal.abort();
    report?;
    Ok(())
}
