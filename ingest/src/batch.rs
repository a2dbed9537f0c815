//! The batch stage: decodes records and sets malformed ones aside.
//!
//! A batch closes when it holds `batch_size` records or when `linger` has
//! passed since its first record. It may hold records of several partitions
//! and assignment generations: each partition's [`Span`] says which
//! generation its records belong to, so only current ones store offsets.
//! The batch holds the byte-budget permits of its records until it is done.
//! What depends on a board's rules (bounds, skipping, coalescing) happens in
//! the write stage, which reads the rules ([`crate::prepare`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use leaderboard_contract::{BoardId, PlayerId, decode_record};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::Instant;

use crate::dead_letter::Reject;
use crate::partitions::Span;
use crate::record::OwnedRecord;

/// A record on its way through the pipeline.
#[derive(Debug)]
pub struct Received {
    /// The assignment generation of its partition when it was received.
    pub generation: u64,
    /// The record.
    pub record: OwnedRecord,
    /// Its share of the byte budget, released when its batch is done.
    pub permit: OwnedSemaphorePermit,
}

/// A valid event of the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The board.
    pub board: BoardId,
    /// The player.
    pub player: PlayerId,
    /// The score.
    pub score: u64,
    /// Event time: `ts`, else the Kafka timestamp, else when ingest read it
    /// (milliseconds since the Unix epoch; breaks ties on `earliest` boards).
    pub time_ms: u64,
    /// Its record, an index into [`Batch::accepted`].
    pub record: usize,
    /// The entry metadata it carries.
    pub meta: Option<leaderboard_contract::Meta>,
    /// Its `id`: the idempotency key on `last` and `sum` boards.
    pub id: Option<String>,
}

/// A batch ready to be written.
#[derive(Debug, Default)]
pub struct Batch {
    /// Records in the batch (valid, skipped and malformed).
    pub records: u64,
    /// The valid events, in arrival order.
    pub events: Vec<Event>,
    /// The records of the valid events, kept to dead-letter the few that the
    /// board's rules or the store refuse.
    pub accepted: Vec<OwnedRecord>,
    /// Malformed records and why.
    pub rejects: Vec<Reject>,
    /// Per partition: generation, last offset, record count.
    pub spans: HashMap<i32, Span>,
    /// Event times (ms) of the valid events that carry `ts`, for freshness.
    pub event_times: Vec<u64>,
    /// The byte budget held by the batch's records.
    pub permit: Option<OwnedSemaphorePermit>,
    /// The topic its records come from (`last` and `sum` boards key their effects by it).
    pub topic: Arc<str>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Builds one batch from decoded records.
#[derive(Debug, Default)]
struct Builder {
    batch: Batch,
}

impl Builder {
    fn push(&mut self, received: Received) {
        let Received { generation, record, permit } = received;
        match &mut self.batch.permit {
            Some(held) => held.merge(permit),
            None => self.batch.permit = Some(permit),
        }
        self.push_record(generation, record);
    }

    fn push_record(&mut self, generation: u64, record: OwnedRecord) {
        self.batch.records += 1;
        let span = self.batch.spans.entry(record.partition).or_insert(Span {
            generation,
            last_offset: record.offset,
            records: 0,
        });
        if span.generation != generation {
            // The partition was revoked and assigned again in between: the
            // older records will never store an offset; count the newer ones.
            if generation > span.generation {
                *span = Span { generation, last_offset: record.offset, records: 0 };
            } else {
                return;
            }
        }
        span.last_offset = span.last_offset.max(record.offset);
        span.records += 1;
        // Signatures are checked on the poll thread; a refused one is never decoded.
        if let Some(rejection) = record.refused_signature.clone() {
            self.batch.rejects.push(Reject { record, rejection });
            return;
        }
        match decode_record(record.key.as_deref(), record.value.as_deref()) {
            Err(rejection) => self.batch.rejects.push(Reject { record, rejection }),
            Ok(event) => {
                if let Some(ts) = event.ts_ms {
                    self.batch.event_times.push(ts);
                }
                // A timestamp beyond 2^53 - 1 ms (a producer stamping nanoseconds) is not a time.
                let kafka_time = record
                    .timestamp_ms
                    .and_then(|t| u64::try_from(t).ok())
                    .filter(|&t| t <= leaderboard_contract::MAX_SCORE);
                let time_ms = event.ts_ms.or(kafka_time).unwrap_or_else(now_ms);
                self.batch.events.push(Event {
                    board: event.board,
                    player: event.player,
                    score: event.score,
                    time_ms,
                    record: self.batch.accepted.len(),
                    meta: event.meta,
                    id: event.id,
                });
                self.batch.accepted.push(record);
            }
        }
    }

