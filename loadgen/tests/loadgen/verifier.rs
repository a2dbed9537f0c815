//! The verifier against a real api: silent when the api agrees with the
//! oracle, specific when it does not.

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::{ScoreUpdate, Ties};
use leaderboard_store::{RedisTarget, Router, RouterOptions, Store, StoreOptions, marker::watermark};
use loadgen::population::{Population, player};
use loadgen::verify::{Expected, Players, Scope, verify};
use tokio_util::sync::CancellationToken;

use crate::{cli, start_api};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifier_passes_a_faithful_api_and_names_each_difference() {
    let (redis, layout, board, seed) = (testkit::redis_url(), "hash:4", testkit::unique("vf"), 3);
    let world = seeded(&redis, layout, &board, &["--boards", "2", "--players", "500", "--seed", "3", "--meta"]).await;
    let stop = CancellationToken::new();
    // No ingest here: the test plays its part and claims, every 50 ms, that everything is applied.
    let topic = testkit::unique("vf-topic");
    let claims = claim_everything_applied(&redis, &topic, stop.clone()).await;
    let api_server = start_api(&redis, layout, &topic, &[], stop.clone()).await;
    let api = api_server.url();
    let client = reqwest::Client::new();

    // Seeded and untouched: the oracle is every player's initial score.
    let boards = world.board_set().expect("boards");
    let best: Vec<u64> = (0..500).map(|i| Population::initial_score(seed, i)).collect();
    let players = Players {
        best: &best,
        reached: None,
        scoring: world.scoring(),
        meta: world.event_meta(),
        sparse: false,
        marked: &[],
    };
    let expected = Expected::for_boards(&boards, &players, Ties::Shared, None);
    assert!(expected[0].top.iter().all(|row| row.meta.is_some()), "every seeded entry has metadata");
    let clean =
        verify(&client, &api, &boards, &expected, &players, 200, seed, &Scope::default()).await.expect("verify");
    assert_eq!(clean.mismatches, 0, "{:?}", clean.examples);
    assert_eq!((clean.sampled, clean.top_rows, clean.total), (200, 200, (500, 500)));

    // Now the store disagrees with the oracle: a stranger joins the first
    // board, and player 1 (second board) jumps to the top of theirs.
    let store =
        Store::connect(&RedisTarget::parse(&redis).expect("target"), StoreOptions::default()).await.expect("redis");
    let router = Router::new(store, layout.parse().expect("layout"), RouterOptions::default());
    let top_score = best.iter().max().copied().expect("players");
    router
        .apply(&[
            ScoreUpdate {
                board: boards.ids()[0].clone(),
                player: PlayerId::new("stranger").expect("id"),
                score: 1,
                time_ms: 0,
                meta: None,
                source: None,
            },
            ScoreUpdate {
                board: boards.of(1).clone(),
                player: player(1),
                score: top_score + 1,
                time_ms: 0,
                meta: None,
                source: None,
            },
        ])
        .await
        .expect("apply");
    // And the second of the first board shows the metadata of another event.
    let second_best = &expected[0].top[1].player;
    let mut stale_written = 0;
    let member = leaderboard_store::layout::member::encode(&PlayerId::new(second_best.as_str()).expect("id"));
    for shard in router.stats(&boards.ids()[0]).await.expect("stats").shards {
        let there: Option<f64> =
            router.store().query(redis::cmd("ZSCORE").arg(&shard.key).arg(&member)).await.expect("zscore");
        if there.is_some() {
            let key = leaderboard_store::layout::keys::entry_meta(&shard.key);
            let stale = r#"{"name":"Stale","run":"r-0"}"#;
            let _: () = router.store().query(redis::cmd("HSET").arg(key).arg(&member).arg(stale)).await.expect("hset");
            stale_written += 1;
        }
    }
    assert_eq!(stale_written, 1, "{second_best} is in one shard");
    let dirty =
        verify(&client, &api, &boards, &expected, &players, 200, seed, &Scope::default()).await.expect("verify");
    stop.cancel();
    api_server.stop().await.expect("api");
    claims.await.expect("claims task");

    let (first, second): (&BoardId, &BoardId) = (&boards.ids()[0], &boards.ids()[1]);
    assert_eq!(dirty.total, (500, 501));
    assert_eq!(dirty.boards[0].total, (250, 251));
    assert!(dirty.boards[0].mismatches >= 1 && dirty.boards[1].mismatches >= 1, "{:?}", dirty.boards);
    assert_eq!(dirty.mismatches, dirty.boards[0].mismatches + dirty.boards[1].mismatches);
    let examples = dirty.examples.join("\n");
    assert!(examples.contains(&format!("{first}: total: expected 250, api says 251")), "{examples}");
    assert!(examples.contains(&format!("{second}: top row 1: expected")), "{examples}");
    assert!(examples.contains("\"p-00000001\""), "player 1 is named: {examples}");
    assert!(examples.contains(&format!("{first}: top row 2: expected")) && examples.contains("Stale"), "{examples}");
}

