//! The write load: score events at a fixed rate, with produce-ack latency.
//!
//! Every record carries an explicit Kafka timestamp (the wall clock when it is
//! handed to the producer, as librdkafka would stamp it): erasures compare
//! it with their time, and the oracle keeps it for the players it watches,
//! updated to the broker's when an acknowledgement says otherwise
//! (`LogAppendTime` topics).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use leaderboard_contract::ScoreEvent;
use leaderboard_contract::signature::{KEY_ID_HEADER, ProducerKey, SIGNATURE_HEADER};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
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
    /// Events handed to the producer (duplicates and re-sends included).
    pub sent: AtomicU64,
    /// Events produced twice in a row (the second copy).
    pub duplicated: AtomicU64,
    /// Earlier events sent again with their `id`.
    pub resent: AtomicU64,
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
    /// Events sent again: a producer's retry, a game server's re-send.
    pub repeats: Repeats,
}

/// Events sent again, on top of the paced ones. Every event of a `last` or
/// `sum` run carries an `id` (`<run>-<n>`), so ingest applies each once.
#[derive(Debug, Clone, Copy, Default)]
pub struct Repeats {
    /// Share of events produced twice in a row: the same record again, as a
    /// producer that retries after a lost acknowledgement does.
    pub duplicate_share: f64,
    /// Share of events after which an earlier event is sent again (same `id`,
    /// same value), as a game server does after a timeout. Only events whose
    /// `id` ingest still remembers are chosen ([`Population::remembers`]), so
    /// the oracle counts none of them.
    pub resend_share: f64,
    /// Tells this run's ids from another's (ms since the epoch at its start).
    pub run: u64,
}

/// One record to send: an event, or a repeat of one.
struct Outgoing {
    key: Vec<u8>,
    payload: String,
    /// Where the population keeps it (player, slot), for a watched player's event.
    watched: Option<(usize, usize)>,
}

/// Draws from the pool for an event to re-send.
const RESEND_DRAWS: usize = 8;

/// Most recent events kept to re-send.
const RESEND_POOL: usize = 4096;

/// An event kept to re-send: its player, their applied games after it, and the record.
struct Sent {
    player: usize,
    applied_at: u32,
    key: Vec<u8>,
    payload: String,
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
    let Target { topic, boards, scoring, signer, clock, meta, repeats } = target;
    let operator = population.operator();
    let mut rng = SmallRng::seed_from_u64(population.seed() ^ 0x7265_7065_6174);
    let mut pool: VecDeque<Sent> = VecDeque::new();
    let first_due = pacer.next_due();
    let mut inflight = FuturesUnordered::new();
    let mut n_event = 0u64;
    while !pacer.finished() && !stop.is_cancelled() {
        let (first, n) = pacer.take_due(Instant::now(), MAX_BURST);
        for k in 0..n {
            let due = pacer.due_time(first + k);
            let game = population.next_game();
            let ts_ms = u64::try_from(clock.at(i64::try_from(wall_ms(due, base))?))?;
            let kafka_ms = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
            let watched = population.record_game(game, ts_ms, kafka_ms)?.map(|slot| (game.player, slot));
            // The entry shows the metadata of the event that set its score: on `last` and
            // `sum` boards the latest, so each event carries that of the score it leads to.
            let shown = if operator.exactly_once() { population.best()[game.player] } else { game.score };
            n_event += 1;
            let event = ScoreEvent {
                board: boards.of(game.player).clone(),
                player: crate::population::player(game.player),
                score: scoring.score(game.score),
                ts_ms: Some(ts_ms),
                id: operator.exactly_once().then(|| format!("{:x}-{n_event}", repeats.run)),
                meta: meta.map(|m| m.of(game.player, shown)),
            };
            let payload = event.to_json();
            let key = event.key().to_vec();
            // The event, then its repeats: a copy right after it, an earlier event re-sent.
            let mut copies: Vec<Outgoing> = Vec::with_capacity(1);
            if repeats.resend_share > 0.0 && !pool.is_empty() && rng.random_bool(repeats.resend_share) {
                // A few draws: a hot player's older events may be past the ids ingest keeps.
                let remembered = (0..RESEND_DRAWS)
                    .map(|_| &pool[rng.random_range(0..pool.len())])
                    .find(|old| population.remembers(old.player, old.applied_at));
                if let Some(old) = remembered {
                    copies.push(Outgoing { key: old.key.clone(), payload: old.payload.clone(), watched: None });
                    counters.resent.fetch_add(1, Ordering::Relaxed);
                }
            }
            copies.insert(0, Outgoing { key: key.clone(), payload: payload.clone(), watched });
            if repeats.duplicate_share > 0.0 && rng.random_bool(repeats.duplicate_share) {
                copies.insert(1, Outgoing { key: key.clone(), payload: payload.clone(), watched: None });
                counters.duplicated.fetch_add(1, Ordering::Relaxed);
            }
            if operator.exactly_once() && repeats.resend_share > 0.0 {
                let applied_at = population.applied(game.player);
                pool.push_back(Sent { player: game.player, applied_at, key, payload });
                if pool.len() > RESEND_POOL {
                    pool.pop_front();
                }
            }
            for Outgoing { key, payload, watched } in copies {
                let headers = signer.as_ref().map(|s| signature_headers(s, &key, payload.as_bytes()));
                loop {
                    let mut record = FutureRecord::to(&topic).key(&key).payload(&payload).timestamp(kafka_ms);
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
