//! Which partitions this worker owns, and which of their records are still in the pipeline.
//!
//! Every assignment of a partition gets a fresh *generation*. A record carries
//! the generation it was received under; its offset may be stored only while
//! its partition still has that generation. A revocation (eager, or the
//! incremental ones of `cooperative-sticky` and the KIP-848 protocol) touches
//! only the partitions it names: it waits (bounded) for their in-flight
//! records to finish, then retires their generation, so records of those
//! partitions still queued are dropped and redelivered to the next owner,
//! while the partitions this worker keeps go on untouched.
//!
//! The table is shared by the poll thread (assign, admit, revoke: the
//! rebalance callbacks run there, never on a runtime worker, so waiting on the
//! condition variable blocks nobody else) and the writer (complete).

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// One partition's part of a batch: its generation, last offset and record count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The generation the records were received under.
    pub generation: u64,
    /// The highest offset among them.
    pub last_offset: i64,
    /// How many records of this partition the batch holds.
    pub records: u64,
}

/// An owned partition.
#[derive(Debug, Clone, Default)]
struct Owned {
    generation: u64,
    in_flight: u64,
    /// The offset after the last record polled under this generation.
    polled_next: Option<i64>,
    /// The offset after the last record admitted under this generation.
    admitted_next: Option<i64>,
    /// The admitted records not finished yet, as a sliding-window minimum:
    /// `(offset, timestamp)` pairs with increasing offsets and increasing
    /// timestamps, so the front holds the earliest timestamp still unapplied.
    unapplied: VecDeque<(i64, i64)>,
}

/// Where a partition's log ends, asked of the broker at `asked_at_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEnd {
    /// The partition.
    pub partition: i32,
    /// The offset the next record appended will get (the high watermark).
    pub end_offset: i64,
    /// The consumer's position (the offset after the last record polled), if known.
    pub position: Option<i64>,
    /// When the end was asked for, in milliseconds since the epoch: records
    /// appended later have later broker times.
    pub asked_at_ms: i64,
}

#[derive(Debug, Default)]
struct Table {
    next_generation: u64,
    owned: HashMap<i32, Owned>,
}

/// The partition table (see the module docs).
#[derive(Debug, Default)]
pub struct Partitions {
    table: Mutex<Table>,
    drained: Condvar,
}

impl Partitions {
    fn lock(&self) -> MutexGuard<'_, Table> {
        // Every critical section leaves the table consistent, so a panic elsewhere cannot poison its meaning.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Partitions were assigned: each gets a new generation.
    pub fn assign(&self, partitions: &[i32]) {
        let mut table = self.lock();
        for &p in partitions {
            table.next_generation += 1;
            let generation = table.next_generation;
            table.owned.insert(p, Owned { generation, ..Owned::default() });
        }
    }

    /// The current generation of `partition`, if this worker owns it.
    #[cfg(test)]
    pub fn generation(&self, partition: i32) -> Option<u64> {
        self.lock().owned.get(&partition).map(|o| o.generation)
    }

    /// A record at `offset` of `partition` was polled: its partition's
    /// current generation, or `None` when this worker does not own it.
    pub fn polled(&self, partition: i32, offset: i64) -> Option<u64> {
        let mut table = self.lock();
        let owned = table.owned.get_mut(&partition)?;
        owned.polled_next = Some(offset + 1);
        Some(owned.generation)
    }

    /// A record of `partition` received under `generation` enters the
    /// pipeline; false (and nothing counted) when that generation is over.
    /// `timestamp_ms` is its Kafka timestamp (see [`Partitions::claims`]).
    pub fn admit(&self, partition: i32, generation: u64, offset: i64, timestamp_ms: i64) -> bool {
        match self.lock().owned.get_mut(&partition) {
            Some(o) if o.generation == generation => {
                o.in_flight += 1;
                o.admitted_next = Some(offset + 1);
                while o.unapplied.back().is_some_and(|&(_, t)| t >= timestamp_ms) {
                    o.unapplied.pop_back();
                }
                o.unapplied.push_back((offset, timestamp_ms));
                true
            }
            _ => false,
        }
    }

