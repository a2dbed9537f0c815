//! `POST /v1/boards/{board}/players:lookup`: a list of players (friends, a clan) in one call.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request, State};
use leaderboard_contract::PlayerId;
use leaderboard_semantics::MAX_LOOKUP;

use super::read::{self, Answer, ensure_players};
use crate::clock::rfc3339;
use crate::dto::{LookupEntryDto, LookupRequest, LookupResponse};
use crate::error::{ApiError, ReadErrors};
use crate::extract::{ApiQuery, BoardPath, object_body};
use crate::season::SeasonParams;
use crate::state::AppState;

/// Largest request body: 100 ids of 64 bytes, quoted and separated, with room to spare.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The body, validated: 1 to [`MAX_LOOKUP`] valid player ids. Rejections are 400 JSON.
#[derive(Debug)]
pub struct LookupBody(pub Vec<PlayerId>);

impl<S: Send + Sync> FromRequest<S> for LookupBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(object) = Json::<serde_json::Map<String, serde_json::Value>>::from_request(req, state)
            .await
            .map_err(|e| body_error(&e))?;
        let body: LookupRequest = object_body(object)?;
        if body.players.is_empty() || body.players.len() > MAX_LOOKUP {
            return Err(ApiError::bad_request(
                "invalid_body",
                format!("players must hold 1 to {MAX_LOOKUP} ids, got {}", body.players.len()),
            ));
        }
        let players = body
            .players
            .into_iter()
            .map(|p| PlayerId::new(p).map_err(|e| ApiError::bad_request("invalid_player", format!("player {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(players))
    }
}

fn body_error(e: &JsonRejection) -> ApiError {
    let code = match e {
        JsonRejection::MissingJsonContentType(_) => "invalid_content_type",
        JsonRejection::BytesRejection(_) => "body_too_large",
        _ => "invalid_body",
    };
    ApiError::bad_request(code, e.body_text())
}

/// The standings of up to 100 players, ranked on the board and inside the list.
#[utoipa::path(post, path = "/v1/boards/{board}/players:lookup", tag = "boards",
    params(("board" = String, Path, description = "Board name, 1-64 bytes of [A-Za-z0-9_.-]"), SeasonParams),
    request_body(content = LookupRequest, description = "1 to 100 player ids; at most 16 KiB"),
    responses((status = 200, description = "The players found, in board order, and the ones missing", body = LookupResponse),
        ReadErrors))]
pub async fn lookup(
    State(s): State<AppState>,
    BoardPath(board): BoardPath,
    ApiQuery(season): ApiQuery<SeasonParams>,
    LookupBody(players): LookupBody,
) -> Result<Json<LookupResponse>, ApiError> {
    let p = &players;
    let Answer { target, value: found, as_of } =
        read::read(&s, board, &season, |r, b| async move { r.lookup(&b, p).await }).await?;
    ensure_players(found.total, &target.stored)?;
    Ok(Json(LookupResponse {
        board: target.board.to_string(),
        season: target.season_id(),
        as_of: rfc3339(as_of),
        total: found.total,
        entries: found
            .entries
            .into_iter()
            .map(|l| LookupEntryDto {
                player: l.player.to_string(),
                score: l.score,
                rank: l.rank,
                list_rank: l.list_rank,
                meta: l.meta,
            })
            .collect(),
        missing: found.missing.iter().map(ToString::to_string).collect(),
    }))
}
