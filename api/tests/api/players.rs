//! The admin routes about players: erase, ban, lift a ban, where a player
//! stands; every answer after an erasure leaves the player out, on the api
//! that took the call at once and on another api by the registry's version.

use std::time::Duration;

use leaderboard_contract::PlayerId;
use leaderboard_semantics::ScoreUpdate;
use leaderboard_store::marker::audit;
use reqwest::{Method, StatusCode};

use crate::admin::hash;
use crate::helpers::{TestApi, board, router, seed};

const TOKEN: &str = "players-secret";

/// The admin timeout of these tests' apis (see [`api`]), and their request timeout.
const ADMIN_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// An api whose top pages are read once and never refreshed (an hour): only
/// dropping them can take a player off a cached page. Its admin requests time
/// out late, so the calls answer what the change did: an erasure or a ban walks
/// every board of the store, and the tests' store is shared by every test run
/// (hundreds of boards). Its reads time out late too (held lookups).
async fn api(redis: &str, operator: Option<&str>) -> TestApi {
    TestApi::start(redis, "hash:2", |c| {
        c.top_refresh = Duration::from_secs(3600);
        c.request_timeout = ADMIN_CALL_TIMEOUT;
        c.admin_timeout = ADMIN_CALL_TIMEOUT;
        if let Some(operator) = operator {
            c.admin_tokens = vec![format!("{operator}:{}:admin", hash(TOKEN))];
        }
    })
    .await
}

async fn call(
    api: &TestApi,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let mut request = api.client.request(method, format!("{}{path}", api.base)).bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(serde_json::Value::Null))
}

fn on_page(top: &serde_json::Value, player: &PlayerId) -> bool {
    top["entries"].as_array().expect("entries").iter().any(|e| e["player"] == player.as_str())
}