    /// A batch finished: for each partition whose generation is still
    /// current, `store` is called with its last offset (under the table's
    /// lock, so no revocation can slip between the check and the store), and
    /// its records leave the pipeline. Spans of retired generations only
    /// leave. An abandoned batch passes a `store` that does nothing.
    pub fn complete(&self, spans: &HashMap<i32, Span>, mut store: impl FnMut(i32, i64)) {
        let mut table = self.lock();
        let mut idle = false;
        for (&partition, span) in spans {
            if let Some(o) = table.owned.get_mut(&partition)
                && o.generation == span.generation
            {
                store(partition, span.last_offset);
                o.in_flight = o.in_flight.saturating_sub(span.records);
                while o.unapplied.front().is_some_and(|&(offset, _)| offset <= span.last_offset) {
                    o.unapplied.pop_front();
                }
                idle |= o.in_flight == 0;
            }
        }
        drop(table);
        if idle {
            self.drained.notify_all();
        }
    }

    /// Partitions are being revoked: waits up to `drain` for their in-flight
    /// records to finish (zero for a lost assignment, whose offsets may no
    /// longer be committed), then retires them. Returns whether they drained.
    pub fn revoke(&self, partitions: &[i32], drain: Duration) -> bool {
        let deadline = Instant::now() + drain;
        let mut table = self.lock();
        let busy = |t: &Table| partitions.iter().any(|p| t.owned.get(p).is_some_and(|o| o.in_flight > 0));
        let mut drained = true;
        while busy(&table) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                drained = false;
                break;
            }
            table = self.drained.wait_timeout(table, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        for p in partitions {
            table.owned.remove(p);
        }
        drained
    }

    /// Records of owned partitions in the pipeline now.
    pub fn in_flight(&self) -> u64 {
        self.lock().owned.values().map(|o| o.in_flight).sum()
    }

    /// What this worker can promise now, per owned partition in `ends`:
    /// a time before which every record of the partition is applied.
    ///
    /// - Records in the pipeline: the earliest timestamp among them.
    /// - None, nothing polled but not admitted, and the position at the log's
    ///   end (or a log that never held a record): the time the end was asked for.
    /// - Otherwise (records still at the broker or waiting for room): no claim.
    ///
    /// Records are assumed to reach the broker in timestamp order per
    /// partition, give or take the producer's batching: a record whose
    /// timestamp is earlier than records before it in the log (a slow or
    /// skewed producer) may be missing from an answer dated after it.
    pub fn claims(&self, ends: &[LogEnd]) -> Vec<(i32, i64)> {
        let table = self.lock();
        ends.iter()
            .filter_map(|end| {
                let owned = table.owned.get(&end.partition)?;
                if let Some(&(_, earliest)) = owned.unapplied.front() {
                    return Some((end.partition, earliest));
                }
                let nothing_waiting = owned.polled_next == owned.admitted_next;
                // A log that never held a record is at its end wherever the consumer stands.
                let position = owned.polled_next.or(end.position).or((end.end_offset == 0).then_some(0))?;
                (nothing_waiting && position >= end.end_offset).then_some((end.partition, end.asked_at_ms))
            })
            .collect()
    }

