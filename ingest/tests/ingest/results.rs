//! Season results end to end: a closed season's result reaches the results
//! topic at least once, equal to the frozen season, whatever happens to the
//! closer between closing the season and the broker's acknowledgement; an
//! amendment produces the next revision under the same id.

use std::time::Duration;

use leaderboard_contract::{BoardId, ScoreEvent};
use leaderboard_semantics::clock::system_ms;
use leaderboard_semantics::season::{Every, Reset};
use leaderboard_semantics::season_result::SeasonResult;
use leaderboard_semantics::{Oracle, Rules, ScoreUpdate};
use leaderboard_store::Router;
use leaderboard_store::layout::record::{self, RecordedLayout};
use leaderboard_store::marker::registry::{Ban, BanScope};
use rand::Rng;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;

use crate::helpers::{
    ChildProcess, Topics, brokers, producer, random_events_at, router, spawn_ingest, unique, wait_for_oracle,
};

/// 2026-11-24T00:00:00Z and 2026-11-25T00:00:00Z: day 1 of the test's daily board.
const D1: u64 = 1_795_478_400_000;
const D2: u64 = D1 + 86_400_000;
const HOUR: u64 = 3_600_000;
const WAIT: Duration = Duration::from_secs(60);

/// A daily board on `redis` (a Redis of the test's own: every worker closes the seasons of
/// every board in its Redis), day 1's events on the topic, and the `--clock` of a worker that
/// starts 50 s after day 1 closes while the records reached Kafka 10 s before it did (so they
/// are in the season, and the season closes once they are applied).
struct Closed {
    topics: Topics,
    board: BoardId,
    reader: Router,
    events: Vec<ScoreEvent>,
    clock: String,
    redis: String,
}

async fn day_one_on_the_topic(redis: &testkit::PrivateRedis) -> Closed {
    let topics = Topics::create(2).await;
    let board = BoardId::new(unique("results")).expect("board");
    let reset =
        Reset { every: Every::Day, utc_offset: time::UtcOffset::UTC, weekday: time::Weekday::Monday, span: None };
    let rules = Rules { reset: Some(reset), late_grace: Duration::from_secs(3600), ..Rules::default() };
    let reader = router(&redis.url(), "hash:3").await;
    record::set_rules(reader.store(), &board, RecordedLayout::of(reader.spec()), rules).await.expect("rules");
    // 150 players: the result's top 100 is a cut.
    let events = random_events_at(41, &board, 150, 1500, |rng| rng.random_range(D1..D2));
    let reached = system_ms() - 60_000;
    let close = i64::try_from(D2 + HOUR).expect("time");
    let producer = producer();
    for e in &events {
        let (key, value) = (e.key().to_vec(), e.to_json());
        let record = FutureRecord::to(&topics.scores).key(&key).payload(&value).timestamp(reached);
        producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e).expect("produced");
    }
    Closed { topics, board, reader, events, clock: format!("offset:{}", close - 10_000 - reached), redis: redis.url() }
}

impl Closed {
    fn spawn(&self, env: &[(&str, &str)]) -> ChildProcess {
        spawn_ingest(&self.topics, "hash:3", &["--redis", &self.redis, "--clock", &self.clock], env).0
    }

    fn season(&self) -> BoardId {
        self.board.season("2026-11-24")
    }

    fn oracle(&self) -> Oracle {
        let mut o = Oracle::new();
        for e in &self.events {
            let (player, time_ms) = (e.player.clone(), e.ts_ms.expect("time"));
            o.apply(&ScoreUpdate {
                board: self.season(),
                player,
                score: e.score,
                time_ms,
                meta: e.meta.clone(),
                source: None,
            });
        }
        o
    }

    /// Waits until day 1's entry says `closed` with result `revision` due, or produced.
    async fn wait_for_entry(&self, what: &str, done: impl Fn(&leaderboard_store::board::seasons::SeasonEntry) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let entries = self.reader.seasons(&self.board).await.expect("seasons");
            if entries.iter().any(|e| e.id == "2026-11-24" && done(e)) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{what}: {entries:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The result the frozen season calls for at `revision`.
    async fn expected(&self, revision: u32) -> (u32, u64, Vec<leaderboard_semantics::Entry>) {
        let page = self.reader.top(&self.season(), 0, 100).await.expect("frozen top");
        (revision, page.total, page.entries)
    }
}

/// Records on the results topic (every partition), `count` of them or a failure after [`WAIT`].
async fn results(topic: &str, count: usize) -> Vec<(String, SeasonResult)> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", unique("results-reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    while out.len() < count {
        let m = tokio::time::timeout(WAIT, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} results arrived", out.len()))
            .expect("result record");
        let key = String::from_utf8(m.key().expect("keyed by board").to_vec()).expect("utf-8 key");
        let result: SeasonResult = serde_json::from_slice(m.payload().expect("payload")).expect("a result");
        out.push((key, result));
    }
    out
}

/// Records on the results topic so far (its high watermark).
fn produced_so_far(topic: &str) -> i64 {
    let probe: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers()).create().expect("probe");
    let (_, high) = probe.fetch_watermarks(topic, 0, Duration::from_secs(10)).expect("watermarks");
    high
}

