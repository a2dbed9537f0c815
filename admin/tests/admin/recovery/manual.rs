//! A `manual` board's resets survive a wipe: the players log keeps them, and a
//! restore from a snapshot taken before a reset gives the reset back before
//! its replay, which then puts the events after it in the season it opened.

use std::time::Duration;

use admin::recover::{self, RestoreOptions};
use leaderboard_contract::{BoardId, ScoreEvent};
use leaderboard_semantics::clock::system_ms;
use leaderboard_semantics::{Oracle, Rules, ScoreUpdate};
use leaderboard_store::Router;
use leaderboard_store::board::manual::ResetOutcome;
use testkit::brokers;

use super::setup::{Setup, Worker, board};

fn oracle(stored: &BoardId, events: &[&ScoreEvent]) -> Oracle {
    let mut o = Oracle::new();
    for e in events {
        o.apply(&ScoreUpdate {
            board: stored.clone(),
            player: e.player.clone(),
            score: e.score,
            time_ms: e.ts_ms.expect("time"),
            meta: e.meta.clone(),
            source: None,
        });
    }
    o
}

async fn assert_season(router: &Router, stored: &BoardId, expected: &Oracle, context: &str) {
    let want = expected.board(stored).expect("season").top(0, 1_000);
    let got = router.top(stored, 0, 1_000).await.expect("read");
    assert_eq!((got.total, got.entries), (want.total, want.entries), "{stored}: {context}");
}

#[tokio::test]
async fn a_manual_boards_resets_survive_a_wipe_through_the_players_log() {
    let mut s = Setup::new(2).await;
    let b = board("ladder");
    let rules = Rules {
        reset: Some(serde_json::from_str(r#"{"every":"manual"}"#).expect("manual")),
        late_grace: Duration::from_secs(3600),
        ..Rules::default()
    };
    s.create(&b, rules).await;
    let (store, router) = (s.store().await, s.router().await);
    let log =
        leaderboard_players_log::PlayersLog::new(brokers(), Vec::new(), s.kafka.players_log.players_topic.clone());
    let publisher = log.publisher().expect("publisher");
    // As the admin route does it: in the store, then in the log.
    let t0 = u64::try_from(system_ms()).expect("now") - 600_000;
    router.start_manual(&b, i64::try_from(t0).expect("t0")).await.expect("start");
    publisher.publish_resets(&store, &b).await.expect("kept");
    leaderboard_store::marker::epoch::create_new(&store).await.expect("epoch");

    let worker = Worker::start(s.ingest_config()).await;
    let before = s.produce_stamped(&[&b], 800, t0..t0 + 100_000).await;
    s.wait_caught_up().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("before.lbsnap");
    recover::snapshot(&store, &s.redis_args(), &s.kafka, &[], &file, true).await.expect("snapshot");
    // A reset the snapshot predates, then events on both sides of it (late ones of m1 too).
    let reset_at = match router.reset_season(&b, i64::try_from(t0 + 200_000).expect("at"), None).await.expect("reset") {
        ResetOutcome::Ended { ended, .. } => u64::try_from(ended.end_ms).expect("end"),
        other @ ResetOutcome::First(_) => panic!("m1 was open: {other:?}"),
    };
    publisher.publish_resets(&store, &b).await.expect("kept");
    let after = s.produce_stamped(&[&b], 800, t0 + 100_000..t0 + 300_000).await;
    s.wait_caught_up().await;
    worker.stop().await;

    let all: Vec<&ScoreEvent> = before.iter().chain(&after).collect();
    let (m1, m2) = (b.season("m1"), b.season("m2"));
    let split = |first: bool| -> Vec<&ScoreEvent> {
        all.iter().copied().filter(|e| (e.ts_ms.expect("time") < reset_at) == first).collect()
    };
    let (o1, o2) = (oracle(&m1, &split(true)), oracle(&m2, &split(false)));
    assert!(!split(false).is_empty() && !split(true).is_empty(), "events on both sides of the reset");
    assert_season(&router, &m1, &o1, "live").await;
    assert_season(&router, &m2, &o2, "live").await;

    s.flushall().await;
    let options = RestoreOptions { boards: Vec::new(), layout: None, replay: true, unchecked: false, quiet: true };
    let restored = recover::restore(&store, &s.redis_args(), &s.kafka, &file, &options).await.expect("restore");
    assert_eq!((restored.players.manual_boards, restored.players.season_starts), (1, 1), "{restored:?}");
    s.assert_equals_oracle().await;
    assert_season(&router, &m1, &o1, "restored and replayed").await;
    assert_season(&router, &m2, &o2, "restored and replayed").await;
    let registry: Vec<(String, i64)> =
        router.seasons(&b).await.expect("seasons").into_iter().map(|e| (e.id.clone(), e.end_ms)).collect();
    assert_eq!(
        registry,
        [
            ("m2".to_string(), leaderboard_semantics::season::OPEN_END_MS),
            ("m1".to_string(), i64::try_from(reset_at).expect("at"))
        ],
        "the restored m1 ends where the reset ended it"
    );
}
