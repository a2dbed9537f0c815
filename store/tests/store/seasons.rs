//! Seasons on every layout: the fence freezes a closed season, closing is
//! exactly-once with racing closers, retention removes the oldest.

use std::collections::HashSet;

use leaderboard_semantics::{Order, Rules, ScoreUpdate, Ties};
use leaderboard_store::layout::record::{self, RecordedLayout};
use leaderboard_store::{Closed, Error, RebalanceOptions, layout::keys};

use crate::helpers::{DAY, DAY0, Workload, assert_matches_oracle, daily, router, season, seasonal_board};

const PLAYERS: usize = 60;
/// Writes to a season, closes it, then writes again (later, better scores
/// and replays): every later update is reported refused and the season still
/// equals what it held at close; a second close is a no-op.
async fn check_fence(cluster: bool, layout: &str, seed: u64) {
    let router = router(cluster, layout).await;
    for (i, (order, ties)) in [(Order::Desc, Ties::Shared), (Order::Asc, Ties::Earliest)].into_iter().enumerate() {
        let rules = daily(order, ties, 12);
        let board = seasonal_board(&router, rules).await;
        let s = season(&rules, 0);
        let name = router.open_season(&board, &rules, &s).await.expect("open");
        assert_eq!(name, board.season(&s.id));
        let before = Workload::random_in(seed * 10 + i as u64, std::slice::from_ref(&name), PLAYERS, 800, 0..=90, 30);
        for batch in &before.batches {
            assert_eq!(
                router.apply(batch).await.expect("apply").closed,
                Vec::<Closed>::new(),
                "an open season takes all"
            );
        }
        let oracle = before.oracle_with(&[(name.clone(), rules.for_season())]);
        let context = format!("{layout} cluster={cluster} {rules}");
        assert_matches_oracle(&router, &oracle, &name, PLAYERS, &context).await;

        assert!(router.close_season(&board, &s.id, s.end_ms + 10_000).await.expect("close"), "{context}");
        assert!(!router.close_season(&board, &s.id, s.end_ms + 20_000).await.expect("close again"), "{context}");
        let after = Workload::random_in(seed * 10 + 5, std::slice::from_ref(&name), PLAYERS, 400, 0..=200, 30);
        for batch in after.batches.iter().chain(&before.batches) {
            let refused: HashSet<Closed> = router.apply(batch).await.expect("apply").closed.into_iter().collect();
            let wanted: HashSet<Closed> =
                batch.iter().map(|u| Closed { board: u.board.clone(), player: u.player.clone() }).collect();
            assert_eq!(refused, wanted, "{context}: every write after the close is refused and reported");
        }
        assert_matches_oracle(&router, &oracle, &name, PLAYERS, &format!("{context} (frozen)")).await;
    }
}

#[tokio::test]
async fn fence_freezes_single_seasons() {
    check_fence(false, "single", 1).await;
}

#[tokio::test]
async fn fence_freezes_hash_seasons() {
    check_fence(false, "hash:4", 2).await;
}

#[tokio::test]
async fn fence_freezes_range_seasons() {
    check_fence(false, "range:30,60", 3).await;
}

#[tokio::test]
async fn fence_freezes_seasons_on_the_cluster() {
    check_fence(true, "hash:3", 4).await;
    check_fence(true, "range:45", 5).await;
}

/// A closer that died after fencing one shard of four (by construction: that
/// shard's marker alone is set): exactly the updates of that shard are
/// refused and reported, the others written; the next closer finishes.
#[tokio::test]
async fn a_half_closed_season_refuses_exactly_the_fenced_shards() {
    let router = router(false, "hash:4").await;
    let rules = daily(Order::Desc, Ties::Shared, 12);
    let board = seasonal_board(&router, rules).await;
    let s = season(&rules, 0);
    let name = router.open_season(&board, &rules, &s).await.expect("open");
    let fenced = keys::hash_shard(&name, 4, 2);
    let _: () = router.store().query(redis::cmd("SET").arg(keys::closed_marker(&fenced)).arg(1)).await.expect("fence");
    let batch: Vec<ScoreUpdate> = (0..PLAYERS)
        .map(|i| ScoreUpdate {
            board: name.clone(),
            player: crate::helpers::player(i),
            score: i as u64,
            time_ms: 0,
            meta: None,
            source: None,
        })
        .collect();
    let refused: HashSet<String> =
        router.apply(&batch).await.expect("apply").closed.into_iter().map(|c| c.player.to_string()).collect();
    let in_fenced: HashSet<String> = batch
        .iter()
        .filter(|u| keys::hash_shard(&name, 4, leaderboard_store::layout::hash::shard_of(&u.player, 4)) == fenced)
        .map(|u| u.player.to_string())
        .collect();
    assert!(!in_fenced.is_empty());
    assert_eq!(refused, in_fenced, "exactly the fenced shard's updates are refused");
    assert_eq!(router.total(&name).await.expect("total"), (PLAYERS - in_fenced.len()) as u64);
    assert!(router.close_season(&board, &s.id, s.end_ms + 10_000).await.expect("close"), "the next closer finishes");
    let refused = router.apply(&batch).await.expect("apply");
    assert_eq!(refused.closed.len(), PLAYERS, "now every shard is fenced");
}

