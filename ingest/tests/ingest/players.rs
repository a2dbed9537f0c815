//! Erased and banned players in ingest, against the real broker and Redis:
//! an erased player's records stamped before the erasure are never applied
//! (and never copied to the dead letters), later ones are a new start; a
//! banned player's events are dead letters `banned`; and an erasure that
//! lands while a batch of the same player is in flight still wins.

use std::collections::HashMap;
use std::time::Duration;

use leaderboard_contract::{BoardId, PlayerId, ScoreEvent};
use leaderboard_semantics::clock::system_ms;
use leaderboard_store::marker::registry::{self, Ban, BanScope};
use rdkafka::producer::{FutureProducer, FutureRecord};
use testkit::{redis_url, unique};

use crate::helpers::{
    Topics, Worker, config, oracle_of, producer, random_events, read_dlq, router, wait_for_committed, wait_for_oracle,
};

/// Produces `events` with the Kafka timestamp `at_ms`.
async fn produce_at(producer: &FutureProducer, topic: &str, events: &[ScoreEvent], at_ms: i64) {
    for e in events {
        let (key, value) = (e.key().to_vec(), e.to_json());
        let record = FutureRecord::to(topic).key(&key).payload(&value).timestamp(at_ms);
        producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e).expect("produced");
    }
}

fn events_of(board: &BoardId, player: &PlayerId, scores: &[u64]) -> Vec<ScoreEvent> {
    scores
        .iter()
        .map(|&score| ScoreEvent {
            board: board.clone(),
            player: player.clone(),
            score,
            ts_ms: None,
            id: None,
            meta: None,
        })
        .collect()
}

