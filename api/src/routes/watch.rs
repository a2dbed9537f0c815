//! The live-update routes (`top:watch`, `players/{player}:watch`): admit the
//! stream, answer its first state as the read routes would (their errors
//! included), then hand it to [`crate::watch`].

use std::net::IpAddr;

use axum::extract::State;
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use leaderboard_contract::{BoardId, PlayerId};

use super::read::{self, Answer, ensure_players};
use crate::client_ip::Client;
use crate::error::{ApiError, ReadErrors};
use crate::extract::{ApiQuery, BoardPath, WatchParams};
use crate::season::SeasonParams;
use crate::state::AppState;
use crate::watch::standing::{self, StandingEvent};
use crate::watch::top::{self, TopWatch};
use crate::watch::{Kind, Ticket};

/// The rows of "Live updates" every stream route documents besides the read errors.
#[derive(utoipa::IntoResponses)]
pub enum StreamErrors {
    /// This client holds as many streams as one client may (`too_many_streams`)
    #[response(status = 429)]
    ClientStreams(crate::error::ErrorBody),
    /// This server holds as many streams as it serves (`too_many_streams`), or the store is unavailable
    #[response(status = 503)]
    TooManyStreams(crate::error::ErrorBody),
}

fn sse<S>(s: &AppState, events: S) -> Response
where
    S: futures::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>> + Send + 'static,
{
    let heartbeat = s.streams.options().watch_heartbeat;
    Sse::new(events).keep_alive(KeepAlive::new().interval(heartbeat)).into_response()
}

/// The first rows of a board as Server-Sent Events: an event `top` (the body of `/top`) when
/// the stream opens and whenever the rows change, at most once per cache refresh; a comment
/// line every 15 s. A reconnecting client (`Last-Event-ID`) gets the current list first.
#[utoipa::path(get, path = "/v1/boards/{board}/top:watch", tag = "live",
    params(("board" = String, Path, description = "Board name, 1-64 bytes of [A-Za-z0-9_.-]"), WatchParams, SeasonParams),
    responses(
        (status = 200, description = "A stream of `top` events", content_type = "text/event-stream", body = String),
        ReadErrors, StreamErrors))]
pub async fn top(
    State(s): State<AppState>,
    Client(client_ip): Client,
    BoardPath(board): BoardPath,
    ApiQuery(params): ApiQuery<WatchParams>,
    ApiQuery(season): ApiQuery<SeasonParams>,
) -> Result<Response, ApiError> {
    let limit = params.checked(s.cache.rows())?;
    let ticket: Ticket = s.streams.admit(client_ip, Kind::Top)?;
    let target = read::resolve(&s, board.clone(), &season).await?;
    let cached = s.cache.get(&s.backend, &target.stored).await?;
    ensure_players(cached.snapshot.total, &target.stored)?;
    let first = cached.snapshot.event(target.board.as_str(), target.season_id().as_deref(), limit);
    let watch = TopWatch { state: s.clone(), board, season, limit };
    Ok(sse(&s, top::events(watch, first, ticket)))
}

/// A player's standing as Server-Sent Events: an event `standing` (the body of the player
/// route) when the stream opens and whenever their score or rank changes, at most once per
/// second; `removed` when they leave the board (erased, banned); a comment line every 15 s.
/// A player id ending in `:watch` cannot be read by the player route: use `players:lookup`.
#[utoipa::path(get, path = "/v1/boards/{board}/players/{player}:watch", tag = "live",
    params(("board" = String, Path, description = "Board name"),
           ("player" = String, Path, description = "Player id, 1-64 bytes of [A-Za-z0-9_.:@-]"), SeasonParams),
    responses(
        (status = 200, description = "A stream of `standing` events", content_type = "text/event-stream", body = String),
        ReadErrors, StreamErrors))]
pub async fn player(
    s: AppState,
    client_ip: IpAddr,
    board: BoardId,
    player: PlayerId,
    season: SeasonParams,
) -> Result<Response, ApiError> {
    let ticket = s.streams.admit(client_ip, Kind::Standing)?;
    // Subscribed before the first read: a change read by the hub meanwhile is not missed.
    let latest = s.streams.standings.subscribe(&board, &season, &player);
    let Answer { target, value, as_of } = read::standing(&s, board, &season, &player).await?;
    let Some(st) = value else { return Err(super::boards::missing(&s, &target.stored, &player).await) };
    let first = StandingEvent::new(&target, &player, Some(st), as_of);
    let ending = s.streams.ending().clone();
    Ok(sse(&s, standing::events(latest, first, ticket, ending)))
}

/// `/players/{player}` and `/players/{player}:watch` share one route ([`crate::extract::PlayerRoute`]).
pub async fn player_or_watch(
    State(s): State<AppState>,
    Client(client_ip): Client,
    route: crate::extract::PlayerRoute,
    ApiQuery(season): ApiQuery<SeasonParams>,
) -> Result<Response, ApiError> {
    let crate::extract::PlayerRoute { board, player, watch } = route;
    if watch {
        return self::player(s, client_ip, board, player, season).await;
    }
    let path = crate::extract::PlayerPath(board, player);
    Ok(super::boards::player(State(s), path, ApiQuery(season)).await?.into_response())
}
