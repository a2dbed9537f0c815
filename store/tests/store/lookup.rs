//! Lists of players looked up at once, on every layout, against the oracle.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::helpers::{Workload, player, router, unique_board};

/// Random boards (ties and repeats abound) on every layout, one Redis and the
/// Cluster: random lists of 1-100 ids, with repeats and players who never
/// played, answer exactly like the oracle (ranks, list ranks, order, missing, total).
#[tokio::test]
async fn lookups_equal_the_oracle_on_every_layout() {
    for cluster in [false, true] {
        for (seed, layout) in ["single", "hash:4", "hash:7", "range:40,120,300"].into_iter().enumerate() {
            let board = unique_board("lookup");
            let router = router(cluster, layout).await;
            let workload = Workload::random(seed as u64 + 40, std::slice::from_ref(&board), 300, 2000, 400);
            for batch in &workload.batches {
                router.apply(batch).await.expect("apply");
            }
            let oracle = workload.oracle();
            let expected_board = oracle.board(&board).expect("board");
            let mut rng = StdRng::seed_from_u64(seed as u64);
            for round in 0..40 {
                let n = rng.random_range(1..=100);
                // Players 0..350: some of 300..350 never played.
                let players: Vec<_> = (0..n).map(|_| player(rng.random_range(0..350))).collect();
                let got = router.lookup(&board, &players).await.expect("lookup");
                assert_eq!(got, expected_board.lookup(&players), "{layout}, cluster={cluster}, round {round}");
            }
        }
    }
}

/// A `hash` lookup reads the players' scores, then counts around them in every shard: a player
/// who joins above in between is in both the rank and the total of the answer, or in neither
/// (rank, total and percentile describe one moment, as a single player's standing does). The
/// fail point holds the lookup between its two round trips while the newcomer joins in a shard
/// other than the looked-up player's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hash_lookup_counts_rank_and_total_at_one_moment() {
    use std::sync::Arc;
    use std::time::Duration;

    use leaderboard_contract::PlayerId;
    use leaderboard_semantics::ScoreUpdate;
    use leaderboard_store::layout::hash::shard_of;

    let board = unique_board("lookupmoment");
    let router = Arc::new(router(false, "hash:4").await);
    let update = |who: &PlayerId, score: u64| ScoreUpdate {
        board: board.clone(),
        player: who.clone(),
        score,
        time_ms: 0,
        meta: None,
        source: None,
    };
    let seeded: Vec<PlayerId> = (0..10).map(player).collect();
    let batch: Vec<ScoreUpdate> = seeded.iter().zip(1..).map(|(p, score)| update(p, score * 10)).collect();
    router.apply(&batch).await.expect("seed");
    let me = &seeded[4];
    let before = router.lookup(&board, std::slice::from_ref(me)).await.expect("lookup");
    let newcomer = (0..100)
        .map(|i| PlayerId::new(format!("newcomer-{i}")).expect("id"))
        .find(|p| shard_of(p, 4) != shard_of(me, 4))
        .expect("a player of another shard");

    let held = testkit::FailHold::new("store::hash_lookup_between_round_trips");
    let reader = {
        let (router, board, me) = (router.clone(), board.clone(), me.clone());
        tokio::spawn(async move { router.lookup(&board, &[me]).await })
    };
    assert!(held.reached(Duration::from_secs(10)).await, "the lookup never reached its second round trip");
    router.apply(&[update(&newcomer, 1000)]).await.expect("join");
    held.release();
    let during = reader.await.expect("reader").expect("lookup");
    let after = router.lookup(&board, std::slice::from_ref(me)).await.expect("lookup");
    let moment = |l: &leaderboard_semantics::Lookup| (l.entries[0].rank, l.entries[0].tied, l.total);
    assert_eq!(moment(&after), (moment(&before).0 + 1, 1, 11));
    assert!(
        moment(&during) == moment(&before) || moment(&during) == moment(&after),
        "one moment: before {:?}, after {:?}, got {:?}",
        moment(&before),
        moment(&after),
        moment(&during)
    );
}
