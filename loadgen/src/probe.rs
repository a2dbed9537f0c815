//! The freshness probe: how long a score takes from produce to visible in the api.
//!
//! Every interval the probe publishes the next marker score (1, 2, 3, ...) for
//! its own player, then polls the api until that score is visible. Markers go
//! to the boards in turn, so every board's path is measured. Marker scores are
//! tiny, so the probe player sits at the bottom of each board and never
//! changes anyone else's rank.

use std::time::Duration;

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
    /// Its last published score on each board, by board position (0 when none was published).
    pub last_scores: Vec<u64>,
    /// Produce-to-visible latency, in microseconds.
    pub freshness_us: Histogram<u64>,
    /// Markers that never became visible within the timeout.
    pub timeouts: u64,
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
    stop: CancellationToken,
) -> anyhow::Result<ProbeOutcome> {
    let mut freshness = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    let mut timeouts = 0;
    let mut last_scores = vec![0; boards.len()];
    let mut ticker = tokio::time::interval(interval);
    for marker in 0_usize.. {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let position = marker % boards.len();
        let board = &boards.ids()[position];
        last_scores[position] += 1;
        let score = last_scores[position];
        let url = format!("{api}/v1/boards/{board}/players/{player}");
        let event = ScoreEvent { board: board.clone(), player: player.clone(), score, ts_ms: None, id: None };
        let payload = event.to_json();
        let sent_at = Instant::now();
        let record = FutureRecord::to(&topic).key(event.key()).payload(&payload);
        if producer.send(record, Duration::from_secs(10)).await.is_err() {
            // Not acknowledged: the next marker on this board reuses the score.
            last_scores[position] -= 1;
            timeouts += 1;
            continue;
        }
        loop {
            if sent_at.elapsed() > MARKER_TIMEOUT {
                timeouts += 1;
                break;
            }
            let visible = match client.get(&url).send().await {
                Ok(r) if r.status().is_success() => r
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| v["score"].as_u64())
                    .is_some_and(|s| s >= score),
                _ => false,
            };
            if visible {
                let _ = freshness.record(sent_at.elapsed().as_micros().max(1) as u64);
                break;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
    Ok(ProbeOutcome { player, last_scores, freshness_us: freshness, timeouts })
}
