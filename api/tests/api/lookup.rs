//! `POST /v1/boards/{board}/players:lookup` over HTTP: answers like the oracle, bad bodies are 400 JSON.

use leaderboard_contract::PlayerId;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApi, board, meta_json, router, seed};

/// One lookup entry: player, score, rank, list rank, metadata.
type Listed = (String, u64, u64, u64, Option<serde_json::Value>);

async fn post(api: &TestApi, path: &str, body: String) -> (StatusCode, serde_json::Value) {
    let r = api
        .client
        .post(format!("{}{path}", api.base))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn a_list_of_players_answers_like_the_oracle_on_every_layout() {
    let redis = testkit::redis_url();
    for layout in ["single", "hash:4", "range:100,200"] {
        let b = board("lookup");
        let oracle = seed(&router(&redis, layout).await, &b, 200).await;
        let api = TestApi::start(&redis, layout, |_| {}).await;
        let asked = ["p0150", "p0007", "nobody", "p0007", "p0042", "p0199", "ghost"];
        let players: Vec<PlayerId> = asked.iter().map(|p| PlayerId::new(*p).expect("id")).collect();
        let expected = oracle.board(&b).expect("board").lookup(&players);
        let (status, body) =
            post(&api, &format!("/v1/boards/{b}/players:lookup"), json!({ "players": asked }).to_string()).await;
        assert_eq!(status, StatusCode::OK, "{layout}: {body}");
        assert_eq!(body["total"], expected.total, "{layout}");
        assert!(body["as_of"].as_str().is_some_and(|t| t.ends_with('Z')), "{body}");
        let entries: Vec<Listed> = body["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| {
                let n = |k: &str| e[k].as_u64().expect("number");
                let player = e["player"].as_str().expect("player").to_string();
                (player, n("score"), n("rank"), n("list_rank"), e.get("meta").cloned())
            })
            .collect();
        let want: Vec<Listed> = expected
            .entries
            .iter()
            .map(|l| (l.player.to_string(), l.score, l.rank, l.list_rank, meta_json(l.meta.as_ref())))
            .collect();
        assert!(want.iter().any(|l| l.4.is_some()) && want.iter().any(|l| l.4.is_none()), "with and without");
        assert_eq!(entries, want, "{layout}");
        assert_eq!(body["missing"], json!(["nobody", "ghost"]), "{layout}");
        api.stop().await;
    }
}

#[tokio::test]
async fn bad_lookups_get_json_errors() {
    let redis = testkit::redis_url();
    let b = board("lookup-bad");
    seed(&router(&redis, "single").await, &b, 10).await;
    let api = TestApi::start(&redis, "single", |_| {}).await;
    let path = format!("/v1/boards/{b}/players:lookup");
    let too_many: Vec<String> = (0..101).map(|i| format!("p{i:04}")).collect();
    let cases = [
        (json!({ "players": [] }).to_string(), "invalid_body"),
        (json!({ "players": too_many }).to_string(), "invalid_body"),
        (json!({ "players": ["ok", "not ok"] }).to_string(), "invalid_player"),
        (json!({ "players": ["p0001"], "extra": 1 }).to_string(), "invalid_body"),
        (json!({ "players": "p0001" }).to_string(), "invalid_body"),
        ("{not json".to_string(), "invalid_body"),
        // A struct read from an array, positionally.
        (json!([["p0001"]]).to_string(), "invalid_body"),
        (json!({ "players": ["x".repeat(40_000)] }).to_string(), "body_too_large"),
    ];
    for (body, code) in cases {
        let (status, reply) = post(&api, &path, body.clone()).await;
        assert_eq!(
            (status, reply["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{}",
            &body[..body.len().min(80)]
        );
    }
    let (status, reply) =
        post(&api, "/v1/boards/no-such-board/players:lookup", json!({ "players": ["p0001"] }).to_string()).await;
    assert_eq!((status, reply["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("board_not_found")));
    let wrong_type = api.client.post(format!("{}{path}", api.base)).body("{}").send().await.expect("request");
    assert_eq!(wrong_type.status(), StatusCode::BAD_REQUEST, "a body that is not declared JSON");
    api.stop().await;
}
