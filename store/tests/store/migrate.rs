//! Moving live boards between layouts: under concurrent writes and reads,
//! interrupted, abandoned, and with a batch caught in the middle of the switch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::{Oracle, ScoreUpdate};
use leaderboard_store::layout::record::{self, RecordedLayout};
use leaderboard_store::{Error, MigrationOutcome, RebalanceOptions, Router};

use crate::helpers::{Workload, assert_matches_oracle, assert_whole_page, fixed_players, router, unique_board};

/// The grace has to outlast the records readers keep (a second) plus the
/// longest read; reads are bounded by [`READ_TIMEOUT`], as the api bounds them.
const GRACE: Duration = Duration::from_millis(1500);

/// How long a read during a migration may take before it is abandoned: the
/// api's request timeout (a second), which the production grace (10 s) is
/// chosen against. An unbounded read on a loaded machine can outlast the
/// grace and read a source already deleted (a short page); the api would
/// have timed it out.
const READ_TIMEOUT: Duration = Duration::from_secs(1);

fn options(chunk: usize, max_chunks: Option<usize>) -> RebalanceOptions {
    RebalanceOptions { chunk, max_chunks, grace: GRACE }
}

/// How many keys of `board` exist (every key of a board carries its name in the hash tag).
async fn keys_of(router: &Router, board: &BoardId, cluster: bool) -> Vec<String> {
    let pattern = format!("lb:{{{board}*");
    if cluster {
        // KEYS only sees one node of a cluster: count the keys each layout would use instead.
        let mut found = Vec::new();
        let mut candidates =
            vec![leaderboard_store::layout::keys::single(board), leaderboard_store::layout::keys::range_meta(board)];
        for n in [4, 7] {
            candidates.extend((0..n).map(|i| leaderboard_store::layout::keys::hash_shard(board, n, i)));
        }
        for key in candidates {
            let exists: u64 = router.store().query(redis::cmd("EXISTS").arg(&key)).await.expect("exists");
            if exists == 1 {
                found.push(key);
            }
        }
        return found;
    }
    let mut keys: Vec<String> = router.store().query(redis::cmd("KEYS").arg(pattern)).await.expect("keys");
    keys.sort();
    keys
}