#[tokio::test]
async fn an_erased_player_leaves_every_answer_at_once_and_the_registry_remembers() {
    let redis = testkit::redis_url();
    let b = board("erase");
    let writer = router(&redis, "hash:2").await;
    seed(&writer, &b, 30).await;
    // Players of this test only: an erasure reaches every board of the store.
    let gone = PlayerId::new(testkit::unique("gone")).expect("player");
    let season_player = PlayerId::new(testkit::unique("stays")).expect("player");
    let best = |player: &PlayerId, score| ScoreUpdate {
        board: b.clone(),
        player: player.clone(),
        score,
        time_ms: 0,
        meta: None,
        source: None,
    };
    writer.apply(&[best(&gone, 10_000), best(&season_player, 9_000)]).await.expect("write");
    let operator = testkit::unique("privacy");
    let (taking, other) = (api(&redis, Some(&operator)).await, api(&redis, None).await);
    let top = format!("/v1/boards/{b}/top");
    for api in [&taking, &other] {
        let (status, page) = api.json(&top).await;
        assert_eq!(status, StatusCode::OK);
        assert!(on_page(&page, &gone), "cached with the player first: {page}");
    }

    let (status, erased) = call(&taking, Method::DELETE, &format!("/v1/admin/players/{gone}"), None).await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    assert!(erased["boards"].as_array().expect("boards").iter().any(|x| x == b.as_str()), "{erased}");
    assert!(erased["erased_at"].is_string(), "{erased}");
    let (_, page) = taking.json(&top).await;
    assert!(!on_page(&page, &gone), "the api that took the call answers without the player at once: {page}");
    assert!(on_page(&page, &season_player), "{page}");
    assert_eq!(page["total"], 31);
    let (status, _) = taking.json(&format!("/v1/boards/{b}/players/{gone}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The other api drops its page when it reads the registry's version (every 100 ms here).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, page) = other.json(&top).await;
        if !on_page(&page, &gone) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the other api never dropped its page: {page}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (status, standing) = call(&taking, Method::GET, &format!("/v1/admin/players/{gone}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(standing["erased_at"].is_string() && standing["boards"] == serde_json::json!([]), "{standing}");
    let (status, standing) = call(&taking, Method::GET, &format!("/v1/admin/players/{season_player}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(standing["boards"][0]["score"], 9_000, "{standing}");
    assert!(standing.get("erased_at").is_none(), "{standing}");

    let entries = audit::recent(writer.store(), 1000).await.expect("audit");
    let mine: Vec<(String, String)> = entries
        .iter()
        .filter(|r| r.entry.who == operator)
        .map(|r| (r.entry.action.clone(), r.entry.target.clone()))
        .collect();
    assert!(mine.contains(&("erase_player".into(), gone.to_string())), "{mine:?}");
    taking.stop().await;
    other.stop().await;
}

/// A player lookup read before an erasure is still in flight (held once it has read Redis)
/// when the erasure returns; a lookup of the same player asked after that must not share it,
/// or it is answered the erased score.
#[tokio::test]
async fn a_lookup_asked_after_an_erasure_returned_never_shares_one_read_before_it() {
    let redis = testkit::redis_url();
    let b = board("erase-flight");
    let writer = router(&redis, "hash:2").await;
    seed(&writer, &b, 5).await;
    let gone = PlayerId::new(testkit::unique("gone")).expect("player");
    writer
        .apply(&[ScoreUpdate {
            board: b.clone(),
            player: gone.clone(),
            score: 10_000,
            time_ms: 0,
            meta: None,
            source: None,
        }])
        .await
        .expect("write");
    // Requests time out late (see `api`): besides, a held lookup cut short would hand its flight
    // to a request that reads again, after the erasure.
    let api = api(&redis, Some(&testkit::unique("privacy"))).await;
    let path = format!("{}/v1/boards/{b}/players/{gone}", api.base);
    let get = |client: reqwest::Client, path: String| async move {
        let response = client.get(path).send().await.expect("request");
        let status = response.status();
        (status, response.json::<serde_json::Value>().await.unwrap_or(serde_json::Value::Null))
    };

    let hold = api::testing::TestHold::lookup(&b, &gone);
    let before = tokio::spawn(get(api.client.clone(), path.clone()));
    tokio::time::timeout(Duration::from_secs(10), hold.reached()).await.expect("the first lookup read and is held");
    let (status, erased) = call(&api, Method::DELETE, &format!("/v1/admin/players/{gone}"), None).await;
    assert_eq!(status, StatusCode::OK, "{erased}");

    let lookups = &api.state().lookups;
    let joined = lookups.joined();
    let after = tokio::spawn(get(api.client.clone(), path));
    // Released once the later request has either shared the held lookup or answered without it.
    crate::helpers::eventually("the later lookup shares the held one or answers", || {
        let done = after.is_finished() || lookups.joined() > joined;
        async move { done }
    })
    .await;
    hold.release();
    let (status, answer) = after.await.expect("later lookup");
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("player_not_found")),
        "asked after the erasure returned, answered: {answer}"
    );
    assert_eq!(lookups.joined(), joined, "it shared no lookup begun before the erasure");
    // The first was asked before the erasure returned: its answer may show the player.
    assert_eq!(before.await.expect("first lookup").0, StatusCode::OK);
    api.stop().await;
}

#[tokio::test]
async fn a_ban_takes_a_player_off_its_boards_and_can_be_lifted() {
    let redis = testkit::redis_url();
    let (b, elsewhere) = (board("ban"), board("ban-other"));
    let writer = router(&redis, "hash:2").await;
    seed(&writer, &b, 20).await;
    let cheat = PlayerId::new(testkit::unique("cheat")).expect("player");
    let best = |board: &leaderboard_contract::BoardId| ScoreUpdate {
        board: board.clone(),
        player: cheat.clone(),
        score: 99_999,
        time_ms: 0,
        meta: None,
        source: None,
    };
    writer.apply(&[best(&b), best(&elsewhere)]).await.expect("write");
    let api = api(&redis, Some(&testkit::unique("moderator"))).await;
    let path = format!("/v1/admin/players/{cheat}/ban");

    for (body, why) in [
        (serde_json::json!({"boards": "some"}), "neither a list nor \"all\""),
        (serde_json::json!({"boards": []}), "no board"),
        (serde_json::json!({"boards": [format!("{b}@2026-12-07")]}), "a season, not a board"),
        (serde_json::json!({"boards": "all", "reason": "x".repeat(257)}), "a reason too long"),
        (serde_json::json!({"boards": "all", "extra": 1}), "an unknown field"),
    ] {
        let (status, error) = call(&api, Method::PUT, &path, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {error}");
    }
    assert!(writer.standing(&b, &cheat).await.expect("standing").is_some(), "a refused ban changes nothing");

    let (status, banned) =
        call(&api, Method::PUT, &path, Some(serde_json::json!({"boards": [b.as_str()], "reason": "aimbot"}))).await;
    assert_eq!(status, StatusCode::OK, "{banned}");
    assert_eq!(banned["ban"]["reason"], "aimbot");
    assert_eq!(writer.standing(&b, &cheat).await.expect("standing"), None);
    assert!(writer.standing(&elsewhere, &cheat).await.expect("standing").is_some(), "other boards keep the player");
    let (_, standing) = call(&api, Method::GET, &format!("/v1/admin/players/{cheat}"), None).await;
    assert_eq!(standing["ban"]["boards"], serde_json::json!([b.as_str()]), "{standing}");

    assert_eq!(call(&api, Method::DELETE, &path, None).await.0, StatusCode::NO_CONTENT);
    let (status, error) = call(&api, Method::DELETE, &path, None).await;
    assert_eq!((status, error["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_banned")));
    api.stop().await;
}

/// Every change is in the players log before the call answers (its own topic
/// here): an erasure with its time, a ban, and a lifted ban as no entry.
#[tokio::test]
async fn every_change_is_kept_in_the_players_log_before_it_is_answered() {
    let redis = testkit::redis_url();
    let topic = testkit::unique("players");
    let api = TestApi::start(&redis, "hash:2", |c| {
        c.admin_tokens = vec![format!("{}:{}:admin", testkit::unique("operator"), hash(TOKEN))];
        c.admin_timeout = ADMIN_CALL_TIMEOUT;
        c.brokers = Some(testkit::brokers());
        c.players_log.players_topic.clone_from(&topic);
    })
    .await;
    let [gone, cheat, forgiven] = ["gone", "cheat", "forgiven"].map(|p| PlayerId::new(testkit::unique(p)).expect("id"));
    let (status, erased) = call(&api, Method::DELETE, &format!("/v1/admin/players/{gone}"), None).await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    let ban = serde_json::json!({"boards": "all", "reason": "aimbot"});
    for p in [&cheat, &forgiven] {
        let (status, body) = call(&api, Method::PUT, &format!("/v1/admin/players/{p}/ban"), Some(ban.clone())).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let lifted = call(&api, Method::DELETE, &format!("/v1/admin/players/{forgiven}/ban"), None).await;
    assert_eq!(lifted.0, StatusCode::NO_CONTENT);

    let log = leaderboard_players_log::PlayersLog::new(testkit::brokers(), Vec::new(), topic);
    let kept = log.read_all().await.expect("read").expect("the api created the topic");
    let named: Vec<&PlayerId> = kept.iter().map(|(p, _)| p).collect();
    let mut expected = vec![&cheat, &gone];
    expected.sort();
    assert_eq!(named, expected, "the lifted ban left no entry");
    let marks = |p: &PlayerId| kept.iter().find(|(q, _)| q == p).map(|(_, m)| m.clone()).expect("kept");
    let at = api::clock::rfc3339(api::season::time_of(marks(&gone).erased_at_ms.expect("kept")));
    assert_eq!(erased["erased_at"].as_str(), Some(at.as_str()), "the time the call answered with");
    assert_eq!(marks(&cheat).ban.map(|b| b.reason), Some("aimbot".into()));
    api.stop().await;
}

/// A players log that does not answer: the erasure is in effect, the call
/// answers 503 `players_log_unavailable` (retry), and the audit log says so.
#[tokio::test]
async fn a_change_the_players_log_does_not_take_is_answered_503_and_in_effect() {
    let redis = testkit::redis_url();
    let operator = testkit::unique("operator");
    let api = TestApi::start(&redis, "hash:2", |c| {
        c.admin_tokens = vec![format!("{operator}:{}:admin", hash(TOKEN))];
        c.admin_timeout = ADMIN_CALL_TIMEOUT;
        // A port nothing listens on.
        c.brokers = Some(format!("127.0.0.1:{}", testkit::free_port()));
        c.players_log.players_log_timeout = Duration::from_millis(500);
    })
    .await;
    let b = board("unkept");
    let writer = router(&redis, "hash:2").await;
    seed(&writer, &b, 5).await;
    let gone = PlayerId::new(testkit::unique("gone")).expect("id");
    writer
        .apply(&[ScoreUpdate {
            board: b.clone(),
            player: gone.clone(),
            score: 7,
            time_ms: 0,
            meta: None,
            source: None,
        }])
        .await
        .expect("write");
    let (status, error) = call(&api, Method::DELETE, &format!("/v1/admin/players/{gone}"), None).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("players_log_unavailable"))
    );
    assert_eq!(writer.standing(&b, &gone).await.expect("standing"), None, "the erasure is in effect");
    let entries = audit::recent(writer.store(), 200).await.expect("audit");
    let entry = entries.iter().find(|r| r.entry.who == operator && r.entry.target == gone.as_str()).expect("audited");
    assert_eq!(entry.entry.result, "503");
    api.stop().await;
}

/// Whether `player`'s erasure is finished: marked erased, not pending.
async fn erasure_finished(store: &leaderboard_store::Store, player: &PlayerId) -> bool {
    let status = leaderboard_store::marker::registry::status(store, player).await.expect("registry");
    status.erased_at_ms.is_some() && !status.erasure_unfinished
}

/// Whether the audit log holds `action` on `target` by `who` with `result`.
async fn audited(store: &leaderboard_store::Store, who: &str, action: &str, target: &str, result: &str) -> bool {
    audit::recent(store, 2000)
        .await
        .expect("audit")
        .iter()
        .any(|r| r.entry.who == who && r.entry.action == action && r.entry.target == target && r.entry.result == result)
}

/// An api whose admin requests time out after `admin_timeout`; top pages as [`api`].
async fn impatient_api(redis: &str, operator: &str, admin_timeout: Duration) -> TestApi {
    TestApi::start(redis, "hash:2", |c| {
        c.top_refresh = Duration::from_secs(3600);
        c.admin_timeout = admin_timeout;
        c.admin_tokens = vec![format!("{operator}:{}:admin", hash(TOKEN))];
    })
    .await
}

/// An erasure whose request is cut off by the admin timeout (held, in its task, until the
/// request has been answered 503 `timeout`) still finishes: the player leaves every board,
/// the registry says finished, the caches are dropped and the audit log has the entry.
#[tokio::test]
async fn an_erasure_cut_off_by_the_admin_timeout_still_finishes_everywhere() {
    let redis = testkit::redis_url();
    let b = board("erase-cut");
    let writer = router(&redis, "hash:2").await;
    seed(&writer, &b, 10).await;
    let gone = PlayerId::new(testkit::unique("gone")).expect("player");
    writer
        .apply(&[ScoreUpdate {
            board: b.clone(),
            player: gone.clone(),
            score: 10_000,
            time_ms: 0,
            meta: None,
            source: None,
        }])
        .await
        .expect("write");
    let operator = testkit::unique("privacy");
    let api = impatient_api(&redis, &operator, Duration::from_millis(200)).await;
    let top = format!("/v1/boards/{b}/top");
    let (_, page) = api.json(&top).await;
    assert!(on_page(&page, &gone), "cached with the player first: {page}");

    let hold = api::testing::TestHold::admin_change("erase_player", gone.as_str());
    let (status, error) = call(&api, Method::DELETE, &format!("/v1/admin/players/{gone}"), None).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("timeout")),
        "the request is cut off: {error}"
    );
    tokio::time::timeout(Duration::from_secs(10), hold.reached()).await.expect("the change started and is held");
    assert!(writer.standing(&b, &gone).await.expect("standing").is_some(), "held before it touched the store");
    hold.release();

    crate::helpers::eventually("the erasure finishes after its request was cut off", || async {
        writer.standing(&b, &gone).await.expect("standing").is_none()
            && erasure_finished(writer.store(), &gone).await
            && audited(writer.store(), &operator, "erase_player", gone.as_str(), "ok").await
    })
    .await;
    let (_, page) = api.json(&top).await;
    assert!(!on_page(&page, &gone), "the api's cached page was dropped: {page}");
    api.stop().await;
}

/// At most four changes run at once: a fifth is refused at once with 503 `overloaded` (and
/// audited), reads go on meanwhile, and the four finish though their requests were cut off.
#[tokio::test]
async fn at_most_four_admin_changes_run_at_once_and_the_rest_are_refused() {
    let redis = testkit::redis_url();
    let b = board("erase-busy");
    seed(&router(&redis, "hash:2").await, &b, 5).await;
    let writer = router(&redis, "hash:2").await;
    let operator = testkit::unique("privacy");
    let api = impatient_api(&redis, &operator, Duration::from_millis(300)).await;
    let players: Vec<PlayerId> =
        (0..=api::admin::OPERATIONS_AT_ONCE).map(|_| PlayerId::new(testkit::unique("busy")).expect("id")).collect();
    let (running, refused) = players.split_at(api::admin::OPERATIONS_AT_ONCE);
    let refused = &refused[0];
    let holds: Vec<_> =
        running.iter().map(|p| api::testing::TestHold::admin_change("erase_player", p.as_str())).collect();
    let paths: Vec<String> = running.iter().map(|p| format!("/v1/admin/players/{p}")).collect();
    let calls = paths.iter().map(|path| call(&api, Method::DELETE, path, None));
    for (status, _) in futures::future::join_all(calls).await {
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "each held change's request times out");
    }
    for hold in &holds {
        tokio::time::timeout(Duration::from_secs(10), hold.reached()).await.expect("held");
    }

    let (status, error) = call(&api, Method::DELETE, &format!("/v1/admin/players/{refused}"), None).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("overloaded")),
        "{error}"
    );
    assert!(audited(writer.store(), &operator, "erase_player", refused.as_str(), "503").await, "the refusal");
    assert!(!erasure_finished(writer.store(), refused).await, "the refused change never started");
    assert_eq!(api.json(&format!("/v1/boards/{b}/top")).await.0, StatusCode::OK, "reads go on");

    for hold in &holds {
        hold.release();
    }
    for p in running {
        crate::helpers::eventually("a held erasure finishes and is audited", || async {
            erasure_finished(writer.store(), p).await
                && audited(writer.store(), &operator, "erase_player", p.as_str(), "ok").await
        })
        .await;
    }
    // Their permits are back: the refused change runs now.
    let (status, _) = call(&api, Method::DELETE, &format!("/v1/admin/players/{refused}"), None).await;
    assert!(matches!(status, StatusCode::OK | StatusCode::SERVICE_UNAVAILABLE), "{status}");
    crate::helpers::eventually("the once refused erasure runs", || erasure_finished(writer.store(), refused)).await;
    api.stop().await;
}
