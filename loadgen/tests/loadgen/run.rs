//! Short end-to-end runs: every event through the broker, ingest and Redis,
//! every answer through the api, checked against loadgen's oracle.

use std::time::Duration;

use clap::Parser as _;
use loadgen::config::Command;
use tokio_util::sync::CancellationToken;

use crate::{cli, start_api};

/// One short run on `boards` boards with `layout`; returns the report.
async fn short_run(layout: &str, boards: usize) -> loadgen::report::Report {
    short_run_with(&testkit::redis_url(), layout, boards, &Flags::default, &["--duration", "3s"]).await
}

/// Flags of a run beyond the common ones, asked for after seeding, just
/// before ingest, the api and the load start (a simulated clock depends on when).
#[derive(Debug, Default)]
pub(crate) struct Flags {
    /// Flags every process takes (ingest, the api, loadgen).
    pub(crate) shared: Vec<String>,
    /// Flags of `loadgen run` alone.
    pub(crate) run: Vec<String>,
    /// Flags of the api alone.
    pub(crate) api: Vec<String>,
}

/// [`short_run`] on `redis` with more [`Flags`] and flags of loadgen's
/// world (`world`: the duration first, then the world's).
pub(crate) async fn short_run_with(
    redis: &str,
    layout: &str,
    boards: usize,
    flags: &dyn Fn() -> Flags,
    world: &[&str],
) -> loadgen::report::Report {
    let (topic, dlq, group, board) =
        (testkit::unique("scores"), testkit::unique("dlq"), testkit::unique("group"), testkit::unique("lg"));
    let (brokers, boards_arg) = (testkit::brokers(), boards.to_string());
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
        redis,
        "--layout",
        layout,
    ];
    let (duration, world) = world.split_at(2);
    let world_args = [
        &["loadgen"][..],
        &common,
        world,
        &["--board", &board, "--boards", &boards_arg, "--players", "3000", "--seed", "9"],
    ]
    .concat();
    let world = cli(&[&world_args[..], &["topics"]].concat()).world;
    loadgen::topics::create(&world, 3, 1).await.expect("topics");
    loadgen::seed::seed(&world, 500).await.expect("seed");
    let flags = flags();
    let shared: Vec<&str> = flags.shared.iter().map(String::as_str).collect();
    let common = [&shared[..], &common].concat();
    let world_args = [&world_args[..], &shared].concat();
    let world = cli(&[&world_args[..], &["topics"]].concat()).world;

    let ingest_config = ingest::Config::try_parse_from([&["ingest"][..], &common, &["--linger", "5ms"]].concat())
        .expect("ingest config");
    let stop = CancellationToken::new();
    let telemetry = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("ingest telemetry listener");
    let ingest = tokio::spawn(ingest::run(ingest_config, telemetry, stop.clone()));
    let api_only: Vec<&str> = flags.api.iter().map(String::as_str).collect();
    let api = start_api(redis, layout, &topic, &[&shared[..], &api_only].concat(), stop.clone()).await;
    let api_url = api.url();

    let report_path = std::env::temp_dir().join(format!("{board}.json"));
    let run_args = [
        "run",
        "--api",
        &api_url,
        "--rate",
        "3000",
        duration[0],
        duration[1],
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
    let run_only: Vec<&str> = flags.run.iter().map(String::as_str).collect();
    let Command::Run(args) = cli(&[&world_args[..], &run_args[..], &run_only].concat()).command else {
        panic!("run command")
    };
    let report = tokio::time::timeout(Duration::from_secs(120), loadgen::run(&world, &args, CancellationToken::new()))
        .await
        .expect("run finishes")
        .expect("run");
    stop.cancel();
    ingest.await.expect("ingest task").expect("ingest");
    api.stop().await.expect("api");
    println!("{}", report.table());
    report
}

