//! Disaster recovery against the real pipeline: a broker topic, live ingest
//! workers and a Redis of the test's own that the test wipes (`FLUSHALL`).

mod manual;
mod setup;

use std::time::Duration;

use admin::recover::{self, RebuildOptions, RestoreOptions};
use leaderboard_contract::PlayerId;
use leaderboard_contract::signature::ProducerKey;
use leaderboard_semantics::{Rules, ScoreUpdate};
use leaderboard_store::{RedisTarget, Router, RouterOptions, Store, StoreOptions};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::{Offset, TopicPartitionList};
use testkit::{brokers, unique};
use tokio_util::sync::CancellationToken;

use self::setup::{LAYOUT, Setup, WAIT, Worker, board, operators, time_trial};

#[tokio::test]
async fn flushall_mid_stream_then_restore_of_a_snapshot_taken_under_load_plus_replay_equals_the_oracle() {
    let mut s = Setup::new(3).await;
    let (high, trial) = (board("dr-high"), board("dr-trial"));
    s.create(&high, Rules::default()).await;
    s.create(&trial, time_trial()).await;
    // `sum` and `last` boards: their shards are read at one instant with their applied offsets.
    let [(xp, xp_rules), (latest, latest_rules)] = operators();
    s.create(&xp, xp_rules).await;
    s.create(&latest, latest_rules).await;
    let worker = Worker::start(s.ingest_config()).await;
    s.produce(&[&high, &trial, &xp, &latest], 3000).await;
    s.wait_caught_up().await;

    // The snapshot is taken while the stream goes on: events land during the scan.
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("all.lbsnap");
    let store = s.store().await;
    let (redis, kafka) = (s.redis_args(), s.kafka.clone());
    let snapshot = {
        let (store, file) = (store.clone(), file.clone());
        tokio::spawn(async move { recover::snapshot(&store, &redis, &kafka, &[], &file, true).await })
    };
    s.produce(&[&high, &trial, &xp, &latest], 3000).await;
    let taken = tokio::time::timeout(WAIT, snapshot).await.expect("snapshot in time").expect("task").expect("snapshot");
    assert_eq!((taken.totals.boards, taken.totals.shards), (4, 8), "2 boards of 4 shards with their offsets");
    s.wait_caught_up().await;

    // The store is wiped mid-stream: events before and after the wipe.
    s.produce(&[&high, &trial, &xp, &latest], 1000).await;
    s.flushall().await;
    s.produce(&[&high, &trial, &xp, &latest], 1000).await;
    worker.wait_store_lost().await;
    // By construction, as the suite once saw it happen: restore kept such keys, and the replay
    // added to their totals. Restore must not keep any of it.
    s.plant_stray_shard(&xp).await;
    // As the review saw it: a snapshot of the wiped store was accepted (0 boards) and, restored, finished the
    // loss. It is refused, naming the cause, and leaves no file.
    let wiped = dir.path().join("wiped.lbsnap");
    let refused = recover::snapshot(&store, &s.redis_args(), &s.kafka, &[], &wiped, true).await;
    assert!(refused.is_err_and(|e| e.to_string().contains("the store is lost")), "a snapshot of a wiped store");
    assert!(!wiped.exists() && !wiped.with_extension("partial").exists());

    let options = RestoreOptions { boards: Vec::new(), layout: None, replay: true, unchecked: false, quiet: true };
    let redis = s.redis_args();
    let restoring = recover::restore(&store, &redis, &s.kafka, &file, &options);
    let restored = tokio::time::timeout(WAIT, restoring).await.expect("restore in time").expect("restore");
    assert!(restored.epoch_installed, "{restored:?}");
    assert!(restored.replayed_records > 0, "{restored:?}");
    // The worker resumes on the new epoch and applies what came after the replay's end.
    s.produce(&[&high, &trial, &xp, &latest], 500).await;
    s.wait_caught_up().await;
    s.assert_equals_oracle().await;

    // One board restored again from the same file, into the recovered store: the report says the
    // snapshot predates that recovery, and the replay brings the board up to date all the same.
    s.router().await.delete_board(&trial).await.expect("delete");
    let one = RestoreOptions { boards: vec![trial.clone()], ..options };
    let again = recover::restore(&store, &redis, &s.kafka, &file, &one).await.expect("restore one board");
    assert!(again.predates.as_deref().is_some_and(|p| p.contains("predate that recovery")), "{again:?}");
    s.wait_caught_up().await;
    s.assert_equals_oracle().await;
    worker.stop().await;
}