#[tokio::test]
async fn an_erased_players_earlier_records_are_never_applied_and_a_banned_players_are_dead_letters() {
    let topics = Topics::create(2).await;
    let board = BoardId::new(unique("players")).expect("board");
    let reader = router(&redis_url(), "hash:2").await;
    let (gone, cheat) =
        (PlayerId::new(unique("gone")).expect("player"), PlayerId::new(unique("cheat")).expect("player"));
    let others = random_events(71, &board, 30, 400);
    let now = system_ms();
    let erased_at = registry::mark_erased(reader.store(), &gone).await.expect("erase");
    // Nothing of the player is stored yet: the erasure's removal has nothing to do.
    registry::finish_erasure(reader.store(), &gone).await.expect("finished");
    let ban =
        Ban { boards: BanScope::Boards(vec![board.clone()]), closed_seasons: false, reason: "x".into(), at_ms: 1 };
    registry::ban(reader.store(), &cheat, &ban).await.expect("ban");

    let producer = producer();
    let before = events_of(&board, &gone, &[900, 950, 990]);
    let after = events_of(&board, &gone, &[10, 20]);
    let cheating = events_of(&board, &cheat, &[999, 998, 997, 996]);
    produce_at(&producer, &topics.scores, &before, erased_at - 1).await;
    crate::helpers::produce_events(&producer, &topics.scores, &others).await;
    produce_at(&producer, &topics.scores, &cheating, now).await;
    produce_at(&producer, &topics.scores, &after, erased_at).await;

    let worker = Worker::start(config(&topics, &redis_url(), "hash:2"));
    let mut expected: Vec<ScoreEvent> = others.clone();
    expected.extend(after.iter().cloned());
    wait_for_oracle(&reader, &oracle_of(&expected), &board, Duration::from_secs(60)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    let standing = reader.standing(&board, &gone).await.expect("standing").expect("a new start");
    assert_eq!(standing.score, 20, "only the records stamped at or after the erasure count");
    assert_eq!(reader.standing(&board, &cheat).await.expect("standing"), None, "a banned player stays out");
    let dead = read_dlq(&topics.dlq, cheating.len()).await;
    let codes: HashMap<&str, usize> = dead.iter().fold(HashMap::new(), |mut m, d| {
        *m.entry(d.header("error.code")).or_default() += 1;
        m
    });
    assert_eq!(codes, [("banned", cheating.len())].into(), "the banned player's events, and nothing of the erased one");
    let report = worker.stop().await;
    assert_eq!(report.erased, before.len() as u64, "{report:?}");
}

/// The race the erasure (docs/contract.md#players-erasure-and-bans) must win, by construction: the fail point
/// `ingest::after_player_marks` holds the writer after it read its batch's
/// marks (the player not erased yet) and before it writes; the erasure runs
/// in full while it is held (mark, then removal everywhere); then the writer
/// writes the batch. It must take the player out again before it stores the
/// batch's offsets, and a worker that starts after never brings them back.
// Multi-threaded: the held writer blocks a runtime thread (`block_in_place`) while the test erases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs the fail points: run with --features ingest/failpoints")]
async fn an_erasure_during_a_batch_of_the_same_player_wins() {
    let topics = Topics::create(1).await;
    let board = BoardId::new(unique("erase-race")).expect("board");
    let reader = router(&redis_url(), "single").await;
    let gone = PlayerId::new(unique("gone")).expect("player");
    let mut events = random_events(72, &board, 20, 200);
    events.extend(events_of(&board, &gone, &[500, 700]));
    crate::helpers::produce_events(&producer(), &topics.scores, &events).await;

    let hold = testkit::FailHold::new("ingest::after_player_marks");
    let worker = Worker::start(config(&topics, &redis_url(), "single"));
    assert!(hold.reached(Duration::from_secs(60)).await, "the writer read its first batch's marks");
    assert_eq!(reader.total(&board).await.expect("total"), 0, "held before its first write");
    reader.erase_player(&gone).await.expect("erase");
    hold.release();

    let others: Vec<ScoreEvent> = events.iter().filter(|e| e.player != gone).cloned().collect();
    wait_for_oracle(&reader, &oracle_of(&others), &board, Duration::from_secs(60)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    assert_eq!(reader.standing(&board, &gone).await.expect("standing"), None, "the erasure won");
    worker.stop().await;
    drop(hold);
    // The records are committed: a new group replaying them from the start drops them too.
    let replay = Topics { group: unique("again"), ..topics.clone() };
    let again = Worker::start(config(&replay, &redis_url(), "single"));
    wait_for_committed(&replay, Duration::from_secs(60)).await;
    assert_eq!(reader.standing(&board, &gone).await.expect("standing"), None, "a replay never brings them back");
    let report = again.stop().await;
    assert_eq!(report.erased, 2, "{report:?}");
}

/// A new start that comes while the erasure is still removing the player is
/// kept, by construction: the fail point `store::erasure_after_mark` holds
/// the eraser after it marked the player and before its removal; a record
/// of the player stamped after the mark is produced and a worker started.
/// Written at once, the removal on its way would take it out again: the
/// worker must wait for the erasure to finish (or the test sees it commit
/// first, and the removal then takes the new start away).
// Multi-threaded: the held eraser blocks a runtime thread (`block_in_place`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs the fail points: run with --features ingest/failpoints")]
async fn a_new_start_during_an_unfinished_erasure_is_kept() {
    let topics = Topics::create(1).await;
    let board = BoardId::new(unique("erase-new-start")).expect("board");
    let reader = router(&redis_url(), "single").await;
    let back = PlayerId::new(unique("back")).expect("player");
    let old = leaderboard_semantics::ScoreUpdate {
        board: board.clone(),
        player: back.clone(),
        score: 900,
        time_ms: 1,
        meta: None,
        source: None,
    };
    reader.apply(std::slice::from_ref(&old)).await.expect("an old score");

    let eraser_held = testkit::FailHold::new("store::erasure_after_mark");
    let worker_waits = testkit::FailHold::new("ingest::waiting_for_erasure");
    let eraser = {
        let (router, player) = (reader.clone(), back.clone());
        tokio::spawn(async move { router.erase_player(&player).await })
    };
    assert!(eraser_held.reached(Duration::from_secs(30)).await, "the eraser marked the player");
    // Produced after the mark: Kafka stamps it after the erasure's time.
    crate::helpers::produce_events(&producer(), &topics.scores, &events_of(&board, &back, &[20])).await;
    let worker = Worker::start(config(&topics, &redis_url(), "single"));
    tokio::select! {
        waits = worker_waits.reached(Duration::from_secs(60)) => assert!(waits, "the worker waits"),
        () = wait_for_committed(&topics, Duration::from_secs(60)) => {}
    }
    worker_waits.release();
    eraser_held.release();
    eraser.await.expect("join").expect("erase");
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    let standing = reader.standing(&board, &back).await.expect("standing").map(|s| s.score);
    assert_eq!(standing, Some(20), "the new start stays; the old score is gone");
    worker.stop().await;
}
