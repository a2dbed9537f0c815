//! Least privilege: the api reads every route as the read-only `lb-api` Redis user, writes the
//! admin routes' changes as `lb-admin`, and `lb-api` itself can write nothing
//! (users of `scripts/lib/redis-acl.sh`, loaded by `scripts/infra.sh up`).

use leaderboard_store::{RedisTarget, Store, StoreOptions};
use reqwest::StatusCode;

use crate::admin::{hash, put};
use crate::helpers::{TestApi, board, router, seed};

#[tokio::test]
async fn the_api_user_serves_every_read_and_can_write_nothing() {
    let (redis, api_user, admin_user) =
        (testkit::redis_url(), testkit::redis_user_url("api"), testkit::redis_user_url("admin"));
    let (b, doomed) = (board("acl"), board("acl-doomed"));
    let writer = router(&redis, "hash:2").await;
    seed(&writer, &b, 50).await;
    seed(&writer, &doomed, 5).await;
    let ops = testkit::unique("acl-ops");
    crate::helpers::ensure_epoch(&admin_user).await; // lb-api may read it, not create it
    let api = TestApi::start(&api_user, "hash:2", |c| {
        c.admin_tokens = vec![format!("{ops}:{}:admin", hash("ops"))];
        c.admin_redis = Some(admin_user.clone());
    })
    .await;
    for path in [
        format!("/v1/boards/{b}/top"),
        format!("/v1/boards/{b}/top?offset=20&limit=5"),
        format!("/v1/boards/{b}/players/p0007"),
        format!("/v1/boards/{b}/players/p0007/around"),
        format!("/v1/boards/{b}"),
        "/readyz".to_string(),
    ] {
        let (status, body) = api.json(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let lookup = api
        .client
        .post(format!("{}/v1/boards/{b}/players:lookup", api.base))
        .json(&serde_json::json!({"players": ["p0001", "p0002"]}))
        .send()
        .await
        .expect("lookup");
    assert_eq!(lookup.status(), StatusCode::OK);
    // The admin routes write as lb-admin.
    let daily = r#"{"reset":{"every":"day"},"max_score":100000}"#;
    let (status, body) = put(&api, b.as_str(), Some("ops"), daily).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, seasons) = api.json(&format!("/v1/boards/{b}/seasons")).await;
    assert_eq!(status, StatusCode::OK, "the seasons route reads as lb-api: {seasons}");
    let deleted = api
        .client
        .delete(format!("{}/v1/admin/boards/{doomed}", api.base))
        .bearer_auth("ops")
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    api.stop().await;

    // lb-api itself: every write, script write, enumeration and admin command is refused.
    let reader = Store::connect(&RedisTarget::parse(&api_user).expect("url"), StoreOptions::default())
        .await
        .expect("connect as lb-api");
    let key = format!("lb:{{{b}:h2.0}}:z");
    let write_script = "return redis.call('ZADD', KEYS[1], 1, 'intruder')";
    let refused: Vec<redis::Cmd> = vec![
        redis::cmd("ZADD").arg(&key).arg(1).arg("intruder").clone(),
        redis::cmd("SET").arg(format!("lb:{{{b}}}:layout")).arg("single").clone(),
        redis::cmd("UNLINK").arg(&key).clone(),
        redis::cmd("EVAL").arg(write_script).arg(1).arg(&key).clone(),
        redis::cmd("EVAL_RO").arg(write_script).arg(1).arg(&key).clone(),
        redis::cmd("XADD").arg("lb:audit").arg("*").arg("who").arg("intruder").clone(),
        redis::cmd("FLUSHALL").clone(),
        redis::cmd("KEYS").arg("*").clone(),
        redis::cmd("SCAN").arg(0).clone(),
        redis::cmd("CONFIG").arg("GET").arg("*").clone(),
        redis::cmd("GET").arg("not-ours").clone(),
    ];
    for cmd in &refused {
        let result = reader.query::<redis::Value>(cmd).await;
        let text = format!("{result:?}").to_lowercase();
        // NOPERM from the ACL; a read-only script refuses the write itself.
        let refused =
            ["noperm", "no permissions", "can't run this command", "read-only"].iter().any(|m| text.contains(m));
        assert!(result.is_err() && refused, "{cmd:?}: {text}");
    }
    let total: u64 = reader.query(redis::cmd("ZCARD").arg(&key)).await.expect("a read is allowed");
    assert!(total > 0);
    assert_eq!(writer.total(&b).await.expect("total"), 50, "nothing was written");
}