/// `sum` and `last` boards on `range`: a snapshot taken under load reads their homes at one
/// instant each with their applied offsets; after a FLUSHALL mid-stream, restore loads the homes
/// and places them in the shards, and the replay adds exactly what the snapshot lacked.
#[tokio::test]
async fn range_operator_boards_survive_flushall_through_snapshot_restore_and_replay() {
    let mut s = Setup::with_layout(3, "range:50000,400000").await;
    let [(xp, xp_rules), (latest, latest_rules)] = operators();
    s.create(&xp, xp_rules).await;
    s.create(&latest, latest_rules).await;
    let worker = Worker::start(s.ingest_config()).await;
    s.produce(&[&xp, &latest], 2000).await;
    s.wait_caught_up().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("ranged.lbsnap");
    let store = s.store().await;
    let snapshot = {
        let (store, file, redis, kafka) = (store.clone(), file.clone(), s.redis_args(), s.kafka.clone());
        tokio::spawn(async move { recover::snapshot(&store, &redis, &kafka, &[], &file, true).await })
    };
    s.produce(&[&xp, &latest], 2000).await;
    let taken = tokio::time::timeout(WAIT, snapshot).await.expect("snapshot in time").expect("task").expect("snapshot");
    assert_eq!((taken.totals.boards, taken.totals.shards), (2, 32), "2 boards of 16 homes with their offsets");
    s.wait_caught_up().await;
    s.produce(&[&xp, &latest], 500).await;
    s.flushall().await;
    s.produce(&[&xp, &latest], 500).await;
    worker.wait_store_lost().await;
    let options = RestoreOptions { boards: Vec::new(), layout: None, replay: true, unchecked: false, quiet: true };
    let redis = s.redis_args();
    let restoring = recover::restore(&store, &redis, &s.kafka, &file, &options);
    let restored = tokio::time::timeout(WAIT, restoring).await.expect("restore in time").expect("restore");
    assert!(restored.epoch_installed && restored.replayed_records > 0, "{restored:?}");
    s.produce(&[&xp, &latest], 300).await;
    s.wait_caught_up().await;
    s.assert_equals_oracle().await;
    worker.stop().await;
}

/// A snapshot file written before snapshots refused a lost store carries no epoch: it may be what
/// was left of a wiped store (zero boards), and restoring it would finish the loss. Refused,
/// naming why, unless the operator says `--unchecked`.
#[tokio::test]
async fn a_snapshot_without_an_epoch_is_restored_only_when_asked() {
    let s = Setup::new(1).await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("legacy.lbsnap");
    let header = admin::snapshot::Header {
        format: admin::snapshot::FORMAT.into(),
        version: admin::snapshot::VERSION,
        created_at_ms: 1,
        topic: s.kafka.topic.clone(),
        group: s.kafka.group.clone(),
        offsets: std::collections::BTreeMap::new(),
        epoch: None,
    };
    admin::snapshot::Writer::create(&file, &header).expect("file").finish().expect("written");
    let store = s.store().await;
    let options = RestoreOptions { boards: Vec::new(), layout: None, replay: false, unchecked: false, quiet: true };
    let refused = recover::restore(&store, &s.redis_args(), &s.kafka, &file, &options).await;
    let message = refused.expect_err("no epoch in the file").to_string();
    assert!(message.contains("carries no epoch") && message.contains("--unchecked"), "{message}");
    assert_eq!(
        leaderboard_store::marker::epoch::read(&store).await.expect("epoch"),
        leaderboard_store::marker::epoch::State::Missing,
        "nothing installed"
    );
    let unchecked = RestoreOptions { unchecked: true, ..options };
    let restored = recover::restore(&store, &s.redis_args(), &s.kafka, &file, &unchecked).await.expect("restore");
    assert_eq!((restored.loaded.boards, restored.snapshot_epoch.as_deref()), (0, Some("unknown")), "{restored:?}");
}