/// What every passing run shows, whatever the layout and board count.
pub(crate) fn assert_clean(report: &loadgen::report::Report, layout: &str) {
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
    // With metadata on every event: the verifier compares it with the scores.
    let world = ["--duration", "3s", "--meta"];
    let report = short_run_with(&testkit::redis_url(), "range:3000,6000", 3, &Flags::default, &world).await;
    assert!(report.table().contains("metadata (mix) on every event"), "{}", report.table());
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

/// `sum` and `last` boards with repeated events (copies right after their
/// original, earlier events re-sent with their id): each game counts once,
/// every total and latest score verified, metadata included.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sum_and_last_runs_with_repeated_events_verify() {
    for (operator, layout) in [("sum", "hash:3"), ("last", "single")] {
        let world = ["--duration", "3s", "--operator", operator, "--meta"];
        let flags = || Flags {
            run: ["--duplicate-share", "0.05", "--resend-share", "0.05"].map(String::from).to_vec(),
            ..Flags::default()
        };
        let report = short_run_with(&testkit::redis_url(), layout, 2, &flags, &world).await;
        let v = &report.verification;
        assert_eq!(v.mismatches, 0, "{operator}: {:?}", v.examples);
        assert!(report.passed(), "{operator}: {}", report.table());
        let w = &report.writes;
        assert!(w.duplicated > 200 && w.resent > 100, "{operator}: repeats were sent: {w:?}");
        assert_eq!(w.sent, 9000 + w.duplicated + w.resent, "{operator}");
        assert_eq!(w.acked, w.sent, "{operator}");
        assert!(report.environment.rules.contains(&format!("operator {operator}")), "{}", report.environment.rules);
        assert!(report.freshness.samples > 0 && report.freshness.timeouts == 0, "{operator}: {:?}", report.freshness);
    }
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

/// Flags for a simulated clock (a day per 5 s, shared by ingest, the api and
/// loadgen) and a load that starts (`--start-at`) 2 s from now, when the clock
/// reads 1 s before a reset; with more flags for `loadgen run` and the api.
pub(crate) fn two_resets(run: &[&str], api: &[&str]) -> Flags {
    // Had ingest and the api been slower to start than 2 s, loadgen catches up
    // with events stamped as due, so the first reset comes 1 s into the load
    // however long the start took.
    let (day0, speed) = (1_795_392_000_000_i64, 17_280_i64); // 2026-11-23T00:00Z; 86,400,000 / 5,000
    let start = leaderboard_semantics::clock::system_ms() + 2000;
    let start_at = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(start).expect("after 1970"));
    let owned = |flags: &[&str]| flags.iter().map(ToString::to_string).collect::<Vec<_>>();
    Flags {
        shared: vec!["--clock".to_string(), format!("sim:{start}:{}:{speed}", day0 - 1000 * speed)],
        run: [vec!["--start-at".to_string(), humantime::format_rfc3339_millis(start_at).to_string()], owned(run)]
            .concat(),
        api: owned(api),
    }
}

/// Seasons through the whole pipeline: a simulated clock (a day per 5 s,
/// shared by ingest, the api and loadgen) and a load that starts (`--start-at`)
/// when it reads 1 s before a reset, so 7 s of load cross two day boundaries;
/// the report verifies each of the three seasons (the first closed by then)
/// and the all-time board.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_across_two_resets_verifies_every_season() {
    let timing = || two_resets(&[], &[]);
    let world = ["--duration", "7s", "--reset", "day", "--late-grace", "1d", "--meta"];
    // A Redis of this test's own: every ingest worker closes, on every board of
    // its Redis, the seasons its clock says are over, and this clock runs days
    // ahead of the other tests' (on the shared Redis, their workers would close
    // this run's seasons and this run's worker would close theirs).
    let redis = testkit::PrivateRedis::start();
    let report = short_run_with(&redis.url(), "hash:3", 1, &timing, &world).await;
    assert!(report.passed(), "{}", report.table());
    let seasons: Vec<(&str, &str)> = report.seasons.iter().map(|s| (s.season.as_str(), s.state.as_str())).collect();
    assert_eq!(seasons.len(), 3, "{seasons:?}");
    assert_eq!(seasons[0], ("2026-11-22", "closed"), "the first season closed during the run");
    let result = report.seasons[0].result.as_ref().expect("the closed season's result was checked");
    assert_eq!((result.records, result.revision, result.mismatches), (1, 1, 0), "its result, as the oracle says");
    assert!(report.seasons[1..].iter().all(|s| s.result.is_none()), "open seasons have no result");
    assert_eq!((seasons[1].0, seasons[2].0), ("2026-11-23", "2026-11-24"));
    for s in &report.seasons {
        assert_eq!(s.verification.mismatches, 0, "{}: {:?}", s.season, s.verification.examples);
        assert!(s.verification.sampled > 0 && s.verification.top_rows > 0, "{}: {:?}", s.season, s.verification);
    }
    let in_seasons: u64 = report.seasons.iter().map(|s| s.verification.total.0).sum();
    assert!(in_seasons > report.verification.total.0 / 2, "players played in the seasons: {in_seasons}");
}