fn kill_9(mut child: ChildProcess) {
    child.kill().expect("kill -9");
    child.wait().expect("reap");
}

/// Killed between closing and producing (the fail point holds the closer
/// after the season closed, before its result is sent): nothing is on the
/// topic, and the next worker produces the result exactly once, equal to the
/// frozen season's top 100. A ban out of the closed season then produces
/// revision 2 under the same id, without the player.
#[tokio::test]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs the fail points: run with --features ingest/failpoints")]
async fn a_closer_killed_between_closing_and_producing_leaves_the_result_to_the_next() {
    let redis = testkit::PrivateRedis::start();
    let day = day_one_on_the_topic(&redis).await;
    let victim = day.spawn(&[("FAILPOINTS", "ingest::before_season_result=pause")]);
    wait_for_oracle(&day.reader, &day.oracle(), &day.season(), WAIT).await;
    day.wait_for_entry("day 1 never closed", |e| e.closed() && e.revision == 1).await;
    kill_9(victim);
    assert_eq!(produced_so_far(&day.topics.results), 0, "killed before producing: nothing on the topic");
    let entry = &day.reader.seasons(&day.board).await.expect("seasons")[0];
    assert!(entry.result_due(), "the result is still due: {entry:?}");

    let successor = day.spawn(&[]);
    day.wait_for_entry("the result was never recorded produced", |e| e.produced == 1).await;
    let got = results(&day.topics.results, 1).await;
    let (key, result) = &got[0];
    assert_eq!((key.as_str(), result.id.as_str()), (day.board.as_str(), format!("{}/2026-11-24", day.board).as_str()));
    assert_eq!(
        (result.revision, result.total, result.top.clone()),
        day.expected(1).await,
        "the frozen season's top 100"
    );
    assert_eq!(result.top.len(), 100);
    assert_eq!((result.start.as_str(), result.end.as_str()), ("2026-11-24T00:00:00Z", "2026-11-25T00:00:00Z"));
    assert_eq!(produced_so_far(&day.topics.results), 1, "exactly one result for the season");

    // A ban out of the closed season: revision 2, same id, without the player.
    let banned = result.top[0].player.clone();
    let ban = Ban {
        boards: BanScope::Boards(vec![day.board.clone()]),
        closed_seasons: true,
        reason: "cheat".into(),
        at_ms: 0,
    };
    day.reader.ban_player(&banned, &ban).await.expect("ban");
    day.wait_for_entry("the amended result was never produced", |e| e.produced == 2).await;
    let got = results(&day.topics.results, 2).await;
    let amended = &got[1].1;
    assert_eq!((amended.id.as_str(), amended.revision), (result.id.as_str(), 2));
    assert!(amended.amended_at.is_some() && amended.top.iter().all(|e| e.player != banned), "{amended:?}");
    assert_eq!((amended.revision, amended.total, amended.top.clone()), day.expected(2).await);
    kill_9(successor);
}

/// Killed after the broker acknowledged the result, before recording it
/// produced: the next worker produces it again, with the same id, revision
/// and rows (at least once; consumers apply it once by id).
#[tokio::test]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs the fail points: run with --features ingest/failpoints")]
async fn a_closer_killed_after_producing_repeats_the_same_result() {
    let redis = testkit::PrivateRedis::start();
    let day = day_one_on_the_topic(&redis).await;
    let victim = day.spawn(&[("FAILPOINTS", "ingest::after_season_result=pause")]);
    let first = results(&day.topics.results, 1).await;
    kill_9(victim);
    let successor = day.spawn(&[]);
    day.wait_for_entry("the result was never recorded produced", |e| e.produced == 1).await;
    let both = results(&day.topics.results, 2).await;
    assert_eq!(both[0], first[0]);
    assert_eq!(both[1], first[0], "the repeat is the same record");
    assert_eq!(produced_so_far(&day.topics.results), 2);
    kill_9(successor);
}
