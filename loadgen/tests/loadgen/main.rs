//! loadgen against the real thing: a real broker and Redis, with ingest and the
//! api running in-process on port 0.
//!
//! - `run`: short end-to-end runs (small world, a few seconds of load) that
//!   must meet their targets and verify with no mismatch, on one board and on several.
//! - `verifier`: the verifier finds what is wrong when the api disagrees with the oracle.
//! - `marks`: runs that erase and ban players during the load still verify.

mod marks;
mod run;
mod verifier;
mod watch;

use api::testing::TestServer;
use clap::Parser as _;
use loadgen::config::Cli;
use tokio_util::sync::CancellationToken;

/// Parses a loadgen command line.
fn cli(args: &[&str]) -> Cli {
    Cli::try_parse_from(args).expect("cli")
}

/// Starts the api on port 0 over `redis` with `layout`, dating answers by the
/// watermark of `topic`, until `stop`.
async fn start_api(redis: &str, layout: &str, topic: &str, extra: &[&str], stop: CancellationToken) -> TestServer {
    let args = ["api", "--redis", redis, "--layout", layout, "--topic", topic, "--top-refresh", "200ms"];
    let config = api::Config::try_parse_from(args.iter().chain(extra)).expect("api config");
    api::testing::ensure_epoch(redis).await.expect("store epoch");
    TestServer::start(config, None, stop).await.expect("api")
}
