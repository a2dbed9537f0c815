//! Least privilege: a worker running as the `lb-ingest` Redis user (scripts/lib/redis-acl.sh)
//! applies events to boards and their seasons and closes seasons, and that user can touch
//! neither the audit log nor anything outside `lb:` nor run dangerous commands.

use std::time::Duration;

use leaderboard_contract::BoardId;
use leaderboard_semantics::Rules;
use leaderboard_semantics::season::{Every, Reset};
use leaderboard_store::layout::record::{self, RecordedLayout};
use leaderboard_store::{RedisTarget, Store, StoreOptions};

use crate::helpers::{
    Topics, Worker, config, oracle_of, produce_events, producer, random_events, redis_url, router, unique,
    wait_for_oracle,
};

#[tokio::test]
async fn the_ingest_user_writes_boards_and_seasons_and_nothing_else() {
    let user = testkit::redis_user_url("ingest");
    let topics = Topics::create(3).await;
    let (plain, daily) =
        (BoardId::new(unique("acl-in")).expect("board"), BoardId::new(unique("acl-day")).expect("board"));
    let admin = router(&redis_url(), "hash:2").await;
    let reset =
        Reset { every: Every::Day, utc_offset: time::UtcOffset::UTC, weekday: time::Weekday::Monday, span: None };
    let rules = Rules { reset: Some(reset), late_grace: Duration::from_secs(3600), ..Rules::default() };
    record::set_rules(admin.store(), &daily, RecordedLayout::Hash { shards: 2 }, rules).await.expect("rules");
    let mut events = random_events(1, &plain, 100, 1000);
    events.extend(random_events(2, &daily, 100, 1000));
    produce_events(&producer(), &topics.scores, &events).await;
    let worker = Worker::start(config(&topics, &user, "hash:2"));
    let oracle = oracle_of(&events);
    wait_for_oracle(&admin, &oracle, &plain, Duration::from_secs(60)).await;
    wait_for_oracle(&admin, &oracle, &daily, Duration::from_secs(60)).await;
    let seasons = admin.seasons(&daily).await.expect("seasons");
    assert_eq!(seasons.len(), 1, "the worker opened today's season as lb-ingest");
    let season = daily.season(&seasons[0].id);
    assert_eq!(admin.total(&season).await.expect("total"), admin.total(&daily).await.expect("total"));
    let report = worker.stop().await;
    assert_eq!((report.dead_lettered, report.redis_errors), (0, 0), "{report:?}");

    let store =
        Store::connect(&RedisTarget::parse(&user).expect("url"), StoreOptions::default()).await.expect("connect");
    let refused: Vec<redis::Cmd> = vec![
        redis::cmd("XADD").arg("lb:audit").arg("*").arg("who").arg("intruder").clone(),
        redis::cmd("SET").arg("not-ours").arg(1).clone(),
        redis::cmd("FLUSHALL").clone(),
        redis::cmd("KEYS").arg("*").clone(),
        redis::cmd("CONFIG").arg("SET").arg("appendonly").arg("no").clone(),
        redis::cmd("EVAL").arg("return redis.call('XADD', KEYS[1], '*', 'a', 'b')").arg(1).arg("lb:audit").clone(),
    ];
    for cmd in &refused {
        let text = format!("{:?}", store.query::<redis::Value>(cmd).await).to_lowercase();
        assert!(text.contains("noperm") || text.contains("no permissions"), "{cmd:?}: {text}");
    }
}
