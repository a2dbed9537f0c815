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
