//! A short end-to-end run: real broker and Redis, in-process ingest and api,
//! a small world, a few seconds of load, and the verifier must find nothing.

use std::time::Duration;

use clap::Parser as _;
use loadgen::config::{Cli, Command};
use tokio_util::sync::CancellationToken;

fn cli(args: &[&str]) -> Cli {
    Cli::try_parse_from(args).expect("cli")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn short_run_meets_its_targets_and_verifies() {
    for layout in ["single", "range:3000,6000"] {
        let (topic, dlq, group, board) =
            (testkit::unique("scores"), testkit::unique("dlq"), testkit::unique("group"), testkit::unique("lg"));
        let redis = testkit::redis_url();
        let brokers = testkit::brokers();
        // The flags loadgen and ingest share: the same topics, group, Redis and layout.
        let common = [
            "--brokers",
            &brokers,
            "--topic",
            &topic,
            "--dlq-topic",
            &dlq,
            "--group",
            &group,
            "--redis",
            &redis,
            "--layout",
            layout,
        ];
        let world_args = [&["loadgen"][..], &common, &["--board", &board, "--players", "3000", "--seed", "9"]].concat();
        let world = cli(&[&world_args[..], &["topics"]].concat()).world;
        loadgen::topics::create(&world, 3, 1).await.expect("topics");
        loadgen::seed::seed(&world, 500).await.expect("seed");

        let ingest_config = ingest::Config::try_parse_from([&["ingest"][..], &common, &["--linger", "5ms"]].concat())
            .expect("ingest config");
        let stop = CancellationToken::new();
        let ingest = tokio::spawn(ingest::run(ingest_config, stop.clone()));
        let api_config =
            api::Config::try_parse_from(["api", "--redis", &redis, "--layout", layout, "--top-refresh", "200ms"])
                .expect("api config");
        let state = api::state(&api_config, None).await.expect("api state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let api_url = format!("http://{}", listener.local_addr().expect("addr"));
        let api = tokio::spawn(api::run(listener, state, api_config, stop.clone()));

        let report_path = std::env::temp_dir().join(format!("{board}.json"));
        let run_args = [
            "run",
            "--api",
            &api_url,
            "--rate",
            "3000",
            "--duration",
            "3s",
            "--read-rate",
            "200",
            "--probe-interval",
            "200ms",
            "--verify-sample",
            "500",
            "--settle-timeout",
            "60s",
            "--report",
            report_path.to_str().expect("path"),
        ];
        let Command::Run(args) = cli(&[&world_args[..], &run_args[..]].concat()).command else { panic!("run command") };
        let report =
            tokio::time::timeout(Duration::from_secs(120), loadgen::run(&world, &args, CancellationToken::new()))
                .await
                .expect("run finishes")
                .expect("run");
        stop.cancel();
        ingest.await.expect("ingest task").expect("ingest");
        api.await.expect("api task").expect("api");

        println!("{}", report.table());
        assert_eq!(report.verification.mismatches, 0, "{layout}: {:?}", report.verification.examples);
        assert_eq!(report.verification.sampled, 500);
        assert_eq!(report.verification.top_rows, 100);
        assert_eq!(report.writes.sent, 9000);
        assert_eq!(report.writes.acked, 9000);
        assert!(report.passed(), "{layout}: achieved {:.0}/s", report.writes.achieved_rate);
        assert!(report.freshness.samples > 0 && report.freshness.timeouts == 0, "{:?}", report.freshness);
        assert!(report.reads_top.latency.count > 0 && report.reads_rank.latency.count > 0);
        assert_eq!(report.reads_top.errors + report.reads_rank.errors, 0);
        assert_eq!(report.environment.layout, layout);
    }
}
