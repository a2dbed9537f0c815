//! Reading boards out for a snapshot: what a scan sees, and what it can miss.

use std::sync::Arc;

use leaderboard_semantics::{IdKey, Operator, Rules, ScoreUpdate, Source};
use leaderboard_store::board::snapshot::Scanned;

use crate::helpers::{player, router, unique_board};

/// The rows of a scanned item (none for a shard or ids item).
fn rows(scanned: Scanned) -> Vec<ScoreUpdate> {
    match scanned {
        Scanned::Rows(rows) => rows,
        Scanned::Shard { .. } | Scanned::Ids(_) => Vec::new(),
    }
}

fn update(board: &leaderboard_contract::BoardId, i: usize, score: u64) -> ScoreUpdate {
    ScoreUpdate { board: board.clone(), player: player(i), score, time_ms: 0, meta: None, source: None }
}

/// Drains a scan: every player it passes, with the score it read.
async fn rest(scan: &mut leaderboard_store::board::snapshot::PlayerScan<'_>, into: &mut Vec<(String, u64)>) {
    while let Some(scanned) = scan.next().await.expect("scan") {
        into.extend(rows(scanned).iter().map(|r| (r.player.to_string(), r.score)));
    }
}

/// Drains a scan: every player it passes, with the score and metadata it read.
async fn rest_with_meta(
    scan: &mut leaderboard_store::board::snapshot::PlayerScan<'_>,
) -> Vec<(String, u64, Option<String>)> {
    let mut into = Vec::new();
    while let Some(scanned) = scan.next().await.expect("scan") {
        into.extend(
            rows(scanned).iter().map(|r| (r.player.to_string(), r.score, r.meta.as_ref().map(ToString::to_string))),
        );
    }
    into.sort();
    into
}

#[tokio::test]
async fn a_scan_reads_every_player_as_clients_see_them_on_every_layout() {
    for spec in ["single", "hash:3", "range:100,200"] {
        let router = router(false, spec).await;
        let board = unique_board("scan");
        let rules = leaderboard_semantics::Rules { order: leaderboard_semantics::Order::Asc, ..Default::default() };
        router.set_rules(&board, rules).await.expect("rules");
        let with_meta = |i: usize| {
            let mut u = update(&board, i, i as u64);
            u.meta = i.is_multiple_of(2).then(|| crate::helpers::event_meta(i as u32));
            u
        };
        router.apply(&(0..250).map(with_meta).collect::<Vec<_>>()).await.expect("apply");
        let seen = rest_with_meta(&mut router.scan_players(&board).await.expect("scan")).await;
        let mut want: Vec<(String, u64, Option<String>)> = (0..250)
            .map(|i| {
                let u = with_meta(i);
                (u.player.to_string(), u.score, u.meta.map(|m| m.to_string()))
            })
            .collect();
        want.sort();
        assert_eq!(seen, want, "{spec}: asc scores come back as written, not as ranking keys, with their metadata");
    }
}

/// Why a snapshot reads its Kafka offsets before the scan: a player written during the scan
/// into a key already scanned is missed (the event behind that write is at or after those
/// offsets, so the replay restores it), while every player present for the whole scan is read.
#[tokio::test]
async fn a_player_written_during_a_scan_into_a_scanned_shard_is_missed() {
    let router = router(false, "hash:3").await;
    let board = unique_board("scan-during");
    router.apply(&(0..30).map(|i| update(&board, i, 7)).collect::<Vec<_>>()).await.expect("apply");
    let mut scan = router.scan_players(&board).await.expect("scan");
    let mut seen: Vec<(String, u64)> = Vec::new();
    // Shard 0 is scanned in one call (it holds far fewer than a chunk).
    let first = rows(scan.next().await.expect("shard 0").expect("a chunk"));
    seen.extend(first.iter().map(|r| (r.player.to_string(), r.score)));
    let late = (1000..2000)
        .find(|&i| leaderboard_store::layout::hash::shard_of(&player(i), 3) == 0)
        .expect("a player of shard 0");
    router.apply(&[update(&board, late, 9), update(&board, 0, 8)]).await.expect("writes during the scan");
    rest(&mut scan, &mut seen).await;
    assert_eq!(seen.len(), 30, "every player present for the whole scan, once: {seen:?}");
    assert!(seen.iter().all(|(p, _)| *p != player(late).to_string()), "the late player was missed");
}

/// A `sum` board's shard is read at one instant with its applied offsets: writes after the
/// shard line are neither in its rows nor in its offsets (the replay brings them), so restoring
/// the rows and offsets then replaying counts each record once. The ids come with it.
#[tokio::test]
async fn a_sum_boards_shard_is_read_at_one_instant_with_its_offsets() {
    for spec in ["single", "hash:2"] {
        let router = router(false, spec).await;
        let board = unique_board("frozen");
        router.set_rules(&board, Rules { operator: Operator::Sum, ..Rules::default() }).await.expect("rules");
        let update = |i: usize, offset: i64| ScoreUpdate {
            source: Some(Source {
                topic: Arc::from("scores"),
                partition: 0,
                offset,
                at_ms: 0,
                id: Some(IdKey::of(&format!("e{offset}"))),
            }),
            ..update(&board, i, 10)
        };
        router
            .apply(&(0..40).map(|i| update(i % 20, i64::try_from(i).expect("small"))).collect::<Vec<_>>())
            .await
            .expect("apply");
        let mut scan = router.scan_players(&board).await.expect("scan");
        let (mut totals, mut shards, mut ids) = (Vec::new(), Vec::new(), 0);
        let mut written_after = false;
        while let Some(scanned) = scan.next().await.expect("scan") {
            match scanned {
                Scanned::Shard { key, applied } => shards.push((key, applied)),
                Scanned::Rows(rows) => totals.extend(rows.into_iter().map(|r| (r.player.to_string(), r.score))),
                Scanned::Ids(list) => ids += list.len(),
            }
            if !written_after {
                // Only the first shard has been read by now: these writes reach it after its
                // instant, and the other shard before its own.
                router
                    .apply(&(40..60).map(|i| update(i % 20, i64::try_from(i).expect("small"))).collect::<Vec<_>>())
                    .await
                    .expect("apply");
                written_after = true;
            }
        }
        let first_shard = &shards[0].0;
        let shards_of = |p: &str| match spec {
            "single" => 0,
            _ => leaderboard_store::layout::hash::shard_of(&leaderboard_contract::PlayerId::new(p).expect("id"), 2),
        };
        for (p, total) in &totals {
            let own = &shards[shards_of(p)];
            let want = if own.0 == *first_shard { 20 } else { 30 };
            assert_eq!(*total, want, "{spec}: {p} as its shard was at its instant");
            let upto = if own.0 == *first_shard { 40 } else { 60 };
            let last = (0..upto).filter(|&i| shards[shards_of(player(i % 20).as_str())].0 == own.0).max();
            let applied = own.1.get("scores:0").copied();
            assert_eq!(
                applied,
                last.map(|i| i64::try_from(i).expect("small") + 1),
                "{spec}: {p}'s shard's offsets of the same instant"
            );
        }
        assert_eq!(totals.len(), 20, "{spec}");
        assert_eq!(ids, 20, "{spec}: every player's ids");
        let leftovers: Vec<String> =
            router.store().query(redis::cmd("KEYS").arg(format!("lb:{{{board}*snap*"))).await.expect("keys");
        assert!(leftovers.is_empty(), "{spec}: the copies are deleted: {leftovers:?}");
    }
}
