//! Hostile input and a hostile store: nothing stops the pipeline, memory stays bounded.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use leaderboard_contract::{BoardId, ScoreEvent};
use sha2::{Digest, Sha256};
use testkit::PrivateRedis;

use crate::helpers::{
    ChildProcess, RawRecord, Topics, Worker, committed, config, http_get, oracle_of, produce_events, produce_raw,
    producer, random_events, read_dlq, redis_cmd, redis_url, router, unique, wait_for_committed, wait_for_endpoint,
    wait_for_oracle, worker_args,
};

/// The resident-memory bound documented in `ingest::config` for a worker fed huge records.
const RSS_BOUND_BYTES: u64 = 512 << 20;

fn raw(events: &[ScoreEvent]) -> Vec<RawRecord> {
    events.iter().map(|e| (Some(e.key().to_vec()), Some(e.to_json().into_bytes()))).collect()
}

/// Peak resident memory of a process (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM");
    kib * 1024
}

#[tokio::test]
async fn huge_and_hostile_records_never_stop_the_worker_and_memory_stays_bounded() {
    const HUGE: usize = 2000;
    let topics = Topics::create(3).await;
    let board = BoardId::new(unique("hostile")).expect("board");
    let valid = random_events(51, &board, 500, 6000);
    let (before, rest) = valid.split_at(2000);
    let (during, after) = rest.split_at(2000);
    let producer = producer();
    let addr = SocketAddr::from(([127, 0, 0, 1], testkit::free_port()));
    let mut worker = ChildProcess(
        Command::new(env!("CARGO_BIN_EXE_ingest"))
            .args(worker_args(&topics, &redis_url(), "single"))
            .args(["--metrics-addr", &addr.to_string()])
            // Letters over 512 KiB keep 64 KiB prefixes: the 900 KB records are cut too, which
            // spares the in-memory test broker 1.8 GB of dead letters.
            .args(["--dlq-max-bytes", "524288"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn ingest binary"),
    );

    produce_raw(&producer, &topics.scores, &raw(before)).await;
    // A value just under the broker's limit, and a 200 KB key of control bytes on a valid value.
    let just_under = vec![b'x'; 999_900];
    let control_key: Vec<u8> = (0..200_000u32).map(|i| (i % 32) as u8).collect();
    let mismatched = br#"{"player":"p-1","score":5}"#.to_vec();
    produce_raw(&producer, &topics.scores, &[(None, Some(just_under.clone())), (Some(control_key), Some(mismatched))])
        .await;
    // 2,000 records of 900 KB, made a few at a time (the test holds ~45 MB of them at once).
    let pad = "x".repeat(900_000 - 40);
    for (chunk, valid_chunk) in (0..HUGE).collect::<Vec<_>>().chunks(50).zip(during.chunks(50)) {
        let mut records: Vec<RawRecord> = chunk
            .iter()
            .map(|i| {
                let key = format!("p-{i}");
                let value = format!(r#"{{"player":"{key}","score":1,"pad":"{pad}"}}"#);
                (Some(key.into_bytes()), Some(value.into_bytes()))
            })
            .collect();
        records.extend(raw(valid_chunk));
        produce_raw(&producer, &topics.scores, &records).await;
    }
    produce_raw(&producer, &topics.scores, &raw(after)).await;

    let router = router(&redis_url(), "single").await;
    wait_for_oracle(&router, &oracle_of(&valid), &board, Duration::from_secs(240)).await;
    wait_for_committed(&topics, Duration::from_secs(120)).await;
    let rss = peak_rss(worker.id());
    assert!(worker.try_wait().expect("status").is_none(), "the worker is still running");
    wait_for_endpoint(addr, "/readyz", Duration::from_secs(30), |status, _| status == 200).await;
    assert_eq!(http_get(addr, "/healthz").await.0, 200);
    eprintln!("peak resident memory of the worker: {} MiB", rss >> 20);
    assert!(rss < RSS_BOUND_BYTES, "peak RSS {} MiB exceeds the documented bound", rss >> 20);

    let letters = read_dlq(&topics.dlq, HUGE + 2).await;
    let mut seen_huge = 0;
    for letter in &letters {
        let size: usize = letter.header("original.size").parse().expect("original.size");
        assert_eq!(letter.header("original.topic"), topics.scores);
        assert!(letter.header("error").len() <= "key_mismatch: ".len() + 256, "{}", letter.header("error"));
        match letter.header("error.code") {
            "too_large" if size == just_under.len() => {
                assert_eq!(letter.header("truncated"), "true");
                assert_eq!(letter.header("original.sha256"), format!("{:x}", Sha256::digest(&just_under)));
                assert_eq!(letter.value.as_deref(), Some(&just_under[..64 * 1024]), "a 64 KiB prefix");
            }
            "too_large" => {
                assert!((899_000..=900_000).contains(&size), "{size}");
                assert_eq!(letter.header("truncated"), "true");
                let prefix = letter.value.as_deref().expect("a prefix");
                assert_eq!(prefix.len(), 64 * 1024);
                assert!(prefix.starts_with(br#"{"player":"p-"#), "the record's own first bytes");
                assert_eq!(letter.header("original.sha256").len(), 64);
                seen_huge += 1;
            }
            "key_mismatch" => {
                assert_eq!(letter.key.as_ref().map(Vec::len), Some(200_000), "a letter that fits is kept whole");
                assert_eq!(letter.header("truncated"), "");
            }
            other => panic!("unexpected dead letter {other}: {:?}", letter.headers),
        }
    }
    assert_eq!(seen_huge, HUGE);
    let pid = worker.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
    assert!(worker.wait().expect("wait").success());
}

#[tokio::test]
async fn a_store_out_of_memory_blocks_visibly_and_recovers() {
    let redis = PrivateRedis::start();
    let topics = Topics::create(2).await;
    let board = BoardId::new(unique("oom")).expect("board");
    let events = random_events(71, &board, 800, 8000);
    let (first, second) = events.split_at(4000);
    let producer = producer();
    let worker = Worker::start(config(&topics, &redis.url(), "single"));
    let router = router(&redis.url(), "single").await;
    produce_events(&producer, &topics.scores, first).await;
    wait_for_oracle(&router, &oracle_of(first), &board, Duration::from_secs(60)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    let before = committed(&topics).await;

    redis_cmd(&redis.url(), &["CONFIG", "SET", "maxmemory-policy", "noeviction"]).await;
    redis_cmd(&redis.url(), &["CONFIG", "SET", "maxmemory", "1"]).await;
    produce_events(&producer, &topics.scores, second).await;
    wait_for_endpoint(worker.addr, "/readyz", Duration::from_secs(30), |status, body| {
        status == 503 && body.contains(r#""step":"redis""#) && body.contains(r#""failure":"store_blocked""#)
    })
    .await;
    let (_, metrics) = worker.get("/metrics").await;
    assert!(metrics.contains(r#"ingest_blocked{step="redis"} 1"#), "{metrics}");
    assert_eq!(worker.get("/healthz").await.0, 200, "a blocked store explains the wait: the worker is alive");
    assert_eq!(committed(&topics).await, before, "no offset moves while the store refuses writes");
    let page = router.top(&board, 0, 10_000).await.expect("top");
    let expected = oracle_of(first).board(&board).cloned().expect("board").top(0, 10_000);
    assert_eq!(page, expected, "nothing was applied partially");

    redis_cmd(&redis.url(), &["CONFIG", "SET", "maxmemory", "0"]).await;
    wait_for_oracle(&router, &oracle_of(&events), &board, Duration::from_secs(60)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    wait_for_endpoint(worker.addr, "/readyz", Duration::from_secs(30), |status, _| status == 200).await;
    let report = worker.stop().await;
    assert_eq!(report.dead_lettered, 0, "a blocked store never sets valid events aside");
}

#[tokio::test]
async fn events_the_store_refuses_for_good_are_set_aside() {
    let redis = PrivateRedis::start();
    let topics = Topics::create(2).await;
    let poisoned = BoardId::new(unique("poisoned")).expect("board");
    let healthy = BoardId::new(unique("healthy")).expect("board");
    // The poisoned board's key holds a string: every write to it fails with WRONGTYPE.
    redis_cmd(&redis.url(), &["SET", &leaderboard_store::layout::keys::single(&poisoned), "not a sorted set"]).await;
    let good = random_events(81, &healthy, 300, 3000);
    let bad = random_events(82, &poisoned, 50, 120);
    let mut records = raw(&good);
    for (i, r) in raw(&bad).into_iter().enumerate() {
        records.insert(i * 23 % records.len(), r);
    }
    produce_raw(&producer(), &topics.scores, &records).await;
    let worker = Worker::start(config(&topics, &redis.url(), "single"));
    let router = router(&redis.url(), "single").await;
    wait_for_oracle(&router, &oracle_of(&good), &healthy, Duration::from_secs(60)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    let letters = read_dlq(&topics.dlq, bad.len()).await;
    assert!(letters.iter().all(|l| l.header("error.code") == "unwritable"), "{:?}", letters[0].headers);
    let report = worker.stop().await;
    assert_eq!(report.dead_lettered, bad.len() as u64, "every record of the poisoned board, once");
}

/// As the review suspected, and reproduced here by construction: a board stored
/// with a layout unrelated to the worker's, and a board whose record is
/// unreadable, sit in the same batches as a healthy board. Their events go to
/// the dead letters (`unwritable`, naming the cause) while the healthy board
/// goes on; before, the worker retried the whole batch forever and every board stalled.
#[tokio::test]
async fn a_board_this_worker_cannot_use_stalls_no_other_board() {
    let redis = PrivateRedis::start();
    let topics = Topics::create(2).await;
    let healthy = BoardId::new(unique("healthy")).expect("board");
    let foreign = BoardId::new(unique("foreign")).expect("board");
    let unreadable = BoardId::new(unique("unreadable")).expect("board");
    // Another deployment made `foreign` a hash:4 board; this worker writes `single`.
    router(&redis.url(), "hash:4")
        .await
        .set_rules(&foreign, leaderboard_semantics::Rules::default())
        .await
        .expect("rules");
    redis_cmd(&redis.url(), &["SET", &leaderboard_store::layout::keys::layout(&unreadable), "not a record"]).await;
    let good = random_events(83, &healthy, 300, 3000);
    let (to_foreign, to_unreadable) = (random_events(84, &foreign, 40, 100), random_events(85, &unreadable, 40, 100));
    let bad: Vec<ScoreEvent> = to_foreign.iter().chain(&to_unreadable).cloned().collect();
    let mut records = raw(&good);
    for (i, r) in raw(&bad).into_iter().enumerate() {
        records.insert(i * 13 % records.len(), r);
    }
    produce_raw(&producer(), &topics.scores, &records).await;
    let worker = Worker::start(config(&topics, &redis.url(), "single"));
    let single = router(&redis.url(), "single").await;
    wait_for_oracle(&single, &oracle_of(&good), &healthy, Duration::from_secs(60)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    let letters = read_dlq(&topics.dlq, bad.len()).await;
    assert!(letters.iter().all(|l| l.header("error.code") == "unwritable"), "{:?}", letters[0].headers);
    let about = |board: &BoardId| letters.iter().filter(|l| l.header("error").contains(board.as_str())).count();
    assert_eq!(
        (about(&foreign), about(&unreadable)),
        (to_foreign.len(), to_unreadable.len()),
        "each letter names its board"
    );
    assert!(letters.iter().any(|l| l.header("error").contains("stored with layout hash:4")));
    let report = worker.stop().await;
    assert_eq!(report.dead_lettered, bad.len() as u64, "every record of the unusable boards, once");
}

/// docs/contract.md#dead-letters: a record that cannot be dead-lettered is an operational failure: offsets stop
/// before it, the metrics and `/readyz` say so, and it is never skipped (the next worker, whose
/// dead-letter topic works, sets it aside).
#[tokio::test]
async fn a_record_that_cannot_be_dead_lettered_holds_offsets_and_shows() {
    let mut topics = Topics::create(1).await;
    let working_dlq = std::mem::replace(&mut topics.dlq, "no such topic: not/a/valid name".to_string());
    let board = BoardId::new(unique("dlqdown")).expect("board");
    let events = random_events(91, &board, 200, 2000);
    let (first, second) = events.split_at(1000);
    let mut records = raw(first);
    let malformed_offset = i64::try_from(records.len()).expect("offset");
    records.push((Some(b"p1".to_vec()), Some(b"not json".to_vec())));
    records.extend(raw(second));
    produce_raw(&producer(), &topics.scores, &records).await;
    // Undeliverable letters fail fast, so the test need not wait the default 30 s.
    let fast = ["--kafka-option", "message.timeout.ms=2000"];
    let worker = Worker::start(crate::helpers::config_with(&topics, &redis_url(), "single", &fast));
    wait_for_endpoint(worker.addr, "/readyz", Duration::from_secs(60), |status, body| {
        status == 503 && body.contains(r#""step":"dead_letter""#)
    })
    .await;
    let (_, metrics) = worker.get("/metrics").await;
    assert!(metrics.contains(r#"ingest_blocked{step="dead_letter"} 1"#), "{metrics}");
    assert!(committed(&topics).await[0] <= malformed_offset, "no offset passes the record not set aside");
    worker.stop().await;
    assert!(committed(&topics).await[0] <= malformed_offset, "not even at shutdown");

    topics.dlq = working_dlq;
    let successor = Worker::start(crate::helpers::config_with(&topics, &redis_url(), "single", &fast));
    let router = router(&redis_url(), "single").await;
    wait_for_oracle(&router, &oracle_of(&events), &board, Duration::from_secs(90)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    let letters = read_dlq(&topics.dlq, 1).await;
    assert_eq!(letters[0].header("original.offset"), malformed_offset.to_string());
    successor.stop().await;
}

/// Redis loses data without the worker seeing any error, and without the store's epoch going
/// (a board's key deleted by hand; a `FLUSHALL` is noticed by the epoch, see `lb-admin`'s
/// recovery tests): once the best-score cache's time to live has passed, events below the lost
/// scores are written again.
#[tokio::test]
async fn a_loss_the_worker_cannot_see_is_repaired_after_the_cache_ttl() {
    let redis = PrivateRedis::start();
    let topics = Topics::create(2).await;
    let board = BoardId::new(unique("flushed")).expect("board");
    let player = |i: usize| leaderboard_contract::PlayerId::new(format!("p{i}")).expect("player");
    let event = |i: usize, score: u64| ScoreEvent {
        board: board.clone(),
        player: player(i),
        score,
        ts_ms: None,
        id: None,
        meta: None,
    };
    let high: Vec<ScoreEvent> = (0..200).map(|i| event(i, 1000)).collect();
    let low: Vec<ScoreEvent> = (0..200).map(|i| event(i, 10)).collect();
    let ttl = Duration::from_secs(2);
    let worker = Worker::start(crate::helpers::config_with(&topics, &redis.url(), "single", &["--cache-ttl", "2s"]));
    let router = router(&redis.url(), "single").await;
    produce_events(&producer(), &topics.scores, &high).await;
    wait_for_oracle(&router, &oracle_of(&high), &board, Duration::from_secs(60)).await;
    redis_cmd(&redis.url(), &["DEL", &leaderboard_store::layout::keys::single(&board)]).await;
    // The contract under test is the time to live itself: nothing but its passing can help.
    tokio::time::sleep(ttl + Duration::from_millis(500)).await;
    produce_events(&producer(), &topics.scores, &low).await;
    wait_for_oracle(&router, &oracle_of(&low), &board, Duration::from_secs(60)).await;
    worker.stop().await;
}
