//! The `lb-admin` binary: parses the command line and runs it (see the `admin` crate).

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = admin::Cli::parse();
    leaderboard_runtime::init_tracing("warn");
    let stdout = std::io::stdout();
    admin::run(cli, &mut stdout.lock()).await
}