#[tokio::test]
async fn a_restore_into_another_layout_keeps_seasons_and_their_fences() {
    let s = Setup::new(1).await;
    let router = s.router().await;
    let seasonal = board("dr-season");
    let rules: Rules =
        serde_json::from_value(serde_json::json!({"reset": {"every": "day", "utc_offset": "+00:00"}})).expect("rules");
    router.set_rules(&seasonal, rules).await.expect("rules");
    let season = leaderboard_store::board::seasons::season_of(&rules, 86_400_000 * 3 + 5).expect("a season");
    let name = router.open_season(&seasonal, &rules, &season).await.expect("open");
    let rows: Vec<ScoreUpdate> = (0..50u64)
        .map(|i| ScoreUpdate {
            board: name.clone(),
            player: PlayerId::new(format!("p{i}")).expect("id"),
            score: i,
            time_ms: 0,
            meta: None,
            source: None,
        })
        .collect();
    router.apply(&rows).await.expect("season rows");
    router
        .apply(&rows.iter().map(|r| ScoreUpdate { board: seasonal.clone(), ..r.clone() }).collect::<Vec<_>>())
        .await
        .expect("rows");
    router.close_season(&seasonal, &season.id, 86_400_000 * 4 + 20_000).await.expect("close");
    // A ban reached the closed season after it closed: it says so, and so does its restore.
    assert!(router.amend_season(&seasonal, &season.id, 86_400_000 * 5, None).await.expect("amend"));
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("season.lbsnap");
    let store = s.store().await;
    // A snapshot is of an intact store: its epoch, as a deployment's first ingest worker makes it.
    leaderboard_store::marker::epoch::create_new(&store).await.expect("epoch");
    recover::snapshot(&store, &s.redis_args(), &s.kafka, std::slice::from_ref(&seasonal), &file, true)
        .await
        .expect("snapshot");
    s.flushall().await;

    let options = RestoreOptions {
        boards: vec![seasonal.clone()],
        layout: Some("single".parse().expect("layout")),
        replay: false,
        unchecked: false,
        quiet: true,
    };
    let restored = recover::restore(&store, &s.redis_args(), &s.kafka, &file, &options).await.expect("restore");
    assert_eq!((restored.loaded.boards, restored.loaded.players), (2, 100), "{restored:?}");
    let single = Router::new(store.clone(), "single".parse().expect("layout"), RouterOptions::default());
    assert_eq!(single.stats(&seasonal).await.expect("stats").strategy, "single");
    assert_eq!(single.top(&name, 0, 100).await.expect("season").total, 50);
    let entries = single.seasons(&seasonal).await.expect("seasons");
    assert_eq!(entries[0].closed_at_ms, Some(86_400_000 * 4 + 20_000), "closed as it was");
    assert_eq!(entries[0].amended_at_ms, Some(86_400_000 * 5), "amended as it was");
    let late = ScoreUpdate {
        board: name.clone(),
        player: PlayerId::new("late").expect("id"),
        score: 9,
        time_ms: 0,
        meta: None,
        source: None,
    };
    assert_eq!(single.apply(&[late]).await.expect("write").closed.len(), 1, "the restored fence refuses writes");
    let again = recover::restore(&store, &s.redis_args(), &s.kafka, &file, &options).await;
    assert!(again.is_err_and(|e| e.to_string().contains("exists")), "never merges into a live board");
}

