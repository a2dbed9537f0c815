//! `?season=` on the read routes, the seasons route, and frozen answers.

use leaderboard_contract::PlayerId;
use leaderboard_semantics::clock::system_ms;
use leaderboard_semantics::{Oracle, ScoreUpdate};
use reqwest::StatusCode;

use crate::admin::{hash, put};
use crate::helpers::{Row, TestApi, board, eventually, oracle_rows, router, rows, seeded_meta};

/// 2026-11-23T00:00:00Z and a day, in milliseconds.
const DAY0: i64 = 1_795_392_000_000;
const DAY: i64 = 86_400_000;

fn updates(stored: &leaderboard_contract::BoardId, players: usize, base: u64) -> Vec<ScoreUpdate> {
    (0..players)
        .map(|i| ScoreUpdate {
            board: stored.clone(),
            player: PlayerId::new(format!("p{i:03}")).expect("id"),
            score: base + ((i * 37) % 50) as u64,
            time_ms: 0,
            meta: seeded_meta(i),
            source: None,
        })
        .collect()
}

fn oracle(updates: &[ScoreUpdate]) -> Oracle {
    let mut o = Oracle::new();
    for u in updates {
        o.apply(u);
    }
    o
}

/// A daily board (UTC, grace 1 h) behind an api whose clock reads 10
/// minutes into 2026-11-25: the 24th is the previous season, the 25th the
/// current one; both opened and written, and the all-time board too.
struct Fixture {
    /// A Redis of the test's own: ingest workers of other tests on the shared
    /// Redis close every season their (real) clock says is over, and these
    /// seasons are dated (2026-11-24 and 25) whatever the real date is.
    _redis: testkit::PrivateRedis,
    api: TestApi,
    b: leaderboard_contract::BoardId,
    writer: leaderboard_store::Router,
    previous: leaderboard_semantics::season::Season,
    s1: leaderboard_contract::BoardId,
    o1: Oracle,
}

