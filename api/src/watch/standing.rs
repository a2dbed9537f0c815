//! `players/{player}:watch`: a player's standing, pushed when their score or rank changes.
//!
//! The [`Hub`] keeps, per board and `?season=` asked, the players someone
//! watches and the latest standing of each (a `tokio` watch channel: the
//! latest value only, shared by all that player's watchers). Every
//! `--watch-standing-every` one task reads them all: per board and season,
//! one store lookup per [`LOOKUP_BATCH`] players (one round trip per Redis
//! node on `single` and `range`, two on `hash`), never a read per watcher.
//! A player's stream sends their standing when it subscribes (read as the
//! player route reads it), then each change of score or rank (an event
//! `standing`, the player route's body), or `removed` when they leave the
//! board (an erasure, a ban, a deleted board).
//!
//! Entries of players nobody watches any more are dropped at the next read,
//! so the hub holds at most one entry per open stream.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::response::sse::Event;
use futures::{Stream, StreamExt as _};
use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::Standing;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Ticket;
use crate::clock::rfc3339;
use crate::dto::PlayerResponse;
use crate::routes::read;
use crate::season::{SeasonParams, Target};
use crate::state::AppState;

/// Most players of one board and season read by one store lookup.
pub const LOOKUP_BATCH: usize = 1000;

/// Boards (and seasons) whose watched players are read at once.
const READ_CONCURRENCY: usize = 16;

/// A player's standing as their streams send it.
#[derive(Debug, Clone, PartialEq)]
pub struct StandingEvent {
    /// Their score and rank, `None` when they have no score on the board: what a change is.
    pub place: Option<(u64, u64)>,
    /// The event's id: `as_of` in milliseconds since the epoch.
    pub id: String,
    /// The player route's body (`standing`), or `{"board","season","player","as_of"}` (`removed`).
    pub json: String,
}

impl StandingEvent {
    /// The event of `player`'s `standing` on `target`, dated `as_of`.
    pub fn new(target: &Target, player: &PlayerId, standing: Option<Standing>, as_of: SystemTime) -> Self {
        let id = as_of.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis().to_string();
        let Some(st) = standing else {
            let removed = serde_json::json!({
                "board": target.board.as_str(),
                "season": target.season_id(),
                "player": player.as_str(),
                "as_of": rfc3339(as_of),
            });
            return Self { place: None, id, json: removed.to_string() };
        };
        let place = Some((st.score, st.rank));
        let json = serde_json::to_string(&PlayerResponse::new(target, player, st, as_of)).unwrap_or_default();
        Self { place, id, json }
    }

    /// The SSE event.
    pub fn event(&self) -> Event {
        let name = if self.place.is_some() { "standing" } else { "removed" };
        Event::default().event(name).id(&self.id).data(&self.json)
    }
}

/// Where watched players are read: the board named and `?season=` as asked (`current` follows the clock).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Place {
    board: BoardId,
    season: Option<String>,
}

type Latest = watch::Sender<Option<Arc<StandingEvent>>>;

/// The players watched, and their latest standings.
#[derive(Debug, Default)]
pub struct Hub {
    places: Mutex<HashMap<Place, HashMap<PlayerId, Latest>>>,
}

impl Hub {
    /// Follows `player` on `board` (as `season` asks): the latest standing the hub read.
    pub fn subscribe(
        &self,
        board: &BoardId,
        season: &SeasonParams,
        player: &PlayerId,
    ) -> watch::Receiver<Option<Arc<StandingEvent>>> {
        let place = Place { board: board.clone(), season: season.season.clone() };
        let mut places = self.places.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        places.entry(place).or_default().entry(player.clone()).or_insert_with(|| watch::Sender::new(None)).subscribe()
    }

