//! `last` and `sum` boards (docs/ingest.md#exactly-once-operators): every
//! record applied exactly once whatever the store is sent, on every layout
//! that takes them, on Redis and on the Cluster.

use std::sync::Arc;
use std::time::Duration;

use leaderboard_contract::MAX_SCORE;
use leaderboard_semantics::{IdKey, Operator, Oracle, Order, Rules, ScoreUpdate, Source, Ties};
use leaderboard_store::layout::record::RecordedLayout;
use leaderboard_store::{Error, Router};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::helpers::{assert_matches_oracle, event_meta, player, router, unique_board};

const PLAYERS: usize = 40;
const PARTITIONS: i32 = 3;

fn rules(operator: Operator, order: Order, ties: Ties) -> Rules {
    Rules { operator, order, ties, dedup_window: Duration::from_secs(2), ..Rules::default() }
}

/// A topic's records for one board: per partition, in offset order. A
/// player's records are in one partition. Scores are increments (`sum`) or
/// scores (`last`); seven records in ten carry an `id`, and one in five of
/// those re-sends an earlier id of the same player (its event again), some
/// within the 2 s window and some beyond it (timestamps grow 0-400 ms per record).
fn records(seed: u64, board: &leaderboard_contract::BoardId, events: usize, max: u64) -> Vec<Vec<ScoreUpdate>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let topic: Arc<str> = Arc::from("scores");
    let mut partitions: Vec<Vec<ScoreUpdate>> = vec![Vec::new(); PARTITIONS as usize];
    let mut clock = vec![1_700_000_000_000i64; PARTITIONS as usize];
    let mut sent: Vec<Vec<ScoreUpdate>> = vec![Vec::new(); PLAYERS];
    for n in 0..events {
        let who = rng.random_range(0..PLAYERS);
        let partition = i32::try_from(who).expect("few players") % PARTITIONS;
        let records = &mut partitions[partition as usize];
        clock[partition as usize] += rng.random_range(0..400);
        let source = |id: Option<IdKey>| Source {
            topic: topic.clone(),
            partition,
            offset: i64::try_from(records.len()).expect("few records"),
            at_ms: clock[partition as usize],
            id,
        };
        let update = if !sent[who].is_empty() && rng.random_bool(0.14) {
            let again = sent[who][rng.random_range(0..sent[who].len())].clone();
            ScoreUpdate { source: Some(source(again.source.as_ref().and_then(|s| s.id))), ..again }
        } else {
            let id = rng.random_bool(0.7).then(|| IdKey::of(&format!("e{n}")));
            ScoreUpdate {
                board: board.clone(),
                player: player(who),
                score: rng.random_range(0..=max),
                time_ms: 1_000 + n as u64,
                meta: rng.random_bool(0.6).then(|| event_meta(n as u32)),
                source: Some(source(id)),
            }
        };
        if update.source.as_ref().is_some_and(|s| s.id.is_some()) {
            sent[who].push(update.clone());
        }
        records.push(update);
    }
    partitions
}

/// At-least-once delivery of `partitions`: each partition read in runs,
/// rewinding now and then to an earlier offset (a crash, a rebalance, a retry
/// of a batch that had applied), partitions interleaved at random, cut into
/// batches at random. Redelivered runs may share a batch with their first delivery.
fn deliveries(seed: u64, partitions: &[Vec<ScoreUpdate>]) -> Vec<Vec<ScoreUpdate>> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut streams: Vec<Vec<ScoreUpdate>> = partitions
        .iter()
        .map(|records| {
            let (mut stream, mut cursor) = (Vec::new(), 0usize);
            while cursor < records.len() {
                let end = (cursor + rng.random_range(1..40)).min(records.len());
                stream.extend_from_slice(&records[cursor..end]);
                cursor = if rng.random_bool(0.3) { end.saturating_sub(rng.random_range(0..50)) } else { end };
            }
            stream.reverse();
            stream
        })
        .collect();
    let mut batches = Vec::new();
    let mut batch = Vec::new();
    while streams.iter().any(|s| !s.is_empty()) {
        let live: Vec<usize> = (0..streams.len()).filter(|&i| !streams[i].is_empty()).collect();
        let from = live[rng.random_range(0..live.len())];
        for _ in 0..rng.random_range(1..20) {
            if let Some(u) = streams[from].pop() {
                batch.push(u);
            }
        }
        if rng.random_bool(0.2) {
            batches.push(std::mem::take(&mut batch));
        }
    }
    batches.push(batch);
    batches
}