/// Two closers with clocks 5 s apart race over four days of seasons: each
/// season is closed by exactly one of them, only seasons past their grace
/// by the faster clock close, and retention keeps the newest `keep_seasons`
/// once the results of older ones are produced (not before).
#[tokio::test]
async fn racing_closers_close_each_season_once_and_retention_keeps_the_newest() {
    let (a, b) = (router(false, "hash:2").await, router(false, "hash:2").await);
    let rules = daily(Order::Desc, Ties::Shared, 2);
    let board = seasonal_board(&a, rules).await;
    for day in 0..5 {
        let s = season(&rules, day);
        let name = a.open_season(&board, &rules, &s).await.expect("open");
        let u = ScoreUpdate {
            board: name,
            player: crate::helpers::player(day as usize),
            score: 7,
            time_ms: 0,
            meta: None,
            source: None,
        };
        a.apply(&[u]).await.expect("apply");
    }
    // Day 3 ended 9 s before the faster clock (grace 10 s): it stays open.
    let now = *DAY0 + 4 * DAY + 9_000;
    let (ra, rb) =
        tokio::join!(a.close_due(&board, &rules, now, now), b.close_due(&board, &rules, now - 5_000, now - 5_000));
    let (ra, rb) = (ra.expect("closer a"), rb.expect("closer b"));
    let mut closed: Vec<String> = ra.closed.iter().chain(&rb.closed).cloned().collect();
    closed.sort();
    let ids: Vec<String> = (0..3).map(|d| season(&rules, d).id).collect();
    assert_eq!(closed, ids, "days 0 to 2 closed, each by exactly one closer");
    let listed = |entries: Vec<leaderboard_store::board::seasons::SeasonEntry>| -> Vec<(String, bool)> {
        entries.into_iter().map(|e| (e.id.clone(), e.closed())).collect()
    };
    let expected = |days: &[(i64, bool)]| -> Vec<(String, bool)> {
        days.iter().map(|&(d, c)| (season(&rules, d).id, c)).collect()
    };
    // Retention waits for the results: none is produced yet, so day 0 stays.
    let fresh = || async { a.seasons(&board).await.expect("seasons") };
    assert_eq!(a.remove_beyond_kept(&board, &rules, &fresh().await).await.expect("retention"), Vec::<String>::new());
    let mut entries = fresh().await;
    let due: Vec<_> = leaderboard_store::board::results::due(&mut entries).map(|e| e.clone()).collect();
    assert_eq!(
        due.iter().map(|e| (e.id.clone(), e.revision)).collect::<Vec<_>>(),
        ids.iter().map(|id| (id.clone(), 1)).collect::<Vec<_>>(),
        "every closed season's result is due, oldest first"
    );
    for entry in &due {
        assert!(a.result_produced(&board, &entry.id, 1).await.expect("produced"));
        assert!(!b.result_produced(&board, &entry.id, 1).await.expect("again"), "recorded once");
    }
    assert_eq!(a.remove_beyond_kept(&board, &rules, &fresh().await).await.expect("retention"), [ids[0].clone()]);
    assert!(b.remove_beyond_kept(&board, &rules, &fresh().await).await.expect("retention").is_empty());
    assert_eq!(
        listed(a.seasons(&board).await.expect("seasons")),
        expected(&[(4, false), (3, false), (2, true), (1, true)]),
        "day 0 removed: two closed seasons kept"
    );
    let removed = board.season(&season(&rules, 0).id);
    assert!(record::recorded(a.store(), &removed).await.expect("record").is_none(), "storage removed");
    let late = ScoreUpdate {
        board: removed.clone(),
        player: crate::helpers::player(1),
        score: 99,
        time_ms: 0,
        meta: None,
        source: None,
    };
    assert_eq!(a.apply(&[late]).await.expect("apply").closed.len(), 1, "a removed season takes no write");
    assert!(record::recorded(a.store(), &removed).await.expect("record").is_none(), "and is not recreated");
}

