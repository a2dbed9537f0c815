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

/// A migration between layouts would count the same records twice (the copy
/// and the live writes): it refuses `last` and `sum` boards; their operator is fixed.
#[tokio::test]
async fn layout_migrations_refuse_operator_boards() {
    let single = router(false, "single").await;
    let board = create(&single, rules(Operator::Last, Order::Desc, Ties::Shared)).await;
    let options = leaderboard_store::board::rebalance::RebalanceOptions::default();
    let migration = single.migrate_layout(&board, &"hash:2".parse().expect("spec"), options).await;
    assert!(matches!(migration, Err(Error::OperatorLayout { .. })), "{migration:?}");
    let fixed = single.set_rules(&board, rules(Operator::Sum, Order::Desc, Ties::Shared)).await;
    assert!(matches!(fixed, Err(Error::RulesFixed { .. })), "the operator is fixed once set: {fixed:?}");
}

/// Boundaries that players cross both ways: sums grow through the low ones
/// (desc) and the high ones (asc keys fall from 2^53 - 1), `last` scores
/// (0-60) move up and down across 30 (desc) and 2^53 - 31 (asc).
const RANGE: &str = "range:30,100,300,600,9007199254740391,9007199254740691,9007199254740961";

#[tokio::test]
async fn range_applies_every_record_once() {
    check(false, RANGE, 30..34).await;
}

#[tokio::test]
async fn cluster_range_applies_every_record_once() {
    check(true, RANGE, 40..42).await;
}

/// The homes of a `range` board took a batch and the writer stopped before
/// placing it (fail point `store::tally_before_placing`): the shards still
/// show the values before it. The batch's redelivery is skipped by the homes
/// record by record, and places their state: the board equals the oracle.
#[tokio::test]
async fn a_range_batch_stopped_before_placing_is_placed_by_its_redelivery() {
    let router = router(false, RANGE).await;
    let rules = rules(Operator::Sum, Order::Desc, Ties::Earliest);
    let board = create(&router, rules).await;
    let partitions = records(5, &board, 600, 50);
    let batch: Vec<ScoreUpdate> = partitions.iter().flatten().cloned().collect();
    let (first, rest) = batch.split_at(300);
    router.apply(first).await.expect("the first half applies");
    fail::cfg("store::tally_before_placing", "1*return").expect("fail point");
    let stopped = router.apply(rest).await;
    fail::remove("store::tally_before_placing");
    assert!(stopped.is_err(), "the writer stopped before placing: {stopped:?}");
    let mut before = Oracle::new();
    before.set_rules(&board, rules);
    for u in first {
        before.apply(u);
    }
    assert_matches_oracle(&router, &before, &board, PLAYERS, "homes written, nothing placed").await;
    let redelivered = router.apply(rest).await.expect("redelivery");
    assert_eq!(redelivered.replayed, rest.len() as u64, "the homes had taken every record");
    assert_matches_oracle(&router, &oracle_of(&board, rules, &partitions), &board, PLAYERS, "placed").await;
}

/// A rebalance of a `sum` board copies from the homes while writers place
/// into both generations: paused between chunks with writes in between, then
/// resumed, on Redis and the Cluster, the board equals the oracle.
#[tokio::test]
async fn a_range_sum_board_rebalances_under_writes() {
    use leaderboard_store::board::rebalance::{RebalanceOptions, RebalanceOutcome};
    for cluster in [false, true] {
        let router = router(cluster, "range:300").await;
        let rules = rules(Operator::Sum, Order::Desc, Ties::Shared);
        let board = create(&router, rules).await;
        let partitions = records(11, &board, 900, 60);
        let batches = deliveries(11, &partitions);
        let (early, late) = batches.split_at(batches.len() / 2);
        for batch in early {
            router.apply(batch).await.expect("apply");
        }
        let target = vec![100, 400, 700];
        let mut options = RebalanceOptions { chunk: 5, max_chunks: Some(2), ..RebalanceOptions::default() };
        options.grace = Duration::from_millis(10);
        let mut paused = 0;
        for batch in late {
            let step = router.rebalance(&board, target.clone(), options).await.expect("rebalance step");
            paused += usize::from(matches!(step, RebalanceOutcome::Paused { .. }));
            router.apply(batch).await.expect("apply while rebalancing");
        }
        assert!(paused >= 3, "writes came between copy steps ({paused} pauses)");
        options.max_chunks = None;
        let done = router.rebalance(&board, target.clone(), options).await.expect("rebalance");
        assert!(!matches!(done, RebalanceOutcome::Paused { .. }), "{done:?}");
        let context = format!("rebalanced under writes, cluster={cluster}");
        assert_matches_oracle(&router, &oracle_of(&board, rules, &partitions), &board, PLAYERS, &context).await;
        let stats = router.stats(&board).await.expect("stats");
        assert_eq!((stats.layout.as_str(), stats.generation), ("range:100,400,700", Some(1)));
    }
}

