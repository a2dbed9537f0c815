//! The top-N cache: the first rows of every active board, refreshed in the background.
//!
//! Readers load a snapshot through an `ArcSwap` (lock-free) and never wait for
//! Redis once a board is warm. A background task refreshes every active board
//! each `top_refresh`; a board nobody read for `board_idle` is dropped. When a
//! refresh fails, the last snapshot keeps being served, marked stale, with
//! its own date (`as_of`).
//!
//! A snapshot keeps its full page (offset 0, all cached rows) as ready JSON
//! bytes and a tag of their content, so the common request costs no
//! serialisation and a client holding the same page gets `304 Not Modified`.
//! Refreshes of many boards run at most [`REFRESH_CONCURRENCY`] at a time, so
//! boards expiring together do not stampede Redis; concurrent first reads of a
//! cold board share one read ([`crate::coalesce`]): after a [`TopCache::clear`],
//! thousands of requests or live streams of one board cost Redis one page.
//!
//! Each refresh round (and each clear) is announced ([`TopCache::rounds`]): live
//! streams of the top ([`crate::watch`]) wake then, instead of polling. A
//! snapshot renders the stream event of each list length once, whoever asks
//! ([`TopSnapshot::event`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use axum::body::Bytes;
use dashmap::DashMap;
use futures::StreamExt as _;
use leaderboard_contract::BoardId;
use leaderboard_semantics::Entry;
use tokio_util::sync::CancellationToken;

use crate::backend::Backend;
use crate::clock::rfc3339;
use crate::coalesce::Coalescer;
use crate::dto::{EntryDto, TopResponse};
use crate::error::ApiError;

/// Most boards cached at once: requests for further boards go straight to Redis.
pub const MAX_CACHED_BOARDS: usize = 10_000;

/// Most board refreshes in flight at once.
pub const REFRESH_CONCURRENCY: usize = 16;

/// The first rows of a board at one moment.
#[derive(Debug)]
pub struct TopSnapshot {
    /// The data's date (see [`crate::freshness`]).
    pub as_of: SystemTime,
    /// Players on the board then.
    pub total: u64,
    /// The first rows.
    pub entries: Vec<Entry>,
    /// The full cached page (offset 0, every cached row) as the JSON body of `/top`.
    pub page: Bytes,
    /// A hash of `page`: equal pages, on any api instance, have equal tags.
    pub tag: u64,
    /// When it was read from Redis (readiness counts a recent cache: [`crate::health`]).
    pub read_at: Instant,
    /// The live-stream events rendered from it, by list length (at most the cached rows).
    events: Mutex<HashMap<u64, Arc<TopEvent>>>,
}

/// The `top` event of a live stream: a list of the first rows, rendered once per snapshot and length.
#[derive(Debug, PartialEq, Eq)]
pub struct TopEvent {
    /// A hash of the rows alone (not `as_of` or `total`): equal lists, equal tags.
    pub rows_tag: u64,
    /// The event's id: `as_of` in milliseconds since the epoch.
    pub id: String,
    /// The body of `/top` for those rows.
    pub json: String,
}

/// FNV-1a: stable across processes and versions, unlike the std hasher's seeds.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

impl TopSnapshot {
    fn new(board: &BoardId, as_of: SystemTime, total: u64, entries: Vec<Entry>) -> Self {
        let (name, season) = crate::season::names(board);
        let body = TopResponse {
            board: name,
            season,
            as_of: rfc3339(as_of),
            total,
            entries: entries.iter().map(EntryDto::from).collect(),
        };
        let page = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        let tag = fnv1a(&page);
        Self { as_of, total, entries, page, tag, read_at: Instant::now(), events: Mutex::default() }
    }

    /// The live-stream event of the first `limit` rows of `board` (as the client named it,
    /// `season` the season's id), rendered on first use.
    pub fn event(&self, board: &str, season: Option<&str>, limit: u64) -> Arc<TopEvent> {
        let mut events = self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        events
            .entry(limit)
            .or_insert_with(|| {
                let entries: Vec<EntryDto> = self.entries.iter().take(limit as usize).map(EntryDto::from).collect();
                let rows_tag = fnv1a(&serde_json::to_vec(&entries).unwrap_or_default());
                let body = TopResponse {
                    board: board.to_string(),
                    season: season.map(str::to_string),
                    as_of: rfc3339(self.as_of),
                    total: self.total,
                    entries,
                };
                let id = self.as_of.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis().to_string();
                Arc::new(TopEvent { rows_tag, id, json: serde_json::to_string(&body).unwrap_or_default() })
            })
            .clone()
    }

    /// The entity tag of the rows at `offset..offset + limit` of this snapshot.
    pub fn etag(&self, offset: u64, limit: u64) -> String {
        format!("\"{:016x}-{offset}-{limit}\"", self.tag)
    }
}

/// A snapshot and whether it is stale (its last refresh failed).
#[derive(Debug, Clone)]
pub struct Cached {
    /// The data.
    pub snapshot: Arc<TopSnapshot>,
    /// The last refresh failed: this is older than the refresh interval promises.
    pub stale: bool,
}

#[derive(Debug, Default)]
struct Slot {
    snapshot: ArcSwapOption<TopSnapshot>,
    last_read_ms: AtomicU64,
    failing: AtomicBool,
}

/// Snapshots of every active board.
#[derive(Debug)]
pub struct TopCache {
    rows: u64,
    idle: Duration,
    refresh: Duration,
    epoch: Instant,
    boards: DashMap<BoardId, Arc<Slot>>,
    /// Raised by [`TopCache::clear`]: a page read before a clear is served once, never cached.
    generation: AtomicU64,
    /// First reads of cold boards in flight, by generation and board.
    cold: Coalescer<(u64, BoardId), Result<Arc<TopSnapshot>, ApiError>>,
    /// Counts refresh rounds and clears: what live streams wait for.
    rounds: tokio::sync::watch::Sender<u64>,
}