#[tokio::test]
async fn rebuild_from_kafka_alone_equals_the_oracle_and_refuses_when_events_expired() {
    let mut s = Setup::new(2).await;
    let (high, trial) = (board("rb-high"), board("rb-trial"));
    s.create(&high, Rules::default()).await;
    s.create(&trial, time_trial()).await;
    let [(xp, xp_rules), (latest, latest_rules)] = operators();
    s.create(&xp, xp_rules).await;
    s.create(&latest, latest_rules).await;
    let store = s.store().await;
    // The boards' rules, kept as a snapshot before any event (a rebuild has no other source of them).
    let dir = tempfile::tempdir().expect("dir");
    let rules_file = dir.path().join("rules.lbsnap");
    leaderboard_store::marker::epoch::create_new(&store).await.expect("epoch");
    recover::snapshot(&store, &s.redis_args(), &s.kafka, &[], &rules_file, true).await.expect("snapshot");
    let worker = Worker::start(s.ingest_config()).await;
    s.produce(&[&high, &trial, &xp, &latest], 3000).await;
    s.wait_caught_up().await;
    worker.stop().await;

    // A worker started on the wiped store finds the group's offsets and stays lost.
    s.flushall().await;
    let worker = Worker::start(s.ingest_config()).await;
    worker.wait_store_lost().await;
    s.produce(&[&high, &trial, &xp, &latest], 500).await;
    s.plant_stray_shard(&xp).await;

    let options = RebuildOptions {
        layout: LAYOUT.parse().expect("layout"),
        rules_from: Some(rules_file.clone()),
        discard_existing: false,
        quiet: true,
    };
    let rebuilt = recover::rebuild(&store, &s.redis_args(), &s.kafka, &options).await.expect("rebuild");
    assert!(rebuilt.epoch_installed && rebuilt.replayed_records >= 3500, "{rebuilt:?}");
    s.wait_caught_up().await;
    s.assert_equals_oracle().await;
    let refused = recover::rebuild(&store, &s.redis_args(), &s.kafka, &options).await;
    assert!(refused.is_err_and(|e| e.to_string().contains("did not lose")), "a rebuild needs a lost store");

    // Retention removes the oldest records of partition 0: a rebuild would be partial, so it is refused.
    worker.stop().await;
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers()).create().expect("admin client");
    let mut cut = TopicPartitionList::new();
    cut.add_partition_offset(&s.kafka.topic, 0, Offset::Offset(10)).expect("offset");
    admin.delete_records(&cut, &AdminOptions::new()).await.expect("delete records");
    s.flushall().await;
    let expired = recover::rebuild(&store, &s.redis_args(), &s.kafka, &options).await;
    let message = expired.expect_err("events expired").to_string();
    assert!(message.contains("partition 0 starts at offset 10"), "{message}");
    assert_eq!(
        leaderboard_store::marker::epoch::read(&store).await.expect("epoch"),
        leaderboard_store::marker::epoch::State::Missing
    );
    let boards = leaderboard_store::layout::record::boards(&store).await.expect("boards");
    assert!(boards.is_empty(), "nothing half-built: {boards:?}");
}

/// A new epoch (`epoch --adopt`; restore and rebuild install theirs the same way) is confirmed by
/// every connected replica before the command returns: a failover right after would otherwise
/// promote a replica without it, and the store would look lost again. By construction: one
/// replica is paused with its link open, so it counts as connected and cannot confirm.
#[tokio::test]
async fn a_new_epoch_waits_for_every_connected_replica() {
    let redis = testkit::PrivateSentinel::start();
    let primary = redis.primary_port();
    let replicas: Vec<u16> = redis.node_ports().into_iter().filter(|&p| p != primary).collect();
    redis.pause_node(replicas[0]);
    let refused = crate::admin_as(&redis.url(), &["epoch", "--adopt"]).await;
    redis.resume_node(replicas[0]);
    let message = refused.expect_err("a replica never confirmed the epoch").to_string();
    assert!(message.contains("reached 1 of the 2 connected replicas"), "{message}");

    let adopted = crate::admin_as(&redis.url(), &["epoch", "--adopt", "--json"]).await.expect("adopt");
    let report: serde_json::Value = serde_json::from_str(&adopted).expect("json");
    assert_eq!(report["state"], "intact", "{report}");
    let id = report["epoch"]["id"].as_str().expect("id");
    for port in replicas {
        let node = Store::connect(
            &RedisTarget::parse(&format!("redis://127.0.0.1:{port}")).expect("url"),
            StoreOptions::default(),
        )
        .await
        .expect("replica");
        let copy: Option<String> =
            node.query(redis::cmd("GET").arg(leaderboard_store::marker::epoch::KEY)).await.expect("get");
        assert!(copy.is_some_and(|c| c.contains(id)), "replica {port} has the epoch when the command returns");
    }
}

/// An api of the test's own on `redis`, checking the store's epoch every 50 ms.
async fn start_api(redis: &str) -> api::testing::TestServer {
    use clap::Parser as _;
    let config = api::Config::try_parse_from(["api", "--redis", redis, "--layout", LAYOUT, "--loss-check", "50ms"])
        .expect("api config");
    api::testing::TestServer::start(config, None, CancellationToken::new()).await.expect("api")
}

