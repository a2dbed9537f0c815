//! The `as_of` promise end to end (docs/contract.md#freshness): every event whose Kafka record
//! timestamp is earlier than an answer's `as_of` is reflected in the answer.
//!
//! Checked on every read route (the cached top page, a deeper page, a
//! player's standing, around a player, a list lookup, the board statistics)
//! of every layout, against the real broker, ingest and api, while ingest
//! lags on purpose: first with the only worker stopped behind a known
//! backlog, then with a live worker held by a fail point after writing its
//! first batch of it (data ahead of the watermark, claims still published),
//! then on every answer while a worker catches up in small batches, and
//! finally once the answers are dated after the last event, when they must
//! equal the oracle exactly.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use leaderboard_contract::{BoardId, PlayerId, ScoreEvent};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::time::Instant;

use crate::helpers::{Api, Topics, Worker, as_of, config_with, counter, producer, spawn_ingest, unique};

/// An event as produced: the player, the score and the Kafka record timestamp.
#[derive(Debug, Clone)]
struct Produced {
    player: String,
    score: u64,
    at_ms: i64,
}

/// Every event produced so far, which answers are checked against.
struct Log {
    events: Vec<Produced>,
    /// How many players a count may include twice while writes are in flight.
    twice: u64,
}

/// Each player's best score over some of the events, with the scores sorted
/// to count quickly how many players are ahead of a score.
struct Standings {
    best: HashMap<String, u64>,
    /// Every player's best, descending.
    descending: Vec<u64>,
}

impl Standings {
    fn of<'a>(events: impl Iterator<Item = &'a Produced>) -> Self {
        let mut best: HashMap<String, u64> = HashMap::new();
        for e in events {
            let score = best.entry(e.player.clone()).or_default();
            *score = (*score).max(e.score);
        }
        let mut descending: Vec<u64> = best.values().copied().collect();
        descending.sort_unstable_by(|a, b| b.cmp(a));
        Self { best, descending }
    }

    /// Players with a best strictly above `score`.
    fn above(&self, score: u64) -> u64 {
        self.descending.partition_point(|&s| s > score) as u64
    }
}

impl Log {
    /// Produces `scores` (player, score) as records stamped now, and logs them once acknowledged.
    async fn produce(&mut self, producer: &FutureProducer, topic: &str, board: &str, scores: &[(String, u64)]) {
        let at_ms = now_ms();
        let events: Vec<ScoreEvent> = scores
            .iter()
            .map(|(player, score)| ScoreEvent {
                board: BoardId::new(board).expect("board"),
                player: PlayerId::new(player.clone()).expect("player"),
                score: *score,
                ts_ms: None,
                id: None,
                meta: None,
            })
            .collect();
        let sends = events.iter().map(|event| async move {
            let payload = event.to_json();
            let record = FutureRecord::to(topic).key(event.key()).payload(&payload).timestamp(at_ms);
            producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e).expect("produce");
        });
        futures::future::join_all(sends).await;
        self.events.extend(scores.iter().map(|(player, score)| Produced {
            player: player.clone(),
            score: *score,
            at_ms,
        }));
    }

    /// What an answer dated `as_of_ms` must reflect, and everything produced.
    fn bounds(&self, as_of_ms: i64) -> Bounds {
        Bounds {
            twice: self.twice,
            before: Standings::of(self.events.iter().filter(|e| e.at_ms < as_of_ms)),
            all: Standings::of(self.events.iter()),
            complete: self.events.iter().all(|e| e.at_ms < as_of_ms),
        }
    }

    fn first_at_ms(&self, from: usize) -> i64 {
        self.events[from..].iter().map(|e| e.at_ms).min().expect("events")
    }

    fn last_at_ms(&self) -> i64 {
        self.events.iter().map(|e| e.at_ms).max().expect("events")
    }
}

/// The standings an answer must lie between.
struct Bounds {
    /// Over the events stamped before the answer's `as_of`: the answer must reflect them.
    before: Standings,
    /// Over every event produced: no answer shows more.
    all: Standings,
    /// Every event is stamped before `as_of`: the answer must be exact.
    complete: bool,
    /// How many players a count may include twice while writes are in flight.
    twice: u64,
}

