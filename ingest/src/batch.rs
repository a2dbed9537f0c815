//! The batch stage: decodes records, drops useless events, coalesces the rest.
//!
//! A batch closes when it holds `batch_size` records, when `linger` has passed
//! since its first record, or when the assignment epoch changes (a revocation:
//! work from different assignments never shares a batch).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use leaderboard_contract::{BoardId, PlayerId, Rejection, decode_record};
use shard_router::ScoreUpdate;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::consume::Received;
use crate::record::OwnedRecord;
use crate::shared::{Counters, Shared};

/// A batch ready to be written.
#[derive(Debug, Default)]
pub struct Batch {
    /// The assignment epoch of every record in the batch.
    pub epoch: u64,
    /// Records in the batch (valid, skipped and malformed).
    pub records: u64,
    /// Coalesced best-score updates to write.
    pub updates: Vec<ScoreUpdate>,
    /// Malformed records and why.
    pub rejects: Vec<(OwnedRecord, Rejection)>,
    /// Highest offset per partition.
    pub offsets: HashMap<i32, i64>,
    /// Event times (ms) of the valid events, for freshness.
    pub event_times: Vec<u64>,
}

/// Builds one batch from decoded records.
#[derive(Debug, Default)]
struct Builder {
    batch: Batch,
    best: HashMap<(BoardId, PlayerId), u64>,
}

impl Builder {
    fn push(&mut self, shared: &Shared, record: OwnedRecord) {
        self.batch.records += 1;
        let offset = self.batch.offsets.entry(record.partition).or_insert(record.offset);
        *offset = (*offset).max(record.offset);
        match decode_record(record.key.as_deref(), record.value.as_deref()) {
            Err(rejection) => self.batch.rejects.push((record, rejection)),
            Ok(event) => {
                if let Some(ts) = event.ts_ms {
                    self.batch.event_times.push(ts);
                }
                if shared.cache.can_skip(&event.board, &event.player, event.score) {
                    Counters::add(&shared.counters.skipped, 1);
                    return;
                }
                match self.best.entry((event.board, event.player)) {
                    std::collections::hash_map::Entry::Occupied(mut e) => {
                        Counters::add(&shared.counters.coalesced, 1);
                        *e.get_mut() = (*e.get()).max(event.score);
                    }
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(event.score);
                    }
                }
            }
        }
    }

    fn finish(mut self) -> Batch {
        self.batch.updates =
            self.best.into_iter().map(|((board, player), score)| ScoreUpdate { board, player, score }).collect();
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
    let mut carry: Option<Received> = None;
    loop {
        let first = match carry.take() {
            Some(r) => r,
            None => match rx.recv().await {
                Some(r) => r,
                None => return,
            },
        };
        let mut builder = Builder::default();
        builder.batch.epoch = first.0;
        builder.push(&shared, first.1);
        let deadline = Instant::now() + linger;
        let mut closed = false;
        while builder.batch.records < batch_size as u64 {
            tokio::select! {
                biased;
                next = rx.recv() => match next {
                    Some(r) if r.0 == builder.batch.epoch => builder.push(&shared, r.1),
                    Some(r) => { carry = Some(r); break; }
                    None => { closed = true; break; }
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
    use super::*;

    fn record(offset: i64, value: &str) -> OwnedRecord {
        OwnedRecord { partition: 0, offset, key: None, value: Some(value.as_bytes().to_vec()) }
    }

    #[test]
    fn coalesces_skips_and_rejects() {
        let shared = Shared::new(100);
        shared.cache.record(&BoardId::new("global").expect("valid"), &PlayerId::new("cached").expect("valid"), 50);
        let mut b = Builder::default();
        b.push(&shared, record(3, r#"{"player":"a","score":5,"ts":1}"#));
        b.push(&shared, record(4, r#"{"player":"a","score":9}"#));
        b.push(&shared, record(5, r#"{"player":"a","score":7}"#));
        b.push(&shared, record(6, r#"{"player":"cached","score":40}"#));
        b.push(&shared, record(7, "garbage"));
        let batch = b.finish();
        assert_eq!(batch.records, 5);
        assert_eq!(batch.updates.len(), 1);
        assert_eq!(batch.updates[0].score, 9);
        assert_eq!(batch.rejects.len(), 1);
        assert_eq!(batch.offsets[&0], 7);
        assert_eq!(batch.event_times, [1]);
        assert_eq!(shared.counters.skipped.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(shared.counters.coalesced.load(std::sync::atomic::Ordering::Relaxed), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn closes_on_size_linger_and_epoch_change() {
        let shared = Arc::new(Shared::new(0));
        let (tx, rx) = mpsc::channel(16);
        let (btx, mut brx) = mpsc::channel(16);
        let task = tokio::spawn(run(rx, btx, shared, 2, Duration::from_millis(50)));
        for (epoch, offset) in [(0, 1), (0, 2), (0, 3), (1, 4)] {
            tx.send((epoch, record(offset, r#"{"player":"p","score":1}"#))).await.expect("send");
        }
        let sizes: Vec<(u64, u64)> = [brx.recv().await.expect("full batch"), brx.recv().await.expect("epoch batch")]
            .iter()
            .map(|b| (b.epoch, b.records))
            .collect();
        assert_eq!(sizes, [(0, 2), (0, 1)]);
        // The last record waits for the linger deadline (paused time advances it).
        let last = brx.recv().await.expect("linger batch");
        assert_eq!((last.epoch, last.records), (1, 1));
        drop(tx);
        task.await.expect("batcher ends when input closes");
    }
}
