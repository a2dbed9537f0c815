//! Identical concurrent reads share one Redis call (single flight).
//!
//! A popular player looked up by thousands of clients at once (a streamer, a
//! record just set) costs one standing read, not thousands: the first request
//! for a key runs the read, the others arriving while it runs wait for its
//! answer. The entry is removed as soon as the read ends, so nothing is cached
//! beyond one flight, and the map holds at most one entry per request in
//! flight (bounded by `--max-concurrency`). A first request that is cancelled
//! (timeout, client gone) hands the read over to one of the waiters (tokio's
//! `OnceCell` is cancellation-safe).
//!
//! A request joins a flight only if the flight's read could answer it: keys
//! carry what must match besides the question. Player lookups carry the cache's
//! generation ([`crate::routes::read::standing`]), so a request made after an
//! erasure or a ban dropped the cached answers starts a read of its own instead
//! of sharing one begun before. Flights of earlier generations end as any
//! other; the map still holds at most one entry per request in flight.

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use tokio::sync::OnceCell;

/// Reads in flight by key.
#[derive(Debug)]
pub struct Coalescer<K: Eq + Hash, V> {
    flights: DashMap<K, Arc<OnceCell<V>>>,
    /// Requests that joined a flight another request started.
    joined: AtomicU64,
}

impl<K: Eq + Hash + Clone, V: Clone> Default for Coalescer<K, V> {
    fn default() -> Self {
        Self { flights: DashMap::new(), joined: AtomicU64::new(0) }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Coalescer<K, V> {
    /// The answer of the read in flight for `key`, or of `read` if none is.
    pub async fn run<F, Fut>(&self, key: K, read: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let flight = match self.flights.entry(key.clone()) {
            Entry::Occupied(flight) => {
                self.joined.fetch_add(1, Ordering::Relaxed);
                flight.get().clone()
            }
            Entry::Vacant(slot) => slot.insert(Arc::default()).clone(),
        };
        let answer = flight.get_or_init(read).await.clone();
        // Only this flight's entry: a later flight for the key may have replaced it.
        self.flights.remove_if(&key, |_, current| Arc::ptr_eq(current, &flight));
        answer
    }

    /// Reads in flight now.
    pub fn in_flight(&self) -> usize {
        self.flights.len()
    }

    /// Requests so far that joined a flight another request started (and got its answer).
    pub fn joined(&self) -> u64 {
        self.joined.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_identical_reads_run_once() {
        let coalescer: Coalescer<&str, u32> = Coalescer::default();
        let calls = AtomicU32::new(0);
        let gate = tokio::sync::Notify::new();
        let read = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            gate.notified().await;
            7
        };
        let waiters = futures::future::join_all((0..50).map(|_| coalescer.run("p1", read)));
        let opener = async {
            // Every waiter has joined the one flight before it may finish.
            // `join!` polls the fifty requests first, in this one task: by the time this runs,
            // the first one reads and the others wait on its flight.
            assert_eq!((coalescer.in_flight(), calls.load(Ordering::SeqCst)), (1, 1));
            gate.notify_waiters();
        };
        let (answers, ()) = tokio::join!(waiters, opener);
        assert!(answers.iter().all(|&a| a == 7));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one read for fifty identical requests");
        assert_eq!(coalescer.joined(), 49, "the others joined it");
        assert_eq!(coalescer.in_flight(), 0, "nothing kept after the flight");
        // A later request reads again.
        let fresh = coalescer.run("p1", || async { 8 }).await;
        assert_eq!(fresh, 8);
    }
}
