//! `top:watch`: the first rows of a board, pushed when they change.
//!
//! A stream sends the list when it subscribes, then wakes after each refresh
//! round of the cache and sends the list again if its rows changed (a new
//! total alone is no change). It reads the cache as `/top` does, so a board
//! watched stays cached, `?season=current` follows the season that is current
//! at each round, and after a clear (an erasure, a recovered store) its
//! watchers share one read of the board ([`crate::cache`]).

use std::convert::Infallible;
use std::sync::Arc;

use axum::response::sse::Event;
use futures::Stream;
use leaderboard_contract::BoardId;
use tokio::sync::watch;

use super::Ticket;
use crate::cache::TopEvent;
use crate::error::ApiError;
use crate::routes::read;
use crate::season::SeasonParams;
use crate::state::AppState;

/// What a `top` stream follows.
#[derive(Debug)]
pub struct TopWatch {
    /// Handler state.
    pub state: AppState,
    /// The board as the client named it.
    pub board: BoardId,
    /// `?season=`, resolved again at every round.
    pub season: SeasonParams,
    /// Rows per event.
    pub limit: u64,
}

impl TopWatch {
    /// The event of the list as the cache holds it now.
    ///
    /// # Errors
    /// As `/top`'s cached path (the season does not resolve, Redis is down while the board is cold).
    pub async fn current(&self) -> Result<Arc<TopEvent>, ApiError> {
        let s = &self.state;
        let target = read::resolve(s, self.board.clone(), &self.season).await?;
        let cached = s.cache.get(&s.backend, &target.stored).await?;
        Ok(cached.snapshot.event(target.board.as_str(), target.season_id().as_deref(), self.limit))
    }
}

/// The SSE event of a list.
pub fn event(top: &TopEvent) -> Event {
    Event::default().event("top").id(&top.id).data(&top.json)
}

struct State {
    watch: TopWatch,
    ticket: Ticket,
    rounds: watch::Receiver<u64>,
    first: Option<Arc<TopEvent>>,
    last_rows: Option<u64>,
}

/// The stream: `first` (the list at subscription), then every change, until shutdown or the
/// client leaves (dropping the stream frees its `ticket`).
pub fn events(watch: TopWatch, first: Arc<TopEvent>, ticket: Ticket) -> impl Stream<Item = Result<Event, Infallible>> {
    let rounds = watch.state.cache.rounds();
    let state = State { watch, ticket, rounds, first: Some(first), last_rows: None };
    futures::stream::unfold(state, |mut st| async move {
        if let Some(first) = st.first.take() {
            st.last_rows = Some(first.rows_tag);
            st.ticket.sent();
            return Some((Ok(event(&first)), st));
        }
        let ending = st.watch.state.streams.ending().clone();
        loop {
            tokio::select! {
                biased;
                () = ending.cancelled() => return None,
                changed = st.rounds.changed() => if changed.is_err() { return None },
            }
            // A failed round (Redis down while the board is cold) is skipped: the next may do.
            let Ok(now) = st.watch.current().await else { continue };
            if st.last_rows != Some(now.rows_tag) {
                st.last_rows = Some(now.rows_tag);
                st.ticket.sent();
                return Some((Ok(event(&now)), st));
            }
        }
    })
}