    /// Drops players nobody watches; returns what is left to read.
    fn watched(&self) -> Vec<(Place, Vec<PlayerId>)> {
        let mut places = self.places.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        places.retain(|_, players| {
            players.retain(|_, latest| latest.receiver_count() > 0);
            !players.is_empty()
        });
        places.iter().map(|(place, players)| (place.clone(), players.keys().cloned().collect())).collect()
    }

    /// Hands each player's new standing to their streams (those whose place changed wake).
    fn publish(&self, place: &Place, events: Vec<(PlayerId, StandingEvent)>) {
        let places = self.places.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(players) = places.get(place) else { return };
        for (player, event) in events {
            if let Some(latest) = players.get(&player) {
                latest.send_if_modified(|held| {
                    let changed = held.as_ref().is_none_or(|h| h.place != event.place);
                    *held = Some(Arc::new(event));
                    changed
                });
            }
        }
    }

    /// Reads the standings of every watched player once.
    pub async fn read_all(&self, s: &AppState) {
        let watched = self.watched();
        metrics::gauge!("api_watch_players").set(watched.iter().map(|(_, p)| p.len()).sum::<usize>() as f64);
        futures::stream::iter(watched)
            .for_each_concurrent(READ_CONCURRENCY, |(place, players)| async move {
                for batch in players.chunks(LOOKUP_BATCH) {
                    match read_batch(s, &place, batch).await {
                        Ok(events) => self.publish(&place, events),
                        Err(e) => tracing::debug!(board = %place.board, error = %e, "watched standings not read"),
                    }
                }
            })
            .await;
    }

    /// Reads the watched standings every `every` until `shutdown`.
    pub async fn run(s: AppState, every: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => s.streams.standings.read_all(&s).await,
            }
        }
    }
}

/// The standings of `players` at `place`, one store lookup.
async fn read_batch(
    s: &AppState,
    place: &Place,
    players: &[PlayerId],
) -> Result<Vec<(PlayerId, StandingEvent)>, crate::error::ApiError> {
    let season = SeasonParams { season: place.season.clone() };
    let read::Answer { target, value: found, as_of } =
        read::read(s, place.board.clone(), &season, |r, b| async move { r.lookup(&b, players).await }).await?;
    let parent = &target.board;
    let ties = s.backend.call(|r| async move { r.rules(parent).await }).await?.ties;
    let mut events: Vec<(PlayerId, StandingEvent)> = found
        .entries
        .iter()
        .map(|l| (l.player.clone(), StandingEvent::new(&target, &l.player, Some(l.standing(found.total, ties)), as_of)))
        .collect();
    events.extend(found.missing.into_iter().map(|p| {
        let event = StandingEvent::new(&target, &p, None, as_of);
        (p, event)
    }));
    Ok(events)
}

struct State {
    latest: watch::Receiver<Option<Arc<StandingEvent>>>,
    ticket: Ticket,
    ending: CancellationToken,
    first: Option<StandingEvent>,
    /// The score and rank last sent (`None`: the player was not on the board).
    last_place: Option<(u64, u64)>,
}

/// The stream of one player: `first` (their standing at subscription), then every change the
/// hub reads, until shutdown or the client leaves.
pub fn events(
    latest: watch::Receiver<Option<Arc<StandingEvent>>>,
    first: StandingEvent,
    ticket: Ticket,
    ending: CancellationToken,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let state = State { latest, ticket, ending, last_place: first.place, first: Some(first) };
    futures::stream::unfold(state, |mut st| async move {
        if let Some(first) = st.first.take() {
            st.ticket.sent();
            return Some((Ok(first.event()), st));
        }
        loop {
            tokio::select! {
                biased;
                () = st.ending.cancelled() => return None,
                changed = st.latest.changed() => if changed.is_err() { return None },
            }
            let Some(now) = st.latest.borrow_and_update().clone() else { continue };
            if st.last_place != now.place {
                st.last_place = now.place;
                st.ticket.sent();
                return Some((Ok(now.event()), st));
            }
        }
    })
}
