//! Seasons end to end through Kafka: events go to the season of their time
//! and to all-time; closed, removed and far-future seasons take none; a
//! worker whose clock is behind meets the fence another worker put up.

use std::collections::HashMap;
use std::time::Duration;

use leaderboard_contract::{BoardId, ScoreEvent};
use leaderboard_semantics::clock::system_ms;
use leaderboard_semantics::season::{Every, Reset};
use leaderboard_semantics::{Oracle, Rules, ScoreUpdate};
use leaderboard_store::Router;
use leaderboard_store::layout::record::{self, RecordedLayout};
use rand::Rng;

use crate::helpers::{
    Topics, Worker, config_with, produce_events, producer, random_events_at, read_dlq, router, unique,
    wait_for_committed, wait_for_oracle,
};

/// 2026-11-23T00:00:00Z: day seasons start here and every 86,400,000 ms after.
const DAY0: u64 = 1_795_392_000_000;
const DAY: u64 = 86_400_000;
const HOUR: u64 = 3_600_000;

/// Events of `players` players at times in `from..to`.
fn events_in(seed: u64, board: &BoardId, from: u64, to: u64) -> Vec<ScoreEvent> {
    random_events_at(seed, board, 40, 400, |rng| rng.random_range(from..to))
}

fn oracle(board: &BoardId, events: &[&ScoreEvent]) -> Oracle {
    let mut o = Oracle::new();
    for e in events {
        let time_ms = e.ts_ms.expect("time");
        o.apply(&ScoreUpdate {
            board: board.clone(),
            player: e.player.clone(),
            score: e.score,
            time_ms,
            meta: e.meta.clone(),
            source: None,
        });
    }
    o
}

/// A `--clock` that reads `at` now (and runs on from there).
fn clock_at(at: u64) -> String {
    format!("offset:{}", i64::try_from(at).expect("time") - system_ms())
}

fn codes(dead: &[crate::helpers::DeadLetter]) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for d in dead {
        *out.entry(d.header("error.code").to_string()).or_default() += 1;
    }
    out
}

async fn seasons_of(router: &Router, board: &BoardId) -> Vec<(String, bool)> {
    router.seasons(board).await.expect("seasons").into_iter().map(|e| (e.id.clone(), e.closed())).collect()
}