/// Every pair of layouts, on one Redis and on the Cluster: writers keep
/// writing through routers configured with the *old* layout while readers
/// read and the board moves; afterwards routers configured with either layout
/// answer like the oracle, the old layout's keys are gone, and an unrelated
/// layout is still refused.
#[tokio::test]
async fn migrations_under_concurrent_writes_equal_the_oracle() {
    let pairs = [("single", "hash:4"), ("hash:4", "range:100,250"), ("range:50,150", "single"), ("hash:4", "hash:7")];
    for cluster in [false, true] {
        for (seed, (from, to)) in pairs.into_iter().enumerate() {
            let context = format!("{from} -> {to}, cluster={cluster}");
            let board = unique_board("migrate");
            let source = router(cluster, from).await;
            let fixed = fixed_players(&board);
            source.apply(&fixed).await.expect("fixed");
            let mut oracle = Oracle::new();
            for u in &fixed {
                oracle.apply(u);
            }
            let work: Vec<Workload> = (0..2)
                .map(|w| {
                    Workload::random(seed as u64 * 10 + w, std::slice::from_ref(&board), 400, 4000, 500).meta_by_score()
                })
                .collect();
            for u in work.iter().flat_map(|w| w.batches.iter().flatten()) {
                oracle.apply(u);
            }

            let stop = Arc::new(AtomicBool::new(false));
            let reader = {
                let (router, board, stop, fixed) =
                    (router(cluster, from).await, board.clone(), stop.clone(), fixed.clone());
                let context = context.clone();
                tokio::spawn(async move {
                    let mut reads = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(page) = tokio::time::timeout(READ_TIMEOUT, router.top(&board, 0, 100)).await else {
                            continue;
                        };
                        assert_whole_page(&page.expect("top"), &format!("{context}: top during migration"));
                        let f = &fixed[reads % fixed.len()].player;
                        let Ok(standing) = tokio::time::timeout(READ_TIMEOUT, router.standing(&board, f)).await else {
                            continue;
                        };
                        assert!(standing.expect("standing").is_some(), "{f} vanished");
                        reads += 1;
                    }
                    reads
                })
            };
            let mut writers = Vec::new();
            for w in work {
                let router = router(cluster, from).await;
                writers.push(tokio::spawn(async move {
                    for batch in &w.batches {
                        router.apply(batch).await.expect("apply");
                    }
                }));
            }
            let to_spec = to.parse().expect("spec");
            let outcome = source.migrate_layout(&board, &to_spec, options(25, None)).await.expect("migrate");
            assert!(matches!(outcome, MigrationOutcome::Done { .. }), "{context}: {outcome:?}");
            for w in writers {
                w.await.expect("writer");
            }
            stop.store(true, Ordering::Relaxed);
            assert!(reader.await.expect("reader") > 0, "{context}: the reader made no reads");

            let record = record::recorded(source.store(), &board).await.expect("record").expect("exists");
            assert_eq!(record.layout, RecordedLayout::of(&to_spec), "{context}");
            assert!(record.retired.is_empty() && record.migration.is_none(), "{context}: {record:?}");
            for configured in [from, to] {
                let fresh = router(cluster, configured).await;
                assert_matches_oracle(&fresh, &oracle, &board, 400, &format!("{context}, read as {configured}")).await;
            }
            assert_matches_oracle(&source, &oracle, &board, 400, &format!("{context}, the migrating router")).await;
            let stats = source.stats(&board).await.expect("stats");
            assert_eq!(stats.strategy, RecordedLayout::of(&to_spec).strategy(), "{context}");
            let source_keys: Vec<String> = match from {
                "single" => vec![leaderboard_store::layout::keys::single(&board)],
                "hash:4" => (0..4).map(|i| leaderboard_store::layout::keys::hash_shard(&board, 4, i)).collect(),
                _ => vec![leaderboard_store::layout::keys::range_meta(&board)],
            };
            let left = keys_of(&source, &board, cluster).await;
            assert!(source_keys.iter().all(|k| !left.contains(k)), "{context}: source keys left: {left:?}");

            let unrelated = router(cluster, "hash:16").await;
            match unrelated.total(&board).await {
                Err(Error::LayoutMismatch { recorded, configured, .. }) => {
                    assert_eq!((recorded, configured), (RecordedLayout::of(&to_spec).to_string(), "hash:16".into()));
                }
                other => panic!("{context}: expected a mismatch, got {other:?}"),
            }
        }
    }
}

/// The race the record's closing check exists for, by construction: a writer
/// read the record (no migration) just before the migration was recorded, and
/// writes its batch after. The batch must reach the target at once, before the
/// copy (paused here with nothing copied) could carry it over.
#[tokio::test]
async fn a_batch_that_read_the_record_before_the_migration_reaches_the_target() {
    for cluster in [false, true] {
        let board = unique_board("straddle");
        let writer = router(cluster, "single").await;
        let first = [ScoreUpdate {
            board: board.clone(),
            player: PlayerId::new("early").expect("id"),
            score: 10,
            time_ms: 0,
            meta: None,
            source: None,
        }];
        writer.apply(&first).await.expect("first batch"); // caches the record: no migration
        let admin = router(cluster, "single").await;
        let paused = admin.migrate_layout(&board, &"hash:4".parse().expect("spec"), options(10, Some(0))).await;
        assert_eq!(paused.expect("start"), MigrationOutcome::Paused { copied: 0 });
        let late = [ScoreUpdate {
            board: board.clone(),
            player: PlayerId::new("late").expect("id"),
            score: 20,
            time_ms: 0,
            meta: None,
            source: None,
        }];
        writer.apply(&late).await.expect("batch straddling the start");

        let late_player = PlayerId::new("late").expect("id");
        let shard = leaderboard_store::layout::hash::shard_of(&late_player, 4);
        let key = leaderboard_store::layout::keys::hash_shard(&board, 4, shard);
        let members: u64 = writer.store().query(redis::cmd("ZCARD").arg(&key)).await.expect("zcard");
        assert_eq!(members, 1, "cluster={cluster}: the late batch is in the target before any copy");
        let early = leaderboard_store::layout::keys::hash_shard(
            &board,
            4,
            leaderboard_store::layout::hash::shard_of(&first[0].player, 4),
        );
        if early != key {
            let none: u64 = writer.store().query(redis::cmd("ZCARD").arg(&early)).await.expect("zcard");
            assert_eq!(none, 0, "cluster={cluster}: nothing was copied yet");
        }
        let done = admin.migrate_layout(&board, &"hash:4".parse().expect("spec"), options(10, None)).await;
        assert!(matches!(done.expect("finish"), MigrationOutcome::Done { copied: 2 }));
        assert_eq!(writer.total(&board).await.expect("total"), 2);
    }
}

