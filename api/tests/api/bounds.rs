//! Nothing a client sends grows the api without a stated bound: methods are
//! metric labels from a closed set, and refused admin requests can neither
//! push the audit log's real entries out nor be recorded faster than a stated rate.

use leaderboard_store::marker::audit::{self, Log};
use reqwest::{Method, StatusCode};
use testkit::PrivateRedis;

use crate::admin::hash;
use crate::helpers::{TestApi, board, router, seed};

/// As the review saw it: unique, long, made-up methods, no token. Each was a
/// new metric series before (the raw method was a label).
#[tokio::test]
async fn made_up_methods_create_no_metric_series() {
    let redis = testkit::redis_url();
    let api = TestApi::start(&redis, "single", |_| {}).await;
    let made_up: Vec<String> = (0..50).map(|i| format!("X{i:03}{}", "M".repeat(2_000))).collect();
    for method in &made_up {
        let method = Method::from_bytes(method.as_bytes()).expect("a token");
        let status = api
            .client
            .request(method, format!("{}/v1/boards/global/top", api.base))
            .send()
            .await
            .expect("sent")
            .status();
        assert!(status.is_client_error(), "{status}");
    }
    let metrics = api.get("/metrics").await.text().await.expect("metrics");
    assert!(!metrics.contains("MMMMMMMM"), "a made-up method became a label");
    assert!(metrics.contains("method=\"other\""), "made-up methods are counted under `other`");
    assert!(metrics.len() < 200_000, "/metrics is {} bytes", metrics.len());
    api.stop().await;
}

/// One real admin action, then a flood of anonymous admin requests (each
/// refused): the real entry stays, alone, in the log of actions, and the log of
/// refusals records at most the stated rate (the rest are counted).
#[tokio::test]
async fn anonymous_requests_cannot_push_real_entries_out_of_the_audit_log() {
    // A Redis of its own: the test counts every entry of both logs.
    let redis = PrivateRedis::start();
    let url = redis.url();
    let b = board("audit-flood");
    seed(&router(&url, "single").await, &b, 5).await;
    let ops = testkit::unique("ops");
    let api =
        TestApi::start(&url, "single", |c| c.admin_tokens = vec![format!("{ops}:{}:admin", hash("ops-secret"))]).await;
    let deleted = api
        .client
        .delete(format!("{}/v1/admin/boards/{b}", api.base))
        .bearer_auth("ops-secret")
        .send()
        .await
        .expect("sent");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);

    let flood: u64 = 400;
    let started = std::time::Instant::now();
    let requests = (0..flood).map(|_| api.client.get(format!("{}/v1/admin/boards", api.base)).send());
    for r in futures::future::join_all(requests).await {
        assert_eq!(r.expect("sent").status(), StatusCode::UNAUTHORIZED);
    }
    let seconds = started.elapsed().as_secs_f64();

    let store = router(&url, "single").await.store().clone();
    let actions = audit::recent_in(&store, Log::Actions, 1_000).await.expect("actions");
    let kept: Vec<(&str, &str, &str)> =
        actions.iter().map(|r| (r.entry.who.as_str(), r.entry.action.as_str(), r.entry.result.as_str())).collect();
    assert_eq!(kept, [(ops.as_str(), "delete_board", "ok")], "the log of actions holds the real entry alone");
    let refused = audit::recent_in(&store, Log::Refused, 1_000).await.expect("refusals");
    let per_second = f64::from(api::admin::REFUSALS_RECORDED_PER_SECOND);
    let bound = (per_second * (1.0 + seconds)).ceil() as usize;
    assert!(!refused.is_empty() && refused.len() <= bound, "{} refusals recorded in {seconds:.1}s", refused.len());
    assert!(refused.iter().all(|r| r.entry.who == "anonymous" && r.entry.result == "401"));
    let metrics = api.get("/metrics").await.text().await.expect("metrics");
    let counted = |recorded: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with("api_admin_refusals_total") && l.contains(&format!("recorded=\"{recorded}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(counted("true") + counted("false"), flood, "every refusal is counted");
    api.stop().await;
}
