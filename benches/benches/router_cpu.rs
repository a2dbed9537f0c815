//! In-process costs of the router: what each layout spends on the CPU of the
//! client, before and after Redis.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use leaderboard_benches::{SEED, equal_boundaries};
use leaderboard_contract::{PlayerId, decode_record};
use leaderboard_semantics::Ties;
use leaderboard_semantics::model::Row;
use leaderboard_store::layout::range::meta::Generation;
use leaderboard_store::{equal_population, layout::hash, layout::member, layout::range};
use loadgen::population::{Population, player};

fn routing(c: &mut Criterion) {
    let players: Vec<PlayerId> = (0..5000).map(player).collect();
    let scores: Vec<u64> = (0..5000).map(|i| Population::initial_score(SEED, i)).collect();
    let mut group = c.benchmark_group("route a batch of 5000");
    group.throughput(Throughput::Elements(5000));
    for shards in [4, 16] {
        group.bench_with_input(BenchmarkId::new("hash", shards), &shards, |b, &n| {
            b.iter(|| players.iter().map(|p| hash::shard_of(black_box(p), n)).sum::<usize>());
        });
        let generation = Generation { generation: 0, boundaries: equal_boundaries(100_000, shards) };
        group.bench_with_input(BenchmarkId::new("range", shards), &generation, |b, g| {
            b.iter(|| scores.iter().map(|&s| g.shard_of(black_box(s))).sum::<usize>());
        });
    }
    group.bench_function("encode members", |b| {
        b.iter(|| players.iter().map(|p| member::encode(black_box(p)).len()).sum::<usize>());
    });
    group.finish();
}

fn merging(c: &mut Criterion) {
    let mut group = c.benchmark_group("merge a fan-out top-100");
    for shards in [4usize, 16] {
        let pages: Vec<Vec<Row>> = (0..shards)
            .map(|s| (0..100).map(|i| Row::new(player(s * 1000 + i), 1_000_000 - (i as u64 * 7 + s as u64))).collect())
            .collect();
        group.bench_with_input(BenchmarkId::new("hash", shards), &pages, |b, pages| {
            b.iter(|| hash::merge_pages(black_box(pages.clone()), 0, 100, Ties::Shared));
        });
    }
    group.finish();
}

fn sizes(c: &mut Criterion) {
    let mut group = c.benchmark_group("prefix sums of shard sizes");
    for shards in [4usize, 16, 256] {
        let cards: Vec<u64> = (0..shards as u64).map(|i| 1_000_000 + i).collect();
        group.bench_with_input(BenchmarkId::from_parameter(shards), &cards, |b, cards| {
            b.iter(|| range::sizes_above(black_box(cards)));
        });
    }
    group.finish();
}

fn boundaries(c: &mut Criterion) {
    let mut scores: Vec<u64> = (0..1_000_000).map(|i| Population::initial_score(SEED, i)).collect();
    scores.sort_unstable();
    let mut group = c.benchmark_group("propose equal-population boundaries (1M sorted scores)");
    for shards in [4usize, 16] {
        group.bench_with_input(BenchmarkId::from_parameter(shards), &shards, |b, &n| {
            b.iter(|| equal_population(black_box(&scores), n));
        });
    }
    group.finish();
}

fn decoding(c: &mut Criterion) {
    let value = br#"{"board":"global","player":"p-00012345","score":48211,"ts":1763800000123}"#;
    let mut group = c.benchmark_group("decode a score event");
    group.throughput(Throughput::Elements(1));
    group.bench_function("valid", |b| b.iter(|| decode_record(Some(black_box(b"p-00012345")), Some(black_box(value)))));
    group.bench_function("malformed", |b| b.iter(|| decode_record(None, Some(black_box(b"{\"player\":12}")))));
    group.finish();
}

criterion_group!(benches, routing, merging, sizes, boundaries, decoding);
criterion_main!(benches);
