//! The freshness probe: how long a score takes from produce to visible in the api.
//!
//! Every interval the probe publishes the next marker score (1, 2, 3, ...) for
//! its own player, then polls the api until that score is visible. Markers go
//! to the boards in turn, so every board's path is measured. Marker scores are
//! tiny, so the probe player sits at the bottom of each board and never
//! changes anyone else's rank.
//!
//! It also checks the api's freshness promise (docs/contract.md#freshness): every event whose
//! Kafka timestamp is earlier than an answer's `as_of` is reflected in that
//! answer. Each marker carries an explicit record timestamp; an answer dated
//! after it that does not show the marker yet is a violation, counted and
//! reported (a run with any fails).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use leaderboard_contract::{PlayerId, ScoreEvent};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::boards::BoardSet;

/// Longest wait for one marker before it counts as timed out.
const MARKER_TIMEOUT: Duration = Duration::from_secs(30);
/// Interval between polls for a marker: the resolution of the measurement,
/// kept coarse enough that polling adds little load to the api.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// What the probe measured.
#[derive(Debug)]
pub struct ProbeOutcome {
    /// The probe player.
    pub player: PlayerId,
    /// Its last published ranking key on each board, by board position (0 when none was published).
    pub last_scores: Vec<u64>,
    /// Runs with seasons: its last key on each board (by position) in each season.
    pub season_scores: Vec<BTreeMap<String, u64>>,
    /// Produce-to-visible latency, in microseconds.
    pub freshness_us: Histogram<u64>,
    /// Of which produce-to-acknowledged (the producer's linger and the broker's append), in microseconds.
    pub acked_us: Histogram<u64>,
    /// Markers that never became visible within the timeout.
    pub timeouts: u64,
    /// Answers dated after a marker's timestamp that did not show it (must be 0).
    pub as_of_violations: u64,
    /// A few of them, described.
    pub violation_examples: Vec<String>,
}

/// Most violations described in the report.
const MAX_EXAMPLES: usize = 5;

/// Milliseconds since the Unix epoch of an RFC 3339 time.
fn millis_of(rfc3339: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Publishes markers every `interval` until `stop`.
///
/// # Errors
/// Only for a histogram error.
#[allow(clippy::too_many_arguments, reason = "one call site; a struct would only rename the arguments")]
pub async fn run(
    producer: FutureProducer,
    client: reqwest::Client,
    topic: String,
    api: String,
    boards: BoardSet,
    player: PlayerId,
    interval: Duration,
    scoring: crate::population::Scoring,
    signer: Option<leaderboard_contract::signature::ProducerKey>,
    seasons: Option<(leaderboard_semantics::Clock, leaderboard_semantics::season::Reset)>,
    stop: CancellationToken,
) -> anyhow::Result<ProbeOutcome> {
    let mut freshness = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    let mut acked = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    let mut timeouts = 0;
    let (mut as_of_violations, mut violation_examples) = (0, Vec::new());
    let mut last_scores = vec![0; boards.len()];
    let mut season_scores = vec![BTreeMap::new(); boards.len()];
    let mut ticker = tokio::time::interval(interval);
    let run = crate::config::run_id();
    for marker in 0_usize.. {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let position = marker % boards.len();
        let board = &boards.ids()[position];
        last_scores[position] += 1;
        let key = last_scores[position];
        // On `sum` boards a marker adds 1, so the probe's total is its marker: a retried marker
        // carries the same `id`, which ingest applies once.
        let (score, id) = if scoring.operator.exactly_once() {
            let score = if scoring.operator == leaderboard_semantics::Operator::Sum { 1 } else { scoring.score(key) };
            (score, Some(format!("{player}-{run:x}-{position}-{key}")))
        } else {
            (scoring.score(key), None)
        };
        // The promise checked is the all-time board's: markers count there whatever their season.
        let url = format!("{api}/v1/boards/{board}/players/{player}?season=all");
        // With seasons, markers are stamped by the run's clock so they land in the run's seasons.
        let stamp = seasons.as_ref().map(|(clock, reset)| {
            let now = clock.now_ms();
            (u64::try_from(now).unwrap_or(0), reset.season_at(now).ok().map(|s| s.id))
        });
        let event = ScoreEvent {
            board: board.clone(),
            player: player.clone(),
            score,
            ts_ms: stamp.as_ref().map(|(ts, _)| *ts),
            id,
            meta: None,
        };
        let payload = event.to_json();
        let sent_at = Instant::now();
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let mut record = FutureRecord::to(&topic).key(event.key()).payload(&payload).timestamp(timestamp_ms);
        if let Some(signer) = &signer {
            record = record.headers(crate::produce::signature_headers(signer, event.key(), payload.as_bytes()));
        }
        if producer.send(record, Duration::from_secs(10)).await.is_err() {
            // Not acknowledged: the next marker on this board reuses the score.
            last_scores[position] -= 1;
            timeouts += 1;
            continue;
        }
        let _ = acked.record(sent_at.elapsed().as_micros().max(1) as u64);
        if let Some((_, Some(season))) = stamp {
            season_scores[position].insert(season, key);
        }
        loop {
            if sent_at.elapsed() > MARKER_TIMEOUT {
                timeouts += 1;
                break;
            }
            let answer = match client.get(&url).send().await {
                Ok(r) if r.status().is_success() => r.json::<serde_json::Value>().await.ok(),
                _ => None,
            };
            let seen = answer.as_ref().and_then(|v| v["score"].as_u64());
            let visible = seen.is_some_and(|s| scoring.key(s) >= key);
            let dated = answer.as_ref().and_then(|v| v["as_of"].as_str()).and_then(millis_of);
            if !visible && dated.is_some_and(|as_of| as_of > timestamp_ms) {
                as_of_violations += 1;
                if violation_examples.len() < MAX_EXAMPLES {
                    violation_examples.push(format!(
                        "{board}: marker {score} stamped {timestamp_ms} ms, answer dated {} ms shows {seen:?}",
                        dated.unwrap_or_default()
                    ));
                }
            }
            if visible {
                let _ = freshness.record(sent_at.elapsed().as_micros().max(1) as u64);
                break;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
    Ok(ProbeOutcome {
        player,
        last_scores,
        season_scores,
        freshness_us: freshness,
        acked_us: acked,
        timeouts,
        as_of_violations,
        violation_examples,
    })
}
