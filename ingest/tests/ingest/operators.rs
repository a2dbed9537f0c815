//! `last` and `sum` boards through the whole pipeline: each fault the
//! pipeline survives for best scores, caused by construction, leaves every
//! board equal to applying each record exactly once (docs/ingest.md#exactly-once-operators).

use std::sync::Arc;
use std::time::Duration;

use leaderboard_contract::{BoardId, MAX_SCORE, PlayerId, ScoreEvent};
use leaderboard_semantics::{IdKey, Operator, Oracle, Rules, ScoreUpdate, Source};
use leaderboard_store::Router;
use rdkafka::ClientConfig;
use rdkafka::producer::FutureProducer;
use testkit::brokers;
use tokio::time::Instant;

use crate::failover::first_then_streaming;
use crate::helpers::{
    ChildProcess, Topics, Worker, committed, config, config_with, counter, produce_events, random_events, read_dlq,
    redis_url, router, spawn_ingest, unique, wait_for_committed, wait_for_oracle,
};

/// A producer that keeps each partition's records in the order sent, even
/// across retries: `last` and the newest metadata depend on that order.
fn ordered_producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("linger.ms", "5")
        .set("acks", "all")
        .set("max.in.flight.requests.per.connection", "1")
        .create()
        .expect("producer")
}

/// A new board with `operator`, created before any event arrives.
/// A `range` layout whose boundaries `last` scores (0-999) and sums (to about 20,000) cross.
const RANGED: &str = "range:500,5000,12000";

async fn board_with(router: &Router, prefix: &str, operator: Operator) -> (BoardId, Rules) {
    let board = BoardId::new(unique(prefix)).expect("board");
    let rules = Rules { operator, ..Rules::default() };
    router.set_rules(&board, rules).await.expect("create the board");
    (board, rules)
}

/// The state of applying each of `events` exactly once, in the order
/// produced. `random_events` re-sends one event in ten (same `id`), all within
/// the default 24 h window of each other.
fn exactly_once(board: &BoardId, rules: Rules, events: &[ScoreEvent]) -> Oracle {
    let mut oracle = Oracle::new();
    oracle.set_rules(board, rules);
    let topic: Arc<str> = Arc::from("produced");
    for (offset, e) in (0i64..).zip(events) {
        oracle.apply(&ScoreUpdate {
            board: e.board.clone(),
            player: e.player.clone(),
            score: e.score,
            time_ms: 0,
            meta: e.meta.clone(),
            source: Some(Source {
                topic: topic.clone(),
                partition: 0,
                offset,
                at_ms: 0,
                id: e.id.as_deref().map(IdKey::of),
            }),
        });
    }
    oracle
}

/// `events` with two ids in three taken away (a re-sent event keeps or loses
/// its id with the original): those records are kept exactly once by their
/// offsets alone (an `id` would also make a repeat harmless).
fn fewer_ids(mut events: Vec<ScoreEvent>) -> Vec<ScoreEvent> {
    for e in &mut events {
        if e.id.as_deref().and_then(|id| id.trim_start_matches('e').parse::<u64>().ok()).is_some_and(|n| n % 3 != 0) {
            e.id = None;
        }
    }
    events
}

/// SIGTERM: the worker drains, commits and must exit 0.
fn terminate(mut child: ChildProcess) {
    let pid = child.id().to_string();
    std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
    assert!(child.wait().expect("wait").success(), "ingest exited badly on SIGTERM");
}

