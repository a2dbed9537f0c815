//! The HTTP routes: one module per group, each owning its handlers; [`read`]
//! is the path every read route answers through.
//!
//! # Layout
//! - [`boards`]: top, player, around and board statistics; [`lookup`]: a list of players in one call.
//! - [`seasons`]: a board's seasons; [`read`]: resolve the season, read, date the answer.
//! - [`watch`]: live updates, the top and a player's standing as Server-Sent Events.
//! - [`admin`]: the bearer-token routes under `/v1/admin/boards` and what every admin route shares;
//!   [`resets`]: a `manual` board's season reset; [`players`]: those under `/v1/admin/players`
//!   (erasure, bans).
//! - [`ops`]: health, readiness, metrics, the document, the page.
//!
//! Three routers, because they sit behind different middleware ([`crate::app`]): [`reads`]
//! (the request timeout), [`administration`] (`--admin-timeout`), [`probes`] (none: liveness and
//! readiness must answer under load; `/metrics` too, or on `--metrics-addr`).

pub mod admin;
pub mod boards;
pub mod lookup;
pub mod ops;
pub mod players;
pub mod read;
pub mod resets;
pub mod seasons;
pub mod watch;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};

use crate::state::AppState;

/// The read routes of the contract (`docs/contract.md#http-api`), the document, the page and
/// the fallback, without middleware ([`crate::app`] puts them behind the request timeout, load
/// shedding and the rate limit).
pub fn reads(state: AppState) -> Router {
    Router::new()
        .route("/v1/boards/{board}/top", get(boards::top))
        .route("/v1/boards/{board}/top:watch", get(watch::top))
        .route("/v1/boards/{board}/players/{player}", get(watch::player_or_watch))
        .route("/v1/boards/{board}/players/{player}/around", get(boards::around))
        .route(
            "/v1/boards/{board}/players:lookup",
            post(lookup::lookup).layer(DefaultBodyLimit::max(lookup::MAX_BODY_BYTES)),
        )
        .route("/v1/boards/{board}/seasons", get(seasons::seasons))
        .route("/v1/boards/{board}", get(boards::board))
        .route("/openapi.json", get(ops::openapi))
        .route("/", get(ops::index))
        .fallback(ops::not_found)
        .with_state(state)
}

/// The admin routes (`/v1/admin/`), without middleware (they get `--admin-timeout` instead of
/// the request timeout).
pub fn administration(state: AppState) -> Router {
    Router::new()
        .route("/v1/admin/boards", get(admin::list_boards))
        .route(
            "/v1/admin/boards/{board}",
            delete(admin::delete_board).put(admin::put_rules).layer(DefaultBodyLimit::max(admin::MAX_RULES_BODY_BYTES)),
        )
        .route("/v1/admin/boards/{board}/seasons:reset", post(resets::reset))
        .route("/v1/admin/players/{player}", get(players::status).delete(players::erase))
        .route(
            "/v1/admin/players/{player}/ban",
            put(players::ban).delete(players::unban).layer(DefaultBodyLimit::max(players::MAX_BAN_BODY_BYTES)),
        )
        .with_state(state)
}

/// The probes, and `/metrics` when `with_metrics`: no I/O, so they sit outside every limit.
pub fn probes(state: AppState, with_metrics: bool) -> Router {
    let probes = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/readyz/redis", get(ops::readyz_redis));
    let probes = if with_metrics { probes.route("/metrics", get(ops::metrics)) } else { probes };
    probes.with_state(state)
}
