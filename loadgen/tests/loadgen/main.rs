//! loadgen against the real thing: a real broker and Redis, with ingest and the
//! api running in-process on port 0.
//!
//! - `run`: short end-to-end runs (small world, a few seconds of load) that
//!   must meet their targets and verify with no mismatch, on one board and on several.
//! - `verifier`: the verifier finds what is wrong when the api disagrees with the oracle.

mod run;
mod verifier;

use clap::Parser as _;
use loadgen::config::Cli;
use tokio_util::sync::CancellationToken;

/// Parses a loadgen command line.
fn cli(args: &[&str]) -> Cli {
    Cli::try_parse_from(args).expect("cli")
}

/// Starts the api on port 0 over `redis` with `layout`, dating answers by the
/// watermark of `topic`; returns its base URL.
async fn start_api(
    redis: &str,
    layout: &str,
    topic: &str,
    extra: &[&str],
    stop: CancellationToken,
) -> (String, tokio::task::JoinHandle<()>) {
    let args = ["api", "--redis", redis, "--layout", layout, "--topic", topic, "--top-refresh", "200ms"];
    let config = api::Config::try_parse_from(args.iter().chain(extra)).expect("api config");
    // The store's epoch, as a deployment's first ingest worker makes it (an api serves only a store with one).
    let store = shard_router::Store::connect(
        &shard_router::RedisTarget::parse(redis).expect("url"),
        shard_router::StoreOptions::default(),
    )
    .await
    .expect("redis");
    shard_router::epoch::create_new(&store).await.expect("store epoch");
    let state = api::state(&config, None).await.expect("api state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move { api::run(listener, state, config, stop).await.expect("api") });
    (url, task)
}