/// Seasons keep their layout; deleting a board deletes its seasons.
#[tokio::test]
async fn seasons_are_not_relaid_and_go_with_their_board() {
    let router = router(false, "range:50").await;
    let rules = daily(Order::Desc, Ties::Shared, 12);
    let board = seasonal_board(&router, rules).await;
    let s = season(&rules, 0);
    let name = router.open_season(&board, &rules, &s).await.expect("open");
    let u = ScoreUpdate {
        board: name.clone(),
        player: crate::helpers::player(1),
        score: 70,
        time_ms: 0,
        meta: None,
        source: None,
    };
    router.apply(&[u]).await.expect("apply");
    let rebalance = router.rebalance(&name, vec![10, 20], RebalanceOptions::default()).await;
    assert!(matches!(rebalance, Err(Error::SeasonLayout(_))), "{rebalance:?}");
    let migrate = router.migrate_layout(&name, &"single".parse().expect("spec"), RebalanceOptions::default()).await;
    assert!(matches!(migrate, Err(Error::SeasonLayout(_))), "{migrate:?}");
    let changed = Rules { reset: None, ..rules };
    let refused = record::set_rules(router.store(), &board, RecordedLayout::Range, changed).await;
    assert!(matches!(refused, Err(Error::ResetFixed { .. })), "{refused:?}");
    router.delete_board(&board).await.expect("delete");
    assert!(router.seasons(&board).await.expect("seasons").is_empty());
    assert!(record::recorded(router.store(), &name).await.expect("record").is_none());
    assert_eq!(router.total(&name).await.expect("total"), 0);
}

/// An amendment raises a closed season's result revision once, after the
/// player is out, and never lets a result be due meanwhile; a ban cut short
/// before or after the removal (by construction: its steps run by hand) is
/// finished by the next run with one revision, not two.
#[tokio::test]
async fn an_amendment_raises_the_result_revision_once_the_player_is_out() {
    let router = router(false, "hash:2").await;
    let rules = daily(Order::Desc, Ties::Shared, 12);
    let board = seasonal_board(&router, rules).await;
    let s = season(&rules, 0);
    let name = router.open_season(&board, &rules, &s).await.expect("open");
    let players: Vec<_> = (1..=3).map(crate::helpers::player).collect();
    let updates: Vec<ScoreUpdate> = players
        .iter()
        .enumerate()
        .map(|(i, p)| ScoreUpdate {
            board: name.clone(),
            player: p.clone(),
            score: 10 * (i as u64 + 1),
            time_ms: 0,
            meta: None,
            source: None,
        })
        .collect();
    router.apply(&updates).await.expect("apply");
    assert!(router.close_season(&board, &s.id, s.end_ms + 20_000).await.expect("close"));
    let closed = newest(&router, &board).await;
    assert_eq!((closed.revision, closed.produced, closed.result_due()), (1, 0, true));
    assert!(router.result_produced(&board, &s.id, 1).await.expect("produced"));

    // Cut short after marking, before the removal: nothing due, the player still there.
    assert!(router.amend_season(&board, &s.id, 1, Some(players[2].as_str())).await.expect("amend"));
    let marked = newest(&router, &board).await;
    assert_eq!(
        (marked.revision, marked.amending.clone(), marked.result_due()),
        (1, vec![players[2].to_string()], false)
    );
    ban_from_closed(&router, &board, &players[2]).await;
    let done = newest(&router, &board).await;
    assert_eq!(
        (done.revision, done.amending.is_empty(), done.result_due()),
        (2, true, true),
        "one revision for the ban"
    );
    assert!(router.standing(&name, &players[2]).await.expect("standing").is_none());
    let result = router.season_result(&board, &done, 100).await.expect("result");
    assert_eq!((result.revision, result.total, result.top.len()), (2, 2, 2));
    assert!(result.amended_at.is_some() && result.top.iter().all(|e| e.player != players[2]));

    // Cut short after the removal, before the revision: the next run finds them out, still marked.
    assert!(router.amend_season(&board, &s.id, 2, Some(players[1].as_str())).await.expect("amend"));
    assert!(router.remove_player(&name, &players[1]).await.expect("remove"));
    assert!(!newest(&router, &board).await.result_due(), "no result while the amendment is unfinished");
    ban_from_closed(&router, &board, &players[1]).await;
    let done = newest(&router, &board).await;
    assert_eq!((done.revision, done.amending.is_empty(), done.result_due()), (3, true, true));
    ban_from_closed(&router, &board, &players[1]).await;
    assert_eq!(newest(&router, &board).await.revision, 3, "a ban of a player already out amends nothing");
}

/// The board's newest season's entry.
async fn newest(
    router: &leaderboard_store::Router,
    board: &leaderboard_contract::BoardId,
) -> leaderboard_store::board::seasons::SeasonEntry {
    router.seasons(board).await.expect("seasons").remove(0)
}

/// Bans `who` from `board` and its closed seasons.
async fn ban_from_closed(
    router: &leaderboard_store::Router,
    board: &leaderboard_contract::BoardId,
    who: &leaderboard_contract::PlayerId,
) {
    use leaderboard_store::marker::registry::{Ban, BanScope};
    let ban =
        Ban { boards: BanScope::Boards(vec![board.clone()]), closed_seasons: true, reason: "cheat".into(), at_ms: 0 };
    router.ban_player(who, &ban).await.expect("ban");
}
