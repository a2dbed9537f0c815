//! The HTTP routes and the middleware around them.

pub mod boards;
pub mod lookup;
pub mod ops;
pub mod seasons;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};

use crate::state::AppState;

/// All routes of `DESIGN.md`, without middleware.
pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/v1/boards/{board}/top", get(boards::top))
        .route("/v1/boards/{board}/players/{player}", get(boards::player))
        .route("/v1/boards/{board}/players/{player}/around", get(boards::around))
        .route(
            "/v1/boards/{board}/players:lookup",
            post(lookup::lookup).layer(DefaultBodyLimit::max(lookup::MAX_BODY_BYTES)),
        )
        .route("/v1/boards/{board}/seasons", get(seasons::seasons))
        .route("/v1/boards/{board}", get(boards::board))
        .route("/v1/admin/boards", get(crate::admin::list_boards))
        .route(
            "/v1/admin/boards/{board}",
            delete(crate::admin::delete_board)
                .put(crate::admin::put_rules)
                .layer(DefaultBodyLimit::max(crate::admin::MAX_RULES_BODY_BYTES)),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .route("/", get(ops::index))
        .fallback(ops::not_found)
        .with_state(state)
}
