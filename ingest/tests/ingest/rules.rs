//! Board rules end to end: bounds send events to the dead letters, and an
//! `asc`, `earliest` board fed through Kafka equals the oracle.

use std::time::Duration;

use leaderboard_contract::{BoardId, ScoreEvent};
use leaderboard_semantics::{Oracle, Order, Rules, ScoreUpdate, Ties};
use leaderboard_store::layout::record::{self, RecordedLayout};
use rand::Rng;

use crate::helpers::{
    Topics, Worker, config, produce_events, producer, random_events_at, read_dlq, redis_url, router, unique,
    wait_for_committed, wait_for_oracle,
};

/// Lap times of 0..1000 reached at 40 distinct times, shuffled and partly
/// duplicated: ties on scores and on times abound, and some laps are out of bounds.
fn laps(seed: u64, board: &BoardId, players: usize, events: usize) -> Vec<ScoreEvent> {
    random_events_at(seed, board, players, events, |rng| 1_763_800_000_000 + rng.random_range(0..40))
}

fn oracle(board: &BoardId, rules: Rules, events: &[ScoreEvent]) -> Oracle {
    let mut o = Oracle::new();
    o.set_rules(board, rules);
    for e in events {
        let time_ms = e.ts_ms.expect("every lap has a time");
        o.apply(&ScoreUpdate {
            board: e.board.clone(),
            player: e.player.clone(),
            score: e.score,
            time_ms,
            meta: e.meta.clone(),
            source: None,
        });
    }
    o
}

#[tokio::test]
async fn bounds_dead_letter_and_every_layout_honours_order_and_ties() {
    for layout in ["single", "hash:3", "range:500,900"] {
        let topics = Topics::create(3).await;
        let board = BoardId::new(unique("laps")).expect("board");
        let rules =
            Rules { order: Order::Asc, ties: Ties::Earliest, min_score: 10, max_score: 900, ..Rules::default() };
        let reader = router(&redis_url(), layout).await;
        let recorded = RecordedLayout::of(reader.spec());
        record::set_rules(reader.store(), &board, recorded, rules).await.expect("rules");
        let events = laps(5, &board, 150, 3000);
        let out_of_bounds = events.iter().filter(|e| !rules.accepts(e.score)).count();
        assert!(out_of_bounds > 100, "the stream has laps out of bounds");
        produce_events(&producer(), &topics.scores, &events).await;
        let worker = Worker::start(config(&topics, &redis_url(), layout));
        wait_for_oracle(&reader, &oracle(&board, rules, &events), &board, Duration::from_secs(60)).await;
        wait_for_committed(&topics, Duration::from_secs(60)).await;
        let report = worker.stop().await;
        assert_eq!(report.dead_lettered, out_of_bounds as u64, "{layout}: every lap out of bounds, and only those");
        let dead = read_dlq(&topics.dlq, out_of_bounds).await;
        assert!(dead.iter().all(|d| d.header("error.code") == "out_of_bounds"), "{layout}");
        assert!(dead[0].header("error").starts_with("out_of_bounds: score "), "{}", dead[0].header("error"));

        // Narrower bounds apply to what a worker processes after the change.
        let narrow = Rules { max_score: 300, ..rules };
        record::set_rules(reader.store(), &board, recorded, narrow).await.expect("narrow");
        let more = laps(6, &board, 150, 500);
        produce_events(&producer(), &topics.scores, &more).await;
        let worker = Worker::start(config(&topics, &redis_url(), layout));
        let mut all = events.clone();
        all.extend(more.iter().filter(|e| narrow.accepts(e.score)).cloned());
        wait_for_oracle(&reader, &oracle(&board, rules, &all), &board, Duration::from_secs(60)).await;
        wait_for_committed(&topics, Duration::from_secs(60)).await;
        let report = worker.stop().await;
        let refused = more.iter().filter(|e| !narrow.accepts(e.score)).count() as u64;
        assert_eq!(report.dead_lettered, refused, "{layout}: the new bounds refuse more");
    }
}
