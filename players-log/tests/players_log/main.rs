//! The players log against the real broker and Redis: what is published is
//! read back, newest last, and a store that lost its registry is given it
//! back, with the players it names taken out again.

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_players_log::PlayersLog;
use leaderboard_semantics::ScoreUpdate;
use leaderboard_store::marker::registry::{self, Ban, BanScope, PlayerMarks};
use leaderboard_store::{LayoutSpec, RedisTarget, Router, RouterOptions, Store, StoreOptions};

fn log() -> PlayersLog {
    PlayersLog::new(testkit::brokers(), Vec::new(), testkit::unique("players"))
}

fn player(prefix: &str) -> PlayerId {
    PlayerId::new(testkit::unique(prefix)).expect("player")
}

async fn store(url: &str) -> Store {
    Store::connect(&RedisTarget::parse(url).expect("url"), StoreOptions::default()).await.expect("redis")
}

fn ban_all() -> Ban {
    Ban { boards: BanScope::ALL, closed_seasons: false, reason: "cheating".into(), at_ms: 1 }
}

/// Erasures, bans and a lifted ban are read back as Redis held them after the
/// last change of each player; a lifted ban that leaves nothing is a tombstone.
#[tokio::test]
async fn what_is_published_is_read_back_newest_last() {
    let store = store(&testkit::redis_url()).await;
    let log = log();
    let publisher = log.publisher().expect("publisher");
    let (gone, cheat, forgiven) = (player("gone"), player("cheat"), player("forgiven"));
    let at = registry::mark_erased(&store, &gone).await.expect("erase");
    publisher.publish(&store, &gone).await.expect("publish");
    for p in [&cheat, &forgiven] {
        registry::ban(&store, p, &ban_all()).await.expect("ban");
        publisher.publish(&store, p).await.expect("publish");
    }
    registry::unban(&store, &forgiven).await.expect("unban");
    publisher.publish(&store, &forgiven).await.expect("publish");

    let read = log.read_all().await.expect("read").expect("the topic exists");
    let expected = vec![
        (cheat.clone(), PlayerMarks { erased_at_ms: None, ban: Some(ban_all()) }),
        (gone.clone(), PlayerMarks { erased_at_ms: Some(at), ban: None }),
    ];
    let mut expected = expected;
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(read, expected);
}

#[tokio::test]
async fn a_topic_that_does_not_exist_reads_as_none() {
    assert_eq!(log().read_all().await.expect("read"), None);
}

/// A store that lost its registry and still holds an erased player's scores
/// (a rollback to a file from before the erasure) is given the erasure back
/// and the player is taken out; a ban is given back too; what the registry
/// holds already is kept, and giving back twice changes nothing.
#[tokio::test]
async fn a_store_that_lost_its_registry_is_given_it_back() {
    let mut redis = testkit::PrivateRedis::start();
    let store = store(&redis.url()).await;
    let router = Router::new(store.clone(), LayoutSpec::Single, RouterOptions::default());
    let board = BoardId::new(testkit::unique("given-back")).expect("board");
    let (gone, cheat, kept) = (player("gone"), player("cheat"), player("kept"));
    let scores: Vec<ScoreUpdate> = [&gone, &cheat, &kept]
        .iter()
        .enumerate()
        .map(|(i, p)| ScoreUpdate {
            board: board.clone(),
            player: (*p).clone(),
            score: 10 + i as u64,
            time_ms: 1,
            meta: None,
            source: None,
        })
        .collect();
    router.apply(&scores).await.expect("apply");
    let checkpoint = redis.checkpoint();

    let log = log();
    let publisher = log.publisher().expect("publisher");
    let erased = router.erase_player(&gone).await.expect("erase");
    publisher.publish(&store, &gone).await.expect("publish");
    router.ban_player(&cheat, &ban_all()).await.expect("ban");
    publisher.publish(&store, &cheat).await.expect("publish");

    // Redis restarts from the file taken before the erasure and the ban.
    redis.roll_back_to(&checkpoint);
    let store = self::store(&redis.url()).await;
    let router = Router::new(store.clone(), LayoutSpec::Single, RouterOptions::default());
    assert!(router.standing(&board, &gone).await.expect("standing").is_some(), "the rollback brought them back");
    assert_eq!(registry::status(&store, &gone).await.expect("status").erased_at_ms, None);

    let marks = log.read_all().await.expect("read").expect("topic");
    let gave = router.give_back_registry(&marks).await.expect("give back");
    assert_eq!((gave.erasures, gave.bans), (1, 1), "{gave:?}");
    assert_eq!(router.standing(&board, &gone).await.expect("standing"), None, "erased again");
    assert_eq!(router.standing(&board, &cheat).await.expect("standing"), None, "banned again");
    assert!(router.standing(&board, &kept).await.expect("standing").is_some());
    let status = registry::status(&store, &gone).await.expect("status");
    assert_eq!(status.erased_at_ms, Some(erased.at_ms));
    assert!(!status.erasure_unfinished, "the removal is recorded finished");
    assert!(registry::status(&store, &cheat).await.expect("status").ban.is_some());
    let again = router.give_back_registry(&marks).await.expect("again");
    assert_eq!((again.erasures, again.bans), (0, 0), "nothing is given twice");
}