/// An interrupted migration resumes where it stopped; while it runs, other
/// targets and rebalances are refused; an abandoned one leaves the board as it
/// was, with the half-built target deleted.
#[tokio::test]
async fn migrations_resume_refuse_other_work_and_abort_cleanly() {
    for cluster in [false, true] {
        let board = unique_board("resume-migration");
        let router = router(cluster, "range:100").await;
        let workload = Workload::random(77, std::slice::from_ref(&board), 300, 1500, 200);
        for batch in &workload.batches {
            router.apply(batch).await.expect("apply");
        }
        let oracle = workload.oracle();
        let to_single = "single".parse().expect("spec");
        let paused = router.migrate_layout(&board, &to_single, options(20, Some(2))).await.expect("start");
        assert!(matches!(paused, MigrationOutcome::Paused { .. }), "{paused:?}");
        assert_eq!(router.stats(&board).await.expect("stats").migrating_to.as_deref(), Some("single"));
        let other = router.migrate_layout(&board, &"hash:4".parse().expect("spec"), options(20, None)).await;
        assert!(matches!(other, Err(Error::Busy { .. })), "{other:?}");
        let rebalance = router.rebalance(&board, vec![50, 150], options(20, None)).await;
        assert!(matches!(rebalance, Err(Error::Busy { .. })), "{rebalance:?}");
        // Reads keep coming from the source meanwhile.
        assert_matches_oracle(&router, &oracle, &board, 300, &format!("mid-migration, cluster={cluster}")).await;

        assert!(router.abort_layout_migration(&board, GRACE).await.expect("abort"));
        let record = record::recorded(router.store(), &board).await.expect("record").expect("exists");
        assert_eq!(record.to_stored(), "range", "cluster={cluster}: back to a plain record");
        let target: u64 = router
            .store()
            .query(redis::cmd("EXISTS").arg(leaderboard_store::layout::keys::single(&board)))
            .await
            .expect("exists");
        assert_eq!(target, 0, "cluster={cluster}: the abandoned target is deleted");
        assert_matches_oracle(&router, &oracle, &board, 300, &format!("after abort, cluster={cluster}")).await;

        let again = router.migrate_layout(&board, &to_single, options(20, Some(1))).await.expect("restart");
        assert!(matches!(again, MigrationOutcome::Paused { .. }));
        let resumed = router.migrate_layout(&board, &to_single, options(20, None)).await.expect("resume");
        assert!(matches!(resumed, MigrationOutcome::Done { .. }), "{resumed:?}");
        assert_matches_oracle(&router, &oracle, &board, 300, &format!("after resume, cluster={cluster}")).await;
        let unchanged = router.migrate_layout(&board, &to_single, options(20, None)).await.expect("again");
        assert_eq!(unchanged, MigrationOutcome::Unchanged);
    }
}

/// A source key with nothing in it (an empty `range` shard; `ZSCAN` may also
/// return an empty chunk mid-scan) copies nothing, and the copy goes on.
#[tokio::test]
async fn empty_source_keys_copy_nothing_and_the_migration_goes_on() {
    for cluster in [false, true] {
        let board = unique_board("empty-shards");
        let router = router(cluster, "range:100,200").await;
        let low: Vec<ScoreUpdate> = (0..5u64)
            .map(|i| ScoreUpdate {
                board: board.clone(),
                player: crate::helpers::player(i as usize),
                score: i,
                time_ms: 0,
                meta: None,
                source: None,
            })
            .collect();
        router.apply(&low).await.expect("apply");
        let done = router.migrate_layout(&board, &"single".parse().expect("spec"), options(10, None)).await;
        assert_eq!(done.expect("migrate"), MigrationOutcome::Done { copied: 5 }, "cluster={cluster}");
        assert_eq!(router.total(&board).await.expect("total"), 5);
    }
}
