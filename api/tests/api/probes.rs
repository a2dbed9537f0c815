//! The probes for Kubernetes and load balancers: liveness and `/metrics` outside every limit,
//! readiness that says "can serve" (a recent top-N cache counts) apart from "Redis answers"
//! (`/readyz/redis`, `api_redis_up`), and `/metrics` with the probes on a port of their own.

use std::time::Duration;

use api::testing::TestHold;
use leaderboard_contract::PlayerId;
use reqwest::StatusCode;
use testkit::PrivateRedis;

use crate::helpers::{TestApi, board, eventually, router, seed};

/// The probes and `/metrics`: none of them may be shed, timed out or rate limited.
const UNLIMITED: [&str; 4] = ["/healthz", "/readyz", "/readyz/redis", "/metrics"];

async fn status_of(client: reqwest::Client, url: String) -> StatusCode {
    client.get(url).send().await.expect("request").status()
}

/// Every slot of the concurrency limit is taken (one, by a lookup held once it read Redis):
/// another read route is shed with 503, and the probes and `/metrics` still answer 200. The
/// limit is one over every route (axum layers each route apart: a per-route limit would let
/// `/top` through here).
#[tokio::test]
async fn probes_and_metrics_answer_while_every_request_slot_is_taken() {
    let redis = testkit::redis_url();
    let b = board("probes-shed");
    seed(&router(&redis, "single").await, &b, 10).await;
    let api = TestApi::start(&redis, "single", |c| {
        c.max_concurrency = 1;
        c.request_timeout = Duration::from_secs(30);
    })
    .await;
    let player = PlayerId::new("p0001").expect("id");
    let hold = TestHold::lookup(&b, &player);
    let held = tokio::spawn(status_of(api.client.clone(), format!("{}/v1/boards/{b}/players/{player}", api.base)));
    tokio::time::timeout(Duration::from_secs(10), hold.reached()).await.expect("the lookup read and is held");

    let (status, body) = api.json(&format!("/v1/boards/{b}/top")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("overloaded")),
        "another read route is shed while the only slot is taken: {body}"
    );
    for path in UNLIMITED {
        for _ in 0..3 {
            let (status, body) = api.json(path).await;
            assert_eq!(status, StatusCode::OK, "{path} under load: {body}");
        }
    }
    let (_, ready) = api.json("/readyz").await;
    assert_eq!((ready["ready"].as_bool(), ready["serving"].as_str()), (Some(true), Some("redis")), "{ready}");

    hold.release();
    assert_eq!(held.await.expect("held lookup"), StatusCode::OK);
    api.stop().await;
}

/// A client past its rate gets 429 on the read routes; from the same address the probes and
/// `/metrics` answer 200 every time (a kubelet or a load balancer probes from one address).
#[tokio::test]
async fn probes_and_metrics_are_not_rate_limited() {
    let redis = testkit::redis_url();
    let b = board("probes-limited");
    seed(&router(&redis, "single").await, &b, 10).await;
    let api = TestApi::start(&redis, "single", |c| {
        c.rate_limit_per_second = 1;
        c.rate_limit_burst = 1;
    })
    .await;
    let top = format!("/v1/boards/{b}/top");
    assert_eq!(api.get(&top).await.status(), StatusCode::OK, "the burst");
    assert_eq!(api.get(&top).await.status(), StatusCode::TOO_MANY_REQUESTS, "then the client is limited");
    for path in UNLIMITED {
        for _ in 0..3 {
            assert_eq!(api.get(path).await.status(), StatusCode::OK, "{path} is not rate limited");
        }
    }
    assert_eq!(api.get(&top).await.status(), StatusCode::TOO_MANY_REQUESTS, "the probes took none of the rate");
    api.stop().await;
}

