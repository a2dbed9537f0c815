//! Live updates over HTTP against a real Redis: `top:watch` and `players/{player}:watch`
//! answer changes as the oracle sees them, slow readers are dropped alone, limits answer
//! 503 and 429, shutdown ends every stream.

use std::time::Duration;

use eventsource_stream::{Event, EventStream, Eventsource as _};
use futures::{Stream, StreamExt as _};
use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::{Oracle, ScoreUpdate};
use reqwest::StatusCode;
use tokio::io::AsyncWriteExt as _;

use crate::helpers::{TestApi, board, eventually, oracle_rows, router, rows, seed};

type Events = std::pin::Pin<Box<dyn Stream<Item = Result<Event, String>> + Send>>;

/// Opens a stream at `path` (with extra headers), returning its status and events.
async fn open(api: &TestApi, path: &str, headers: &[(&str, &str)]) -> (StatusCode, Events, Option<serde_json::Value>) {
    // No overall timeout: the stream lives as long as the test reads it.
    let client = reqwest::Client::new();
    let mut request = client.get(format!("{}{path}", api.base));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    if status != StatusCode::OK {
        let body = response.json().await.ok();
        return (status, Box::pin(futures::stream::empty()), body);
    }
    let content_type = response.headers()["content-type"].to_str().expect("ascii").to_string();
    assert_eq!(content_type, "text/event-stream", "{path}");
    let events: EventStream<_> = response.bytes_stream().eventsource();
    (status, Box::pin(events.map(|e| e.map_err(|e| e.to_string()))), None)
}

/// The next event, failing the test after 20 s without one.
async fn next(events: &mut Events) -> Event {
    tokio::time::timeout(Duration::from_secs(20), events.next())
        .await
        .expect("an event within 20 s")
        .expect("the stream goes on")
        .expect("a well-formed event")
}

fn json(event: &Event) -> serde_json::Value {
    serde_json::from_str(&event.data).expect("JSON data")
}

fn update(board: &BoardId, player: &str, score: u64) -> ScoreUpdate {
    ScoreUpdate {
        board: board.clone(),
        player: PlayerId::new(player).expect("id"),
        score,
        time_ms: 0,
        meta: None,
        source: None,
    }
}

async fn apply(router: &leaderboard_store::Router, oracle: &mut Oracle, updates: &[ScoreUpdate]) {
    router.apply(updates).await.expect("apply");
    for u in updates {
        oracle.apply(u);
    }
}

#[tokio::test]
async fn a_top_stream_sends_the_list_then_each_change_of_its_rows_and_a_reconnect_gets_the_current_list() {
    let redis = testkit::redis_url();
    for layout in ["single", "hash:4", "range:100,200"] {
        let b = board("watchtop");
        let router = router(&redis, layout).await;
        let mut oracle = seed(&router, &b, 120).await;
        let api = TestApi::start(&redis, layout, |_| {}).await;
        let (status, mut events, _) = open(&api, &format!("/v1/boards/{b}/top:watch?limit=3"), &[]).await;
        assert_eq!(status, StatusCode::OK, "{layout}");
        let first = next(&mut events).await;
        assert_eq!(first.event, "top", "{layout}");
        let body = json(&first);
        assert_eq!(rows(&body), oracle_rows(&oracle.board(&b).expect("board").top(0, 3).entries), "{layout}");
        assert_eq!(body["total"], 120, "{layout}");

        // A player joining far down changes the total, not the rows: no event. Then a new #1.
        apply(&router, &mut oracle, &[update(&b, "late-low", 0)]).await;
        apply(&router, &mut oracle, &[update(&b, "champion", 10_000)]).await;
        let second = json(&next(&mut events).await);
        let expected = oracle.board(&b).expect("board").top(0, 3).entries;
        assert_eq!(expected[0].player.as_str(), "champion");
        assert_eq!(rows(&second), oracle_rows(&expected), "{layout}: the next event is the new #1");
        assert_eq!(second["total"], 122, "{layout}");

        // A client coming back with the last id it saw gets the current list at once.
        let (_, mut again, _) =
            open(&api, &format!("/v1/boards/{b}/top:watch?limit=3"), &[("last-event-id", &first.id)]).await;
        let resent = next(&mut again).await;
        assert_eq!(rows(&json(&resent)), oracle_rows(&expected), "{layout}");
        assert!(resent.id.parse::<u64>().is_ok(), "ids are as_of in ms: {}", resent.id);
        drop((events, again));
        api.stop().await;
    }
}

