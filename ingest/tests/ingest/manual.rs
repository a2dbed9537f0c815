//! `manual` seasons end to end: a reset mid-stream splits the events by their
//! time, and a writer that read the seasons before the reset and writes after
//! it put its events where the resets say (the reset ends the season after them).

use std::time::Duration;

use leaderboard_contract::{BoardId, ScoreEvent};
use leaderboard_semantics::clock::system_ms;
use leaderboard_semantics::{Oracle, Rules, ScoreUpdate};
use leaderboard_store::board::manual::ResetOutcome;
use leaderboard_store::layout::record::{self, RecordedLayout};

use crate::helpers::{
    Topics, Worker, config_with, produce_events, producer, random_events_at, router, unique, wait_for_committed,
    wait_for_oracle,
};

fn oracle(board: &BoardId, events: &[&ScoreEvent]) -> Oracle {
    let mut o = Oracle::new();
    for e in events {
        o.apply(&ScoreUpdate {
            board: board.clone(),
            player: e.player.clone(),
            score: e.score,
            time_ms: e.ts_ms.expect("time"),
            meta: e.meta.clone(),
            source: None,
        });
    }
    o
}

/// The worker reads the seasons for its first batch (stamped over the last
/// minute) and is held there; a reset whose clock lags (it reads a time in
/// the middle of the batch's) ends the season after every time the worker
/// read for. Released, the worker writes the batch into `m1`; later events go
/// by the reset. Every season equals the events its interval holds, by the
/// resets as they end up: what a replay would place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_held_across_a_reset_places_its_events_where_the_resets_say() {
    // A Redis of this test's own: no other test's closer looks at its seasons.
    let redis = testkit::PrivateRedis::start();
    let topics = Topics::create(1).await;
    let layout = "range:500";
    let board = BoardId::new(unique("manual")).expect("board");
    let rules = Rules {
        reset: Some(serde_json::from_str(r#"{"every":"manual"}"#).expect("manual")),
        late_grace: Duration::from_secs(3600),
        ..Rules::default()
    };
    let reader = router(&redis.url(), layout).await;
    record::set_rules(reader.store(), &board, RecordedLayout::of(reader.spec()), rules).await.expect("rules");
    let t0 = u64::try_from(system_ms()).expect("now") - 60_000;
    reader.start_manual(&board, i64::try_from(t0).expect("t0")).await.expect("start");

    let first = random_events_at(1, &board, 40, 400, |rng| rand::Rng::random_range(rng, t0 + 1..t0 + 59_000));
    let hold = testkit::FailHold::new("ingest::manual_viewed");
    produce_events(&producer(), &topics.scores, &first).await;
    let worker = Worker::start(config_with(&topics, &redis.url(), layout, &[]));
    assert!(hold.reached(Duration::from_secs(60)).await, "the worker never read its seasons");
    let lagging = i64::try_from(t0 + 1_000).expect("clock");
    let reset_at = match reader.reset_season(&board, lagging, None).await.expect("reset") {
        ResetOutcome::Ended { ended, opened } => {
            assert_eq!((ended.id.as_str(), opened.id.as_str()), ("m1", "m2"));
            u64::try_from(ended.end_ms).expect("end")
        }
        other @ ResetOutcome::First(_) => panic!("m1 was open: {other:?}"),
    };
    assert!(reset_at > t0 + 1_000, "the reset ends m1 after the times the held worker read for, at {reset_at}");
    hold.release();

    // After the reset: events of the new season, and late ones of m1 (within its grace).
    let now = u64::try_from(system_ms()).expect("now");
    let second = random_events_at(2, &board, 40, 300, |rng| rand::Rng::random_range(rng, reset_at..=now));
    let late = random_events_at(3, &board, 40, 100, |rng| rand::Rng::random_range(rng, t0..reset_at));
    produce_events(&producer(), &topics.scores, &[second.clone(), late.clone()].concat()).await;

    let all: Vec<&ScoreEvent> = first.iter().chain(&second).chain(&late).collect();
    let split = |in_m1: bool| -> Vec<&ScoreEvent> {
        all.iter().copied().filter(|e| (e.ts_ms.expect("time") < reset_at) == in_m1).collect()
    };
    let (m1, m2) = (board.season("m1"), board.season("m2"));
    let wait = Duration::from_secs(60);
    wait_for_oracle(&reader, &oracle(&board, &all), &board, wait).await;
    wait_for_oracle(&reader, &oracle(&m1, &split(true)), &m1, wait).await;
    wait_for_oracle(&reader, &oracle(&m2, &split(false)), &m2, wait).await;
    wait_for_committed(&topics, wait).await;
    worker.stop().await;
}
