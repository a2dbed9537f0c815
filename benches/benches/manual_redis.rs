//! What a `manual` board costs ingest per batch, against a real Redis: the one
//! script a writer runs per manual board before it writes a batch (it reads
//! the season starts that cover the batch's times and raises `viewed`),
//! beside a plain round trip (`GET`) and the batch write it precedes (5,000
//! events on a `single` board of 100,000 players).

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use leaderboard_benches::{delete_board, game_batches, load, router};
use leaderboard_contract::BoardId;
use leaderboard_semantics::Rules;
use leaderboard_semantics::clock::system_ms;
use leaderboard_store::LayoutSpec;
use leaderboard_store::layout::record::{self, RecordedLayout};

const PLAYERS: usize = 100_000;

fn manual_view(c: &mut Criterion) {
    let redis = std::env::var("LB_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6390".into());
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let router = rt.block_on(router(&redis, LayoutSpec::Single)).expect("redis reachable (scripts/infra.sh up)");
    let manual = BoardId::new(format!("bench-manual-{}", rand::random::<u32>())).expect("board");
    let rules = Rules {
        reset: Some(serde_json::from_str(r#"{"every":"manual"}"#).expect("manual")),
        late_grace: Duration::from_secs(86_400),
        ..Rules::default()
    };
    let t0 = system_ms() - 1_000_000;
    rt.block_on(async {
        record::set_rules(router.store(), &manual, RecordedLayout::Single, rules).await.expect("rules");
        router.start_manual(&manual, t0).await.expect("start");
        // Fifteen resets a second apart (the bound of seasons not closed is 16): a history to search.
        for k in 1..=15 {
            router.reset_season(&manual, t0 + k * 1_000, None).await.expect("reset");
        }
    });
    let plain = BoardId::new(format!("bench-plain-{}", rand::random::<u32>())).expect("board");
    rt.block_on(load(&router, &plain, PLAYERS)).expect("load");
    let batches = game_batches(&plain, PLAYERS, 16, 5000);

    let mut group = c.benchmark_group("manual board, per batch");
    group.sample_size(30);
    let mut at = t0 + 20_000;
    group.bench_function(BenchmarkId::new("read the seasons of a batch", "assigning"), |b| {
        b.to_async(&rt).iter(|| {
            at += 1;
            let (router, manual) = (&router, &manual);
            async move { router.view_manual(manual, at - 5_000, at, true).await.expect("view") }
        });
    });
    group.bench_function(BenchmarkId::new("a plain round trip", "GET"), |b| {
        b.to_async(&rt).iter(|| {
            let router = &router;
            async move {
                let _: Option<String> =
                    router.store().query(redis::cmd("GET").arg("bench-nothing")).await.expect("get");
            }
        });
    });
    group.throughput(Throughput::Elements(5000));
    let mut i = 0;
    group.bench_function(BenchmarkId::new("write batch of 5000", "single"), |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % batches.len();
            let (router, batch) = (&router, &batches[i]);
            async move { router.apply(batch).await.expect("apply") }
        });
    });
    group.finish();
    rt.block_on(async {
        delete_board(&router, &manual).await.expect("cleanup");
        delete_board(&router, &plain).await.expect("cleanup");
    });
}

criterion_group!(benches, manual_view);
criterion_main!(benches);
