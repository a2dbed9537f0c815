//! The OpenAPI 3 document, generated from the handlers' annotations.

use std::sync::OnceLock;

use utoipa::OpenApi;

use crate::dto::{
    AroundResponse, BoardResponse, EntryDto, LookupEntryDto, LookupRequest, LookupResponse, PlayerResponse,
    ReadyResponse, ShardDto, TopResponse,
};
use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::{boards, lookup, ops};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Leaderboard API", description = "Top-N, ranks, percentiles and neighbourhoods of sharded leaderboards. \
        Every answer carries `as_of`, the time of the data it was computed from."),
    paths(boards::top, boards::player, boards::around, lookup::lookup, boards::board,
          crate::admin::list_boards, crate::admin::delete_board, crate::admin::put_rules,
          ops::healthz, ops::readyz, ops::metrics, ops::openapi, ops::index),
    components(schemas(TopResponse, PlayerResponse, AroundResponse, BoardResponse, EntryDto, ShardDto,
                       LookupRequest, LookupResponse, LookupEntryDto, crate::admin::AdminBoards, crate::admin::AdminBoard, crate::dto::RulesDto, crate::dto::RulesRequest, crate::dto::OrderDto, crate::dto::TiesDto,
                       ReadyResponse, ErrorBody, ErrorDetail)),
    tags((name = "boards", description = "Leaderboard reads"), (name = "ops", description = "Operations"),
         (name = "admin", description = "Board administration: bearer token with the admin scope")),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

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
