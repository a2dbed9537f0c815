//! The `loadgen` binary.

use anyhow::Context as _;
use clap::Parser;
use loadgen::config::{Cli, Command};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    leaderboard_runtime::init_tracing("warn,loadgen=info");
    match &cli.command {
        Command::Topics { partitions, dlq_partitions } => {
            loadgen::topics::create(&cli.world, *partitions, *dlq_partitions).await
        }
        Command::Seed { batch } => loadgen::seed::seed(&cli.world, *batch).await,
        Command::Fill { count } => loadgen::bench::fill(&cli.world, *count).await,
        Command::Watch(args) => {
            let report = loadgen::watch::run(&cli.world, args).await?;
            print!("{}", report.table());
            eprintln!("report written to {}", args.report.display());
            Ok(())
        }
        Command::Drain { expect, timeout } => loadgen::bench::drain(&cli.world, *expect, *timeout).await,
        Command::Run(args) => {
            let shutdown = CancellationToken::new();
            let signal = leaderboard_runtime::cancel_on_shutdown_signal(shutdown.clone(), || {
                eprintln!("loadgen: interrupted, stopping the load");
            });
            let report = loadgen::run(&cli.world, args, shutdown).await?;
            signal.abort();
            print!("{}", report.table());
            if let Some(dir) = args.report.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            std::fs::write(&args.report, serde_json::to_string_pretty(&report)?)
                .with_context(|| format!("writing {}", args.report.display()))?;
            eprintln!("report written to {}", args.report.display());
            anyhow::ensure!(!report.interrupted, "interrupted: the report covers the load until then, unverified");
            anyhow::ensure!(report.passed(), "the run did not meet its targets (see the report)");
            Ok(())
        }
    }
}