/// The state of applying every record exactly once.
fn oracle_of(board: &leaderboard_contract::BoardId, rules: Rules, partitions: &[Vec<ScoreUpdate>]) -> Oracle {
    let mut oracle = Oracle::new();
    oracle.set_rules(board, rules);
    for u in partitions.iter().flatten() {
        oracle.apply(u);
    }
    oracle
}

async fn create(router: &Router, rules: Rules) -> leaderboard_contract::BoardId {
    let board = unique_board("tally");
    router.set_rules(&board, rules).await.expect("create");
    board
}

/// The property: whatever the at-least-once delivery (reordered across
/// partitions, repeated within them, in any batches), the board equals the
/// oracle's exactly-once state, for each operator, order and tie rule.
async fn check(cluster: bool, spec: &str, seeds: std::ops::Range<u64>) {
    let router = router(cluster, spec).await;
    for seed in seeds {
        for operator in [Operator::Sum, Operator::Last] {
            let order = if seed % 2 == 0 { Order::Desc } else { Order::Asc };
            let ties = if seed % 3 == 0 { Ties::Earliest } else { Ties::Shared };
            let rules = rules(operator, order, ties);
            let board = create(&router, rules).await;
            let partitions = records(seed, &board, 900, 60);
            let mut replayed = 0;
            for batch in deliveries(seed, &partitions) {
                replayed += router.apply(&batch).await.expect("apply").replayed;
            }
            assert!(replayed > 0, "the deliveries repeat records");
            let context = format!("{spec} cluster={cluster} seed={seed} {operator} {order} {ties}");
            assert_matches_oracle(&router, &oracle_of(&board, rules, &partitions), &board, PLAYERS, &context).await;
        }
    }
}

#[tokio::test]
async fn single_applies_every_record_once() {
    check(false, "single", 0..4).await;
}

#[tokio::test]
async fn hash_applies_every_record_once() {
    check(false, "hash:4", 10..14).await;
}

#[tokio::test]
async fn cluster_hash_applies_every_record_once() {
    check(true, "hash:5", 20..22).await;
}

/// A batch split across Cluster nodes of which only some applied it (the
/// others timed out, or their node failed over to a replica without it),
/// then retried whole: each shard takes exactly what it lacks.
#[tokio::test]
async fn a_batch_applied_on_some_nodes_then_retried_counts_once() {
    let router = router(true, "hash:6").await;
    let rules = rules(Operator::Sum, Order::Desc, Ties::Shared);
    let board = create(&router, rules).await;
    let partitions = records(7, &board, 600, 50);
    let batch: Vec<ScoreUpdate> = partitions.iter().flatten().cloned().collect();
    let shards = RecordedLayout::Hash { shards: 6 };
    // The shards on the Cluster's first nodes apply; the rest do not (their part is left out).
    let applied_part: Vec<ScoreUpdate> =
        batch.iter().filter(|u| leaderboard_store::layout::hash::shard_of(&u.player, 6) < 3).cloned().collect();
    assert!(!applied_part.is_empty() && applied_part.len() < batch.len());
    router.apply(&applied_part).await.expect("a part applies");
    let retried = router.apply(&batch).await.expect("the retry applies");
    assert_eq!(retried.replayed, applied_part.len() as u64, "the retry skips exactly what had applied ({shards})");
    assert_matches_oracle(&router, &oracle_of(&board, rules, &partitions), &board, PLAYERS, "partial then retried")
        .await;
}