async fn fixture() -> (Fixture, Oracle, Oracle) {
    let private = testkit::PrivateRedis::start();
    let redis = private.url();
    let b = board("weekly");
    let ops = testkit::unique("season-ops");
    let offset = DAY0 + 2 * DAY + 600_000 - system_ms();
    let api = TestApi::start(&redis, "hash:2", |c| {
        c.admin_tokens = vec![format!("{ops}:{}:admin", hash("ops"))];
        c.store.clock = leaderboard_semantics::Clock::Offset { ms: offset };
    })
    .await;
    let daily = r#"{"reset":{"every":"day","utc_offset":"+00:00"},"keep_seasons":3,"late_grace":"1h"}"#;
    let (status, created) = put(&api, b.as_str(), Some("ops"), daily).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["rules"]["reset"]["every"], "day");
    assert_eq!(created["rules"]["keep_seasons"], 3);
    assert_eq!(created["rules"]["late_grace"], "1h");
    let weekly = r#"{"reset":{"every":"week"}}"#;
    let (status, fixed) = put(&api, b.as_str(), Some("ops"), weekly).await;
    assert_eq!((status, fixed["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("reset_fixed")));

    let writer = router(&redis, "hash:2").await;
    let rules = writer.rules(&b).await.expect("rules");
    let reset = rules.reset.expect("reset");
    let (previous, current) =
        (reset.season_at(DAY0 + DAY).expect("24th"), reset.season_at(DAY0 + 2 * DAY).expect("25th"));
    let (s1, s2) = (b.season(&previous.id), b.season(&current.id));
    for s in [&previous, &current] {
        writer.open_season(&b, &rules, s).await.expect("open");
    }
    let (u1, u2, all) = (updates(&s1, 40, 100), updates(&s2, 25, 0), updates(&b, 60, 10));
    for batch in [&u1, &u2, &all] {
        writer.apply(batch).await.expect("apply");
    }
    let (o1, o2, oa) = (oracle(&u1), oracle(&u2), oracle(&all));
    (Fixture { _redis: private, api, b, writer, previous, s1, o1 }, o2, oa)
}

fn top(o: &Oracle, stored: &leaderboard_contract::BoardId) -> Vec<Row> {
    oracle_rows(&o.board(stored).expect("board").top(0, 100).entries)
}

#[tokio::test]
async fn every_read_route_takes_a_season_and_the_seasons_are_listed() {
    let (Fixture { _redis, api, b, o1, s1, .. }, o2, oa) = fixture().await;
    let s2 = b.season("2026-11-25");
    let (status, body) = api.json(&format!("/v1/boards/{b}/top")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["board"].as_str(), body["season"].as_str()),
        (Some(b.as_str()), Some("2026-11-25")),
        "current by default"
    );
    assert_eq!(rows(&body), top(&o2, &s2));
    for asked in ["previous", "2026-11-24"] {
        let (_, body) = api.json(&format!("/v1/boards/{b}/top?season={asked}&limit=7&offset=3")).await;
        assert_eq!(body["season"], "2026-11-24", "{asked}");
        assert_eq!(rows(&body), oracle_rows(&o1.board(&s1).expect("s1").top(3, 7).entries), "{asked}");
        assert_ne!(body["as_of"], "2026-11-25T00:00:00Z", "{asked}: open, so dated by the watermark");
    }
    let (_, body) = api.json(&format!("/v1/boards/{b}/top?season=all")).await;
    assert_eq!(rows(&body), top(&oa, &b));
    assert!(body.get("season").is_none(), "all-time answers name no season");

    let p = "p007";
    let (_, body) = api.json(&format!("/v1/boards/{b}/players/{p}?season=previous")).await;
    let want = o1.board(&s1).expect("s1").standing(&PlayerId::new(p).expect("id")).expect("standing");
    assert_eq!((body["rank"].as_u64(), body["total"].as_u64()), (Some(want.rank), Some(want.total)), "{body}");
    let (_, body) = api.json(&format!("/v1/boards/{b}/players/{p}/around?season=current&radius=2")).await;
    assert_eq!(body["season"], "2026-11-25");
    let around = o2.board(&s2).expect("s2").around(&PlayerId::new(p).expect("id"), 2).expect("around");
    assert_eq!(rows(&body), oracle_rows(&around));
    let (_, body) = api.json(&format!("/v1/boards/{b}?season=previous")).await;
    assert_eq!((body["total"].as_u64(), body["season"].as_str()), (Some(40), Some("2026-11-24")));
    assert_eq!(body["rules"]["reset"]["every"], "day", "a season shows its board's rules");
    let lookup = api
        .client
        .post(format!("{}/v1/boards/{b}/players:lookup?season=previous", api.base))
        .json(&serde_json::json!({"players": ["p001", "p002", "nobody"]}))
        .send()
        .await
        .expect("lookup");
    let body: serde_json::Value = lookup.json().await.expect("json");
    assert_eq!((body["total"].as_u64(), body["missing"][0].as_str()), (Some(40), Some("nobody")), "{body}");

    let (status, listed) = api.json(&format!("/v1/boards/{b}/seasons")).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["next_reset"], "2026-11-26T00:00:00Z");
    let seasons: Vec<(String, String, u64)> = listed["seasons"]
        .as_array()
        .expect("seasons")
        .iter()
        .map(|s| {
            (
                s["id"].as_str().expect("id").into(),
                s["state"].as_str().expect("state").into(),
                s["total"].as_u64().expect("total"),
            )
        })
        .collect();
    assert_eq!(seasons, [("2026-11-25".into(), "open".into(), 25), ("2026-11-24".into(), "open".into(), 40)]);
    api.stop().await;
}