/// `/readyz` is "can serve", `/readyz/redis` is "Redis answers", against a Redis that is
/// stopped and started again: an api with a recent cache stays ready on it; one whose
/// cache is older than `--ready-stale-for` (or that has none) is not, and says why.
#[tokio::test]
async fn readiness_is_can_serve_and_redis_reachability_is_its_own_probe() {
    let mut redis = PrivateRedis::start();
    let url = redis.url();
    let b = board("ready");
    seed(&router(&url, "single").await, &b, 20).await;
    let quick = |c: &mut api::Config| {
        c.loss_check = Duration::from_millis(100);
        c.redis_timeout = Duration::from_millis(300);
        c.breaker_failures = 2;
    };
    let cached = TestApi::start(&url, "single", quick).await;
    let short = TestApi::start(&url, "single", |c| {
        quick(c);
        c.ready_stale_for = Duration::from_secs(2);
    })
    .await;
    let cold = TestApi::start(&url, "single", quick).await;
    let top = format!("/v1/boards/{b}/top");
    for api in [&cached, &short] {
        assert_eq!(api.json(&top).await.0, StatusCode::OK);
    }
    for api in [&cached, &short, &cold] {
        let (status, ready) = api.json("/readyz").await;
        assert_eq!((status, ready["serving"].as_str()), (StatusCode::OK, Some("redis")), "{ready}");
        assert!(ready.get("reason").is_none(), "{ready}");
        let (status, up) = api.json("/readyz/redis").await;
        assert_eq!((status, up["up"].as_bool()), (StatusCode::OK, Some(true)), "{up}");
    }
    let metrics = cached.get("/metrics").await.text().await.expect("metrics");
    assert!(metrics.lines().any(|l| l == "api_redis_up 1"), "api_redis_up while Redis answers");

    redis.kill();
    for api in [&cached, &short, &cold] {
        eventually("/readyz/redis fails once Redis stops answering", || async {
            let (status, up) = api.json("/readyz/redis").await;
            status == StatusCode::SERVICE_UNAVAILABLE && up["up"] == false && up["failure"].is_string()
        })
        .await;
    }
    let metrics = cached.get("/metrics").await.text().await.expect("metrics");
    assert!(metrics.lines().any(|l| l == "api_redis_up 0"), "api_redis_up once Redis stops answering");
    // A recent cache: ready, serving the stale first rows; ranks cannot be answered.
    let (status, ready) = cached.json("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!((ready["serving"].as_str(), ready["redis"].as_bool()), (Some("cache"), Some(false)), "{ready}");
    assert!(ready["cached_boards"].as_u64() >= Some(1) && ready["cache_age_ms"].is_u64(), "{ready}");
    assert_eq!(cached.get(&top).await.status(), StatusCode::OK);
    // No cache: nothing can be answered.
    let (status, ready) = cold.json("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(
        (ready["serving"].as_str(), ready["reason"].as_str(), ready["cached_boards"].as_u64()),
        (Some("nothing"), Some("redis_unreachable"), Some(0)),
        "{ready}"
    );
    // A cache older than --ready-stale-for no longer counts.
    eventually("the short-lived cache stops counting", || async {
        let (status, ready) = short.json("/readyz").await;
        status == StatusCode::SERVICE_UNAVAILABLE && ready["reason"] == "redis_unreachable"
    })
    .await;
    assert_eq!(cached.json("/readyz").await.0, StatusCode::OK, "the default keeps a minutes-old cache");

    redis.restart();
    for api in [&cached, &short, &cold] {
        eventually("ready on Redis again", || async {
            let (status, ready) = api.json("/readyz").await;
            status == StatusCode::OK
                && ready["serving"] == "redis"
                && api.json("/readyz/redis").await.0 == StatusCode::OK
        })
        .await;
    }
    let metrics = cached.get("/metrics").await.text().await.expect("metrics");
    assert!(metrics.lines().any(|l| l == "api_redis_up 1"), "api_redis_up once Redis is back");
    for api in [cached, short, cold] {
        api.stop().await;
    }
}

/// `--metrics-addr`: `/metrics` and the probes on their own port, `/metrics` off the main one;
/// while the api drains at shutdown, that port says so (`/readyz` 503 `shutting_down`) and is
/// closed once the api has stopped.
#[tokio::test]
async fn metrics_and_probes_on_their_own_port_until_the_api_has_stopped() {
    let redis = testkit::redis_url();
    let b = board("metrics-port");
    seed(&router(&redis, "single").await, &b, 10).await;
    let api = TestApi::start(&redis, "single", |c| {
        c.metrics_addr = Some("127.0.0.1:0".parse().expect("addr"));
        c.request_timeout = Duration::from_secs(30);
    })
    .await;
    let port = api.metrics_base().expect("a metrics address");
    assert_eq!(api.get(&format!("/v1/boards/{b}/top")).await.status(), StatusCode::OK);
    let scrape = api.client.get(format!("{port}/metrics")).send().await.expect("scrape");
    assert_eq!(scrape.status(), StatusCode::OK);
    assert!(scrape.headers()["content-type"].to_str().expect("ct").starts_with("text/plain"));
    let text = scrape.text().await.expect("metrics");
    assert!(text.contains(r#"route="/v1/boards/{board}/top""#), "the main port's requests are counted");
    let (status, body) = api.json("/metrics").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("route_not_found")));
    for path in ["/healthz", "/readyz", "/readyz/redis"] {
        assert_eq!(api.get(path).await.status(), StatusCode::OK, "{path} on the main port");
        assert_eq!(
            status_of(api.client.clone(), format!("{port}{path}")).await,
            StatusCode::OK,
            "{path} on the metrics port"
        );
    }
    let read_on_metrics_port = status_of(api.client.clone(), format!("{port}/v1/boards/{b}/top")).await;
    assert_eq!(read_on_metrics_port, StatusCode::NOT_FOUND, "no read route on the metrics port");

    // A request in flight keeps the api draining after the shutdown began.
    let player = PlayerId::new("p0001").expect("id");
    let hold = TestHold::lookup(&b, &player);
    let held = tokio::spawn(status_of(api.client.clone(), format!("{}/v1/boards/{b}/players/{player}", api.base)));
    tokio::time::timeout(Duration::from_secs(10), hold.reached()).await.expect("the lookup read and is held");
    api.begin_shutdown();
    let client = api.client.clone();
    eventually("the metrics port reports shutting down", || async {
        let r = client.get(format!("{port}/readyz")).send().await.expect("readyz");
        let status = r.status();
        let body: serde_json::Value = r.json().await.expect("json");
        status == StatusCode::SERVICE_UNAVAILABLE && body["reason"] == "shutting_down" && body["shutting_down"] == true
    })
    .await;
    assert_eq!(status_of(client.clone(), format!("{port}/healthz")).await, StatusCode::OK, "alive while draining");
    hold.release();
    assert_eq!(held.await.expect("held lookup"), StatusCode::OK, "the request in flight is answered");
    api.stop().await;
    assert!(client.get(format!("{port}/healthz")).send().await.is_err(), "the metrics port is closed after stop");
}