impl Bounds {
    /// One row of an answer: the player's score reflects every event before
    /// `as_of` and no score never produced; the rank counts at least every
    /// player ahead before `as_of` (exactly the players ahead once complete).
    fn check_row(&self, what: &str, player: &str, score: u64, rank: u64) -> Result<(), String> {
        let (floor, ceiling) = (self.before.best.get(player).copied(), self.all.best.get(player).copied());
        if floor.is_some_and(|f| score < f) || ceiling.is_none_or(|c| score > c) {
            return Err(format!("{what}: {player} shows {score}, events before as_of give {floor:?}, all {ceiling:?}"));
        }
        let Some(ahead) = rank.checked_sub(1) else { return Err(format!("{what}: {player} ranked 0")) };
        if ahead < self.before.above(score) || (self.complete && ahead != self.all.above(score)) {
            return Err(format!(
                "{what}: {player} ranked {rank} at {score}, {} ahead before as_of, {} in all",
                self.before.above(score),
                self.all.above(score)
            ));
        }
        Ok(())
    }

    /// A board's total counts every player before `as_of` and none never produced.
    fn check_total(&self, what: &str, total: u64) -> Result<(), String> {
        let (floor, ceiling) = (self.before.best.len() as u64, self.all.best.len() as u64);
        if total < floor || total > ceiling + self.twice || (self.complete && total != ceiling) {
            return Err(format!("{what}: total {total}, {floor} players before as_of, {ceiling} in all"));
        }
        Ok(())
    }

    /// A list's rows (`rank`, `player`, `score`), each checked.
    fn check_rows(&self, what: &str, rows: &serde_json::Value) -> Result<(), String> {
        for row in rows.as_array().ok_or(format!("{what}: no rows"))? {
            let (player, score, rank) = (row["player"].as_str(), row["score"].as_u64(), row["rank"].as_u64());
            let (Some(player), Some(score), Some(rank)) = (player, score, rank) else {
                return Err(format!("{what}: malformed row {row}"));
            };
            self.check_row(what, player, score, rank)?;
        }
        Ok(())
    }
}

fn now_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    i64::try_from(since.as_millis()).expect("ms")
}

fn millis(t: SystemTime) -> i64 {
    i64::try_from(t.duration_since(UNIX_EPOCH).expect("after 1970").as_millis()).expect("ms")
}

/// The routes checked, each with the players it is asked about.
struct Routes {
    board: String,
    /// Players asked for one by one (standing and around): one whose score
    /// rises, one whose does not but whose rank falls, one new.
    players: Vec<String>,
    /// The list looked up: some of each, and one who never played.
    listed: Vec<String>,
}

/// How one pass over the routes went: the dates of its answers.
struct Pass {
    dates_ms: Vec<i64>,
}