#[tokio::test]
async fn a_closed_season_is_frozen_and_dated_by_its_end() {
    let (Fixture { _redis, api, b, writer, previous, s1, o1 }, _, _) = fixture().await;
    let plain = board("plain");
    let p = "p007";
    // Closing freezes: later writes are refused, and answers are dated by the season's end.
    assert!(writer.close_season(&b, &previous.id, DAY0 + 2 * DAY + 3_600_000).await.expect("close"));
    assert_eq!(writer.apply(&updates(&s1, 40, 900)).await.expect("apply").closed.len(), 40, "refused after the close");
    for path in
        [format!("/v1/boards/{b}/top?season=previous"), format!("/v1/boards/{b}/top?season=previous&offset=200")]
    {
        eventually("answers of the closed season are dated by its end", || async {
            api.json(&path).await.1["as_of"] == "2026-11-25T00:00:00Z" || path.contains("offset=200")
        })
        .await;
    }
    let (_, body) = api.json(&format!("/v1/boards/{b}/top?season=previous")).await;
    assert_eq!(rows(&body), top(&o1, &s1), "frozen");
    for path in [
        format!("/v1/boards/{b}/players/{p}?season=previous"),
        format!("/v1/boards/{b}/players/{p}/around?season=previous"),
        format!("/v1/boards/{b}?season=previous"),
    ] {
        assert_eq!(api.json(&path).await.1["as_of"], "2026-11-25T00:00:00Z", "{path}");
    }
    let (_, listed) = api.json(&format!("/v1/boards/{b}/seasons")).await;
    assert_eq!(listed["seasons"][1]["state"], "closed");

    for (path, status, code) in [
        (format!("/v1/boards/{b}/top?season=2026-11-24T0"), StatusCode::BAD_REQUEST, "invalid_season"),
        (format!("/v1/boards/{b}/top?season=2026-11-24T00"), StatusCode::NOT_FOUND, "season_not_found"),
        (format!("/v1/boards/{b}/top?season=2026-11"), StatusCode::NOT_FOUND, "season_not_found"),
        (format!("/v1/boards/{b}/top?season=2026-02-30"), StatusCode::NOT_FOUND, "season_not_found"),
        (format!("/v1/boards/{b}/top?season=2026-11-20"), StatusCode::NOT_FOUND, "board_not_found"),
        (format!("/v1/boards/{plain}/top?season=current"), StatusCode::NOT_FOUND, "no_seasons"),
        (format!("/v1/boards/{plain}/seasons"), StatusCode::NOT_FOUND, "no_seasons"),
    ] {
        let (got, body) = api.json(&path).await;
        assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)), "{path}: {body}");
    }
    api.stop().await;
}

/// As the review suspected: the seasons route read every listed season's total from Redis on every
/// request (up to 100), although a closed season's never changes. Now a closed season's total is
/// read once: a second request costs Redis only the open season's (one `ZCARD` per shard of it).
#[tokio::test]
async fn a_closed_seasons_total_is_read_once() {
    let (Fixture { _redis: redis, api, b, writer, previous, .. }, _, _) = fixture().await;
    writer.close_season(&b, &previous.id, DAY0 + 2 * DAY + 3_600_000).await.expect("close");
    let port = testkit::ports_of(&redis.url())[0];
    let listed = |body: &serde_json::Value| -> Vec<(String, String, u64)> {
        let seasons = body["seasons"].as_array().expect("seasons");
        seasons
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().expect("id").into(),
                    s["state"].as_str().expect("state").into(),
                    s["total"].as_u64().expect("total"),
                )
            })
            .collect()
    };
    let mut reads = Vec::new();
    let mut answers = Vec::new();
    for _ in 0..2 {
        let before = testkit::command_calls(port, "zcard");
        let (status, body) = api.json(&format!("/v1/boards/{b}/seasons")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        reads.push(testkit::command_calls(port, "zcard") - before);
        answers.push(listed(&body));
    }
    let want = [("2026-11-25".to_string(), "open".to_string(), 25), ("2026-11-24".into(), "closed".into(), 40)];
    assert_eq!(answers, [want.clone(), want], "the same answer twice");
    assert_eq!(reads, [4, 2], "two seasons of two shards, then the open one's only");
}