/// Waits until the api answers `path` with `status` and, for errors, `code`.
async fn wait_api(addr: std::net::SocketAddr, path: &str, status: u16, code: Option<&str>) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(r) = reqwest::get(format!("http://{addr}{path}")).await {
            let got = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap_or(serde_json::Value::Null);
            if got == status && code.is_none_or(|c| body["error"]["code"] == c) {
                return body;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "{path} never answered {status} {code:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// As the review saw it: a Redis restarted from an older persisted state keeps
/// its epoch, and the group's committed offsets skip what it forgot (17,459
/// mismatches). By construction: the state is copied while the pipeline is
/// caught up, more events are applied and committed, then Redis is killed and
/// restarted on the copy. The worker finds the store's applied offsets below
/// the committed ones and marks the store lost; the api answers 503
/// `store_lost`; `lb-admin epoch` says why; `lb-admin catch-up` replays from
/// the store's own applied offsets (no snapshot) and everything equals the oracle.
#[tokio::test]
async fn a_redis_restarted_from_an_older_state_is_a_loss_that_catch_up_repairs() {
    let mut s = Setup::new(3).await;
    let (high, trial) = (board("rb-high"), board("rb-trial"));
    s.create(&high, Rules::default()).await;
    s.create(&trial, time_trial()).await;
    let [(xp, xp_rules), (latest, latest_rules)] = operators();
    s.create(&xp, xp_rules).await;
    s.create(&latest, latest_rules).await;
    let worker = Worker::start(s.ingest_config()).await;
    let api_server = start_api(&s.redis.url()).await;
    let api = api_server.addr;
    s.produce(&[&high, &trial, &xp, &latest], 2000).await;
    s.wait_caught_up().await;
    let older = s.redis.checkpoint();
    s.produce(&[&high, &trial, &xp, &latest], 2000).await;
    s.wait_caught_up().await;
    let top = format!("/v1/boards/{high}/top");
    wait_api(api, &top, 200, None).await;

    s.redis.roll_back_to(&older);
    // Whether or not the worker has noticed yet, a snapshot of the rolled-back store is refused.
    let dir = tempfile::tempdir().expect("dir");
    let refused =
        recover::snapshot(&s.store().await, &s.redis_args(), &s.kafka, &[], &dir.path().join("x"), true).await;
    let message = refused.expect_err("a snapshot of a store that went back in time").to_string();
    assert!(message.contains("went back in time") || message.contains("the store is lost"), "{message}");
    worker.wait_store_lost().await;
    wait_api(api, &top, 503, Some("store_lost")).await;
    let url = s.redis.url();
    let shown: serde_json::Value =
        serde_json::from_str(&crate::admin_as(&url, &["epoch", "--json"]).await.expect("epoch")).expect("json");
    assert_eq!(shown["state"], "missing", "{shown}");
    assert_eq!(shown["loss"]["cause"], "rollback", "{shown}");
    assert_eq!(shown["loss"]["topic"], s.kafka.topic.as_str(), "{shown}");

    // Events keep coming while the store is lost; they wait in Kafka.
    s.produce(&[&high, &trial, &xp, &latest], 500).await;
    let k = s.kafka.clone();
    let kafka = ["--brokers", &k.brokers, "--topic", &k.topic, "--group", &k.group];
    let caught = crate::admin_as(&url, &[&["catch-up", "--json", "--layout", LAYOUT][..], &kafka[..]].concat())
        .await
        .expect("catch-up");
    let report: serde_json::Value = serde_json::from_str(&caught).expect("json");
    assert_eq!(report["epoch_installed"], true, "{report}");
    let replayed = report["replayed_records"].as_u64().expect("records");
    assert!((2000..4500).contains(&replayed), "replays what the store forgot, not the whole topic: {report}");
    s.produce(&[&high, &trial, &xp, &latest], 500).await;
    s.wait_caught_up().await;
    s.assert_equals_oracle().await;
    wait_api(api, &top, 200, None).await;
    let refused = crate::admin_as(&url, &[&["catch-up"][..], &kafka[..]].concat()).await;
    assert!(refused.is_err_and(|e| e.to_string().contains("not lost")), "a catch-up needs a lost store");
    api_server.stop().await.expect("api");
    worker.stop().await;
}

/// As the review suspected: a replay ran without the live signature policy, so forged records the
/// live workers had dead-lettered were applied, and records signed with a key retired since would
/// have been dropped with nothing but a count. Live: key gs-1, then rotated to gs-2 (gs-1
/// retired), a few forged records each time. A rebuild without keys, and one with the live key
/// only, fail (nothing they cannot judge is applied, the store stays lost); with the retired key
/// too it equals the oracle, forgeries refused and reported.
#[tokio::test]
async fn a_replay_judges_signatures_as_the_live_workers_did() {
    let mut s = Setup::new(2).await;
    let signed = board("signed");
    s.create(&signed, Rules::default()).await;
    let secret = |byte: u8| hex::encode([byte; 16]);
    let old = ProducerKey::parse(&format!("gs-1:{}", secret(1))).expect("key");
    let new = ProducerKey::parse(&format!("gs-2:{}", secret(2))).expect("key");
    for signer in [&old, &new] {
        let mut config = s.ingest_config();
        config.signatures.producer_keys = vec![signer.clone()];
        let worker = Worker::start(config).await;
        s.produce_signed(&signed, 400, 15, signer).await;
        s.wait_caught_up().await;
        worker.stop().await;
    }
    s.assert_equals_oracle().await;

    s.flushall().await;
    let store = s.store().await;
    let options = RebuildOptions {
        layout: LAYOUT.parse().expect("layout"),
        rules_from: None,
        discard_existing: true,
        quiet: true,
    };
    let mut kafka = s.kafka.clone();
    let unjudged = recover::rebuild(&store, &s.redis_args(), &kafka, &options).await;
    let message = unjudged.expect_err("no key: the live policy is unknown").to_string();
    assert!(message.contains("830 replayed records are signed with keys this replay was not given"), "{message}");
    kafka.policy.signatures.producer_keys = vec![new.clone()];
    let retired = recover::rebuild(&store, &s.redis_args(), &kafka, &options).await;
    let message = retired.expect_err("the retired key's records").to_string();
    assert!(message.contains("415 replayed records are signed with keys"), "{message}");
    assert_eq!(
        leaderboard_store::marker::epoch::read(&store).await.expect("epoch"),
        leaderboard_store::marker::epoch::State::Missing
    );

    kafka.policy.retired_producer_keys = vec![old];
    let rebuilt = recover::rebuild(&store, &s.redis_args(), &kafka, &options).await.expect("rebuild");
    assert_eq!(rebuilt.replay_refused, 30, "the forgeries, refused as the live workers refused them: {rebuilt:?}");
    s.assert_equals_oracle().await;
}

/// Rules at the time of the event or today's? A replay applies today's (the rules the store or the
/// snapshot holds): a bound narrowed after events were applied refuses those events in a replay,
/// and says how many (`replay_refused`), while a snapshot taken after the change keeps what the
/// live workers applied. Decided in docs/security.md ("The policy is today's").
#[tokio::test]
async fn a_replay_applies_todays_rules_and_a_snapshot_keeps_what_was_applied() {
    let mut s = Setup::new(2).await;
    let b = board("narrowed");
    s.create(&b, Rules::default()).await;
    let worker = Worker::start(s.ingest_config()).await;
    s.produce(&[&b], 1000).await;
    s.wait_caught_up().await;
    worker.stop().await;
    let narrowed = Rules { max_score: 50_000, ..Rules::default() };
    s.router().await.set_rules(&b, narrowed).await.expect("narrow the bound");
    let store = s.store().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("after.lbsnap");
    recover::snapshot(&store, &s.redis_args(), &s.kafka, &[], &file, true).await.expect("snapshot");
    let above = s.oracle.board(&b).expect("board").top(0, 10_000).entries.iter().filter(|e| e.score > 50_000).count();
    assert!(above > 0, "the live workers applied scores above today's bound");

    // A snapshot keeps them: restored and replayed from its offsets, the board is the live one.
    s.flushall().await;
    let options = RestoreOptions { boards: Vec::new(), layout: None, replay: true, unchecked: false, quiet: true };
    recover::restore(&store, &s.redis_args(), &s.kafka, &file, &options).await.expect("restore");
    s.assert_equals_oracle().await;

    // A rebuild replays every event under today's bound: the ones above it are refused, and counted.
    s.flushall().await;
    let rebuild = RebuildOptions {
        layout: LAYOUT.parse().expect("layout"),
        rules_from: Some(file),
        discard_existing: true,
        quiet: true,
    };
    let rebuilt = recover::rebuild(&store, &s.redis_args(), &s.kafka, &rebuild).await.expect("rebuild");
    assert!(rebuilt.replay_refused > 0, "{rebuilt:?}");
    let page = s.router().await.top(&b, 0, 10_000).await.expect("top");
    assert!(page.entries.iter().all(|e| e.score <= 50_000), "nothing above today's bound");
}

/// Erasures and bans survive a wipe of the store, which takes the registry
/// with it: the players log gives them back before a restore of a snapshot
/// taken before them loads its rows, and before a rebuild replays the topic.
/// The erased and the banned player stay out of both; everyone else equals
/// the oracle.
#[tokio::test]
async fn erasures_and_bans_survive_a_wipe_through_the_players_log() {
    use leaderboard_store::marker::registry::{Ban, BanScope};
    let mut s = Setup::new(2).await;
    let b = board("gdpr");
    s.create(&b, Rules::default()).await;
    let store = s.store().await;
    let dir = tempfile::tempdir().expect("dir");
    let rules_file = dir.path().join("rules.lbsnap");
    leaderboard_store::marker::epoch::create_new(&store).await.expect("epoch");
    recover::snapshot(&store, &s.redis_args(), &s.kafka, &[], &rules_file, true).await.expect("rules snapshot");
    let worker = Worker::start(s.ingest_config()).await;
    s.produce(&[&b], 2000).await;
    s.wait_caught_up().await;
    worker.stop().await;
    let file = dir.path().join("before.lbsnap");
    recover::snapshot(&store, &s.redis_args(), &s.kafka, &[], &file, true).await.expect("snapshot");

    // Erased and banned as the api does it: in the store, then in the log.
    let router = s.router().await;
    let (gone, cheat) = (PlayerId::new("p1").expect("id"), PlayerId::new("p2").expect("id"));
    for p in [&gone, &cheat] {
        assert!(router.standing(&b, p).await.expect("standing").is_some(), "{p} has a score first");
    }
    let log =
        leaderboard_players_log::PlayersLog::new(brokers(), Vec::new(), s.kafka.players_log.players_topic.clone());
    let publisher = log.publisher().expect("publisher");
    router.erase_player(&gone).await.expect("erase");
    publisher.publish(&store, &gone).await.expect("kept");
    let ban = Ban { boards: BanScope::ALL, closed_seasons: false, reason: "aimbot".into(), at_ms: 1 };
    router.ban_player(&cheat, &ban).await.expect("ban");
    publisher.publish(&store, &cheat).await.expect("kept");
    let expected = s.oracle.board_mut(&b).expect("board");
    assert!(expected.remove(&gone) && expected.remove(&cheat));

    s.flushall().await;
    let options = RestoreOptions { boards: Vec::new(), layout: None, replay: true, unchecked: false, quiet: true };
    let restored = recover::restore(&store, &s.redis_args(), &s.kafka, &file, &options).await.expect("restore");
    assert!(restored.players.found && (restored.players.erasures, restored.players.bans) == (1, 1), "{restored:?}");
    assert!(restored.left_out >= 2, "the file's rows of both are left out: {restored:?}");
    s.assert_equals_oracle().await;

    s.flushall().await;
    let options = RebuildOptions {
        layout: LAYOUT.parse().expect("layout"),
        rules_from: Some(rules_file),
        discard_existing: false,
        quiet: true,
    };
    let rebuilt = recover::rebuild(&store, &s.redis_args(), &s.kafka, &options).await.expect("rebuild");
    assert_eq!((rebuilt.players.erasures, rebuilt.players.bans), (1, 1), "{rebuilt:?}");
    s.assert_equals_oracle().await;

    // Without the log (a deployment that keeps none): a snapshot file carries the registry too.
    let after = dir.path().join("after.lbsnap");
    recover::snapshot(&store, &s.redis_args(), &s.kafka, &[], &after, true).await.expect("snapshot");
    s.flushall().await;
    let mut no_log = s.kafka.clone();
    no_log.players_log.players_topic = unique("no-such-topic");
    let options = RestoreOptions { boards: Vec::new(), layout: None, replay: true, unchecked: false, quiet: true };
    let restored = recover::restore(&store, &s.redis_args(), &no_log, &after, &options).await.expect("restore");
    let p = &restored.players;
    assert!(!p.found && p.in_file == 2 && (p.erasures, p.bans) == (1, 1), "{restored:?}");
    let status = leaderboard_store::marker::registry::status(&store, &gone).await.expect("status");
    assert!(status.erased_at_ms.is_some() && !status.erasure_unfinished, "{status:?}");
    let status = leaderboard_store::marker::registry::status(&store, &cheat).await.expect("status");
    assert_eq!(status.ban.map(|b| b.reason), Some("aimbot".into()));
    s.assert_equals_oracle().await;
}
