//! The admin routes: bearer tokens by hash, scopes, deletion, and the audit log.

use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use shard_router::audit;

use crate::helpers::{TestApi, board, router, seed};

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

async fn call(api: &TestApi, method: reqwest::Method, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = api.client.request(method, format!("{}{path}", api.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request")
}

#[tokio::test]
async fn tokens_scopes_deletion_and_the_audit_log() {
    let redis = testkit::redis_url();
    let b = board("admin");
    let writer = router(&redis, "single").await;
    seed(&writer, &b, 30).await;
    // Names unique to this run: the audit stream is shared with other runs.
    let (ops, viewer) = (testkit::unique("ops"), testkit::unique("viewer"));
    let (ops_token, old_token, viewer_token) = ("ops-secret-1", "ops-secret-0", "viewer-secret");
    let api = TestApi::start(&redis, "single", |c| {
        c.admin_tokens = vec![
            format!("{ops}:{}:admin", hash(ops_token)),
            format!("{ops}:{}:admin", hash(old_token)), // rotation: the old token stays valid meanwhile
            format!("{viewer}:{}:metrics", hash(viewer_token)),
        ];
    })
    .await;
    let get = reqwest::Method::GET;

    let anonymous = call(&api, get.clone(), "/v1/admin/boards", None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    let body: serde_json::Value = anonymous.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(call(&api, get.clone(), "/v1/admin/boards", Some("guess")).await.status(), StatusCode::UNAUTHORIZED);
    let forbidden = call(&api, get.clone(), "/v1/admin/boards", Some(viewer_token)).await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);

    for token in [ops_token, old_token] {
        let listed = call(&api, get.clone(), "/v1/admin/boards", Some(token)).await;
        assert_eq!(listed.status(), StatusCode::OK);
        let listed: serde_json::Value = listed.json().await.expect("json");
        let line = listed["boards"].as_array().expect("boards").iter().find(|l| l["board"] == b.as_str()).cloned();
        assert_eq!(line.expect("listed")["total"], 30);
    }

    let path = format!("/v1/admin/boards/{b}");
    assert_eq!(call(&api, reqwest::Method::DELETE, &path, Some(viewer_token)).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(writer.total(&b).await.expect("total"), 30, "a refused delete deletes nothing");
    assert_eq!(call(&api, reqwest::Method::DELETE, &path, Some(ops_token)).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(writer.total(&b).await.expect("total"), 0);
    assert_eq!(api.get(&format!("/v1/boards/{b}/top")).await.status(), StatusCode::NOT_FOUND, "the cache forgot it");
    assert_eq!(call(&api, reqwest::Method::DELETE, &path, Some(ops_token)).await.status(), StatusCode::NOT_FOUND);

    let entries = audit::recent(writer.store(), 1000).await.expect("audit");
    let mine: Vec<(String, String, String, String)> = entries
        .iter()
        .filter(|r| {
            r.entry.who == ops || r.entry.who == viewer || (r.entry.who == "anonymous" && r.entry.target.is_empty())
        })
        .filter(|r| r.entry.who != "anonymous" || r.entry.action == "list_boards")
        .map(|r| (r.entry.who.clone(), r.entry.action.clone(), r.entry.target.clone(), r.entry.result.clone()))
        .rev()
        .collect();
    let t = b.to_string();
    let expected_tail = [
        (viewer.clone(), "list_boards".to_string(), String::new(), "403".to_string()),
        (ops.clone(), "list_boards".into(), String::new(), "ok".into()),
        (ops.clone(), "list_boards".into(), String::new(), "ok".into()),
        (viewer.clone(), "delete_board".into(), t.clone(), "403".into()),
        (ops.clone(), "delete_board".into(), t.clone(), "ok".into()),
        (ops.clone(), "delete_board".into(), t, "404".into()),
    ];
    assert!(mine.ends_with(&expected_tail), "audit log: {mine:?}");
    assert!(
        entries
            .iter()
            .any(|r| r.entry.who == "anonymous" && r.entry.action == "list_boards" && r.entry.result == "401"),
        "refused anonymous requests are audited"
    );
    let everything = format!("{entries:?}");
    for secret in [ops_token, old_token, viewer_token] {
        assert!(!everything.contains(secret), "a token reached the audit log");
    }
    api.stop().await;
}
