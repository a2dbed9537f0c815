//! Live updates (docs/contract.md#live-updates): the top of a board and a
//! player's standing, pushed as Server-Sent Events.
//!
//! Both streams are driven by what the api reads anyway, never by a read per
//! client: a `top` stream wakes after each refresh round of the cache
//! ([`crate::cache::TopCache::rounds`]) and sends the cached list when its rows
//! changed, rendered once per snapshot and length for all its watchers
//! ([`top`]); the standings of every watched player are read in batches, one
//! lookup per board and season per `--watch-standing-every` for all of them,
//! and each change goes to every watcher of that player ([`standing`]).
//!
//! # Bounds
//! - At most `--watch-max-streams` streams per process (503 `too_many_streams`
//!   beyond), and `--watch-per-client` per client address (429), counted by
//!   [`Streams::admit`]; the per-client table holds one entry per client with a
//!   stream open, so at most the process limit.
//! - No stream queues events: each holds the latest state only, and sends it when
//!   the connection takes more. A client that stops reading is disconnected once
//!   a write makes no progress for `--write-timeout` ([`crate::conn`]).
//! - A comment line every `--watch-heartbeat` keeps idle connections (and the
//!   proxies between) open; shutdown ends every stream, so the server drains.
//! - A reconnecting client (`Last-Event-ID`) gets the current state first, as a
//!   new one does: every event is a whole state, so none is missed for good.
//!
//! Metrics: `api_watch_streams_open{kind}`, `api_watch_events_sent_total{kind}`,
//! `api_watch_refused_total{reason}`, and `api_slow_clients_dropped_total`.

pub mod standing;
pub mod top;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;

/// The limits of live streams (flags of the api).
#[derive(Debug, Clone, clap::Args)]
pub struct WatchOptions {
    /// Live streams (`top:watch`, `players/{player}:watch`) open at once in this process; more are refused with 503.
    #[arg(long, env = "LB_WATCH_MAX_STREAMS", default_value_t = 10_000)]
    pub watch_max_streams: usize,
    /// Live streams one client address may hold open; more are refused with 429.
    #[arg(long, env = "LB_WATCH_PER_CLIENT", default_value_t = 8)]
    pub watch_per_client: usize,
    /// How often an idle stream gets a comment line.
    #[arg(long, env = "LB_WATCH_HEARTBEAT", default_value = "15s", value_parser = humantime::parse_duration)]
    pub watch_heartbeat: Duration,
    /// How often the standings of watched players are read (a player's stream changes at most this often).
    #[arg(long, env = "LB_WATCH_STANDING_EVERY", default_value = "1s", value_parser = humantime::parse_duration)]
    pub watch_standing_every: Duration,
}

impl WatchOptions {
    /// Checks the limits.
    ///
    /// # Errors
    /// The flag that is out of its range.
    pub fn validate(&self) -> Result<(), String> {
        if self.watch_max_streams == 0 || self.watch_per_client == 0 {
            return Err("--watch-max-streams and --watch-per-client must be positive".into());
        }
        if self.watch_heartbeat < Duration::from_secs(1) || self.watch_standing_every < Duration::from_millis(100) {
            return Err("--watch-heartbeat must be at least 1s, --watch-standing-every at least 100ms".into());
        }
        Ok(())
    }
}

/// What a stream watches, for its metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `top:watch`.
    Top,
    /// `players/{player}:watch`.
    Standing,
}

impl Kind {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Top => "top",
            Self::Standing => "standing",
        }
    }
}

/// The live streams of this process: their limits, their count per client, and shutdown.
#[derive(Debug)]
pub struct Streams {
    options: WatchOptions,
    open: Arc<Semaphore>,
    per_client: Mutex<HashMap<IpAddr, usize>>,
    ending: CancellationToken,
    /// The players watched, and their latest standings.
    pub standings: standing::Hub,
}

impl Streams {
    /// Streams limited by `options`.
    pub fn new(options: WatchOptions) -> Self {
        Self {
            open: Arc::new(Semaphore::new(options.watch_max_streams)),
            per_client: Mutex::default(),
            ending: CancellationToken::new(),
            standings: standing::Hub::default(),
            options,
        }
    }