impl TopCache {
    /// A cache of `rows` rows per board, refreshed every `refresh`, dropping boards idle for `idle`.
    pub fn new(rows: u64, refresh: Duration, idle: Duration) -> Self {
        Self {
            rows,
            idle,
            refresh,
            epoch: Instant::now(),
            boards: DashMap::new(),
            generation: AtomicU64::new(0),
            cold: Coalescer::default(),
            rounds: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Changes after every refresh round and every clear: a snapshot may have changed.
    pub fn rounds(&self) -> tokio::sync::watch::Receiver<u64> {
        self.rounds.subscribe()
    }

    /// Announces that snapshots may have changed.
    fn announce(&self) {
        self.rounds.send_modify(|round| *round = round.wrapping_add(1));
    }

    /// How long a client or CDN may reuse a cached page: the refresh interval.
    pub fn max_age(&self) -> Duration {
        self.refresh
    }

    /// Drops a board's cached page (it was deleted).
    pub fn forget(&self, board: &BoardId) {
        self.boards
            .retain(|cached, _| cached != board && cached.season_parts().is_none_or(|(b, _)| b != board.as_str()));
    }

    /// Drops every cached page (the store was recovered, or a player erased or
    /// banned: pages come from it again). A page being read meanwhile is not
    /// cached, so no page read before the clear is served after it returns.
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.boards.clear();
        self.announce();
    }

    /// How many times every cached page was dropped ([`TopCache::clear`]). An answer read in
    /// one generation is not served in a later one: player lookups in flight are shared only
    /// within a generation ([`crate::routes::read::standing`]).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Boards cached now, and how long ago the newest of their pages was read (`None`: none cached).
    pub fn newest_read(&self) -> (usize, Option<Duration>) {
        let newest = self.boards.iter().filter_map(|slot| slot.snapshot.load().as_ref().map(|s| s.read_at)).max();
        (self.boards.len(), newest.map(|at| at.elapsed()))
    }

    /// Rows cached per board.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The board's snapshot, reading it from Redis on first use.
    ///
    /// # Errors
    /// 503 when the store is lost, or the board is cold and Redis is unavailable.
    pub async fn get(&self, backend: &Backend, board: &BoardId) -> Result<Cached, ApiError> {
        backend.ensure_intact()?;
        if let Some(slot) = self.boards.get(board).map(|s| s.clone()) {
            slot.last_read_ms.store(self.now_ms(), Ordering::Relaxed);
            if let Some(snapshot) = slot.snapshot.load_full() {
                return Ok(Cached { snapshot, stale: slot.failing.load(Ordering::Relaxed) });
            }
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let snapshot = self
            .cold
            .run((generation, board.clone()), || async { self.read(backend, board).await.map(Arc::new) })
            .await?;
        // Unknown boards are not cached, so made-up names cannot fill the cache.
        if snapshot.total > 0 && self.boards.len() < MAX_CACHED_BOARDS {
            let slot = self.boards.entry(board.clone()).or_default().clone();
            slot.last_read_ms.store(self.now_ms(), Ordering::Relaxed);
            slot.snapshot.store(Some(snapshot.clone()));
            // Stored after a clear that ran during the read: take it back (a clear that runs
            // from here on removes it itself).
            if self.generation.load(Ordering::SeqCst) != generation {
                self.boards.remove_if(board, |_, cached| Arc::ptr_eq(cached, &slot));
            }
        }
        Ok(Cached { snapshot, stale: false })
    }

    async fn read(&self, backend: &Backend, board: &BoardId) -> Result<TopSnapshot, ApiError> {
        let rows = self.rows;
        let frozen = crate::season::frozen_at(backend, board).await?;
        let page = backend.read(|r| async move { r.top(board, 0, rows).await }).await?;
        Ok(TopSnapshot::new(board, frozen.unwrap_or(page.as_of), page.value.total, page.value.entries))
    }

    /// Refreshes every active board once; drops idle ones.
    pub async fn refresh_all(&self, backend: &Backend) {
        let now = self.now_ms();
        self.boards.retain(|_, slot| {
            now.saturating_sub(slot.last_read_ms.load(Ordering::Relaxed)) < self.idle.as_millis() as u64
        });
        let boards: Vec<(BoardId, Arc<Slot>)> =
            self.boards.iter().map(|e| (e.key().clone(), e.value().clone())).collect();
        let refreshes =
            futures::stream::iter(boards.iter()).for_each_concurrent(REFRESH_CONCURRENCY, |(board, slot)| async move {
                match self.read(backend, board).await {
                    Ok(snapshot) => {
                        slot.snapshot.store(Some(Arc::new(snapshot)));
                        slot.failing.store(false, Ordering::Relaxed);
                    }
                    Err(_) => slot.failing.store(true, Ordering::Relaxed),
                }
                if let Some(s) = slot.snapshot.load_full() {
                    let age = SystemTime::now().duration_since(s.as_of).unwrap_or_default();
                    metrics::gauge!("api_top_cache_age_seconds", "board" => board.to_string()).set(age.as_secs_f64());
                }
            });
        refreshes.await;
        metrics::gauge!("api_top_cache_boards").set(self.boards.len() as f64);
        self.announce();
    }

    /// Refreshes every `interval` until `shutdown`.
    pub async fn run_refresher(self: Arc<Self>, backend: Backend, interval: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => self.refresh_all(&backend).await,
            }
        }
    }
}
