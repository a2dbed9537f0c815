//! The OpenAPI 3 document, generated from the handlers' annotations.

use std::sync::OnceLock;

use utoipa::OpenApi;

use crate::dto::{
    AdminBoard, AdminBoards, AroundResponse, BoardResponse, EntryDto, LookupEntryDto, LookupRequest, LookupResponse,
    PlayerResponse, ReadyResponse, RedisReadyResponse, ShardDto, TopResponse,
};
use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::{admin, boards, lookup, ops, players, resets, seasons, watch};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Leaderboard API", description = "Top-N, ranks, percentiles and neighbourhoods of sharded leaderboards. \
        Every answer carries `as_of`, the time of the data it was computed from."),
    paths(boards::top, boards::player, boards::around, lookup::lookup, boards::board, seasons::seasons,
          watch::top, watch::player,
          admin::list_boards, admin::delete_board, admin::put_rules, resets::reset,
          players::status, players::erase, players::ban, players::unban,
          ops::healthz, ops::readyz, ops::readyz_redis, ops::metrics, ops::openapi, ops::index),
    components(schemas(TopResponse, PlayerResponse, AroundResponse, BoardResponse, EntryDto, ShardDto,
                       LookupRequest, LookupResponse, LookupEntryDto, AdminBoards, AdminBoard, crate::dto::RulesDto, crate::dto::RulesRequest, crate::dto::OrderDto, crate::dto::TiesDto, crate::dto::OperatorDto,
                       crate::dto::ResetDto, crate::dto::SeasonDto, crate::dto::SeasonsResponse, crate::dto::SeasonReset, crate::dto::SeasonSpan,
                       crate::dto::BanRequest, crate::dto::BanBoards, crate::dto::AllBoardsWord, crate::dto::BanDto,
                       crate::dto::PlayerRemoved, crate::dto::PlayerStatus, crate::dto::PlayerOnBoard,
                       ReadyResponse, RedisReadyResponse, crate::health::Serving, crate::health::NotReady, ErrorBody, ErrorDetail)),
    tags((name = "boards", description = "Leaderboard reads"),
         (name = "live", description = "Live updates: Server-Sent Events"), (name = "ops", description = "Operations"),
         (name = "admin", description = "Boards and players administration: bearer token with the admin scope")),
    modifiers(&BearerAuth, &Constraints)
)]
pub struct ApiDoc;

/// States in the document every constraint the extractors enforce, so a
/// generated client never sends what the api refuses: board and player
/// alphabets and lengths, and the ranges of `limit`, `offset` and `radius`.
struct Constraints;

impl utoipa::Modify for Constraints {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::{ArrayItems, Schema};
        // The lookup body's ids: each a player id.
        let players =
            openapi.components.as_mut().and_then(|c| c.schemas.get_mut("LookupRequest")).and_then(|s| match s {
                RefOr::T(Schema::Object(object)) => object.properties.get_mut("players"),
                _ => None,
            });
        if let (Some(RefOr::T(Schema::Array(array))), Some(id)) = (players, constrained("player")) {
            array.items = ArrayItems::RefOrSchema(Box::new(RefOr::T(id)));
        }
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                for parameter in operation.parameters.iter_mut().flatten() {
                    let RefOr::T(parameter) = parameter else { continue };
                    if let Some(schema) = constrained(&parameter.name) {
                        parameter.schema = Some(RefOr::T(schema));
                    }
                }
            }
        }
    }
}

/// The schema of a parameter the extractors check, by name.
fn constrained(name: &str) -> Option<utoipa::openapi::schema::Schema> {
    use leaderboard_contract::{BoardId, MAX_ID_BYTES, PlayerId};
    use utoipa::openapi::schema::{ObjectBuilder, Type};

    use crate::extract::bounds;
    let id = |allowed: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(format!("^[{allowed}]+$")))
            .min_length(Some(1))
            .max_length(Some(MAX_ID_BYTES))
    };
    let integer = |min: u64, max: u64| {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64)))
            .minimum(Some(min))
            .maximum(Some(max))
    };
    let schema = match name {
        "board" => id(BoardId::ALLOWED),
        "player" => id(PlayerId::ALLOWED),
        "limit" => integer(1, bounds::MAX_LIMIT),
        "offset" => integer(0, bounds::MAX_OFFSET),
        "radius" => integer(0, bounds::MAX_RADIUS),
        "season" => ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(crate::season::SEASON_PATTERN))
            .max_length(Some(crate::season::SEASON_MAX_BYTES)),
        _ => return None,
    };
    Some(schema.build().into())
}

/// Declares the `bearer` security scheme the admin routes use.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON, built once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    /// The error rows written once ([`crate::error::ReadErrors`], [`crate::error::AdminErrors`])
    /// reach every operation that names them, each with the error body.
    #[test]
    fn every_route_documents_the_shared_error_rows() {
        let doc: serde_json::Value = serde_json::from_str(super::document()).expect("the document is JSON");
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let shared: &[&str] = if path.starts_with("/v1/admin/") {
                &["401", "403", "503"]
            } else if path.starts_with("/v1/boards/") {
                &["400", "404", "409", "429", "503"]
            } else {
                &[]
            };
            for (method, operation) in item.as_object().expect("path item") {
                for code in shared {
                    let schema = &operation["responses"][code]["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(schema, "#/components/schemas/ErrorBody", "{method} {path} {code}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 8 * 5 + 8 * 3, "eight read (two of them streams) and eight admin operations");
    }
}
