//! Each layout against a real Redis (and the 3-node Redis Cluster): write
//! batches, rank, top-100 and around, on a realistic board.
//!
//! `LB_BENCH_PLAYERS` sets the board size (default 1,000,000; the comparison
//! report also runs 10,000,000). Set `LB_BENCH_CLUSTER=0` to skip the cluster.

// The router's futures nested in criterion's async closures are deep enough that
// `cargo clippy --workspace --all-targets` (rustc 1.95) overflows the default type
// query depth of 128 while laying them out ("queries overflow the depth limit").
#![recursion_limit = "256"]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use leaderboard_benches::{delete_board, game_batches, layouts, load, router};
use leaderboard_contract::BoardId;
use loadgen::population::player;
use rand::{Rng, SeedableRng};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.into())
}

fn bench_target(c: &mut Criterion, label: &str, redis: &str, players: usize) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    for (name, spec) in layouts(players) {
        let board = BoardId::new(format!("bench-{}", rand::random::<u32>())).expect("board");
        let router = rt.block_on(router(redis, spec)).expect("redis reachable (scripts/infra.sh up)");
        rt.block_on(load(&router, &board, players)).expect("load");
        let batches = game_batches(&board, players, 64, 5000);
        let mut group = c.benchmark_group(format!("{label} {players} players"));
        group.sample_size(20);
        group.throughput(Throughput::Elements(5000));
        let mut i = 0;
        group.bench_function(BenchmarkId::new("write batch of 5000", &name), |b| {
            b.to_async(&rt).iter(|| {
                i = (i + 1) % batches.len();
                let batch = &batches[i];
                let router = &router;
                async move { router.apply(batch).await.expect("apply") }
            });
        });
        group.throughput(Throughput::Elements(1));
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        group.bench_function(BenchmarkId::new("rank", &name), |b| {
            b.to_async(&rt).iter(|| {
                let p = player(rng.random_range(0..players));
                let (router, board) = (&router, &board);
                async move { router.standing(board, &p).await.expect("standing") }
            });
        });
        group.bench_function(BenchmarkId::new("top-100", &name), |b| {
            let (router, board) = (&router, &board);
            b.to_async(&rt).iter(|| async move { router.top(board, 0, 100).await.expect("top") });
        });
        group.bench_function(BenchmarkId::new("around radius 5", &name), |b| {
            b.to_async(&rt).iter(|| {
                let p = player(rng.random_range(0..players));
                let (router, board) = (&router, &board);
                async move { router.around(board, &p, 5).await.expect("around") }
            });
        });
        group.finish();
        rt.block_on(delete_board(&router, &board)).expect("cleanup");
    }
}

fn redis_single(c: &mut Criterion) {
    let players: usize = env_or("LB_BENCH_PLAYERS", "1000000").parse().expect("LB_BENCH_PLAYERS");
    bench_target(c, "redis", &env_or("LB_REDIS_URL", "redis://127.0.0.1:6390"), players);
}

fn redis_cluster(c: &mut Criterion) {
    if env_or("LB_BENCH_CLUSTER", "1") == "0" {
        return;
    }
    let seeds = env_or("LB_REDIS_CLUSTER_URLS", "redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103");
    bench_target(c, "cluster", &format!("cluster:{seeds}"), 1_000_000);
}

criterion_group!(benches, redis_single, redis_cluster);
criterion_main!(benches);