/// Publishes "every record of `topic` is applied" with the current time every 50 ms until `stop`.
async fn claim_everything_applied(redis: &str, topic: &str, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    let store =
        Store::connect(&RedisTarget::parse(redis).expect("target"), StoreOptions::default()).await.expect("redis");
    let topic = topic.to_string();
    tokio::spawn(async move {
        while !stop.is_cancelled() {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock");
            let claim =
                watermark::Claim { partition: 0, applied_before_ms: i64::try_from(now.as_millis()).expect("ms") };
            watermark::publish(&store, &topic, 1, &[claim]).await.expect("publish");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
}

/// An `asc`, `earliest` run: `seed` creates the boards with those rules and
/// lap times, the verifier agrees with a faithful api, and a lap reached later
/// than the oracle's (same time on the clock, a later moment) is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifier_follows_asc_and_earliest_boards() {
    let (redis, layout, board, seed) = (testkit::redis_url(), "range:1000,5000", testkit::unique("vfr"), 4);
    let options = ["--players", "400", "--seed", "4", "--order", "asc", "--ties", "earliest"];
    let world = seeded(&redis, layout, &board, &options).await;
    let stop = CancellationToken::new();
    let topic = testkit::unique("vfr-topic");
    let claims = claim_everything_applied(&redis, &topic, stop.clone()).await;
    let api_server = start_api(&redis, layout, &topic, &[], stop.clone()).await;
    let api = api_server.url();
    let client = reqwest::Client::new();
    let boards = world.board_set().expect("boards");
    let response = client.get(format!("{api}/v1/boards/{board}")).send().await.expect("stats");
    let stats: serde_json::Value = response.json().await.expect("json");
    assert_eq!((stats["rules"]["order"].as_str(), stats["rules"]["ties"].as_str()), (Some("asc"), Some("earliest")));

    let mut best: Vec<u64> = (0..400).map(|i| Population::initial_score(seed, i)).collect();
    let mut reached = vec![0u64; 400];
    let scoring = world.scoring();
    // Player 7 improves to player 3's key at t=500, then player 9 reaches the same key at t=100.
    let store =
        Store::connect(&RedisTarget::parse(&redis).expect("target"), StoreOptions::default()).await.expect("redis");
    let router = Router::new(store, layout.parse().expect("layout"), RouterOptions::default());
    let key = best[3].max(best[7]).max(best[9]) + 1;
    for (i, time_ms) in [(7, 500), (9, 100)] {
        let lap = ScoreUpdate {
            board: boards.of(i).clone(),
            player: player(i),
            score: scoring.score(key),
            time_ms,
            meta: None,
            source: None,
        };
        router.apply(std::slice::from_ref(&lap)).await.expect("apply");
        best[i] = key;
        reached[i] = time_ms;
    }
    let players = Players { best: &best, reached: Some(&reached), scoring, meta: None, sparse: false, marked: &[] };
    let expected = Expected::for_boards(&boards, &players, Ties::Earliest, None);
    let clean =
        verify(&client, &api, &boards, &expected, &players, 400, seed, &Scope::default()).await.expect("verify");
    assert_eq!(clean.mismatches, 0, "{:?}", clean.examples);

    // The oracle believes player 7 got there first: the verifier must disagree.
    reached[7] = 50;
    let players = Players { best: &best, reached: Some(&reached), scoring, meta: None, sparse: false, marked: &[] };
    let expected = Expected::for_boards(&boards, &players, Ties::Earliest, None);
    let dirty =
        verify(&client, &api, &boards, &expected, &players, 400, seed, &Scope::default()).await.expect("verify");
    stop.cancel();
    api_server.stop().await.expect("api");
    claims.await.expect("claims task");
    assert!(dirty.mismatches >= 1, "a wrong order of arrival is seen");
    assert!(
        dirty.examples.iter().any(|e| e.contains("p-00000007") || e.contains("p-00000009")),
        "{:?}",
        dirty.examples
    );
}

/// `loadgen seed` of fresh boards named after `board` on `layout`, with more `options`.
async fn seeded(redis: &str, layout: &str, board: &str, options: &[&str]) -> loadgen::config::World {
    let mut args = vec!["loadgen", "--redis", redis, "--layout", layout, "--board", board];
    args.extend_from_slice(options);
    args.push("seed");
    let world = cli(&args).world;
    loadgen::seed::seed(&world, 100).await.expect("seed");
    world
}
