//! Short end-to-end runs: every event through the broker, ingest and Redis,
//! every answer through the api, checked against loadgen's oracle.

use std::time::Duration;

use clap::Parser as _;
use loadgen::config::Command;
use tokio_util::sync::CancellationToken;

use crate::{cli, start_api};

/// One short run on `boards` boards with `layout`; returns the report.
async fn short_run(layout: &str, boards: usize) -> loadgen::report::Report {
    let (topic, dlq, group, board) =
        (testkit::unique("scores"), testkit::unique("dlq"), testkit::unique("group"), testkit::unique("lg"));
    let (redis, brokers, boards_arg) = (testkit::redis_url(), testkit::brokers(), boards.to_string());
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
    let world_args =
        [&["loadgen"][..], &common, &["--board", &board, "--boards", &boards_arg, "--players", "3000", "--seed", "9"]]
            .concat();
    let world = cli(&[&world_args[..], &["topics"]].concat()).world;
    loadgen::topics::create(&world, 3, 1).await.expect("topics");
    loadgen::seed::seed(&world, 500).await.expect("seed");

    let ingest_config = ingest::Config::try_parse_from([&["ingest"][..], &common, &["--linger", "5ms"]].concat())
        .expect("ingest config");
    let stop = CancellationToken::new();
    let telemetry = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("ingest telemetry listener");
    let ingest = tokio::spawn(ingest::run(ingest_config, telemetry, stop.clone()));
    let (api_url, api) = start_api(&redis, layout, &topic, stop.clone()).await;

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
    let report = tokio::time::timeout(Duration::from_secs(120), loadgen::run(&world, &args, CancellationToken::new()))
        .await
        .expect("run finishes")
        .expect("run");
    stop.cancel();
    ingest.await.expect("ingest task").expect("ingest");
    api.await.expect("api task");
    println!("{}", report.table());
    report
}

/// What every passing run shows, whatever the layout and board count.
fn assert_clean(report: &loadgen::report::Report, layout: &str) {
    let v = &report.verification;
    assert_eq!(v.mismatches, 0, "{layout}: {:?}", v.examples);
    assert_eq!(v.sampled, 500);
    // The distinct sampled players, checked again through the lookup route in lists.
    assert!((1..=500).contains(&v.looked_up), "{layout}: {} looked up", v.looked_up);
    assert_eq!(report.writes.sent, 9000);
    assert_eq!(report.writes.acked, 9000);
    assert!(report.passed(), "{layout}: achieved {:.0}/s", report.writes.achieved_rate);
    assert!(report.freshness.samples > 0 && report.freshness.timeouts == 0, "{:?}", report.freshness);
    assert!(report.reads_top.latency.count > 0 && report.reads_rank.latency.count > 0);
    assert_eq!(report.reads_top.errors + report.reads_rank.errors, 0);
    assert_eq!(report.environment.layout, layout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_board_meets_its_targets_and_verifies() {
    let report = short_run("single", 1).await;
    assert_clean(&report, "single");
    let v = &report.verification;
    assert_eq!(v.top_rows, 100);
    // 3000 players and the probe player.
    assert_eq!(v.total, (3001, 3001));
    assert_eq!(report.environment.boards, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_boards_each_verify_against_their_own_oracle() {
    let report = short_run("range:3000,6000", 3).await;
    assert_clean(&report, "range:3000,6000");
    let v = &report.verification;
    assert_eq!(report.environment.boards, 3);
    assert_eq!(v.boards.len(), 3);
    // 1000 players per board; the probe visited every board (a marker each 200 ms for 3 s).
    for b in &v.boards {
        assert_eq!(b.total, (1001, 1001), "{}", b.board);
        assert_eq!(b.top_rows, 100, "{}", b.board);
        assert!(b.sampled > 100, "the sample covers every board: {b:?}");
    }
    assert_eq!(v.top_rows, 300);
    assert_eq!(v.boards.iter().map(|b| b.sampled).sum::<u64>(), 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_stops_promptly_and_reports_what_ran() {
    let (topic, group, board, brokers) =
        (testkit::unique("scores"), testkit::unique("group"), testkit::unique("lg"), testkit::brokers());
    let world_args = [
        "loadgen",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--group",
        &group,
        "--board",
        &board,
        "--players",
        "1000",
    ];
    let world = cli(&[&world_args[..], &["topics"]].concat()).world;
    loadgen::topics::create(&world, 1, 1).await.expect("topics");
    // No api and no ingest: an interrupted run must neither read nor wait for them.
    let run_args = ["run", "--api", "http://127.0.0.1:9", "--rate", "2000", "--duration", "60s", "--read-rate", "0"];
    let Command::Run(args) = cli(&[&world_args[..], &run_args, &["--probe-interval", "0s"]].concat()).command else {
        panic!("run command")
    };
    let shutdown = CancellationToken::new();
    // The scenario: the user presses Ctrl-C a second into a one-minute run.
    let press_ctrl_c = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        shutdown.cancel();
    };
    let (report, ()) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(loadgen::run(&world, &args, shutdown.clone()), press_ctrl_c)
    })
    .await
    .expect("stops promptly");
    let report = report.expect("an interrupted run still reports");

    println!("{}", report.table());
    assert!(report.interrupted && !report.passed());
    let w = &report.writes;
    assert!(w.sent > 0 && w.sent < 120_000, "sent {}", w.sent);
    assert_eq!((w.acked, w.errors), (w.sent, 0), "every event sent before the stop is acknowledged");
    assert_eq!(report.verification.sampled, 0, "nothing is verified");
    assert!(report.table().contains("INCOMPLETE"));
}
