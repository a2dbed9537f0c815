//! The `ingest` binary: parses configuration, starts telemetry, runs the worker.

use anyhow::Context as _;
use clap::Parser;
use ingest::{Config, telemetry};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    leaderboard_runtime::init_tracing("info,rdkafka=warn");
    config.validate().context("invalid configuration")?;
    let shutdown = CancellationToken::new();
    let metrics = telemetry::install_recorder().context("installing the metrics recorder")?;
    let listener = telemetry::bind_metrics(config.metrics_addr).await?;
    let server = tokio::spawn(telemetry::serve_metrics(listener, metrics, shutdown.clone()));
    let signal = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            leaderboard_runtime::shutdown_signal().await;
            tracing::info!("shutdown requested: draining");
            shutdown.cancel();
        })
    };
    let report = ingest::run(config, shutdown.clone()).await;
    shutdown.cancel();
    signal.abort();
    server.await.context("metrics server task")??;
    report?;
    Ok(())
}
