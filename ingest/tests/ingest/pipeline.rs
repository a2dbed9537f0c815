//! The pipeline end to end: every layout, and malformed input.

use std::collections::HashMap;
use std::time::Duration;

use leaderboard_contract::BoardId;

use crate::helpers::{
    RawRecord, Topics, Worker, config, oracle_of, produce_events, produce_raw, producer, random_events, read_dlq,
    redis_url, router, unique, wait_for_committed, wait_for_oracle,
};

#[tokio::test]
async fn every_layout_ends_equal_to_the_oracle() {
    for layout in ["single", "hash:4", "range:200,500,800"] {
        let topics = Topics::create(4).await;
        let board = BoardId::new(unique("e2e")).expect("board");
        let events = random_events(7, &board, 300, 4000);
        produce_events(&producer(), &topics.scores, &events).await;
        let worker = Worker::start(config(&topics, &redis_url(), layout));
        let router = router(&redis_url(), layout).await;
        wait_for_oracle(&router, &oracle_of(&events), &board, Duration::from_secs(60)).await;
        wait_for_committed(&topics, Duration::from_secs(60)).await;
        let report = worker.stop().await;
        assert_eq!(report.consumed, events.len() as u64, "{layout}: every record consumed once");
        assert_eq!(report.dead_lettered, 0);
        assert!(report.applied + report.skipped + report.coalesced >= events.len() as u64 - 1, "{report:?}");
    }
}

/// The primary with replicas of `scripts/infra.sh`, found through its Sentinels: every batch
/// is confirmed by both replicas (`WAIT`) before its offsets are stored.
#[tokio::test]
async fn a_sentinel_managed_primary_ends_equal_to_the_oracle() {
    let url = testkit::sentinel_url();
    let topics = Topics::create(3).await;
    let board = BoardId::new(unique("sentinel")).expect("board");
    let events = random_events(8, &board, 300, 4000);
    produce_events(&producer(), &topics.scores, &events).await;
    let worker = Worker::start(config(&topics, &url, "hash:2"));
    let router = router(&url, "hash:2").await;
    wait_for_oracle(&router, &oracle_of(&events), &board, Duration::from_secs(60)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    let (_, metrics) = worker.get("/metrics").await;
    assert!(metrics.contains("ingest_replica_wait_seconds_count"), "batches waited for the replicas: {metrics}");
    worker.stop().await;
}

#[tokio::test]
async fn malformed_records_go_to_the_dlq_with_their_reason() {
    let topics = Topics::create(2).await;
    let board = BoardId::new(unique("garbage")).expect("board");
    let valid = random_events(11, &board, 50, 500);
    let k = |s: &str| Some(s.as_bytes().to_vec());
    let big = format!(r#"{{"player":"p1","score":1,"pad":"{}"}}"#, "x".repeat(5000));
    // 513 bytes of `meta`, and a score above every valid one: applied, it would show at the top.
    let big_meta = format!(r#"{{"player":"p1","score":999999,"meta":{{"name":"{}"}}}}"#, "n".repeat(513 - 11));
    #[allow(clippy::type_complexity)]
    let bad: Vec<(Option<Vec<u8>>, Option<Vec<u8>>, &str)> = vec![
        (k("p1"), k("not json at all"), "not_json"),
        (k("p1"), k(r#"{"player":"p1","score":"12"}"#), "invalid_score"),
        (k("p1"), k(r#"{"player":"p1","score":-5}"#), "invalid_score"),
        (k("p1"), k(r#"{"player":"p1","score":9007199254740993}"#), "invalid_score"),
        (k("p1"), Some(big.into_bytes()), "too_large"),
        (k("bad id"), k(r#"{"player":"bad id","score":3}"#), "invalid_player"),
        (k("p2"), k(r#"{"player":"p1","score":3}"#), "key_mismatch"),
        (k("p1"), None, "empty"),
        (k("p1"), Some(vec![b'{', 0xff, b'}']), "not_utf8"),
        (k("p1"), k("[1,2,3]"), "not_object"),
        (k("p1"), k(r#"{"score":3}"#), "missing_player"),
        (k("p1"), k(r#"{"player":"p1","score":1,"board":"no spaces"}"#), "invalid_board"),
        (k("p1"), k(r#"{"player":"p1","score":999999,"meta":"Ann"}"#), "bad_meta"),
        (k("p1"), k(r#"{"player":"p1","score":999999,"meta":[1]}"#), "bad_meta"),
        (k("p1"), k(r#"{"player":"p1","score":999999,"meta":{"n":1,"n":2}}"#), "bad_meta"),
        (k("p1"), Some(big_meta.into_bytes()), "bad_meta"),
    ];
    let mut records: Vec<RawRecord> =
        valid.iter().map(|e| (Some(e.key().to_vec()), Some(e.to_json().into_bytes()))).collect();
    // Interleave the garbage with the valid stream.
    for (i, (key, value, _)) in bad.iter().enumerate() {
        records.insert(i * 37 % records.len(), (key.clone(), value.clone()));
    }
    produce_raw(&producer(), &topics.scores, &records).await;
    let worker = Worker::start(config(&topics, &redis_url(), "single"));
    let router = router(&redis_url(), "single").await;
    wait_for_oracle(&router, &oracle_of(&valid), &board, Duration::from_secs(60)).await;
    let letters = read_dlq(&topics.dlq, bad.len()).await;
    let report = worker.stop().await;
    assert_eq!(report.dead_lettered, bad.len() as u64);
    let mut expected: HashMap<RawRecord, &str> = HashMap::new();
    for (key, value, code) in &bad {
        expected.insert((key.clone(), value.clone()), code);
    }
    for letter in letters {
        let want = expected
            .remove(&(letter.key.clone(), letter.value.clone()))
            .unwrap_or_else(|| panic!("unexpected dead letter {letter:?}"));
        assert_eq!(letter.header("error.code"), want, "reason of {letter:?}");
        assert!(letter.header("error").starts_with(&format!("{want}: ")), "error header of {letter:?}");
        assert_eq!(letter.header("original.topic"), topics.scores);
        assert!(letter.header("original.partition").parse::<i32>().is_ok_and(|p| (0..2).contains(&p)));
        assert!(letter.header("original.offset").parse::<i64>().is_ok_and(|o| o >= 0));
        let size = letter.value.as_ref().map_or(0, Vec::len).to_string();
        assert_eq!(letter.header("original.size"), size, "small records are kept whole");
        assert_eq!(letter.header("truncated"), "", "small records are kept whole");
    }
    assert!(expected.is_empty(), "missing dead letters: {expected:?}");
}
