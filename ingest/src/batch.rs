//! The batch stage: decodes records, drops useless events, coalesces the rest.
//!
//! A batch closes when it holds `batch_size` records or when `linger` has
//! passed since its first record. It may hold records of several partitions
//! and assignment generations: each partition's [`Span`] says which
//! generation its records belong to, so only current ones store offsets.
//! The batch holds the byte-budget permits of its records until it is done.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::Duration;

use leaderboard_contract::{BoardId, PlayerId, decode_record};
use shard_router::ScoreUpdate;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::Instant;

use crate::dead_letter::Reject;
use crate::partitions::Span;
use crate::record::OwnedRecord;
use crate::shared::{Counter, Shared};

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

/// A batch ready to be written.
#[derive(Debug, Default)]
pub struct Batch {
    /// Records in the batch (valid, skipped and malformed).
    pub records: u64,
    /// Coalesced best-score updates to write.
    pub updates: Vec<ScoreUpdate>,
    /// The valid records, kept to set aside the few the store may refuse, and
    /// to write the skipped ones after all if the cache turns out stale.
    pub accepted: Vec<OwnedRecord>,
    /// Indices in `accepted` of the events the cache skipped.
    pub skipped: Vec<usize>,
    /// The cache epoch the skips were decided under.
    pub cache_epoch: u64,
    /// Malformed records and why.
    pub rejects: Vec<Reject>,
    /// Per partition: generation, last offset, record count.
    pub spans: HashMap<i32, Span>,
    /// Event times (ms) of the valid events, for freshness.
    pub event_times: Vec<u64>,
    /// The byte budget held by the batch's records.
    pub permit: Option<OwnedSemaphorePermit>,
}

/// Best score per (board, player): one update per player however many events.
#[derive(Debug, Default)]
pub struct Coalescer {
    best: HashMap<(BoardId, PlayerId), u64>,
}

impl Coalescer {
    /// Adds an event; returns whether it merged into an earlier one of the same player.
    pub fn push(&mut self, board: BoardId, player: PlayerId, score: u64) -> bool {
        match self.best.entry((board, player)) {
            Entry::Occupied(mut e) => {
                *e.get_mut() = (*e.get()).max(score);
                true
            }
            Entry::Vacant(e) => {
                e.insert(score);
                false
            }
        }
    }

    /// The updates, one per player.
    pub fn finish(self) -> Vec<ScoreUpdate> {
        self.best.into_iter().map(|((board, player), score)| ScoreUpdate { board, player, score }).collect()
    }

    /// The coalesced updates of the valid events among `records`.
    pub fn of<'a>(records: impl IntoIterator<Item = &'a OwnedRecord>) -> Vec<ScoreUpdate> {
        let mut c = Self::default();
        for r in records {
            if let Ok(e) = decode_record(r.key.as_deref(), r.value.as_deref()) {
                c.push(e.board, e.player, e.score);
            }
        }
        c.finish()
    }
}

/// Builds one batch from decoded records.
#[derive(Debug, Default)]
struct Builder {
    batch: Batch,
    best: Coalescer,
}

impl Builder {
    fn push(&mut self, shared: &Shared, received: Received) {
        let Received { generation, record, permit } = received;
        match &mut self.batch.permit {
            Some(held) => held.merge(permit),
            None => self.batch.permit = Some(permit),
        }
        self.push_record(shared, generation, record);
    }

    fn push_record(&mut self, shared: &Shared, generation: u64, record: OwnedRecord) {
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
        match decode_record(record.key.as_deref(), record.value.as_deref()) {
            Err(rejection) => self.batch.rejects.push(Reject { record, rejection }),
            Ok(event) => {
                if let Some(ts) = event.ts_ms {
                    self.batch.event_times.push(ts);
                }
                if shared.cache.can_skip(&event.board, &event.player, event.score) {
                    shared.counters.add(Counter::Skipped, 1);
                    self.batch.skipped.push(self.batch.accepted.len());
                    self.batch.accepted.push(record);
                    return;
                }
                if self.best.push(event.board, event.player, event.score) {
                    shared.counters.add(Counter::Coalesced, 1);
                }
                self.batch.accepted.push(record);
            }
        }
    }

