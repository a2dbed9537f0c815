//! Reads from the replicas of the shared Redis Cluster (`scripts/infra.sh`: three primaries,
//! one replica each), and the watermark that dates them.

use std::time::Duration;

use leaderboard_semantics::ScoreUpdate;
use leaderboard_store::{ReadFrom, RedisTarget, Router, RouterOptions, Store, StoreOptions, marker::watermark};
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
        .map(|i| ScoreUpdate {
            board: board.clone(),
            player: player(i),
            score: (i as u64) * 7,
            time_ms: 0,
            meta: None,
            source: None,
        })
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

/// A `range` player moving up is added to the higher shard before leaving the lower one, but a
/// Cluster keeps no order between nodes, and its replicas' lags differ: a standing read from the
/// replicas could find the player in neither shard (a 404 for a player on the board). By
/// construction: the higher shard's replica is cut off from its primary (it may not resynchronise:
/// `PSYNC` refused) and keeps serving what it had, the player moves up, and the lower shard's
/// replica receives the removal. The standing still finds the player, with the primaries' score.
#[tokio::test]
async fn a_range_standing_from_lagging_replicas_finds_a_player_moving_up() {
    let cluster = testkit::PrivateCluster::start();
    let target = RedisTarget::parse(&format!("cluster:{}", cluster.url())).expect("cluster urls");
    let primary = Store::connect(&target, StoreOptions::default()).await.expect("cluster");
    let writer = Router::new(primary, "range:100".parse().expect("layout"), RouterOptions::default());
    let mover = player(7);
    let member = leaderboard_store::layout::member::encode(&mover);
    // A board whose two shards live on different primaries.
    let (board, lower, higher) = loop {
        let board = unique_board("moving");
        let others: Vec<ScoreUpdate> = [(1, 10), (2, 190)]
            .map(|(i, score)| ScoreUpdate {
                board: board.clone(),
                player: player(i),
                score,
                time_ms: 0,
                meta: None,
                source: None,
            })
            .to_vec();
        writer.apply(&others).await.expect("others");
        let (low, high) = (shard_of(&cluster, &board, &player(1)).await, shard_of(&cluster, &board, &player(2)).await);
        if low.1 != high.1 {
            break (board, low, high);
        }
    };
    let at = |score: u64| ScoreUpdate {
        board: board.clone(),
        player: mover.clone(),
        score,
        time_ms: 0,
        meta: None,
        source: None,
    };
    writer.apply(&[at(50)]).await.expect("in the lower shard");
    assert_eq!(writer.store().wait_for_replicas(1, Duration::from_secs(5)).await.expect("wait"), 1);

    // The higher shard's replica stops following its primary, and keeps serving reads.
    let owner = node(higher.1).await;
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("default")
        .arg("-psync")
        .arg("-sync")
        .query_async(&mut owner.clone())
        .await
        .expect("acl");
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("replica")
        .query_async(&mut owner.clone())
        .await
        .expect("kill link");
    writer.apply(&[at(150)]).await.expect("moved to the higher shard");
    // The lower shard's replica has the removal; the higher one's does not have the add.
    let lower_replica = replica(cluster.replica_of(lower.1).expect("a replica")).await;
    let higher_replica = replica(cluster.replica_of(higher.1).expect("a replica")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while zscore(&lower_replica, &lower.0, &member).await.is_some() {
        assert!(Instant::now() < deadline, "the removal never reached the lower shard's replica");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(zscore(&higher_replica, &higher.0, &member).await, None, "the higher shard's replica lags");

    let reader = Router::new(
        Store::connect_reader(&target, ReadFrom::Replica, StoreOptions::default()).await.expect("reader"),
        "range:100".parse().expect("layout"),
        RouterOptions::default(),
    );
    let standing = reader.standing(&board, &mover).await.expect("standing");
    assert_eq!(standing.map(|s| s.score), Some(150), "found, with the primaries' score");
    assert_eq!(reader.standing(&board, &player(999)).await.expect("standing"), None, "an unknown player is not");
}

/// The shard key holding `who` on `board`, and the port of its primary.
async fn shard_of(
    cluster: &testkit::PrivateCluster,
    board: &leaderboard_contract::BoardId,
    who: &leaderboard_contract::PlayerId,
) -> (String, u16) {
    let member = leaderboard_store::layout::member::encode(who);
    for port in cluster.primaries() {
        let node = node(port).await;
        for key in testkit::keys_matching(port, &format!("lb:{{{board}:r*}}:z")) {
            if zscore(&node, &key, &member).await.is_some() {
                return (key, port);
            }
        }
    }
    panic!("{who} is in no shard of {board}");
}

async fn zscore(node: &redis::aio::MultiplexedConnection, key: &str, member: &[u8]) -> Option<f64> {
    redis::cmd("ZSCORE").arg(key).arg(member).query_async(&mut node.clone()).await.expect("zscore")
}

/// A plain connection to one node of a private cluster.
async fn node(port: u16) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("node")
}

/// A plain connection to a replica, allowed to read the slots it serves (`READONLY`).
async fn replica(port: u16) -> redis::aio::MultiplexedConnection {
    let con = node(port).await;
    let _: () = redis::cmd("READONLY").query_async(&mut con.clone()).await.expect("readonly");
    con
}