impl Routes {
    /// Reads every route once and checks every answer against `log`.
    async fn check(&self, api: &Api, log: &Log) -> Result<Pass, String> {
        let board = &self.board;
        let mut dates_ms = Vec::new();
        let mut answer = |what: &str, status: u16, body: &serde_json::Value| -> Result<Bounds, String> {
            if status != 200 {
                return Err(format!("{what}: {status} {body}"));
            }
            let date = millis(as_of(body));
            dates_ms.push(date);
            Ok(log.bounds(date))
        };

        for (offset, what) in [(0, "top page (cached)"), (100, "deeper page")] {
            let (status, body) = api.get(&format!("/v1/boards/{board}/top?limit=100&offset={offset}")).await;
            let bounds = answer(what, status, &body)?;
            bounds.check_total(what, body["total"].as_u64().unwrap_or_default())?;
            bounds.check_rows(what, &body["entries"])?;
            let rows = body["entries"].as_array().map_or(0, Vec::len) as u64;
            let shown: Vec<&str> =
                body["entries"].as_array().into_iter().flatten().filter_map(|r| r["player"].as_str()).collect();
            if offset == 0 {
                // Everyone ahead of the page's last row before as_of is on the page.
                let last = body["entries"][rows.saturating_sub(1) as usize]["score"].as_u64().unwrap_or_default();
                let missing =
                    bounds.before.best.iter().find(|&(p, &s)| (rows < 100 || s > last) && !shown.contains(&p.as_str()));
                if let Some((player, score)) = missing {
                    return Err(format!("{what}: {player} at {score} before as_of is not on the page (last {last})"));
                }
            }
        }

        let (status, body) = api.get(&format!("/v1/boards/{board}")).await;
        let bounds = answer("board statistics", status, &body)?;
        bounds.check_total("board statistics", body["total"].as_u64().unwrap_or_default())?;
        // What the statistics' date covers was applied before they were read, and a board only
        // grows, so every later answer holds it too: a player in it must be found.
        let known = bounds.before;

        for player in &self.players {
            let what = format!("standing of {player}");
            let (status, body) = api.get(&format!("/v1/boards/{board}/players/{player}")).await;
            if status == 404 {
                if known.best.contains_key(player) {
                    return Err(format!("{what}: 404, although it played before the statistics read first"));
                }
                continue;
            }
            let bounds = answer(&what, status, &body)?;
            let (Some(score), Some(rank)) = (body["score"].as_u64(), body["rank"].as_u64()) else {
                return Err(format!("{what}: malformed answer {body}"));
            };
            bounds.check_row(&what, player, score, rank)?;
            bounds.check_total(&what, body["total"].as_u64().unwrap_or_default())?;

            let what = format!("around {player}");
            let (status, body) = api.get(&format!("/v1/boards/{board}/players/{player}/around?radius=5")).await;
            let bounds = answer(&what, status, &body)?;
            bounds.check_rows(&what, &body["entries"])?;
            let rows = body["entries"].as_array().into_iter().flatten();
            if !rows.filter_map(|r| r["player"].as_str()).any(|p| p == player) {
                return Err(format!("{what}: the player is not among the rows"));
            }
        }

        let what = "lookup";
        let (status, body) = api
            .post(&format!("/v1/boards/{board}/players:lookup"), &serde_json::json!({ "players": self.listed }))
            .await;
        let bounds = answer(what, status, &body)?;
        bounds.check_total(what, body["total"].as_u64().unwrap_or_default())?;
        bounds.check_rows(what, &body["entries"])?;
        for missing in body["missing"].as_array().into_iter().flatten().filter_map(|m| m.as_str()) {
            if bounds.before.best.contains_key(missing) {
                return Err(format!("{what}: {missing} is missing although it played before as_of"));
            }
        }
        Ok(Pass { dates_ms })
    }

    /// Checks every route until every answer is dated after `after_ms`; panics on a broken promise.
    async fn until_dated_after(&self, api: &Api, log: &Log, after_ms: i64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut passes = 0;
        loop {
            let pass = self.check(api, log).await.unwrap_or_else(|e| panic!("{}: {e}", self.board));
            passes += 1;
            if pass.dates_ms.iter().all(|&d| d > after_ms) {
                return passes;
            }
            assert!(
                Instant::now() < deadline,
                "{}: answers never dated after {after_ms}: {:?}",
                self.board,
                pass.dates_ms
            );
        }
    }
}

/// Checks every route again and again for a second (past ten refreshes of
/// the top-N cache and of the watermark) while nothing from `first_unapplied`
/// on counts as applied: no answer may be dated after it.
async fn check_for_a_second(routes: &Routes, api: &Api, log: &Log, first_unapplied: i64, when: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        let pass = routes.check(api, log).await.unwrap_or_else(|e| panic!("{when}: {e}"));
        assert!(
            pass.dates_ms.iter().all(|&d| d <= first_unapplied),
            "{when}: an answer is dated after the first unapplied event ({first_unapplied}): {:?}",
            pass.dates_ms
        );
    }
}

/// Records per write batch: small, so catching up takes many batches.
const BATCH: u64 = 20;

