//! The admin routes: bearer tokens by hash, scopes, deletion, and the audit log.

use leaderboard_store::marker::audit;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

use crate::helpers::{TestApi, board, router, seed};

pub(crate) fn hash(token: &str) -> String {
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
    let mine = |entries: &[audit::Recorded]| -> Vec<(String, String, String, String)> {
        entries
            .iter()
            .filter(|r| r.entry.who == ops || r.entry.who == viewer)
            .map(|r| (r.entry.who.clone(), r.entry.action.clone(), r.entry.target.clone(), r.entry.result.clone()))
            .rev()
            .collect()
    };
    let t = b.to_string();
    let expected_tail = [
        (ops.clone(), "list_boards".to_string(), String::new(), "ok".to_string()),
        (ops.clone(), "list_boards".into(), String::new(), "ok".into()),
        (ops.clone(), "delete_board".into(), t.clone(), "ok".into()),
        (ops.clone(), "delete_board".into(), t.clone(), "404".into()),
    ];
    assert!(mine(&entries).ends_with(&expected_tail), "audit log: {:?}", mine(&entries));
    // Refused for their credentials: in the log of refusals, never among the actions.
    let refused = audit::recent_in(writer.store(), audit::Log::Refused, 1000).await.expect("refusals");
    let refused_tail = [
        (viewer.clone(), "list_boards".to_string(), String::new(), "403".to_string()),
        (viewer.clone(), "delete_board".into(), t, "403".into()),
    ];
    assert!(mine(&refused).ends_with(&refused_tail), "refusals: {:?}", mine(&refused));
    assert!(
        refused
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

pub(crate) async fn put(
    api: &TestApi,
    board: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let mut request = api
        .client
        .put(format!("{}/v1/admin/boards/{board}", api.base))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(serde_json::Value::Null))
}

/// `PUT /v1/admin/boards/{board}`: refused without the scope, creates a board
/// with its rules, which the read routes then follow (an `asc`, `earliest`
/// board ranks the lowest, first-reached score first), changes bounds, refuses
/// to change order or ties, and every call is in the audit log.
#[tokio::test]
#[allow(clippy::too_many_lines, reason = "one story: refused, created, read, narrowed, fixed, bad bodies, audited")]
async fn rules_are_set_applied_fixed_and_audited() {
    let redis = testkit::redis_url();
    let b = board("rules");
    let ops = testkit::unique("rules-ops");
    let viewer = testkit::unique("rules-viewer");
    let api = TestApi::start(&redis, "hash:3", |c| {
        c.admin_tokens = vec![format!("{ops}:{}:admin", hash("ops")), format!("{viewer}:{}:read", hash("viewer"))];
    })
    .await;
    let trial = r#"{"order":"asc","ties":"earliest","min_score":1,"max_score":600000}"#;
    assert_eq!(put(&api, b.as_str(), None, trial).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(put(&api, b.as_str(), None, "not json").await.0, StatusCode::UNAUTHORIZED, "the token comes first");
    assert_eq!(put(&api, b.as_str(), Some("viewer"), trial).await.0, StatusCode::FORBIDDEN);
    let writer = router(&redis, "hash:3").await;
    assert!(
        leaderboard_store::layout::record::recorded(writer.store(), &b).await.expect("record").is_none(),
        "refused: nothing made"
    );

    let (status, created) = put(&api, b.as_str(), Some("ops"), trial).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["layout"], "hash:3");
    assert_eq!(created["rules"]["order"], "asc");
    assert_eq!(created["rules"]["ties"], "earliest");
    assert_eq!(created["rules"]["reset"], serde_json::Value::Null);

    // Lap times: lower is better, and a tie goes to whoever set it first.
    let lap = |p: &str, score: u64, time_ms: u64| leaderboard_semantics::ScoreUpdate {
        board: b.clone(),
        player: leaderboard_contract::PlayerId::new(p).expect("player"),
        score,
        time_ms,
        meta: None,
        source: None,
    };
    writer
        .apply(&[lap("slow", 90_000, 1), lap("late", 61_000, 50), lap("first", 61_000, 20), lap("best", 59_500, 99)])
        .await
        .expect("apply");
    let (status, top) = api.json(&format!("/v1/boards/{b}/top?limit=10")).await;
    assert_eq!(status, StatusCode::OK);
    let order: Vec<(String, u64)> = top["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| (e["player"].as_str().expect("player").to_string(), e["rank"].as_u64().expect("rank")))
        .collect();
    let expected: Vec<(String, u64)> =
        [("best", 1), ("first", 2), ("late", 3), ("slow", 4)].iter().map(|(p, r)| (p.to_string(), *r)).collect();
    assert_eq!(order, expected);
    let (_, standing) = api.json(&format!("/v1/boards/{b}/players/late")).await;
    assert_eq!((standing["rank"].as_u64(), standing["score"].as_u64()), (Some(3), Some(61_000)));
    let (_, stats) = api.json(&format!("/v1/boards/{b}")).await;
    assert_eq!(stats["rules"]["ties"], "earliest", "the board route shows the rules");

    let (status, narrowed) =
        put(&api, b.as_str(), Some("ops"), r#"{"order":"asc","ties":"earliest","max_score":100000}"#).await;
    assert_eq!(status, StatusCode::OK, "{narrowed}");
    assert_eq!(
        (narrowed["rules"]["min_score"].as_u64(), narrowed["rules"]["max_score"].as_u64()),
        (Some(0), Some(100_000))
    );
    let stored =
        leaderboard_store::layout::record::recorded(writer.store(), &b).await.expect("record").expect("exists");
    assert_eq!(stored.rules.max_score, 100_000, "stored; writers see it within a second");
    let (status, fixed) = put(&api, b.as_str(), Some("ops"), r#"{"order":"desc","ties":"earliest"}"#).await;
    assert_eq!((status, fixed["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("rules_fixed")));
    for (bad, code) in [
        (r#"{"min_score":5,"max_score":4}"#, "invalid_rules"),
        (r#"{"max_score":9007199254740992}"#, "invalid_rules"),
        (r#"{"order":"sideways"}"#, "invalid_body"),
        (r#"{"colour":"red"}"#, "invalid_body"),
        (r#"{"reset":{"every":"fortnight"}}"#, "invalid_rules"),
        (r#"{"reset":{"every":"hour","weekday":"mon"}}"#, "invalid_rules"),
        (r#"{"reset":{"every":"day","utc_offset":"+15:00"}}"#, "invalid_rules"),
        (r#"{"reset":{"every":"week","weekday":"someday"}}"#, "invalid_rules"),
        (r#"{"reset":{"every":"day","at":"noon"}}"#, "invalid_body"),
        (r#"{"late_grace":"soon"}"#, "invalid_rules"),
        (r#"{"late_grace":"2d"}"#, "invalid_rules"),
        (r#"{"keep_seasons":0}"#, "invalid_rules"),
        ("not json", "invalid_body"),
        // A struct read from an array, positionally: found by schemathesis.
        ("[null, null]", "invalid_body"),
    ] {
        let (status, body) = put(&api, b.as_str(), Some("ops"), bad).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{bad}: {body}");
    }
    let (status, _) = put(&api, b.as_str(), Some("ops"), &format!("{{\"late_grace\":\"{}\"}}", "x".repeat(5000))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "bodies over 4 KiB are refused");
    let (status, listed) = api_list(&api, "ops").await;
    assert_eq!(status, StatusCode::OK);
    let line = listed["boards"].as_array().expect("boards").iter().find(|l| l["board"] == b.as_str()).cloned();
    assert_eq!(line.expect("listed")["rules"]["max_score"], 100_000, "the listing shows each board's rules");

    let entries = audit::recent(writer.store(), 1000).await.expect("audit");
    let mine: Vec<(String, String)> = entries
        .iter()
        .filter(|r| (r.entry.who == ops || r.entry.who == viewer) && r.entry.action == "set_rules")
        .map(|r| (r.entry.who.clone(), r.entry.result.clone()))
        .rev()
        .collect();
    let results: Vec<&str> = mine.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(results.len(), 3 + 15, "created, narrowed, fixed, 15 bad bodies: {mine:?}");
    assert!(results[0].starts_with("ok: order=asc ties=earliest"), "{mine:?}");
    assert_eq!(results[2], "409");
    assert!(results[3..].iter().all(|r| *r == "400"), "{mine:?}");
    // The viewer's refusal (no admin scope) is in the log of refusals.
    let refused = audit::recent_in(writer.store(), audit::Log::Refused, 1000).await.expect("refusals");
    assert!(
        refused.iter().any(|r| r.entry.who == viewer && r.entry.action == "set_rules" && r.entry.result == "403"),
        "{refused:?}"
    );
    api.stop().await;
}

async fn api_list(api: &TestApi, token: &str) -> (StatusCode, serde_json::Value) {
    let response = call(api, reqwest::Method::GET, "/v1/admin/boards", Some(token)).await;
    let status = response.status();
    (status, response.json().await.expect("json"))
}

/// `operator` and `dedup_window` through the admin API: a `sum` board is created and read as
/// sums, its operator is fixed, a window over 7 days is refused; a `last` board on `range`
/// shows the latest score, lower than the one before.
#[tokio::test]
async fn operator_boards_are_created_fixed_and_ranged() {
    let redis = testkit::redis_url();
    let ops = testkit::unique("operator-ops");
    let tokens = |c: &mut api::Config| c.admin_tokens = vec![format!("{ops}:{}:admin", hash("ops"))];
    let api = TestApi::start(&redis, "hash:3", tokens).await;
    let b = board("points");
    let (status, created) = put(&api, b.as_str(), Some("ops"), r#"{"operator":"sum","dedup_window":"2h"}"#).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(
        (created["rules"]["operator"].as_str(), created["rules"]["dedup_window"].as_str()),
        (Some("sum"), Some("2h"))
    );
    let writer = router(&redis, "hash:3").await;
    let points = |offset: i64, score: u64| leaderboard_semantics::ScoreUpdate {
        board: b.clone(),
        player: leaderboard_contract::PlayerId::new("ada").expect("player"),
        score,
        time_ms: 0,
        meta: None,
        source: Some(leaderboard_semantics::Source {
            topic: std::sync::Arc::from("scores"),
            partition: 0,
            offset,
            at_ms: 0,
            id: None,
        }),
    };
    writer.apply(&[points(0, 40), points(1, 2)]).await.expect("apply");
    let (_, standing) = api.json(&format!("/v1/boards/{b}/players/ada")).await;
    assert_eq!(standing["score"].as_u64(), Some(42), "events add up: {standing}");
    for (body, status, code) in [
        (r#"{"operator":"best"}"#, StatusCode::CONFLICT, "rules_fixed"),
        (r#"{"operator":"sum","dedup_window":"8d"}"#, StatusCode::BAD_REQUEST, "invalid_rules"),
        (r#"{"operator":"max"}"#, StatusCode::BAD_REQUEST, "invalid_body"),
    ] {
        let (got, answer) = put(&api, b.as_str(), Some("ops"), body).await;
        assert_eq!((got, answer["error"]["code"].as_str()), (status, Some(code)), "{body}: {answer}");
    }
    api.stop().await;
    let ranged = TestApi::start(&redis, "range:100,200", tokens).await;
    let b = board("ranged");
    let (status, created) = put(&ranged, b.as_str(), Some("ops"), r#"{"operator":"last"}"#).await;
    assert_eq!((status, created["rules"]["operator"].as_str()), (StatusCode::OK, Some("last")), "{created}");
    let writer = router(&redis, "range:100,200").await;
    let last =
        |offset: i64, score: u64| leaderboard_semantics::ScoreUpdate { board: b.clone(), ..points(offset, score) };
    writer.apply(&[last(0, 150), last(1, 50)]).await.expect("apply");
    let (_, standing) = ranged.json(&format!("/v1/boards/{b}/players/ada")).await;
    assert_eq!(standing["score"].as_u64(), Some(50), "the latest score, moved down a shard: {standing}");
    ranged.stop().await;
}
