//! Every route, for every layout, against the oracle; every error path.

use leaderboard_contract::PlayerId;
use reqwest::StatusCode;

use crate::helpers::{TestApi, board, meta_json, oracle_rows, router, rows, seed};

#[tokio::test]
async fn every_route_matches_the_oracle_for_every_layout() {
    for layout in ["single", "hash:3", "range:100,200"] {
        let redis = testkit::redis_url();
        let b = board("api");
        let oracle = seed(&router(&redis, layout).await, &b, 400).await;
        let expected = oracle.board(&b).expect("seeded");
        let api = TestApi::start(&redis, layout, |_| {}).await;

        for (offset, limit) in [(0, 100), (0, 10), (95, 5), (90, 30), (350, 100)] {
            let (status, body) = api.json(&format!("/v1/boards/{b}/top?offset={offset}&limit={limit}")).await;
            assert_eq!(status, StatusCode::OK, "{layout} top {offset}/{limit}: {body}");
            assert_eq!(rows(&body), oracle_rows(&expected.top(offset, limit).entries), "{layout} top {offset}/{limit}");
            assert_eq!(body["total"], 400);
            assert!(
                time::OffsetDateTime::parse(
                    body["as_of"].as_str().expect("as_of"),
                    &time::format_description::well_known::Rfc3339
                )
                .is_ok()
            );
        }
        let cached = api.get(&format!("/v1/boards/{b}/top")).await;
        assert!(cached.headers().contains_key("x-data-age-ms"), "cached answers say their age");

        for i in [0, 17, 42, 399] {
            let p = PlayerId::new(format!("p{i:04}")).expect("id");
            let want = expected.standing(&p).expect("seeded");
            let (status, body) = api.json(&format!("/v1/boards/{b}/players/{p}")).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(
                (body["score"].as_u64(), body["rank"].as_u64(), body["total"].as_u64()),
                (Some(want.score), Some(want.rank), Some(400))
            );
            assert_eq!(body.get("meta").cloned(), meta_json(want.meta.as_ref()), "{layout} meta of {p}");
            assert!((body["percentile"].as_f64().expect("pct") - want.percentile).abs() < 1e-9);
            let (status, body) = api.json(&format!("/v1/boards/{b}/players/{p}/around?radius=3")).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(rows(&body), oracle_rows(&expected.around(&p, 3).expect("seeded")), "{layout} around {p}");
        }

        let (status, body) = api.json(&format!("/v1/boards/{b}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["total"], 400);
        assert_eq!(body["strategy"], layout.split(':').next().expect("strategy"));
        let sizes: u64 =
            body["shards"].as_array().expect("shards").iter().map(|s| s["size"].as_u64().expect("size")).sum();
        assert_eq!(sizes, 400);
        api.stop().await;
    }
}

#[tokio::test]
async fn bad_requests_get_json_errors_never_500() {
    let redis = testkit::redis_url();
    let b = board("errors");
    seed(&router(&redis, "single").await, &b, 20).await;
    let api = TestApi::start(&redis, "single", |_| {}).await;
    let long = "x".repeat(65);
    let cases: Vec<(String, StatusCode, &str)> = vec![
        (format!("/v1/boards/{long}/top"), StatusCode::BAD_REQUEST, "invalid_board"),
        ("/v1/boards/a%20b/top".into(), StatusCode::BAD_REQUEST, "invalid_board"),
        ("/v1/boards/a:b/top".into(), StatusCode::BAD_REQUEST, "invalid_board"),
        (format!("/v1/boards/{b}/top?limit=0"), StatusCode::BAD_REQUEST, "invalid_limit"),
        (format!("/v1/boards/{b}/top?limit=1001"), StatusCode::BAD_REQUEST, "invalid_limit"),
        (format!("/v1/boards/{b}/top?limit=abc"), StatusCode::BAD_REQUEST, "invalid_query"),
        (format!("/v1/boards/{b}/top?offset=-1"), StatusCode::BAD_REQUEST, "invalid_query"),
        (format!("/v1/boards/{b}/top?offset=10001"), StatusCode::BAD_REQUEST, "invalid_offset"),
        (format!("/v1/boards/{b}/players/bad%20id"), StatusCode::BAD_REQUEST, "invalid_player"),
        (format!("/v1/boards/{b}/players/{long}"), StatusCode::BAD_REQUEST, "invalid_player"),
        (format!("/v1/boards/{b}/players/p0001/around?radius=51"), StatusCode::BAD_REQUEST, "invalid_radius"),
        (format!("/v1/boards/{b}/players/p0001/around?radius=x"), StatusCode::BAD_REQUEST, "invalid_query"),
        (format!("/v1/boards/{b}/players/nobody"), StatusCode::NOT_FOUND, "player_not_found"),
        (format!("/v1/boards/{b}/players/nobody/around"), StatusCode::NOT_FOUND, "player_not_found"),
        ("/v1/boards/no-such-board/top".into(), StatusCode::NOT_FOUND, "board_not_found"),
        ("/v1/boards/no-such-board/top?offset=500".into(), StatusCode::NOT_FOUND, "board_not_found"),
        ("/v1/boards/no-such-board".into(), StatusCode::NOT_FOUND, "board_not_found"),
        ("/v1/boards/no-such-board/players/p1".into(), StatusCode::NOT_FOUND, "board_not_found"),
        ("/v2/nothing".into(), StatusCode::NOT_FOUND, "route_not_found"),
    ];
    for (path, status, code) in cases {
        let (got, body) = api.json(&path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{path}");
    }
    api.stop().await;
}

#[tokio::test]
async fn openapi_metrics_health_and_page() {
    let redis = testkit::redis_url();
    let b = board("ops");
    seed(&router(&redis, "single").await, &b, 10).await;
    let api = TestApi::start(&redis, "single", |_| {}).await;
    let (status, doc) = api.json("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for path in [
        "/v1/boards/{board}/top",
        "/v1/boards/{board}/players/{player}",
        "/v1/boards/{board}/players/{player}/around",
        "/v1/boards/{board}",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/",
    ] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} missing from the OpenAPI document");
    }
    let top_params: Vec<&str> = doc["paths"]["/v1/boards/{board}/top"]["get"]["parameters"]
        .as_array()
        .expect("params")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(top_params, ["board", "limit", "offset", "season"]);
    assert!(doc["paths"]["/v1/boards/{board}/players:lookup"]["post"].is_object(), "the lookup route is documented");
    assert_eq!(doc["components"]["schemas"]["LookupRequest"]["properties"]["players"]["maxItems"], 100);
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());

    assert_eq!(api.json(&format!("/v1/boards/{b}/top")).await.0, StatusCode::OK);
    let metrics = api.get("/metrics").await.text().await.expect("metrics");
    assert!(metrics.contains(r#"route="/v1/boards/{board}/top""#), "metrics are labelled by matched route");
    assert!(!metrics.contains(&format!("/v1/boards/{b}/top")), "raw paths never become labels");
    assert_eq!(api.get("/healthz").await.status(), StatusCode::OK);
    let (status, ready) = api.json("/readyz").await;
    assert_eq!((status, ready["ready"].as_bool()), (StatusCode::OK, Some(true)));
    let page = api.get("/").await;
    assert!(page.headers()["content-type"].to_str().expect("ct").starts_with("text/html"));
    assert!(page.text().await.expect("page").contains("Leaderboard"));
    api.stop().await;
}

/// An api configured with another layout than the board was written with
/// answers 409 `layout_mismatch`, naming both layouts, instead of reading other keys.
#[tokio::test]
async fn a_board_of_another_layout_is_a_conflict_naming_both() {
    let redis = testkit::redis_url();
    let b = board("mismatch");
    seed(&router(&redis, "single").await, &b, 20).await;
    let api = TestApi::start(&redis, "hash:4", |_| {}).await;
    for path in [format!("/v1/boards/{b}/top"), format!("/v1/boards/{b}/players/p-1"), format!("/v1/boards/{b}")] {
        let (status, body) = api.json(&path).await;
        assert_eq!(status, StatusCode::CONFLICT, "{path}: {body}");
        assert_eq!(body["error"]["code"], "layout_mismatch");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains("single") && message.contains("hash:4"), "{message}");
    }
    api.stop().await;
}

/// The cached first rows carry an `ETag` and `Cache-Control: max-age`; the same tag sent back
/// gets `304 Not Modified` with no body, a changed board gets a new tag.
#[tokio::test]
async fn cached_pages_are_tagged_and_revalidated() {
    let redis = testkit::redis_url();
    let b = board("etag");
    let writer = router(&redis, "single").await;
    seed(&writer, &b, 50).await;
    let api = TestApi::start(&redis, "single", |_| {}).await;
    let url = format!("{}/v1/boards/{b}/top", api.base);

    let first = api.client.get(&url).send().await.expect("top");
    assert_eq!(first.status(), StatusCode::OK);
    let tag = first.headers()["etag"].to_str().expect("etag").to_string();
    assert_eq!(first.headers()["cache-control"], "public, max-age=1");
    let body: serde_json::Value = first.json().await.expect("json");
    assert_eq!(body["total"], 50);

    let again = api.client.get(&url).header("if-none-match", &tag).send().await.expect("revalidate");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["etag"].to_str().expect("etag"), tag);
    assert!(again.bytes().await.expect("body").is_empty(), "a 304 has no body");

    let slice = api.get(&format!("/v1/boards/{b}/top?limit=10")).await;
    assert_ne!(slice.headers()["etag"].to_str().expect("etag"), tag, "another page, another tag");

    let newcomer = leaderboard_semantics::ScoreUpdate {
        board: b.clone(),
        player: PlayerId::new("newcomer").expect("id"),
        score: u64::MAX >> 12,
        time_ms: 0,
        meta: None,
        source: None,
    };
    writer.apply(&[newcomer]).await.expect("apply");
    let mut changed = None;
    for _ in 0..100 {
        let r = api.client.get(&url).header("if-none-match", &tag).send().await.expect("revalidate");
        if r.status() == StatusCode::OK {
            changed = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let changed = changed.expect("the page changed once the cache refreshed");
    assert_ne!(changed.headers()["etag"].to_str().expect("etag"), tag);
    let body: serde_json::Value = changed.json().await.expect("json");
    assert_eq!(body["entries"][0]["player"], "newcomer");
    api.stop().await;
}

/// 10,000 made-up board names, on every route, on the `range` layout (the one
/// with per-board state): Redis gets no key (`DBSIZE` 0) and the api keeps
/// nothing per board: no cached page, no new metric series.
#[tokio::test]
async fn unknown_boards_leave_redis_and_the_api_unchanged() {
    let redis = testkit::PrivateRedis::start();
    let api = TestApi::start(&redis.url(), "range:100,200", |c| {
        c.rate_limit_per_second = 1_000_000;
        c.rate_limit_burst = 1_000_000;
    })
    .await;
    let series = |text: &str| text.lines().filter(|l| !l.starts_with('#')).count();
    api.get("/metrics").await; // the scrape's own series exist from here on
    let mut after_first = 0;
    for i in 0..10_000 {
        let b = format!("ghost-{i}");
        assert_eq!(api.get(&format!("/v1/boards/{b}/top")).await.status(), StatusCode::NOT_FOUND);
        if i % 10 == 0 {
            assert_eq!(api.get(&format!("/v1/boards/{b}/players/p-1")).await.status(), StatusCode::NOT_FOUND);
            assert_eq!(api.get(&format!("/v1/boards/{b}/players/p-1/around")).await.status(), StatusCode::NOT_FOUND);
            assert_eq!(api.get(&format!("/v1/boards/{b}")).await.status(), StatusCode::NOT_FOUND);
        }
        if i == 999 {
            after_first = series(&api.get("/metrics").await.text().await.expect("metrics"));
        }
    }
    let metrics = api.get("/metrics").await.text().await.expect("metrics");
    // The recorder is the process's: tests running beside this one add series of their own (new
    // routes, statuses), never more than a few; 9,000 boards with series of their own would add thousands.
    assert!(series(&metrics) < after_first + 100, "9,000 more unknown boards added metric series");
    assert!(!metrics.contains("ghost-"), "a metric series names an unknown board");
    assert!(metrics.lines().any(|l| l == "api_top_cache_boards 0"), "unknown boards were cached");
    let store = router(&redis.url(), "range:100,200").await;
    let keys: Vec<String> = store.store().query(redis::cmd("KEYS").arg("*")).await.expect("keys");
    assert_eq!(
        keys,
        [leaderboard_store::marker::epoch::KEY],
        "reads created keys (the epoch is the test's, made before the api started)"
    );
    api.stop().await;
}

/// The OpenAPI document states every constraint the api enforces, and the
/// api agrees with it at each edge: a value the document allows is never a
/// 400, and one just outside it always is (issue: generated clients sent
/// requests the api refused).
#[tokio::test]
async fn the_document_states_the_constraints_the_api_enforces() {
    let redis = testkit::redis_url();
    let b = board("constraints");
    seed(&router(&redis, "single").await, &b, 10).await;
    let api = TestApi::start(&redis, "single", |_| {}).await;
    let (_, doc) = api.json("/openapi.json").await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("item") {
            for p in operation["parameters"].as_array().into_iter().flatten() {
                let (name, schema) = (p["name"].as_str().expect("name"), &p["schema"]);
                let context = format!("{method} {path} {name}");
                match name {
                    "board" | "player" => {
                        assert_eq!(
                            (schema["minLength"].as_u64(), schema["maxLength"].as_u64()),
                            (Some(1), Some(64)),
                            "{context}"
                        );
                        assert!(
                            schema["pattern"].as_str().is_some_and(|p| p.starts_with("^[A-Za-z0-9_.")),
                            "{context}"
                        );
                    }
                    "limit" | "offset" | "radius" => {
                        assert!(schema["minimum"].is_u64() && schema["maximum"].is_u64(), "{context}: {schema}");
                    }
                    "season" => assert_eq!(schema["pattern"], api::season::SEASON_PATTERN, "{context}"),
                    "ending" => assert_eq!(schema["pattern"], "^m[1-9][0-9]{0,13}$", "{context}"),
                    other => panic!("{context}: parameter {other} has no stated constraint"),
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 12, "every route's parameters were checked ({checked})");
    let ids = &doc["components"]["schemas"]["LookupRequest"]["properties"]["players"];
    assert_eq!(
        (ids["minItems"].as_u64(), ids["maxItems"].as_u64(), ids["items"]["maxLength"].as_u64()),
        (Some(1), Some(100), Some(64))
    );
    let status = |path: String| {
        let api = &api;
        async move { api.get(&path).await.status().as_u16() }
    };
    let top = format!("/v1/boards/{b}/top");
    for (query, want_400) in [
        ("limit=1", false),
        ("limit=1000", false),
        ("limit=0", true),
        ("limit=1001", true),
        ("offset=10000", false),
        ("offset=10001", true),
    ] {
        assert_eq!(status(format!("{top}?{query}")).await == 400, want_400, "{query}");
    }
    let around = format!("/v1/boards/{b}/players/p0001/around");
    assert_ne!(status(format!("{around}?radius=50")).await, 400);
    assert_eq!(status(format!("{around}?radius=51")).await, 400);
    let longest = "b".repeat(64);
    assert_eq!(status(format!("/v1/boards/{longest}/top")).await, 404, "64 bytes: allowed, unknown");
    assert_eq!(status(format!("/v1/boards/{longest}b/top")).await, 400, "65 bytes");
    assert_eq!(status(format!("/v1/boards/{b}/players/a@b:c.d_e-f")).await, 404, "the player alphabet");
    assert_eq!(status(format!("/v1/boards/{b}/players/a%2Bb")).await, 400, "outside it");
    api.stop().await;
}
