//! Redis failures, slow Redis, overload and rate limits.

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use testkit::PrivateRedis;

use crate::helpers::{TestApi, board, eventually, router, seed};

#[tokio::test]
async fn redis_down_serves_stale_top_refuses_ranks_and_recovers() {
    let mut redis = PrivateRedis::start();
    let b = board("down");
    seed(&router(&redis.url(), "range:100").await, &b, 50).await;
    let api = TestApi::start(&redis.url(), "range:100", |c| {
        c.breaker_failures = 2;
        c.breaker_open = Duration::from_secs(1);
        c.redis_timeout = Duration::from_millis(300);
    })
    .await;
    let (status, warm) = api.json(&format!("/v1/boards/{b}/top")).await;
    assert_eq!(status, StatusCode::OK);
    let as_of = warm["as_of"].as_str().expect("as_of").to_string();

    redis.kill();
    // The cached top keeps being served, marked stale, with the time of its data.
    eventually("top served stale from the cache", || async {
        let r = api.get(&format!("/v1/boards/{b}/top")).await;
        r.status() == StatusCode::OK && r.headers().get("x-data-stale").is_some_and(|v| v == "true")
    })
    .await;
    let (_, stale) = api.json(&format!("/v1/boards/{b}/top")).await;
    assert_eq!(stale["entries"], warm["entries"]);
    assert!(stale["as_of"].as_str().expect("as_of") >= as_of.as_str());
    // Ranks cannot be answered: 503 with Retry-After and the JSON error format.
    let r = api.get(&format!("/v1/boards/{b}/players/p0001")).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "store_unavailable");
    assert_eq!(api.get(&format!("/v1/boards/{b}/top?offset=200")).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Still ready: the cached top is what it can serve (probes.rs has the states of readiness).
    eventually("ready on the cache, Redis reported down", || async {
        let (status, ready) = api.json("/readyz").await;
        status == StatusCode::OK && ready["serving"] == "cache" && ready["redis"] == false
    })
    .await;
    assert_eq!(api.get("/readyz/redis").await.status(), StatusCode::SERVICE_UNAVAILABLE);

    redis.restart();
    eventually("Redis reachable again", || async { api.get("/readyz/redis").await.status() == StatusCode::OK }).await;
    eventually("ranks answered again", || async {
        api.get(&format!("/v1/boards/{b}/players/p0001")).await.status() == StatusCode::OK
    })
    .await;
    eventually("top fresh again", || async {
        let r = api.get(&format!("/v1/boards/{b}/top")).await;
        r.status() == StatusCode::OK && !r.headers().contains_key("x-data-stale")
    })
    .await;
    api.stop().await;
}

fn signal(redis_pid: u32, sig: &str) {
    let status = Command::new("kill").args([sig, &redis_pid.to_string()]).status().expect("kill");
    assert!(status.success());
}

#[tokio::test]
async fn slow_redis_times_out_and_excess_load_is_shed() {
    let redis = PrivateRedis::start();
    let b = board("slow");
    seed(&router(&redis.url(), "single").await, &b, 10).await;
    let api = TestApi::start(&redis.url(), "single", |c| {
        c.request_timeout = Duration::from_millis(300);
        c.redis_timeout = Duration::from_secs(5);
        c.max_concurrency = 1;
    })
    .await;
    assert_eq!(api.json(&format!("/v1/boards/{b}/players/p0001")).await.0, StatusCode::OK);
    let pid = redis.pid().expect("running");
    signal(pid, "-STOP");
    // One request occupies the only slot until it times out; the other is shed at once.
    let (first, second) = (format!("/v1/boards/{b}/players/p0001"), format!("/v1/boards/{b}/players/p0002"));
    let (slow, shed) = tokio::join!(api.json(&first), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        api.json(&second).await
    });
    signal(pid, "-CONT");
    assert_eq!(
        (slow.0, slow.1["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("timeout")),
        "{}",
        slow.1
    );
    assert_eq!(
        (shed.0, shed.1["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("overloaded")),
        "{}",
        shed.1
    );
    eventually("served again after Redis resumes", || async {
        api.json(&format!("/v1/boards/{b}/players/p0001")).await.0 == StatusCode::OK
    })
    .await;
    api.stop().await;
}

#[tokio::test]
async fn per_client_rate_limit_answers_429_with_retry_after() {
    let redis = testkit::redis_url();
    let b = board("limited");
    seed(&router(&redis, "single").await, &b, 10).await;
    let api = TestApi::start(&redis, "single", |c| {
        c.rate_limit_per_second = 1;
        c.rate_limit_burst = 3;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = api.get(&format!("/v1/boards/{b}/top")).await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.headers().contains_key("retry-after"));
            let body: serde_json::Value = r.json().await.expect("json");
            assert_eq!(body["error"]["code"], "rate_limited");
            statuses.push(429);
        } else {
            statuses.push(r.status().as_u16());
        }
    }
    assert_eq!(statuses[..3], [200, 200, 200], "the burst passes");
    assert!(statuses[3..].contains(&429), "then the client is limited: {statuses:?}");
    api.stop().await;
}

/// Behind a trusted load balancer every request comes from its address: the
/// limit follows the client `X-Forwarded-For` names, and only for proxies in
/// `--trusted-proxies`; from anyone else the header changes nothing.
#[tokio::test]
async fn the_rate_limit_tells_clients_apart_behind_trusted_proxies_only() {
    let redis = testkit::redis_url();
    let b = board("proxied");
    seed(&router(&redis, "single").await, &b, 10).await;
    let limited = |trusted: bool| {
        move |c: &mut api::Config| {
            c.rate_limit_per_second = 1;
            c.rate_limit_burst = 2;
            if trusted {
                c.trusted_proxies = vec!["127.0.0.0/8".into()];
            }
        }
    };
    let status = |api: &TestApi, client: &str| {
        let request =
            api.client.get(format!("{}/v1/boards/{b}/top", api.base)).header("x-forwarded-for", client.to_string());
        async move { request.send().await.expect("request").status().as_u16() }
    };
    let behind_lb = TestApi::start(&redis, "single", limited(true)).await;
    let mut seen = Vec::new();
    for client in ["198.51.100.1", "198.51.100.1", "198.51.100.1", "198.51.100.2", "6.6.6.6, 198.51.100.3"] {
        seen.push(status(&behind_lb, client).await);
    }
    assert_eq!(seen, [200, 200, 429, 200, 200], "one bucket per forwarded client; a forged left part is ignored");
    behind_lb.stop().await;

    let exposed = TestApi::start(&redis, "single", limited(false)).await;
    let mut seen = Vec::new();
    for client in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        seen.push(status(&exposed, client).await);
    }
    assert_eq!(seen, [200, 200, 429], "an untrusted peer cannot pick its bucket with the header");
    exposed.stop().await;
}