    /// The limits.
    pub fn options(&self) -> &WatchOptions {
        &self.options
    }

    /// Ends every stream (shutdown): each sends nothing more and closes.
    pub fn end_all(&self) {
        self.ending.cancel();
    }

    /// Cancelled when streams must end.
    pub fn ending(&self) -> &CancellationToken {
        &self.ending
    }

    /// A place for one more stream of `client`, held until the [`Ticket`] is dropped.
    ///
    /// # Errors
    /// [`ApiError::TooManyStreams`] at the process limit, or while shutting down;
    /// [`ApiError::ClientStreams`] at the client's.
    pub fn admit(self: &Arc<Self>, client: IpAddr, kind: Kind) -> Result<Ticket, ApiError> {
        if self.ending.is_cancelled() {
            return Err(ApiError::TooManyStreams);
        }
        let Ok(permit) = self.open.clone().try_acquire_owned() else {
            metrics::counter!("api_watch_refused_total", "reason" => "process_limit").increment(1);
            return Err(ApiError::TooManyStreams);
        };
        {
            let mut per_client = self.per_client.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let held = per_client.entry(client).or_default();
            if *held >= self.options.watch_per_client {
                metrics::counter!("api_watch_refused_total", "reason" => "client_limit").increment(1);
                return Err(ApiError::ClientStreams);
            }
            *held += 1;
        }
        metrics::gauge!("api_watch_streams_open", "kind" => kind.as_str()).increment(1.0);
        Ok(Ticket { streams: self.clone(), client, kind, _permit: permit })
    }

    fn release(&self, client: IpAddr) {
        let mut per_client = self.per_client.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(held) = per_client.get_mut(&client) {
            *held -= 1;
            if *held == 0 {
                per_client.remove(&client);
            }
        }
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.options.watch_max_streams - self.open.available_permits()
    }
}

/// One open stream's place: dropped with the stream (the client left, was
/// disconnected, or the server shut down).
#[derive(Debug)]
pub struct Ticket {
    streams: Arc<Streams>,
    client: IpAddr,
    kind: Kind,
    _permit: OwnedSemaphorePermit,
}

impl Ticket {
    /// Counts an event sent on this stream.
    pub fn sent(&self) {
        metrics::counter!("api_watch_events_sent_total", "kind" => self.kind.as_str()).increment(1);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.streams.release(self.client);
        metrics::gauge!("api_watch_streams_open", "kind" => self.kind.as_str()).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(max: usize, per_client: usize) -> WatchOptions {
        WatchOptions {
            watch_max_streams: max,
            watch_per_client: per_client,
            watch_heartbeat: Duration::from_secs(15),
            watch_standing_every: Duration::from_secs(1),
        }
    }

    #[test]
    fn admission_counts_per_process_and_per_client_and_releases_on_drop() {
        let streams = Arc::new(Streams::new(options(3, 2)));
        let (a, b, c) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), [10, 0, 0, 3].into());
        let a1 = streams.admit(a, Kind::Top).expect("first of a");
        let _a2 = streams.admit(a, Kind::Standing).expect("second of a");
        assert!(matches!(streams.admit(a, Kind::Top), Err(ApiError::ClientStreams)));
        let _b1 = streams.admit(b, Kind::Top).expect("first of b");
        assert!(matches!(streams.admit(c, Kind::Top), Err(ApiError::TooManyStreams)));
        assert_eq!(streams.open(), 3);
        drop(a1);
        let _c1 = streams.admit(c, Kind::Top).expect("a place was freed");
        assert!(matches!(streams.admit(a, Kind::Top), Err(ApiError::TooManyStreams)));
        assert_eq!(streams.per_client.lock().expect("lock").len(), 3);
        streams.end_all();
        assert!(matches!(streams.admit(b, Kind::Top), Err(ApiError::TooManyStreams)));
    }

    #[test]
    fn limits_are_checked() {
        assert!(options(10, 1).validate().is_ok());
        assert!(options(0, 1).validate().is_err());
        assert!(options(10, 0).validate().is_err());
    }
}