#[tokio::test]
async fn events_land_in_their_season_and_a_closed_season_stays_frozen() {
    // A Redis of this test's own: every ingest worker closes, on every board of
    // its Redis, the seasons its clock says are over. These workers' clocks are
    // not the other tests' (on the shared Redis, theirs would close this test's
    // seasons and these would close theirs).
    let redis = testkit::PrivateRedis::start();
    let redis_url = || redis.url();
    for layout in ["single", "hash:3", "range:500"] {
        let topics = Topics::create(3).await;
        let board = BoardId::new(unique("daily")).expect("board");
        let reset =
            Reset { every: Every::Day, utc_offset: time::UtcOffset::UTC, weekday: time::Weekday::Monday, span: None };
        let rules = Rules { reset: Some(reset), late_grace: Duration::from_secs(3600), ..Rules::default() };
        let reader = router(&redis_url(), layout).await;
        record::set_rules(reader.store(), &board, RecordedLayout::of(reader.spec()), rules).await.expect("rules");
        let (d1, d2) = (DAY0 + DAY, DAY0 + 2 * DAY);
        // The worker's clock reads 10 minutes into day 2: day 1 is in its grace (1 h), day 0 is closed.
        let behind = clock_at(d2 + 10 * 60_000);
        let day1 = events_in(1, &board, d1, d2); // straddling: up to the last millisecond of day 1
        let day2 = events_in(2, &board, d2, d2 + 5 * 60_000); // from the first millisecond of day 2
        let day0 = events_in(3, &board, DAY0, d1); // closed: all-time only
        let future = events_in(4, &board, d2 + 2 * DAY, d2 + 3 * DAY); // not started: all-time only
        let mut stream: Vec<ScoreEvent> = [&day1, &day2, &day0, &future].into_iter().flatten().cloned().collect();
        let edges = [(d2 - 1, "edge-late"), (d2, "edge-early")];
        for (ts, player) in edges {
            let mut e = day1[0].clone();
            e.player = leaderboard_contract::PlayerId::new(player).expect("player");
            e.ts_ms = Some(ts);
            stream.push(e);
        }
        produce_events(&producer(), &topics.scores, &stream).await;
        let worker = Worker::start(config_with(&topics, &redis_url(), layout, &["--clock", &behind]));

        let all: Vec<&ScoreEvent> = stream.iter().collect();
        let in_day = |from: u64, to: u64| -> Vec<&ScoreEvent> {
            stream.iter().filter(|e| (from..to).contains(&e.ts_ms.expect("time"))).collect()
        };
        let (s1, s2) = (board.season("2026-11-24"), board.season("2026-11-25"));
        let wait = Duration::from_secs(60);
        wait_for_oracle(&reader, &oracle(&board, &all), &board, wait).await;
        wait_for_oracle(&reader, &oracle(&s1, &in_day(d1, d2)), &s1, wait).await;
        wait_for_oracle(&reader, &oracle(&s2, &in_day(d2, d2 + DAY)), &s2, wait).await;
        assert!(reader.standing(&s1, &"edge-late".parse().expect("id")).await.expect("read").is_some(), "{layout}");
        assert!(reader.standing(&s2, &"edge-early".parse().expect("id")).await.expect("read").is_some(), "{layout}");
        let refused = read_dlq(&topics.dlq, day0.len() + future.len()).await;
        let want: HashMap<String, usize> =
            [("season_closed".to_string(), day0.len()), ("invalid_ts".to_string(), future.len())].into();
        assert_eq!(codes(&refused), want, "{layout}: closed and future seasons refuse, all-time takes them");
        assert_eq!(
            seasons_of(&reader, &board).await,
            [("2026-11-25".to_string(), false), ("2026-11-24".to_string(), false)],
            "{layout}: only the seasons written to exist"
        );

        // A second worker (another group, nothing to consume) whose clock is past day 1's grace closes it.
        let idle = Topics::create(1).await;
        let ahead = clock_at(d2 + HOUR + 5_000);
        let closer = Worker::start(config_with(&idle, &redis_url(), layout, &["--clock", &ahead]));
        let deadline = tokio::time::Instant::now() + wait;
        while seasons_of(&reader, &board).await[1] != ("2026-11-24".to_string(), true) {
            assert!(tokio::time::Instant::now() < deadline, "{layout}: day 1 never closed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The first worker's clock says day 1 still takes events: the fence refuses them.
        let late = events_in(5, &board, d1, d2);
        produce_events(&producer(), &topics.scores, &late).await;
        let mut with_late = all.clone();
        with_late.extend(late.iter());
        wait_for_oracle(&reader, &oracle(&board, &with_late), &board, wait).await;
        wait_for_committed(&topics, wait).await;
        let dead = read_dlq(&topics.dlq, day0.len() + future.len() + late.len()).await;
        assert_eq!(
            codes(&dead).get("season_closed").copied(),
            Some(day0.len() + late.len()),
            "{layout}: every late event is a dead letter"
        );
        wait_for_oracle(&reader, &oracle(&s1, &in_day(d1, d2)), &s1, Duration::ZERO).await;
        closer.stop().await;
        worker.stop().await;
    }
}

/// As the review suspected, by construction: ingest is behind at a reset (it gets to day 1's events
/// 50 s after day 1 closed by its clock: a failover, a pause, a backlog) while the events reached
/// Kafka in time (their Kafka timestamps read 10 s before the close on the same clock). Before, they
/// were dead-lettered `season_closed` and the frozen season's `as_of` claimed them anyway; now they
/// are in the season, which closes once the topic's watermark says they are applied, and nothing
/// is refused. A replay judges by the same timestamps, so it builds the same season.
#[tokio::test]
async fn events_produced_in_time_are_never_refused_because_ingest_was_behind_at_the_reset() {
    use rdkafka::producer::FutureRecord;
    // A Redis of its own: the season is dated, and other tests' closers must not close it.
    let redis = testkit::PrivateRedis::start();
    let topics = Topics::create(2).await;
    let board = BoardId::new(unique("behind")).expect("board");
    let reset =
        Reset { every: Every::Day, utc_offset: time::UtcOffset::UTC, weekday: time::Weekday::Monday, span: None };
    let rules = Rules { reset: Some(reset), late_grace: Duration::from_secs(3600), ..Rules::default() };
    let reader = router(&redis.url(), "single").await;
    record::set_rules(reader.store(), &board, RecordedLayout::Single, rules).await.expect("rules");
    let (d1, d2) = (DAY0 + DAY, DAY0 + 2 * DAY);
    let day1 = events_in(6, &board, d1, d2);
    // The records reach Kafka a minute ago by the real clock, which the worker's clock reads as 10 s
    // before day 1 closes (its end plus the 1 h grace): it starts 50 s after the close.
    let reached = system_ms() - 60_000;
    let close = i64::try_from(d2 + HOUR).expect("time");
    let clock = format!("offset:{}", close - 10_000 - reached);
    let producer = producer();
    for e in &day1 {
        let (key, value) = (e.key().to_vec(), e.to_json());
        let record = FutureRecord::to(&topics.scores).key(&key).payload(&value).timestamp(reached);
        producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e).expect("produced");
    }
    let worker = Worker::start(config_with(&topics, &redis.url(), "single", &["--clock", &clock]));
    let s1 = board.season("2026-11-24");
    let wait = Duration::from_secs(60);
    let all: Vec<&ScoreEvent> = day1.iter().collect();
    wait_for_oracle(&reader, &oracle(&s1, &all), &s1, wait).await;
    wait_for_committed(&topics, wait).await;
    let deadline = tokio::time::Instant::now() + wait;
    while seasons_of(&reader, &board).await != [("2026-11-24".to_string(), true)] {
        assert!(tokio::time::Instant::now() < deadline, "day 1 never closed: {:?}", seasons_of(&reader, &board).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for_oracle(&reader, &oracle(&s1, &all), &s1, Duration::ZERO).await;
    let report = worker.stop().await;
    assert_eq!(report.dead_lettered, 0, "nothing produced in time is refused");
}

/// Hourly and span seasons through Kafka: each event lands in the season its
/// time names, across a month's end: an hour's last millisecond in that hour
/// and the next hour's first in the next; a span (one day from the 29th at
/// 18:00) whose second season crosses into December; events before the
/// span's start count for all-time only, without a dead letter.
#[tokio::test]
async fn hourly_and_span_seasons_take_the_events_of_their_times_across_a_month_end() {
    let redis = testkit::PrivateRedis::start();
    let topics = Topics::create(2).await;
    let reader = router(&redis.url(), "hash:2").await;
    let (hour_end, span_start) = (DAY0 + 8 * DAY, DAY0 + 6 * DAY + 18 * HOUR); // 12-01T00:00, 11-29T18:00
    let now = hour_end + 30 * 60_000; // the worker's clock: 2026-12-01T00:30
    let schedules = [
        ("hourly", r#"{"every":"hour"}"#, "1h"),
        ("span", r#"{"every":"span","start":"2026-11-29T18:00:00Z","length":"1d"}"#, "1d"),
    ];
    let mut boards = Vec::new();
    for (name, reset, grace) in schedules {
        let board = BoardId::new(unique(name)).expect("board");
        let rules: Rules =
            serde_json::from_str(&format!(r#"{{"reset":{reset},"late_grace":"{grace}"}}"#)).expect("rules");
        rules.validate().expect("valid rules");
        record::set_rules(reader.store(), &board, RecordedLayout::of(reader.spec()), rules).await.expect("rules");
        boards.push(board);
    }
    let (hourly, span) = (&boards[0], &boards[1]);
    let mut stream: Vec<ScoreEvent> = [
        events_in(11, hourly, hour_end - HOUR, hour_end),
        events_in(12, hourly, hour_end, now),
        events_in(13, span, span_start - 6 * HOUR, span_start),
        events_in(14, span, span_start, span_start + DAY),
        events_in(15, span, span_start + DAY, now),
    ]
    .concat();
    for (board, ts, player) in [
        (hourly, hour_end - 1, "edge-late"),
        (hourly, hour_end, "edge-early"),
        (span, span_start + DAY - 1, "edge-late"),
        (span, span_start + DAY, "edge-early"),
    ] {
        let mut e = stream[0].clone();
        (e.board, e.player, e.ts_ms) =
            (board.clone(), leaderboard_contract::PlayerId::new(player).expect("id"), Some(ts));
        stream.push(e);
    }
    produce_events(&producer(), &topics.scores, &stream).await;
    let worker = Worker::start(config_with(&topics, &redis.url(), "hash:2", &["--clock", &clock_at(now)]));

    let of = |board: &BoardId, from: u64, to: u64| -> Vec<&ScoreEvent> {
        stream.iter().filter(|e| &e.board == board && (from..to).contains(&e.ts_ms.expect("time"))).collect()
    };
    let wait = Duration::from_secs(60);
    for (board, id, from, to) in [
        (hourly, "2026-11-30T23", hour_end - HOUR, hour_end),
        (hourly, "2026-12-01T00", hour_end, hour_end + HOUR),
        (span, "2026-11-29T18:00", span_start, span_start + DAY),
        (span, "2026-11-30T18:00", span_start + DAY, span_start + 2 * DAY),
    ] {
        let season = board.season(id);
        wait_for_oracle(&reader, &oracle(&season, &of(board, from, to)), &season, wait).await;
    }
    for board in [hourly, span] {
        wait_for_oracle(&reader, &oracle(board, &of(board, 0, u64::MAX)), board, wait).await;
    }
    let listed: Vec<String> = seasons_of(&reader, span).await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(listed, ["2026-11-30T18:00", "2026-11-29T18:00"], "no season before the span's start");
    wait_for_committed(&topics, wait).await;
    let report = worker.stop().await;
    assert_eq!(report.dead_lettered, 0, "events before the span's start count for all-time, not as dead letters");
}
