//! The verifier against a real api: silent when the api agrees with the
//! oracle, specific when it does not.

use leaderboard_contract::{BoardId, PlayerId};
use loadgen::population::{Population, player};
use loadgen::verify::{Expected, verify};
use shard_router::{RedisTarget, Router, RouterOptions, ScoreUpdate, Store, StoreOptions, watermark};
use tokio_util::sync::CancellationToken;

use crate::{cli, start_api};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifier_passes_a_faithful_api_and_names_each_difference() {
    let (redis, layout, board, seed) = (testkit::redis_url(), "hash:4", testkit::unique("vf"), 3);
    let world = cli(&[
        "loadgen",
        "--redis",
        &redis,
        "--layout",
        layout,
        "--board",
        &board,
        "--boards",
        "2",
        "--players",
        "500",
        "--seed",
        "3",
        "seed",
    ])
    .world;
    loadgen::seed::seed(&world, 100).await.expect("seed");
    let stop = CancellationToken::new();
    // No ingest here: the test plays its part and claims, every 50 ms, that everything is applied.
    let topic = testkit::unique("vf-topic");
    let claims = claim_everything_applied(&redis, &topic, stop.clone()).await;
    let (api, api_task) = start_api(&redis, layout, &topic, stop.clone()).await;
    let client = reqwest::Client::new();

    // Seeded and untouched: the oracle is every player's initial score.
    let boards = world.board_set().expect("boards");
    let best: Vec<u64> = (0..500).map(|i| Population::initial_score(seed, i)).collect();
    let expected = Expected::for_boards(&boards, &best, None);
    let clean = verify(&client, &api, &boards, &expected, &best, 200, seed).await.expect("verify");
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
            },
            ScoreUpdate { board: boards.of(1).clone(), player: player(1), score: top_score + 1, time_ms: 0 },
        ])
        .await
        .expect("apply");
    let dirty = verify(&client, &api, &boards, &expected, &best, 200, seed).await.expect("verify");
    stop.cancel();
    api_task.await.expect("api task");
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
