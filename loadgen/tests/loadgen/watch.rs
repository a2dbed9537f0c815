//! `loadgen watch` end to end: markers through the broker, ingest and Redis reach every
//! client of the api, by stream and by polling, and each arrival is measured.

use std::time::Duration;

use clap::Parser as _;
use loadgen::config::Command;
use tokio_util::sync::CancellationToken;

use crate::{cli, start_api};

#[tokio::test]
async fn streams_and_pollers_see_every_marker_and_report_its_delay() {
    let redis = testkit::redis_url();
    let (topic, group, board) = (testkit::unique("scores"), testkit::unique("group"), testkit::unique("watchlg"));
    let brokers = testkit::brokers();
    let common = ["--brokers", &brokers, "--topic", &topic, "--group", &group, "--redis", &redis, "--layout", "single"];
    let world = cli(&[&["loadgen"][..], &common, &["topics"]].concat()).world;
    loadgen::topics::create(&world, 3, 1).await.expect("topics");
    let stop = CancellationToken::new();
    let ingest_config = ingest::Config::try_parse_from([&["ingest"][..], &common, &["--linger", "5ms"]].concat())
        .expect("ingest config");
    let telemetry = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("ingest telemetry listener");
    let ingest = tokio::spawn(ingest::run(ingest_config, telemetry, stop.clone()));
    let api = start_api(&redis, "single", &topic, &["--watch-per-client", "100"], stop.clone()).await;
    let api_url = api.url();
    for mode in ["stream", "poll"] {
        let report_path = std::env::temp_dir().join(format!("{board}-{mode}.json"));
        let args = [
            "watch",
            "--api",
            &api_url,
            "--mode",
            mode,
            "--clients",
            "40",
            "--duration",
            "3s",
            "--marker-every",
            "300ms",
            "--watch-board",
            &board,
            "--report",
            report_path.to_str().expect("path"),
        ];
        let Command::Watch(args) = cli(&[&["loadgen"][..], &common, &args].concat()).command else {
            panic!("watch command")
        };
        let report = tokio::time::timeout(Duration::from_secs(120), loadgen::watch::run(&world, &args))
            .await
            .expect("watch finishes")
            .expect("watch");
        println!("{}", report.table());
        assert_eq!(report.failed_clients, 0, "{mode}");
        assert_eq!(report.missed, 0, "{mode}: every client saw the last marker");
        // Every client measures every marker produced while it followed: 2..=last at least.
        assert!(report.samples >= 40 * (report.markers - 1), "{mode}: {report:?}");
        assert!(report.delay_ms_p50 > 0.0 && report.delay_ms_p50 <= report.delay_ms_p99, "{mode}: {report:?}");
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report_path).expect("report")).expect("JSON report");
        assert_eq!(written["mode"], mode);
    }
    stop.cancel();
    ingest.await.expect("ingest task").expect("ingest");
    api.stop().await.expect("api");
}
