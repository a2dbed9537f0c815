//! Reads from the replicas of the shared Redis Cluster (`scripts/infra.sh`: three primaries,
//! one replica each), and the watermark that dates them.

use std::time::Duration;

use shard_router::{ReadFrom, RedisTarget, Router, RouterOptions, ScoreUpdate, Store, StoreOptions, watermark};
use testkit::{cluster_urls, command_calls, is_replica, ports_of};
use tokio::time::Instant;

use crate::helpers::{player, store, unique_board};

async fn reader(policy: ReadFrom) -> Store {
    let target = RedisTarget::parse(&format!("cluster:{}", cluster_urls())).expect("cluster urls");
    Store::connect_reader(&target, policy, StoreOptions::default()).await.expect("cluster reader")
}

/// Read commands the cluster's replicas ran so far (replication only brings them writes).
fn replica_reads() -> u64 {
    const READS: [&str; 6] = ["eval_ro", "zrevrange", "zcount", "zscore", "zcard", "zmscore"];
    let replicas: Vec<u16> = ports_of(&cluster_urls()).into_iter().filter(|&p| is_replica(p)).collect();
    replicas.iter().flat_map(|&p| READS.iter().map(move |c| command_calls(p, c))).sum()
}

/// A `replica` reader of the cluster answers from the replicas (their read
/// command counts grow), with the data the primaries acknowledged and the replicas confirmed.
#[tokio::test]
async fn cluster_replicas_serve_reads() {
    let writer = Router::new(store(true).await, "hash:6".parse().expect("layout"), RouterOptions::default());
    let board = unique_board("replica-read");
    let updates: Vec<ScoreUpdate> = (0..200)
        .map(|i| ScoreUpdate { board: board.clone(), player: player(i), score: (i as u64) * 7, time_ms: 0 })
        .collect();
    writer.apply(&updates).await.expect("apply");
    let confirmed = writer.store().wait_for_replicas(1, Duration::from_secs(5)).await.expect("wait");
    assert_eq!(confirmed, 1, "every primary's replica confirmed the writes");

    let before = replica_reads();
    let reader =
        Router::new(reader(ReadFrom::Replica).await, "hash:6".parse().expect("layout"), RouterOptions::default());
    let page = reader.top(&board, 0, 10).await.expect("top from the replicas");
    assert_eq!(page.total, 200);
    assert_eq!(page.entries[0].player, player(199));
    let standing = reader.standing(&board, &player(100)).await.expect("standing").expect("present");
    assert_eq!(standing.rank, 100);
    assert!(replica_reads() >= before + 6, "the six shards were read on replicas");
}

/// The watermark is written to every primary and read back through the
/// replicas: a claim appears only once every primary's replica holds it, and
/// a partition without a claim makes the whole topic claim nothing.
#[tokio::test]
async fn the_watermark_reaches_every_replica_and_needs_every_partition() {
    let primary = store(true).await;
    let topic = testkit::unique("wm-topic");
    let claim = |partition, applied_before_ms| watermark::Claim { partition, applied_before_ms };
    watermark::publish(&primary, &topic, 2, &[claim(0, 5_000)]).await.expect("publish");
    let keys = watermark::keys(&primary, &topic).await.expect("keys");
    assert_eq!(keys.len(), 3, "one copy per primary: {keys:?}");
    assert_eq!(watermark::read(&primary, &topic).await.expect("read"), None, "partition 1 has no claim");

    watermark::publish(&primary, &topic, 2, &[claim(1, 4_000)]).await.expect("publish");
    let replicas = reader(ReadFrom::Replica).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while watermark::read(&replicas, &topic).await.expect("read") != Some(4_000) {
        assert!(Instant::now() < deadline, "the replicas never held both claims");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(watermark::read(&primary, &topic).await.expect("read"), Some(4_000));
}