async fn wait_for_progress(router: &Router, board: &BoardId) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while router.total(board).await.unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "no batch reached Redis");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The kill lands between a batch's Redis write and its offset commit by
/// construction (the fail point holds the writer there): the successor gets
/// the whole batch again, and each `sum` and `last` shard skips what it took.
#[tokio::test]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs the fail points: run with --features ingest/failpoints")]
async fn kill_9_between_the_redis_write_and_the_offset_commit_counts_each_record_once() {
    for (operator, layout) in [(Operator::Sum, "hash:3"), (Operator::Last, "single"), (Operator::Sum, RANGED)] {
        let topics = Topics::create(3).await;
        let router = router(&redis_url(), layout).await;
        let (board, rules) = board_with(&router, "between", operator).await;
        let events = fewer_ids(random_events(23, &board, 800, 8000));
        produce_events(&ordered_producer(), &topics.scores, &events).await;
        let hold = [("FAILPOINTS", "ingest::after_redis_write=pause")];
        let (mut victim, _) = spawn_ingest(&topics, layout, &[], &hold);
        wait_for_progress(&router, &board).await;
        victim.kill().expect("kill -9");
        victim.wait().expect("reap");
        assert_eq!(committed(&topics).await, [0, 0, 0], "{operator}: none of the batch's offsets was committed");
        let (successor, addr) = spawn_ingest(&topics, layout, &[], &[]);
        wait_for_oracle(&router, &exactly_once(&board, rules, &events), &board, Duration::from_secs(90)).await;
        wait_for_committed(&topics, Duration::from_secs(60)).await;
        let metrics = crate::helpers::http_get(addr, "/metrics").await.1;
        assert!(counter(&metrics, "ingest_events_replayed_total") > 0.0, "{operator}: the successor skipped the batch");
        assert!(counter(&metrics, "ingest_events_duplicate_ids_total") > 0.0, "{operator}: re-sent ids were skipped");
        terminate(successor);
    }
}