    fn finish(self) -> Batch {
        self.batch
    }
}

/// Turns records into batches until the input closes; flushes what is left.
pub async fn run(
    mut rx: mpsc::Receiver<Received>,
    tx: mpsc::Sender<Batch>,
    topic: Arc<str>,
    batch_size: usize,
    linger: Duration,
) {
    loop {
        let Some(first) = rx.recv().await else { return };
        let mut builder = Builder::default();
        builder.batch.topic = topic.clone();
        builder.push(first);
        let deadline = Instant::now() + linger;
        let mut closed = false;
        while builder.batch.records < batch_size as u64 {
            tokio::select! {
                biased;
                next = rx.recv() => {
                    let Some(r) = next else { closed = true; break };
                    builder.push(r);
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        if tx.send(builder.finish()).await.is_err() || closed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use leaderboard_contract::{Rejection, RejectionCode};
    use tokio::sync::Semaphore;

    use super::*;

    fn record(partition: i32, offset: i64, value: &str) -> OwnedRecord {
        OwnedRecord {
            partition,
            offset,
            timestamp_ms: None,
            key: None,
            value: Some(value.as_bytes().to_vec()),
            refused_signature: None,
            unverifiable: false,
        }
    }

    #[test]
    fn keeps_valid_events_with_their_times_and_rejects_the_rest() {
        let mut b = Builder::default();
        b.push_record(1, record(0, 3, r#"{"player":"a","score":5,"ts":1}"#));
        let mut stamped = record(0, 4, r#"{"player":"a","score":9}"#);
        stamped.timestamp_ms = Some(77);
        b.push_record(1, stamped);
        b.push_record(1, record(0, 7, "garbage"));
        let batch = b.finish();
        assert_eq!(batch.records, 3);
        let times: Vec<(u64, u64, usize)> = batch.events.iter().map(|e| (e.score, e.time_ms, e.record)).collect();
        assert_eq!(times, [(5, 1, 0), (9, 77, 1)], "ts, else the Kafka timestamp");
        assert_eq!(batch.accepted.len(), 2);
        assert_eq!(batch.rejects.len(), 1);
        assert_eq!(batch.spans[&0], Span { generation: 1, last_offset: 7, records: 3 });
        assert_eq!(batch.event_times, [1]);
    }

    #[test]
    fn a_refused_signature_is_a_dead_letter_and_never_decoded() {
        let mut b = Builder::default();
        b.push_record(1, record(0, 1, r#"{"player":"a","score":5}"#));
        let mut forged = record(0, 2, r#"{"player":"a","score":9999}"#);
        forged.refused_signature = Some(Rejection::new(RejectionCode::BadSignature, "the signature does not verify"));
        b.push_record(1, forged);
        let batch = b.finish();
        assert_eq!(batch.events.len(), 1, "only the signed event");
        let codes: Vec<&str> = batch.rejects.iter().map(|r| r.rejection.code.as_str()).collect();
        assert_eq!(codes, ["bad_signature"]);
        assert_eq!(batch.spans[&0].records, 2, "every record still moves the offsets");
    }

    #[test]
    fn a_timestamp_beyond_milliseconds_falls_back_to_the_read_time() {
        let mut b = Builder::default();
        let mut nanos = record(0, 1, r#"{"player":"a","score":5}"#);
        nanos.timestamp_ms = Some(1_763_800_000_000_000_000); // a producer stamping nanoseconds
        b.push_record(1, nanos);
        let time = b.finish().events[0].time_ms;
        assert!((1_763_800_000_000..=leaderboard_contract::MAX_SCORE).contains(&time), "{time}");
    }

    #[test]
    fn spans_follow_the_newest_generation_per_partition() {
        let mut b = Builder::default();
        b.push_record(1, record(0, 10, r#"{"player":"a","score":1}"#));
        b.push_record(2, record(0, 4, r#"{"player":"b","score":1}"#));
        b.push_record(1, record(0, 11, r#"{"player":"c","score":1}"#));
        b.push_record(5, record(1, 8, r#"{"player":"d","score":1}"#));
        let batch = b.finish();
        assert_eq!(batch.spans[&0], Span { generation: 2, last_offset: 4, records: 1 });
        assert_eq!(batch.spans[&1], Span { generation: 5, last_offset: 8, records: 1 });
    }

    #[tokio::test(start_paused = true)]
    async fn closes_on_size_and_linger_and_holds_the_budget() {
        let budget = Arc::new(Semaphore::new(1000));
        let (tx, rx) = mpsc::channel(16);
        let (btx, mut brx) = mpsc::channel(16);
        let task = tokio::spawn(run(rx, btx, Arc::from("scores"), 2, Duration::from_millis(50)));
        for offset in 1..=3 {
            let permit = budget.clone().try_acquire_many_owned(100).expect("budget");
            let record = record(0, offset, r#"{"player":"p","score":1}"#);
            tx.send(Received { generation: 1, record, permit }).await.expect("send");
        }
        let full = brx.recv().await.expect("full batch");
        assert_eq!(full.records, 2);
        assert_eq!(budget.available_permits(), 700, "records hold their bytes while batched");
        drop(full);
        assert_eq!(budget.available_permits(), 900, "a finished batch releases its bytes");
        // The last record waits for the linger deadline (paused time advances it).
        let last = brx.recv().await.expect("linger batch");
        assert_eq!(last.records, 1);
        drop(tx);
        task.await.expect("batcher ends when input closes");
    }
}
