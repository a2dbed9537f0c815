//! Reading boards out for a snapshot: what a scan sees, and what it can miss.

use leaderboard_semantics::ScoreUpdate;

use crate::helpers::{player, router, unique_board};

fn update(board: &leaderboard_contract::BoardId, i: usize, score: u64) -> ScoreUpdate {
    ScoreUpdate { board: board.clone(), player: player(i), score, time_ms: 0, meta: None, source: None }
}

/// Drains a scan: every player it passes, with the score it read.
async fn rest(scan: &mut leaderboard_store::board::snapshot::PlayerScan<'_>, into: &mut Vec<(String, u64)>) {
    while let Some(rows) = scan.next().await.expect("scan") {
        into.extend(rows.iter().map(|r| (r.player.to_string(), r.score)));
    }
}

/// Drains a scan: every player it passes, with the score and metadata it read.
async fn rest_with_meta(
    scan: &mut leaderboard_store::board::snapshot::PlayerScan<'_>,
) -> Vec<(String, u64, Option<String>)> {
    let mut into = Vec::new();
    while let Some(rows) = scan.next().await.expect("scan") {
        into.extend(rows.iter().map(|r| (r.player.to_string(), r.score, r.meta.as_ref().map(ToString::to_string))));
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
    let first = scan.next().await.expect("shard 0").expect("a chunk");
    seen.extend(first.iter().map(|r| (r.player.to_string(), r.score)));
    let late = (1000..2000)
        .find(|&i| leaderboard_store::layout::hash::shard_of(&player(i), 3) == 0)
        .expect("a player of shard 0");
    router.apply(&[update(&board, late, 9), update(&board, 0, 8)]).await.expect("writes during the scan");
    rest(&mut scan, &mut seen).await;
    assert_eq!(seen.len(), 30, "every player present for the whole scan, once: {seen:?}");
    assert!(seen.iter().all(|(p, _)| *p != player(late).to_string()), "the late player was missed");
}
