//! The api's request extractors on arbitrary input: query strings of the read routes (`limit`,
//! `offset`, `radius`, `season`), path segments (board and player ids), and the JSON bodies of
//! the lookup and admin rules routes. They never panic, and whatever they accept is within the
//! limits the OpenAPI document states.
//!
//! Input: one selector byte, then the text.
#![no_main]

use api::dto::{LookupRequest, RulesRequest};
use api::extract::{AroundParams, PageParams, bounds};
use api::season::SeasonParams;
use axum::extract::Query;
use axum::http::Uri;
use leaderboard_contract::{BoardId, MAX_ID_BYTES, PlayerId};
use libfuzzer_sys::fuzz_target;

fn query<T: serde::de::DeserializeOwned>(text: &str) -> Option<T> {
    let uri: Uri = format!("/v1/boards/b/top?{text}").parse().ok()?;
    Query::<T>::try_from_uri(&uri).ok().map(|Query(v)| v)
}

/// A JSON body as the api reads it: an object, then its fields.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes).ok()?;
    api::extract::object_body(object).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    match selector % 6 {
        0 => {
            if let Some(Ok((offset, limit))) = query::<PageParams>(&text).map(|p| p.checked()) {
                assert!((1..=bounds::MAX_LIMIT).contains(&limit) && offset <= bounds::MAX_OFFSET);
            }
        }
        1 => {
            if let Some(Ok(radius)) = query::<AroundParams>(&text).map(|p| p.checked()) {
                assert!(radius <= bounds::MAX_RADIUS);
            }
        }
        2 => {
            if let Some(SeasonParams { season: Some(season) }) = query::<SeasonParams>(&text) {
                // Any text parses; resolving it against a board's schedule is what refuses.
                let _ = season.len();
            }
        }
        3 => {
            for (ok, max) in [(BoardId::check(&text).is_ok(), MAX_ID_BYTES), (PlayerId::check(&text).is_ok(), MAX_ID_BYTES)] {
                if ok {
                    assert!(!text.is_empty() && text.len() <= max);
                    assert!(!text.contains(['{', '}', ' ', '/']), "a separator accepted in an id");
                }
            }
        }
        4 => {
            if let Some(request) = body::<LookupRequest>(rest) {
                let _ = request.players.iter().map(|p| PlayerId::check(p).is_ok()).count();
            }
        }
        _ => {
            if let Some(request) = body::<RulesRequest>(rest)
                && let Ok(rules) = request.rules()
                && rules.validate().is_ok()
            {
                assert!(rules.min_score <= rules.max_score && rules.max_score <= leaderboard_contract::MAX_SCORE);
                assert!((1..=leaderboard_semantics::rules::MAX_KEEP_SEASONS).contains(&rules.keep_seasons));
            }
        }
    }
});