/// Removing a player from a `range` board of `last` takes them out of their
/// home and every shard: their next record starts again from nothing.
#[tokio::test]
async fn a_player_removed_from_a_range_board_starts_again() {
    let router = router(false, RANGE).await;
    let rules = rules(Operator::Last, Order::Desc, Ties::Shared);
    let board = create(&router, rules).await;
    let partitions = records(13, &board, 300, 60);
    let batch: Vec<ScoreUpdate> = partitions.iter().flatten().cloned().collect();
    router.apply(&batch).await.expect("apply");
    let mut oracle = oracle_of(&board, rules, &partitions);
    let gone = batch[0].player.clone();
    assert!(router.remove_player(&board, &gone).await.expect("remove"), "they were there");
    oracle.board_mut(&board).expect("board").remove(&gone);
    assert_matches_oracle(&router, &oracle, &board, PLAYERS, "removed").await;
    let again = ScoreUpdate {
        score: 7,
        source: Some(Source { offset: 1_000_000, id: None, ..batch[0].source.clone().expect("source") }),
        ..batch[0].clone()
    };
    router.apply(std::slice::from_ref(&again)).await.expect("apply");
    oracle.apply(&again);
    assert_matches_oracle(&router, &oracle, &board, PLAYERS, "back with one record").await;
    assert_eq!(router.standing(&board, &gone).await.expect("standing").expect("present").score, 7);
}

/// Two writers of one partition (a rebalance hands it over while the old
/// owner still writes): the old one read its homes' state and is held before
/// placing it (fail point `store::tally_placing`); the new one applies the
/// same records and later ones and places them. The old placement, older,
/// then changes nothing: the board equals the oracle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_placement_after_a_newer_one_changes_nothing() {
    let router = Arc::new(router(false, RANGE).await);
    let rules = rules(Operator::Last, Order::Desc, Ties::Earliest);
    let board = create(&router, rules).await;
    let partitions = records(17, &board, 400, 60);
    let batch: Vec<ScoreUpdate> = partitions.iter().flatten().cloned().collect();
    let first: Vec<ScoreUpdate> = partitions.iter().flat_map(|p| &p[..p.len() / 2]).cloned().collect();
    let held = testkit::FailHold::new("store::tally_placing");
    let old_owner = {
        let router = router.clone();
        tokio::spawn(async move { router.apply(&first).await })
    };
    assert!(held.reached(Duration::from_secs(10)).await, "the old owner never reached its placement");
    let new_owner = router.apply(&batch).await.expect("the new owner applies");
    assert!(new_owner.replayed > 0, "the new owner found the old one's records applied");
    held.release();
    old_owner.await.expect("join").expect("the old owner places late");
    assert_matches_oracle(&router, &oracle_of(&board, rules, &partitions), &board, PLAYERS, "late old placement").await;
}

/// A `range` season of `sum` whose writer stopped between its homes and its
/// placement (fail point `store::tally_before_placing`) is closed: closing
/// places what the homes took, so the closed season holds every record, and
/// the redelivery after the close is refused as late.
#[tokio::test]
async fn closing_a_range_season_places_what_a_stopped_writer_left() {
    use crate::helpers::{daily, season, seasonal_board};
    let router = router(false, RANGE).await;
    let rules = Rules { operator: Operator::Sum, ..daily(Order::Desc, Ties::Shared, 12) };
    let board = seasonal_board(&router, rules).await;
    let s = season(&rules, 0);
    let name = router.open_season(&board, &rules, &s).await.expect("open");
    let partitions = records(19, &name, 300, 50);
    let batch: Vec<ScoreUpdate> = partitions.iter().flatten().cloned().collect();
    fail::cfg("store::tally_before_placing", "1*return").expect("fail point");
    let stopped = router.apply(&batch).await;
    fail::remove("store::tally_before_placing");
    assert!(stopped.is_err(), "the writer stopped before placing: {stopped:?}");
    assert_eq!(router.top(&name, 0, 10).await.expect("top").total, 0, "nothing placed yet");
    assert!(router.close_season(&board, &s.id, s.end_ms + 10_000).await.expect("close"));
    let oracle = oracle_of(&name, rules.for_season(), &partitions);
    assert_matches_oracle(&router, &oracle, &name, PLAYERS, "closed").await;
    let late = router.apply(&batch).await.expect("redelivery");
    assert_eq!(late.closed.len(), batch.len(), "the closed season refuses the redelivery");
    assert_matches_oracle(&router, &oracle, &name, PLAYERS, "still closed").await;
}
