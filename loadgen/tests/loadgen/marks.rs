//! Erasures and bans during the load: the api's admin routes take them while
//! events of the same players are in flight, and the report must still
//! verify with no mismatch, the answers read after each call included.
//!
//! Each test runs on a Redis of its own: erasures and bans are store-wide,
//! and loadgen's player ids (`p-00000042`) are every run's, so a ban here
//! would dead-letter another test's events of the same player.

use crate::run::{Flags, assert_clean, short_run_with, two_resets};

/// The admin token loadgen presents, and its SHA-256 (`printf %s <token> | sha256sum`), which the api holds.
const TOKEN: &str = "loadgen-test-admin-token";
const TOKEN_SHA256: &str = "b713dd325ea0bbfcbc87d046476a58b3bd61b349c159bfb48ea78caa65cd8983";

/// The api's `--admin-token` for [`TOKEN`].
fn api_token() -> [String; 2] {
    ["--admin-token".to_string(), format!("loadgen:{TOKEN_SHA256}:admin")]
}

/// What a run with `erased` erasures and `banned` bans reports on top of being clean.
fn assert_marks_verified(report: &loadgen::report::Report, erased: u64, banned: u64) {
    let m = report.marks.as_ref().expect("the report has the erasures and bans");
    assert_eq!((m.erased, m.banned, m.failed_calls), (erased, banned, 0), "{:?}", m.failures);
    assert_eq!(m.violations, 0, "{:?}", m.examples);
    assert!(m.answers_after > 0, "answers read after the calls were judged: {m:?}");
    assert_eq!(m.unanswered, 0, "{m:?}");
    assert_eq!(report.verification.marked, erased + banned, "each checked again at the end");
    assert!(report.table().contains(&format!("{erased} erased, {banned} banned during the load")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn erasures_and_bans_mid_load_verify_on_every_board() {
    let redis = testkit::PrivateRedis::start();
    let layout = "range:3000,6000";
    let flags = || Flags {
        run: ["--erase", "4", "--ban", "4", "--admin-token", TOKEN].map(String::from).into(),
        api: api_token().into(),
        ..Flags::default()
    };
    let report = short_run_with(&redis.url(), layout, 2, &flags, &["--duration", "3s"]).await;
    assert_clean(&report, layout);
    assert_marks_verified(&report, 4, 4);
    // 3000 players and the probe on each board's total, less those banned or erased without a new start.
    let (expected, seen) = report.verification.total;
    assert_eq!(expected, seen);
    assert!(
        (2994..=2998).contains(&expected),
        "the banned players left, and the erased ones without a new start: {expected}"
    );
}

/// Erasures and bans across two season resets on an `earliest` board: an
/// erased player's new start counts in the season of each new event, with
/// the time it was reached; a banned one leaves every season (closed ones
/// too: loadgen's bans reach them).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn erasures_and_bans_across_two_resets_verify_every_season() {
    let redis = testkit::PrivateRedis::start();
    let flags = || {
        two_resets(&["--erase", "3", "--ban", "3", "--admin-token", TOKEN], &api_token().each_ref().map(String::as_str))
    };
    let world = ["--duration", "7s", "--reset", "day", "--late-grace", "1d", "--ties", "earliest"];
    let report = short_run_with(&redis.url(), "hash:3", 1, &flags, &world).await;
    assert!(report.passed(), "{}", report.table());
    assert_marks_verified(&report, 3, 3);
    assert_eq!(report.seasons.len(), 3, "{}", report.table());
    for s in &report.seasons {
        assert_eq!(s.verification.mismatches, 0, "{}: {:?}", s.season, s.verification.examples);
        assert_eq!(s.verification.marked, 6, "{}: every marked player checked in every season", s.season);
    }
}