/// A write that applied but whose reply was lost (a timeout) is sent again:
/// nothing counts twice, and re-sent ids count once.
#[tokio::test]
async fn a_write_retried_after_it_applied_counts_once_and_duplicate_ids_are_counted() {
    let router = router(false, "single").await;
    let rules = rules(Operator::Sum, Order::Desc, Ties::Shared);
    let board = create(&router, rules).await;
    let partitions = records(3, &board, 500, 30);
    let batch: Vec<ScoreUpdate> = partitions.iter().flatten().cloned().collect();
    let first = router.apply(&batch).await.expect("apply");
    let oracle = oracle_of(&board, rules, &partitions);
    let mut check = Oracle::new();
    check.set_rules(&board, rules);
    let duplicates =
        batch.iter().filter(|u| check.apply_counted(u) == leaderboard_semantics::oracle::Outcome::Duplicate).count()
            as u64;
    assert!(duplicates > 0, "the records re-send ids");
    assert_eq!((first.replayed, first.duplicates), (0, duplicates));
    let again = router.apply(&batch).await.expect("apply again");
    assert_eq!((again.replayed, again.duplicates), (batch.len() as u64, 0), "everything had applied");
    assert_matches_oracle(&router, &oracle, &board, PLAYERS, "retried").await;
}

/// A sum past 2^53 - 1 is refused, and reported again by every replay until
/// settled (its dead letter sent), so a crash in between loses no dead letter.
#[tokio::test]
async fn an_overflowing_sum_is_refused_and_reported_until_settled() {
    for spec in ["single", "hash:3"] {
        let router = router(false, spec).await;
        let rules = rules(Operator::Sum, Order::Asc, Ties::Earliest);
        let board = create(&router, rules).await;
        let update = |score: u64, offset: i64| ScoreUpdate {
            board: board.clone(),
            player: player(1),
            score,
            time_ms: 10 + offset as u64,
            meta: None,
            source: Some(Source { topic: Arc::from("scores"), partition: 0, offset, at_ms: 0, id: None }),
        };
        let batch = [update(MAX_SCORE - 10, 0), update(11, 1), update(10, 2)];
        let applied = router.apply(&batch).await.expect("apply");
        let refused: Vec<i64> = applied.overflowed.iter().map(|o| o.source.offset).collect();
        assert_eq!(refused, [1], "{spec}: the one that would pass 2^53 - 1");
        let standing = router.standing(&board, &player(1)).await.expect("standing").expect("present");
        assert_eq!(standing.score, MAX_SCORE, "{spec}: the others applied");
        let replay = router.apply(&batch).await.expect("replay");
        assert_eq!(replay.overflowed, applied.overflowed, "{spec}: reported again until settled");
        router.settle(&applied.overflowed).await.expect("settle");
        assert!(router.apply(&batch).await.expect("replay").overflowed.is_empty(), "{spec}: settled");
    }
}

/// `last` and `sum` need a player's shard fixed by their id: `range` refuses them.
#[tokio::test]
async fn range_and_layout_migrations_refuse_operator_boards() {
    let range = router(false, "range:100,200").await;
    let board = unique_board("tally");
    let refused = range.set_rules(&board, rules(Operator::Sum, Order::Desc, Ties::Shared)).await;
    assert!(matches!(refused, Err(Error::OperatorLayout { .. })), "{refused:?}");
    let single = router(false, "single").await;
    let board = create(&single, rules(Operator::Last, Order::Desc, Ties::Shared)).await;
    let options = leaderboard_store::board::rebalance::RebalanceOptions::default();
    let migration = single.migrate_layout(&board, &"hash:2".parse().expect("spec"), options).await;
    assert!(matches!(migration, Err(Error::OperatorLayout { .. })), "{migration:?}");
    let fixed = single.set_rules(&board, rules(Operator::Sum, Order::Desc, Ties::Shared)).await;
    assert!(matches!(fixed, Err(Error::RulesFixed { .. })), "the operator is fixed once set: {fixed:?}");
}