    fn finish(mut self) -> Batch {
        self.batch.updates = self.best.finish();
        self.batch
    }
}

/// Turns records into batches until the input closes; flushes what is left.
pub async fn run(
    mut rx: mpsc::Receiver<Received>,
    tx: mpsc::Sender<Batch>,
    shared: Arc<Shared>,
    batch_size: usize,
    linger: Duration,
) {
    loop {
        let Some(first) = rx.recv().await else { return };
        let mut builder = Builder::default();
        // Read before any skip is decided: a clear after this makes the skips suspect.
        builder.batch.cache_epoch = shared.cache.epoch();
        builder.push(&shared, first);
        let deadline = Instant::now() + linger;
        let mut closed = false;
        while builder.batch.records < batch_size as u64 {
            tokio::select! {
                biased;
                next = rx.recv() => {
                    let Some(r) = next else { closed = true; break };
                    builder.push(&shared, r);
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
    use tokio::sync::Semaphore;

    use super::*;

    fn record(partition: i32, offset: i64, value: &str) -> OwnedRecord {
        OwnedRecord { partition, offset, timestamp_ms: None, key: None, value: Some(value.as_bytes().to_vec()) }
    }

    fn shared() -> Shared {
        Shared::new(100, Duration::from_secs(60))
    }

    #[test]
    fn coalesces_skips_and_rejects() {
        let shared = shared();
        shared.cache.record(&BoardId::new("global").expect("valid"), &PlayerId::new("cached").expect("valid"), 50);
        let mut b = Builder::default();
        b.push_record(&shared, 1, record(0, 3, r#"{"player":"a","score":5,"ts":1}"#));
        b.push_record(&shared, 1, record(0, 4, r#"{"player":"a","score":9}"#));
        b.push_record(&shared, 1, record(0, 5, r#"{"player":"a","score":7}"#));
        b.push_record(&shared, 1, record(0, 6, r#"{"player":"cached","score":40}"#));
        b.push_record(&shared, 1, record(0, 7, "garbage"));
        let batch = b.finish();
        assert_eq!(batch.records, 5);
        assert_eq!(batch.updates.len(), 1);
        assert_eq!(batch.updates[0].score, 9);
        assert_eq!(batch.accepted.len(), 4, "every valid record is kept");
        assert_eq!(batch.skipped, [3], "and the skipped one is known");
        assert_eq!(batch.rejects.len(), 1);
        assert_eq!(batch.spans[&0], Span { generation: 1, last_offset: 7, records: 5 });
        assert_eq!(batch.event_times, [1]);
        assert_eq!(shared.counters.get(Counter::Skipped), 1);
        assert_eq!(shared.counters.get(Counter::Coalesced), 2);
    }

    #[test]
    fn spans_follow_the_newest_generation_per_partition() {
        let shared = shared();
        let mut b = Builder::default();
        b.push_record(&shared, 1, record(0, 10, r#"{"player":"a","score":1}"#));
        b.push_record(&shared, 2, record(0, 4, r#"{"player":"b","score":1}"#));
        b.push_record(&shared, 1, record(0, 11, r#"{"player":"c","score":1}"#));
        b.push_record(&shared, 5, record(1, 8, r#"{"player":"d","score":1}"#));
        let batch = b.finish();
        assert_eq!(batch.spans[&0], Span { generation: 2, last_offset: 4, records: 1 });
        assert_eq!(batch.spans[&1], Span { generation: 5, last_offset: 8, records: 1 });
    }

    #[tokio::test(start_paused = true)]
    async fn closes_on_size_and_linger_and_holds_the_budget() {
        let shared = Arc::new(shared());
        let budget = Arc::new(Semaphore::new(1000));
        let (tx, rx) = mpsc::channel(16);
        let (btx, mut brx) = mpsc::channel(16);
        let task = tokio::spawn(run(rx, btx, shared, 2, Duration::from_millis(50)));
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