    /// The partitions owned now.
    pub fn owned(&self) -> Vec<i32> {
        let mut owned: Vec<i32> = self.lock().owned.keys().copied().collect();
        owned.sort_unstable();
        owned
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn span(generation: u64, last_offset: i64, records: u64) -> HashMap<i32, Span> {
        HashMap::from([(0, Span { generation, last_offset, records })])
    }

    #[test]
    fn stores_only_current_generations() {
        let t = Partitions::default();
        t.assign(&[0, 1]);
        let g0 = t.generation(0).expect("owned");
        assert!(t.admit(0, g0, 40, 1) && t.admit(0, g0, 41, 2));
        let mut stored = Vec::new();
        t.complete(&span(g0, 41, 2), |p, o| stored.push((p, o)));
        assert_eq!(stored, [(0, 41)]);
        assert_eq!(t.in_flight(), 0);

        // Revoked and assigned again (eager): the old generation stores nothing.
        assert!(t.admit(0, g0, 42, 3));
        assert!(!t.revoke(&[0], Duration::ZERO), "one record was still in flight");
        t.assign(&[0]);
        let g1 = t.generation(0).expect("owned again");
        assert_ne!(g0, g1);
        assert!(!t.admit(0, g0, 43, 4), "records of the old generation are refused");
        t.complete(&span(g0, 99, 1), |p, o| stored.push((p, o)));
        assert_eq!(stored.len(), 1, "a retired generation never stores");
        assert_eq!(t.owned(), [0, 1], "partition 1 was never touched");
    }

    #[test]
    fn revoke_waits_for_its_partitions_only() {
        let t = Arc::new(Partitions::default());
        t.assign(&[0, 1, 2]);
        let (g0, g1, g2) = (t.generation(0).expect("0"), t.generation(1).expect("1"), t.generation(2).expect("2"));
        assert!(t.admit(0, g0, 0, 1) && t.admit(1, g1, 0, 1) && t.admit(2, g2, 0, 1));
        assert!(!t.revoke(&[2], Duration::ZERO), "partition 2 had a record in flight");
        let waiter = {
            let t = t.clone();
            std::thread::spawn(move || t.revoke(&[0], Duration::from_secs(30)))
        };
        t.complete(&span(g0, 7, 1), |_, _| {});
        assert!(waiter.join().expect("thread"), "drained once partition 0's record completed, whatever 1 holds");
        assert_eq!(t.owned(), [1]);
        assert_eq!(t.in_flight(), 1);
    }

    fn end(partition: i32, end_offset: i64, position: Option<i64>) -> LogEnd {
        LogEnd { partition, end_offset, position, asked_at_ms: 1_000 }
    }

    #[test]
    fn claims_the_earliest_unapplied_timestamp_then_the_time_the_end_was_reached() {
        let t = Partitions::default();
        t.assign(&[0]);
        let g = t.generation(0).expect("owned");
        assert_eq!(t.claims(&[end(0, 5, None)]), [], "position unknown: no claim");
        assert_eq!(t.claims(&[end(0, 0, None)]), [(0, 1_000)], "a log that never held a record is at its end");
        assert_eq!(t.claims(&[end(0, 5, Some(3))]), [], "records still at the broker");
        assert_eq!(t.claims(&[end(0, 5, Some(5))]), [(0, 1_000)], "at the end since assignment");

        for offset in [5, 6, 7] {
            assert_eq!(t.polled(0, offset), Some(g));
        }
        assert!(t.admit(0, g, 5, 300));
        assert_eq!(t.claims(&[end(0, 8, Some(8))]), [(0, 300)], "one admitted, two waiting: its timestamp");
        assert!(t.admit(0, g, 6, 100) && t.admit(0, g, 7, 200));
        assert_eq!(t.claims(&[end(0, 8, Some(8))]), [(0, 100)], "the earliest, not the first");
        t.complete(&span(g, 6, 2), |_, _| {});
        assert_eq!(t.claims(&[end(0, 8, Some(8))]), [(0, 200)], "offset 7 is left");
        t.complete(&span(g, 7, 1), |_, _| {});
        assert_eq!(t.claims(&[end(0, 8, Some(8))]), [(0, 1_000)], "all applied, at the end");
        assert_eq!(t.claims(&[end(0, 9, Some(8))]), [], "the log grew since");
        assert_eq!(t.claims(&[end(1, 0, Some(0))]), [], "not owned");
    }
}
