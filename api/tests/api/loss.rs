//! A store that lost its data is not served as the truth: the api notices
//! the epoch vanish, answers 503 `store_lost` (cached pages included) and
//! fails `/readyz` until a recovery's epoch appears.

use leaderboard_store::marker::epoch::{self, Origin};
use reqwest::StatusCode;

use crate::helpers::{TestApi, board, eventually, router, seed};

#[tokio::test]
async fn a_wiped_store_is_not_served_until_it_is_recovered() {
    let redis = testkit::PrivateRedis::start();
    let url = redis.url();
    let writer = router(&url, "hash:2").await;
    let b = board("lost");
    seed(&writer, &b, 40).await;
    let api = TestApi::start(&url, "hash:2", |c| c.loss_check = std::time::Duration::from_millis(50)).await;
    let top = format!("/v1/boards/{b}/top");
    let (status, page) = api.json(&top).await;
    assert_eq!((status, page["total"].as_u64()), (StatusCode::OK, Some(40)), "{page}");

    let _: () = writer.store().query(&redis::cmd("FLUSHALL")).await.expect("FLUSHALL");
    eventually("readiness fails on the wiped store", || async {
        let (status, body) = api.json("/readyz").await;
        status == StatusCode::SERVICE_UNAVAILABLE
            && body["store_intact"] == false
            && body["redis"] == true
            && body["reason"] == "store_lost"
    })
    .await;
    for path in [top.clone(), format!("/v1/boards/{b}/players/p0001"), format!("/v1/boards/{b}")] {
        let (status, body) = api.json(&path).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert_eq!(body["error"]["code"], "store_lost", "{path}: the cached page is not served either");
    }

    // Another deployment's first worker would make a `new` epoch: that is not a recovery.
    epoch::create_new(writer.store()).await.expect("new epoch");
    // A restore loads the boards, then installs its epoch.
    seed(&writer, &b, 7).await;
    epoch::install(writer.store(), Origin::Restore).await.expect("restore epoch");
    eventually("the recovered store is served, not the page cached before the loss", || async {
        let (status, page) = api.json(&top).await;
        status == StatusCode::OK && page["total"].as_u64() == Some(7)
    })
    .await;
    assert_eq!(api.json("/readyz").await.0, StatusCode::OK);
    api.stop().await;
}
