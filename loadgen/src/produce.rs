//! The write load: score events at a fixed rate, with produce-ack latency.
//!
//! Every record carries an explicit Kafka timestamp (the wall clock when it is
//! handed to the producer, as librdkafka would stamp it): erasures compare
//! it with their time, and the oracle keeps it for the players it watches,
//! updated to the broker's when an acknowledgement says otherwise
//! (`LogAppendTime` topics).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use leaderboard_contract::ScoreEvent;
use leaderboard_contract::signature::{KEY_ID_HEADER, ProducerKey, SIGNATURE_HEADER};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::boards::BoardSet;
use crate::pacer::Pacer;
use crate::population::Population;

/// Most events sent in one burst before acknowledgements are collected.
const MAX_BURST: u64 = 2000;

/// Live counters, read by the progress line.
#[derive(Debug, Default)]
pub struct WriteCounters {
    /// Events handed to the producer.
    pub sent: AtomicU64,
    /// Events acknowledged by the broker.
    pub acked: AtomicU64,
    /// Events that failed.
    pub errors: AtomicU64,
}

/// What the write load measured.
#[derive(Debug)]
pub struct WriteOutcome {
    /// The population after the run: the oracle.
    pub population: Population,
    /// Produce-ack latency from each event's due time, in microseconds.
    pub ack_latency_us: Histogram<u64>,
    /// Time from the first due event to the last send.
    pub send_window: Duration,
    /// Time from the first due event to the last acknowledgement.
    pub elapsed: Duration,
}

/// The wall-clock time (ms since the epoch) of the monotonic instant `at`,
/// given what both clocks read at `base`; `at` may be before `base` (an event
/// due before a late start is stamped as due, not when it was sent).
fn wall_ms(at: Instant, base: (Instant, SystemTime)) -> u64 {
    let wall = if at >= base.0 { base.1.checked_add(at - base.0) } else { base.1.checked_sub(base.0 - at) };
    wall.and_then(|w| w.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_millis() as u64)
}

/// Where events go and how their scores read.
#[derive(Debug, Clone)]
pub struct Target {
    /// The topic.
    pub topic: String,
    /// The boards, each player on one.
    pub boards: BoardSet,
    /// Ranking keys to event scores, by the boards' order.
    pub scoring: crate::population::Scoring,
    /// Signs every event when set.
    pub signer: Option<ProducerKey>,
    /// The clock events are stamped by (a simulated one crosses seasons quickly).
    pub clock: leaderboard_semantics::Clock,
    /// The metadata every event carries, with `--meta`.
    pub meta: Option<crate::meta::EventMeta>,
}

/// The signature headers of a record (`leaderboard_contract::signature`).
pub fn signature_headers(signer: &ProducerKey, key: &[u8], value: &[u8]) -> OwnedHeaders {
    let signature = signer.sign(key, value);
    OwnedHeaders::new()
        .insert(Header { key: KEY_ID_HEADER, value: Some(signer.id()) })
        .insert(Header { key: SIGNATURE_HEADER, value: Some(&signature) })
}

/// Produces events until the pacer finishes or `stop`, then waits for every acknowledgement.
///
/// # Errors
/// Never for individual failed sends (they are counted); only for a histogram error.
pub async fn run(
    producer: FutureProducer,
    target: Target,
    mut population: Population,
    mut pacer: Pacer,
    counters: Arc<WriteCounters>,
    stop: CancellationToken,
) -> anyhow::Result<WriteOutcome> {
    let mut latency = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    let base = (Instant::now(), SystemTime::now());
    let Target { topic, boards, scoring, signer, clock, meta } = target;
    let first_due = pacer.next_due();
    let mut inflight = FuturesUnordered::new();
    while !pacer.finished() && !stop.is_cancelled() {
        let (first, n) = pacer.take_due(Instant::now(), MAX_BURST);
        for k in 0..n {
            let due = pacer.due_time(first + k);
            let game = population.next_game();
            let ts_ms = u64::try_from(clock.at(i64::try_from(wall_ms(due, base))?))?;
            let kafka_ms = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
            let watched = population.record_game(game, ts_ms, kafka_ms)?.map(|slot| (game.player, slot));
            let event = ScoreEvent {
                board: boards.of(game.player).clone(),
                player: crate::population::player(game.player),
                score: scoring.score(game.score),
                ts_ms: Some(ts_ms),
                id: None,
                meta: meta.map(|m| m.of(game.player, game.score)),
            };
            let payload = event.to_json();
            let headers = signer.as_ref().map(|s| signature_headers(s, event.key(), payload.as_bytes()));
            loop {
                let mut record = FutureRecord::to(&topic).key(event.key()).payload(&payload).timestamp(kafka_ms);
                if let Some(headers) = &headers {
                    record = record.headers(headers.clone());
                }
                match producer.send_result(record) {
                    Ok(delivery) => {
                        inflight.push(async move { (delivery.await, due, watched) });
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        // The local queue is full: collect acknowledgements, then retry.
                        if let Some(done) = inflight.next().await {
                            record_ack(done, &mut latency, &counters, &mut population);
                        }
                    }
                    Err((e, _)) => {
                        tracing::warn!(error = %e, "produce failed");
                        counters.errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            counters.sent.fetch_add(1, Ordering::Relaxed);
        }
        let next = pacer.next_due();
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                Some(done) = inflight.next(), if !inflight.is_empty() => {
                    record_ack(done, &mut latency, &counters, &mut population);
                }
                () = tokio::time::sleep_until(next) => break,
            }
        }
    }
    let send_window = first_due.elapsed();
    while let Some(done) = inflight.next().await {
        record_ack(done, &mut latency, &counters, &mut population);
    }
    Ok(WriteOutcome { population, ack_latency_us: latency, send_window, elapsed: first_due.elapsed() })
}

type Delivery = Result<rdkafka::producer::future_producer::OwnedDeliveryResult, futures::channel::oneshot::Canceled>;

/// An acknowledgement (or failure) of the event due at `due`; `watched`: where
/// the population keeps it (player, slot), for a watched player's event.
type Acked = (Delivery, Instant, Option<(usize, usize)>);

fn record_ack(
    (result, due, watched): Acked,
    latency: &mut Histogram<u64>,
    counters: &WriteCounters,
    population: &mut Population,
) {
    match result {
        Ok(Ok(delivery)) => {
            if let Some((player, slot)) = watched {
                population.delivered(player, slot, delivery.timestamp.to_millis());
            }
            counters.acked.fetch_add(1, Ordering::Relaxed);
            let _ = latency.record(due.elapsed().as_micros().max(1) as u64);
        }
        Ok(Err((e, _))) => {
            tracing::warn!(error = %e, "delivery failed");
            counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        Err(_) => {
            counters.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_before_or_after_the_base_maps_to_its_wall_time() {
        let base = (Instant::now(), UNIX_EPOCH + Duration::from_millis(1_795_392_000_000));
        assert_eq!(wall_ms(base.0, base), 1_795_392_000_000);
        assert_eq!(wall_ms(base.0 + Duration::from_millis(1500), base), 1_795_392_001_500);
        // Due before a late start: stamped as due, not clamped to the start.
        let before = base.0.checked_sub(Duration::from_millis(700)).expect("the monotonic clock reaches back 0.7 s");
        assert_eq!(wall_ms(before, base), 1_795_391_999_300);
    }
}