/// `hour` and `span` schedules through the admin API and the read routes: a
/// span before its start reads its first season (nobody played it: 404), has
/// no previous one, and counts down to its start; after it, ids name each season's start minute; an hourly board's
/// seasons are UTC hours; a `late_grace` longer than the shortest season is
/// refused.
#[tokio::test]
async fn hourly_and_span_schedules_name_their_seasons_and_a_span_starts_at_its_start() {
    let private = testkit::PrivateRedis::start();
    let redis = private.url();
    let ops = testkit::unique("season-ops");
    // The api's clock reads 2026-11-25T10:15:00Z.
    let offset = DAY0 + 2 * DAY + 10 * 3_600_000 + 15 * 60_000 - system_ms();
    let api = TestApi::start(&redis, "single", |c| {
        c.admin_tokens = vec![format!("{ops}:{}:admin", hash("ops"))];
        c.store.clock = leaderboard_semantics::Clock::Offset { ms: offset };
    })
    .await;
    let writer = router(&redis, "single").await;

    let hourly = board("hourly");
    let (status, created) =
        put(&api, hourly.as_str(), Some("ops"), r#"{"reset":{"every":"hour"},"late_grace":"5m"}"#).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["rules"]["reset"], serde_json::json!({"every": "hour"}));
    let rules = writer.rules(&hourly).await.expect("rules");
    let current = rules.reset.expect("reset").season_at(DAY0 + 2 * DAY + 10 * 3_600_000 + 1).expect("hour");
    let stored = writer.open_season(&hourly, &rules, &current).await.expect("open");
    writer.apply(&updates(&stored, 5, 0)).await.expect("apply");
    let (_, body) = api.json(&format!("/v1/boards/{hourly}/top")).await;
    assert_eq!((body["season"].as_str(), body["total"].as_u64()), (Some("2026-11-25T10"), Some(5)), "{body}");
    let (_, listed) = api.json(&format!("/v1/boards/{hourly}/seasons")).await;
    assert_eq!(listed["next_reset"], "2026-11-25T11:00:00Z", "{listed}");
    let (status, body) = api.json(&format!("/v1/boards/{hourly}/top?season=2026-11-25T09")).await;
    let nobody = (StatusCode::NOT_FOUND, Some("board_not_found"));
    assert_eq!((status, body["error"]["code"].as_str()), nobody, "a past hour nobody played: {body}");
    let (status, body) = api.json(&format!("/v1/boards/{hourly}/top?season=2026-11-25T09:00")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("season_not_found")), "{body}");

    let span = board("span");
    let rules = r#"{"reset":{"every":"span","start":"2026-11-25T12:15:00Z","length":"3d"},"late_grace":"1h"}"#;
    let (status, created) = put(&api, span.as_str(), Some("ops"), rules).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["rules"]["reset"]["length"], "3days");
    // Current: the first season, which nobody played yet (a board without players is a 404).
    let (status, body) = api.json(&format!("/v1/boards/{span}/top")).await;
    assert_eq!((status, body["error"]["code"].as_str()), nobody, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("season 2026-11-25T12:15 ")), "{body}");
    let (status, body) = api.json(&format!("/v1/boards/{span}/top?season=previous")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("season_not_found")), "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("2026-11-25T12:15:00Z")), "{body}");
    let (status, listed) = api.json(&format!("/v1/boards/{span}/seasons")).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(
        (listed["next_reset"].as_str(), listed["seasons"].as_array().map(Vec::len)),
        (Some("2026-11-25T12:15:00Z"), Some(0))
    );
    let (status, body) = api.json(&format!("/v1/boards/{span}/top?season=2026-11-28T12:15")).await;
    assert_eq!((status, body["error"]["code"].as_str()), nobody, "the second season, by its id: {body}");
    let (status, body) = api.json(&format!("/v1/boards/{span}/top?season=2026-11-28T12:16")).await;
    let no_such = (StatusCode::NOT_FOUND, Some("season_not_found"));
    assert_eq!((status, body["error"]["code"].as_str()), no_such, "not a season's start: {body}");

    for (rules, why) in [
        (r#"{"reset":{"every":"hour"},"late_grace":"2h"}"#, "late_grace beyond an hour"),
        (
            r#"{"reset":{"every":"span","start":"2026-11-25T12:15:00Z","length":"30m"},"late_grace":"1h"}"#,
            "beyond the span",
        ),
        (r#"{"reset":{"every":"span","start":"2026-11-25T12:15:30Z","length":"3d"}}"#, "not a whole minute"),
        (r#"{"reset":{"every":"hour","utc_offset":"+09:00"}}"#, "hours are UTC"),
    ] {
        let (status, body) = put(&api, board("bad-schedule").as_str(), Some("ops"), rules).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_rules")),
            "{why}: {body}"
        );
    }
    api.stop().await;
}

/// `POST .../seasons:reset` on this api as `ops`: status and body.
async fn reset(api: &TestApi, board: &str) -> (StatusCode, serde_json::Value) {
    let response = api
        .client
        .post(format!("{}/v1/admin/boards/{board}/seasons:reset", api.base))
        .bearer_auth("ops")
        .send()
        .await
        .expect("reset");
    let status = response.status();
    (status, response.json().await.unwrap_or(serde_json::Value::Null))
}

/// A `manual` board: its first season starts when the schedule is set, each
/// reset (three in quick succession) ends the current season and opens the
/// next, reads follow `current`, `previous` and `m<k>`, the seasons route has
/// no next reset, and what is not a manual board, or has too many seasons not
/// closed yet, is refused.
#[tokio::test]
async fn manual_seasons_follow_the_admins_resets() {
    let private = testkit::PrivateRedis::start();
    let redis = private.url();
    let ops = testkit::unique("season-ops");
    let api = TestApi::start(&redis, "hash:2", |c| c.admin_tokens = vec![format!("{ops}:{}:admin", hash("ops"))]).await;
    let writer = router(&redis, "hash:2").await;
    let b = board("manual");
    let (status, created) =
        put(&api, b.as_str(), Some("ops"), r#"{"reset":{"every":"manual"},"late_grace":"1h"}"#).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["rules"]["reset"], serde_json::json!({"every": "manual"}));
    let rules = writer.rules(&b).await.expect("rules");
    let (_, listed) = api.json(&format!("/v1/boards/{b}/seasons")).await;
    assert_eq!(
        (listed["next_reset"].clone(), listed["seasons"][0]["id"].as_str()),
        (serde_json::Value::Null, Some("m1"))
    );
    assert!(listed["seasons"][0].get("end").is_none(), "an open manual season has no end: {listed}");

    let mut ends = Vec::new();
    for k in 2..=4 {
        let (status, answer) = reset(&api, b.as_str()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(
            (answer["ended"]["id"].clone(), answer["current"]["id"].clone()),
            (format!("m{}", k - 1).into(), format!("m{k}").into())
        );
        assert_eq!(answer["ended"]["end"], answer["current"]["start"], "contiguous: {answer}");
        ends.push(answer["ended"]["end"].as_str().expect("end").to_string());
    }
    // Players in m2 (ended) and m4 (current).
    for (id, players) in [("m2", 7), ("m4", 3)] {
        let season = writer.manual_season(&b, id).await.expect("lookup").expect("kept");
        let stored = writer.open_season(&b, &rules, &season).await.expect("open");
        writer.apply(&updates(&stored, players, 0)).await.expect("apply");
    }
    for (asked, want) in [("", ("m4", 3)), ("?season=current", ("m4", 3)), ("?season=m2", ("m2", 7))] {
        let (status, body) = api.json(&format!("/v1/boards/{b}/top{asked}")).await;
        assert_eq!(status, StatusCode::OK, "{asked}: {body}");
        assert_eq!((body["season"].as_str(), body["total"].as_u64()), (Some(want.0), Some(want.1)), "{asked}");
    }
    let (status, body) = api.json(&format!("/v1/boards/{b}/top?season=previous")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("board_not_found")),
        "m3: nobody played: {body}"
    );
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("m3")), "{body}");
    for unknown in ["m9", "2026-11-25"] {
        let (status, body) = api.json(&format!("/v1/boards/{b}/top?season={unknown}")).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("season_not_found")),
            "{body}"
        );
    }
    let (_, listed) = api.json(&format!("/v1/boards/{b}/seasons")).await;
    let seasons: Vec<(String, Option<String>, String)> = listed["seasons"]
        .as_array()
        .expect("seasons")
        .iter()
        .map(|s| {
            (
                s["id"].as_str().expect("id").into(),
                s["end"].as_str().map(Into::into),
                s["state"].as_str().expect("state").into(),
            )
        })
        .collect();
    let want: Vec<(String, Option<String>, String)> =
        [("m4", None), ("m3", Some(&ends[2])), ("m2", Some(&ends[1])), ("m1", Some(&ends[0]))]
            .into_iter()
            .map(|(id, end)| (id.to_string(), end.cloned(), "open".to_string()))
            .collect();
    assert_eq!(seasons, want, "newest first; ended seasons stay open until their grace passes");

    let daily = board("daily");
    put(&api, daily.as_str(), Some("ops"), r#"{"reset":{"every":"day"}}"#).await;
    for (target, code) in [(daily.as_str(), StatusCode::CONFLICT), ("nobody-here", StatusCode::NOT_FOUND)] {
        let (status, body) = reset(&api, target).await;
        assert_eq!(status, code, "{target}: {body}");
    }
    let (_, body) = reset(&api, daily.as_str()).await;
    assert_eq!(body["error"]["code"], "not_manual");
    let unauthorised =
        api.client.post(format!("{}/v1/admin/boards/{b}/seasons:reset", api.base)).send().await.expect("reset");
    assert_eq!(unauthorised.status(), StatusCode::UNAUTHORIZED);
    // Four seasons are not closed; twelve more resets reach the bound of sixteen.
    for _ in 0..12 {
        assert_eq!(reset(&api, b.as_str()).await.0, StatusCode::OK);
    }
    let (status, body) = reset(&api, b.as_str()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("too_many_open_seasons")),
        "{body}"
    );
}