/// Redis applies a write and its reply is lost (a timeout at the worst
/// moment, by construction: the fail point drops the reply of the first
/// write once): the worker retries, and the retry finds every record applied.
#[tokio::test]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs the fail points: run with --features ingest/failpoints")]
async fn a_write_whose_reply_was_lost_is_retried_and_counts_once() {
    let topics = Topics::create(2).await;
    let router = router(&redis_url(), "hash:4").await;
    let (board, rules) = board_with(&router, "lost-reply", Operator::Sum).await;
    let events = fewer_ids(random_events(29, &board, 500, 5000));
    produce_events(&ordered_producer(), &topics.scores, &events).await;
    let (worker, addr) = spawn_ingest(&topics, "hash:4", &[], &[("FAILPOINTS", "store::tally_reply_lost=1*return")]);
    wait_for_oracle(&router, &exactly_once(&board, rules, &events), &board, Duration::from_secs(90)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    let metrics = crate::helpers::http_get(addr, "/metrics").await.1;
    assert!(counter(&metrics, "ingest_redis_write_errors_total") >= 1.0, "the lost reply was seen as a failure");
    assert!(counter(&metrics, "ingest_events_replayed_total") > 0.0, "the retry found its records applied");
    terminate(worker);
}

/// A worker joins and leaves (cooperative rebalances) while events stream
/// into a `range` `sum` board: partitions move mid-stream (two writers of one
/// partition place its players for a while), and each record still counts once.
#[tokio::test]
async fn cooperative_rebalances_mid_stream_count_each_record_once() {
    let topics = Topics::create(4).await;
    let router = router(&redis_url(), RANGED).await;
    let (board, rules) = board_with(&router, "coop", Operator::Sum).await;
    let events = random_events(41, &board, 1500, 24_000);
    let (early, rest) = events.split_at(6000);
    let (middle, late) = rest.split_at(12_000);
    let producer = ordered_producer();
    let cooperative = ["--kafka-option", "partition.assignment.strategy=cooperative-sticky"];
    let first = Worker::start(config_with(&topics, &redis_url(), RANGED, &cooperative));
    produce_events(&producer, &topics.scores, early).await;
    // The first worker owns every partition before the second joins (had both joined together,
    // the first assignment would split them, and nothing would move).
    wait_for_oracle(&router, &exactly_once(&board, rules, early), &board, Duration::from_secs(60)).await;
    // The second worker is a process of its own, so its metrics are its own.
    let (second, addr) = spawn_ingest(&topics, RANGED, &cooperative, &[]);
    let consumed =
        || async { counter(&crate::helpers::http_get(addr, "/metrics").await.1, "ingest_events_consumed_total") };
    // Keep the stream going until the join has moved partitions to the second worker.
    let mut pieces = middle.chunks(500);
    let deadline = Instant::now() + Duration::from_secs(60);
    for piece in pieces.by_ref() {
        produce_events(&producer, &topics.scores, piece).await;
        if consumed().await > 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "the second worker never took a partition");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for piece in pieces {
        produce_events(&producer, &topics.scores, piece).await;
    }
    terminate(second);
    produce_events(&producer, &topics.scores, late).await;
    wait_for_oracle(&router, &exactly_once(&board, rules, &events), &board, Duration::from_secs(90)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    let report = first.stop().await;
    assert!(report.revocations >= 1, "the join moved partitions away from the first worker: {report:?}");
}

/// `kill -9` of the Sentinel primary while events stream into a `sum` board:
/// the promoted replica holds, with each batch it has, that batch's applied
/// offsets (one script, replicated as one), so what it lacks is applied again
/// and what it has is skipped.
#[tokio::test]
async fn a_sentinel_failover_under_load_counts_each_record_once() {
    let mut redis = testkit::PrivateSentinel::start();
    let topics = Topics::create(3).await;
    let router = router(&redis.url(), "single").await;
    let (board, rules) = board_with(&router, "sum-failover", Operator::Sum).await;
    let events = random_events(103, &board, 3000, 40_000);
    let (first, second) = events.split_at(16_000);
    let worker = Worker::start(config_with(&topics, &redis.url(), "single", &["--min-replicas", "1"]));
    let streaming = first_then_streaming(&topics, &router, &board, first, second).await;
    let old = redis.primary_port();
    redis.kill_node(old);
    let deadline = Instant::now() + Duration::from_secs(60);
    while redis.primary_port() == old {
        assert!(Instant::now() < deadline, "no replica was promoted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    streaming.await.expect("producer task");
    wait_for_oracle(&router, &exactly_once(&board, rules, &events), &board, Duration::from_secs(120)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    let report = worker.stop().await;
    assert_eq!(report.dead_lettered, 0);
}

/// `kill -9` of a Cluster primary holding a shard of a `sum` board under load.
#[tokio::test]
async fn a_cluster_failover_under_load_counts_each_record_once() {
    cluster_failover("hash:6", |board| leaderboard_store::layout::keys::hash_shard(board, 6, 0)).await;
}

/// `kill -9` of the Cluster primary holding a home of a `range` `sum` board
/// under load: its values, versions and offsets fail over together, and the
/// writer's retry places what the promoted replica holds.
#[tokio::test]
async fn a_cluster_failover_under_load_counts_each_record_once_on_range() {
    cluster_failover(RANGED, |board| leaderboard_store::layout::keys::tally_home(board, 0)).await;
}

async fn cluster_failover(layout: &str, victim_key: impl Fn(&BoardId) -> String) {
    let mut cluster = testkit::PrivateCluster::start();
    let topics = Topics::create(3).await;
    let router = router(&cluster.url(), layout).await;
    let (board, rules) = board_with(&router, "sum-cluster", Operator::Sum).await;
    let events = random_events(123, &board, 3000, 40_000);
    let (first, second) = events.split_at(16_000);
    let worker = Worker::start(config(&topics, &cluster.url(), layout));
    let streaming = first_then_streaming(&topics, &router, &board, first, second).await;
    let victim = cluster.owner_of(&victim_key(&board)).expect("a shard in the cluster");
    // The primary's death with its replica streaming (see `failover::killing_a_cluster_primary_under_load_loses_nothing`).
    cluster.wait_replica_caught_up(victim);
    cluster.kill_node(victim);
    cluster.wait_until_ok_without(victim);
    streaming.await.expect("producer task");
    wait_for_oracle(&router, &exactly_once(&board, rules, &events), &board, Duration::from_secs(120)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    assert_eq!(worker.stop().await.dead_lettered, 0);
}

/// A sum that would pass 2^53 - 1 is a dead letter (`out_of_bounds`); the
/// player keeps what they had, and the other events apply.
#[tokio::test]
async fn an_overflowing_sum_is_a_dead_letter() {
    let topics = Topics::create(1).await;
    let router = router(&redis_url(), "single").await;
    let (board, rules) = board_with(&router, "overflow", Operator::Sum).await;
    let player = PlayerId::new("p-rich").expect("player");
    let event = |score: u64, id: &str| ScoreEvent {
        board: board.clone(),
        player: player.clone(),
        score,
        ts_ms: None,
        id: Some(id.to_string()),
        meta: None,
    };
    let events = [event(MAX_SCORE - 5, "a"), event(6, "b"), event(5, "c")];
    produce_events(&ordered_producer(), &topics.scores, &events).await;
    let worker = Worker::start(config(&topics, &redis_url(), "single"));
    wait_for_oracle(&router, &exactly_once(&board, rules, &events), &board, Duration::from_secs(60)).await;
    let letters = read_dlq(&topics.dlq, 1).await;
    assert_eq!(letters[0].header("error.code"), "out_of_bounds");
    assert_eq!(letters[0].value.as_deref(), Some(events[1].to_json().as_bytes()));
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    assert_eq!(worker.stop().await.dead_lettered, 1);
    let standing = router.standing(&board, &player).await.expect("standing").expect("present");
    assert_eq!(standing.score, MAX_SCORE);
}

/// Seasons apply the operator per season: a `sum` board's season is the sum of that season's
/// events, its all-time board the sum of them all, each record once (re-sent ids included).
#[tokio::test]
async fn a_sum_season_is_the_sum_of_that_seasons_events() {
    use leaderboard_semantics::season::{Every, Reset};
    use rand::Rng as _;
    // A Redis of this test's own: workers close the seasons their clock says are over, on every
    // board of their Redis (another test's clock would close these).
    let redis = testkit::PrivateRedis::start();
    let topics = Topics::create(3).await;
    let router = router(&redis.url(), "hash:3").await;
    let board = BoardId::new(unique("sum-daily")).expect("board");
    let reset =
        Reset { every: Every::Day, utc_offset: time::UtcOffset::UTC, weekday: time::Weekday::Monday, span: None };
    let rules = Rules {
        operator: Operator::Sum,
        reset: Some(reset),
        late_grace: Duration::from_secs(3600),
        ..Rules::default()
    };
    router.set_rules(&board, rules).await.expect("create the board");
    // 2026-11-24 and 2026-11-25 (UTC); the worker's clock reads 10 minutes into the second.
    let (d1, d2) = (1_795_478_400_000_u64, 1_795_564_800_000_u64);
    let clock =
        format!("offset:{}", i64::try_from(d2 + 600_000).expect("time") - leaderboard_semantics::clock::system_ms());
    let day1 = crate::helpers::random_events_at(51, &board, 60, 900, |rng| rng.random_range(d1..d2));
    let mut day2 = crate::helpers::random_events_at(52, &board, 60, 900, |rng| rng.random_range(d2..d2 + 300_000));
    for e in &mut day2 {
        e.id = e.id.take().map(|id| format!("d2-{id}"));
    }
    let events: Vec<ScoreEvent> = day1.iter().chain(&day2).cloned().collect();
    produce_events(&ordered_producer(), &topics.scores, &events).await;
    let worker = Worker::start(config_with(&topics, &redis.url(), "hash:3", &["--clock", &clock]));
    let wait = Duration::from_secs(60);
    wait_for_oracle(&router, &exactly_once(&board, rules, &events), &board, wait).await;
    for (season, of_day) in [("2026-11-24", &day1), ("2026-11-25", &day2)] {
        let name = board.season(season);
        let mut renamed: Vec<ScoreEvent> = (*of_day).clone();
        for e in &mut renamed {
            e.board = name.clone();
        }
        wait_for_oracle(&router, &exactly_once(&name, rules.for_season(), &renamed), &name, wait).await;
    }
    wait_for_committed(&topics, wait).await;
    assert_eq!(worker.stop().await.dead_lettered, 0);
}