#[tokio::test]
async fn a_watched_player_sees_each_change_of_rank_then_their_removal() {
    let redis = testkit::redis_url();
    for layout in ["single", "hash:4", "range:100,200"] {
        let b = board("watchme");
        let router = router(&redis, layout).await;
        let mut oracle = seed(&router, &b, 80).await;
        let api = TestApi::start(&redis, layout, |c| c.watch.watch_standing_every = Duration::from_millis(100)).await;
        let me = PlayerId::new("p0010").expect("id");
        let (status, mut events, _) = open(&api, &format!("/v1/boards/{b}/players/{me}:watch"), &[]).await;
        assert_eq!(status, StatusCode::OK, "{layout}");
        let expect = |oracle: &Oracle, event: &Event| {
            let st = oracle.board(&b).expect("board").standing(&me).expect("standing");
            let body = json(event);
            assert_eq!(event.event, "standing", "{layout}: {body}");
            assert_eq!((body["score"].as_u64(), body["rank"].as_u64()), (Some(st.score), Some(st.rank)), "{layout}");
            assert_eq!(body["total"], st.total, "{layout}");
            assert!((body["percentile"].as_f64().expect("percentile") - st.percentile).abs() < 1e-9, "{layout}");
            assert_eq!(body["player"], me.as_str());
        };
        expect(&oracle, &next(&mut events).await);
        let mine = oracle.board(&b).expect("board").standing(&me).expect("standing").score;
        // Each step moves their rank; each is seen, in order.
        for (step, (player, score)) in
            [("rival-1", mine + 1), ("rival-2", mine + 5), ("p0010", mine + 3)].iter().enumerate()
        {
            apply(&router, &mut oracle, &[update(&b, player, *score)]).await;
            let event = next(&mut events).await;
            expect(&oracle, &event);
            assert!(!event.id.is_empty(), "{layout}: step {step}");
        }
        // Someone joining below them changes neither score nor rank: no event; their removal is one.
        apply(&router, &mut oracle, &[update(&b, "far-below", 0)]).await;
        assert!(router.remove_player(&b, &me).await.expect("remove"));
        let removed = next(&mut events).await;
        assert_eq!(removed.event, "removed", "{layout}: {}", removed.data);
        assert_eq!(json(&removed)["player"], me.as_str());

        let (status, _, body) = open(&api, &format!("/v1/boards/{b}/players/nobody:watch"), &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{layout}");
        assert_eq!(body.expect("body")["error"]["code"], "player_not_found");
        drop(events);
        api.stop().await;
    }
}

#[tokio::test]
async fn a_reader_that_stops_reading_is_dropped_and_the_others_keep_their_stream() {
    let redis = testkit::redis_url();
    let b = board("watchslow");
    let router = router(&redis, "single").await;
    let mut oracle = seed(&router, &b, 1000).await;
    let api = TestApi::start(&redis, "single", |c| {
        c.top_cache_rows = 1000;
        c.top_refresh = Duration::from_millis(20);
        c.write_timeout = Duration::from_secs(1);
    })
    .await;
    let path = format!("/v1/boards/{b}/top:watch?limit=1000");
    let (_, mut reader, _) = open(&api, &path, &[]).await;
    next(&mut reader).await;
    // The slow client asks for the same stream over a raw socket and never reads a byte.
    let mut slow = tokio::net::TcpStream::connect(api.base.trim_start_matches("http://")).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");
    slow.write_all(request.as_bytes()).await.expect("request sent");
    let state = api.state().clone();
    eventually("both streams open", || {
        let open = state.streams.open();
        async move { open == 2 }
    })
    .await;
    // Every refresh changes the first 1000 rows (~70 KB an event): the slow socket fills up.
    let writer = {
        let (router, b) = (router.clone(), b.clone());
        tokio::spawn(async move {
            for round in 1_u64.. {
                router.apply(&[update(&b, "climber", 1000 + round)]).await.expect("apply");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut seen = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while state.streams.open() == 2 {
        assert!(tokio::time::Instant::now() < deadline, "the slow reader was never dropped");
        let event = next(&mut reader).await;
        assert_eq!(event.event, "top");
        seen += 1;
    }
    writer.abort();
    assert_eq!(state.streams.open(), 1, "the slow reader alone was dropped");
    // The reader that reads goes on, and catches up with the last change.
    apply(&router, &mut oracle, &[update(&b, "climber", 1_000_000)]).await;
    loop {
        let body = json(&next(&mut reader).await);
        if body["entries"][0]["score"] == 1_000_000 {
            break;
        }
    }
    assert!(seen > 0);
    let metrics = api.get("/metrics").await.text().await.expect("metrics");
    assert!(metrics.contains("api_slow_clients_dropped_total 1"), "{metrics}");
    drop((reader, slow));
    api.stop().await;
}

#[tokio::test]
async fn streams_beyond_the_process_limit_get_503_and_beyond_a_clients_429() {
    let redis = testkit::redis_url();
    let b = board("watchcap");
    seed(&router(&redis, "single").await, &b, 10).await;
    let api = TestApi::start(&redis, "single", |c| {
        c.watch.watch_max_streams = 2;
        c.watch.watch_per_client = 1;
        c.watch.watch_heartbeat = Duration::from_secs(1);
        c.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let path = format!("/v1/boards/{b}/top:watch");
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    let (first, a, _) = open(&api, &path, &from("10.0.0.1")).await;
    assert_eq!(first, StatusCode::OK);
    let (again, _, body) = open(&api, &format!("/v1/boards/{b}/players/p0001:watch"), &from("10.0.0.1")).await;
    assert_eq!(again, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body.expect("body")["error"]["code"], "too_many_streams");
    let (second, _b, _) = open(&api, &path, &from("10.0.0.2")).await;
    assert_eq!(second, StatusCode::OK);
    let third = api.client.get(format!("{}{path}", api.base)).header("x-forwarded-for", "10.0.0.3").send().await;
    let third = third.expect("request");
    assert_eq!(third.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(third.headers().contains_key("retry-after"));
    assert_eq!(third.json::<serde_json::Value>().await.expect("body")["error"]["code"], "too_many_streams");
    // A client that leaves frees its place (noticed at the next heartbeat at the latest).
    drop(a);
    let state = api.state().clone();
    eventually("the first stream's place is freed", || {
        let open = state.streams.open();
        async move { open == 1 }
    })
    .await;
    let (fourth, _d, _) = open(&api, &path, &from("10.0.0.3")).await;
    assert_eq!(fourth, StatusCode::OK);
    let (bad, _, body) = open(&api, &format!("{path}?limit=0"), &from("10.0.0.4")).await;
    assert_eq!(bad, StatusCode::BAD_REQUEST);
    assert_eq!(body.expect("body")["error"]["code"], "invalid_limit");
    api.stop().await;
}

#[tokio::test]
async fn shutdown_ends_every_stream_and_the_server_drains() {
    let redis = testkit::redis_url();
    let b = board("watchstop");
    seed(&router(&redis, "single").await, &b, 10).await;
    let api = TestApi::start(&redis, "single", |_| {}).await;
    let (_, mut top, _) = open(&api, &format!("/v1/boards/{b}/top:watch"), &[]).await;
    let (_, mut mine, _) = open(&api, &format!("/v1/boards/{b}/players/p0003:watch"), &[]).await;
    next(&mut top).await;
    next(&mut mine).await;
    api.begin_shutdown();
    for stream in [&mut top, &mut mine] {
        let end = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("the stream ends");
        assert!(end.is_none(), "no event after shutdown: {end:?}");
    }
    api.stop().await;
}