/// One layout through the three phases.
async fn promise_holds_while_ingest_lags(layout: &str) {
    let topics = Topics::create(3).await;
    let redis = testkit::redis_url();
    let board = unique("asof");
    let batch = BATCH.to_string();
    let extra = ["--batch-size", &batch, "--watermark-interval", "50ms"];
    let worker = Worker::start(config_with(&topics, &redis, layout, &extra));
    let api = Api::start(&redis, &["--layout", layout, "--topic", &topics.scores]).await;
    let producer = producer();
    let routes = Routes {
        board: board.clone(),
        players: vec!["a0".into(), "a250".into(), "b7".into()],
        listed: ["a1", "a2", "a120", "a200", "a201", "a299", "b0", "b50", "b99", "nobody"].map(String::from).to_vec(),
    };

    // Before the lag: 300 players, scores 0..=999, applied and dated.
    // A range board counts a player moving up in both shards until the batch moving them is
    // written (store/src/layout/range/mod.rs): at most a batch, while writes are in flight. Other layouts are exact.
    let twice = if layout.starts_with("range") { BATCH } else { 0 };
    let mut log = Log { events: Vec::new(), twice };
    let first: Vec<(String, u64)> = (0..1500_u64).map(|i| (format!("a{}", i % 300), (i * 7919) % 1000)).collect();
    log.produce(&producer, &topics.scores, &board, &first).await;
    // Until its first write a board is unknown (404, undated); from then on every answer is checked.
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.get(&format!("/v1/boards/{board}/top")).await.0 == 404 {
        assert!(Instant::now() < deadline, "{layout}: the board never appeared");
    }
    routes.until_dated_after(&api, &log, log.last_at_ms(), Duration::from_secs(60)).await;

    // The lag, on purpose: the only worker stops, then 150 players rise above
    // everyone, 100 new ones arrive mid-board, and 50 stale scores change nothing.
    worker.stop().await;
    let unapplied_from = log.events.len();
    let rising: Vec<(String, u64)> = (0..150_u64).map(|i| (format!("a{i}"), 1000 + i)).collect();
    let arriving: Vec<(String, u64)> = (0..100_u64).map(|i| (format!("b{i}"), 400 + 3 * i)).collect();
    let stale: Vec<(String, u64)> = (150..200_u64).map(|i| (format!("a{i}"), 0)).collect();
    for batch in [&rising[..75], &arriving[..], &stale[..], &rising[75..]] {
        log.produce(&producer, &topics.scores, &board, batch).await;
    }
    let first_unapplied = log.first_at_ms(unapplied_from);
    check_for_a_second(&routes, &api, &log, first_unapplied, &format!("{layout} while stopped")).await;

    // A live worker behind on purpose: the fail point holds its writer once
    // its first batch of the backlog is in Redis, before that batch counts as
    // applied, while its watermark publisher goes on. Its batches are larger
    // than the backlog, so its pipeline takes in every record: its claims
    // come from the records waiting, not from its consumer's positions.
    // Answers may show the batch; none is dated past the backlog's first event.
    let held_extra = ["--batch-size", "1000", "--watermark-interval", "50ms"];
    let (mut held, telemetry) =
        spawn_ingest(&topics, layout, &held_extra, &[("FAILPOINTS", "ingest::after_redis_write=pause")]);
    // Counted once the batch's Redis write is done, just before the fail point.
    let client = reqwest::Client::builder().timeout(Duration::from_secs(1)).build().expect("client");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = client.get(format!("http://{telemetry}/metrics")).send().await.ok();
        let page = match metrics {
            Some(response) => response.text().await.unwrap_or_default(),
            None => String::new(),
        };
        if counter(&page, "ingest_events_applied_total") > 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "{layout}: the held worker's first batch never reached Redis");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check_for_a_second(&routes, &api, &log, first_unapplied, &format!("{layout} while held")).await;
    held.kill().expect("kill -9");
    held.wait().expect("reap");

    // Catching up in batches of 20: every answer on the way keeps the promise, the last ones are exact.
    let worker = Worker::start(config_with(&topics, &redis, layout, &extra));
    let passes = routes.until_dated_after(&api, &log, log.last_at_ms(), Duration::from_secs(60)).await;
    eprintln!("{layout}: {passes} passes over every route while ingest caught up");
    routes.check(&api, &log).await.unwrap_or_else(|e| panic!("{layout} caught up: {e}"));
    api.stop().await;
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs the fail points: run with --features ingest/failpoints")]
async fn single_answers_keep_the_as_of_promise_while_ingest_lags() {
    promise_holds_while_ingest_lags("single").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs the fail points: run with --features ingest/failpoints")]
async fn hash_answers_keep_the_as_of_promise_while_ingest_lags() {
    promise_holds_while_ingest_lags("hash:3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs the fail points: run with --features ingest/failpoints")]
async fn range_answers_keep_the_as_of_promise_while_ingest_lags() {
    // Shards over 0..400, 400..800, 800..1100 and 1100 up: rising players move up to two shards.
    promise_holds_while_ingest_lags("range:400,800,1100").await;
}
