//! `manual` seasons: resets in quick succession make contiguous seasons, a
//! reset never ends a season before a time a writer has placed in it, resets
//! stop at the bound of seasons not closed, and a board's resets go with it.

use std::time::Duration;

use leaderboard_semantics::Rules;
use leaderboard_semantics::clock::system_ms;
use leaderboard_semantics::season::{OPEN_END_MS, Season};
use leaderboard_store::board::manual::{MAX_UNCLOSED, Placed, ResetOutcome};
use leaderboard_store::layout::keys;
use leaderboard_store::{Error, Router};

use crate::helpers::{router, seasonal_board};

/// A `manual` board whose seasons take late events for an hour (so no
/// closer of another test on the shared Redis closes them under this one).
async fn manual_board(router: &Router) -> (leaderboard_contract::BoardId, Rules) {
    let rules = Rules {
        reset: Some(serde_json::from_str(r#"{"every":"manual"}"#).expect("manual")),
        late_grace: Duration::from_secs(3600),
        ..Rules::default()
    };
    (seasonal_board(router, rules).await, rules)
}

fn ending(outcome: ResetOutcome) -> (Season, Season) {
    match outcome {
        ResetOutcome::Ended { ended, opened } => (ended, opened),
        ResetOutcome::First(opened) => panic!("the board had a season: {opened:?}"),
    }
}

#[tokio::test]
async fn resets_in_quick_succession_make_contiguous_seasons() {
    for cluster in [false, true] {
        let router = router(cluster, "hash:2").await;
        let (board, _) = manual_board(&router).await;
        let t0 = system_ms();
        assert_eq!(router.start_manual(&board, t0).await.expect("start"), Some(t0));
        assert_eq!(
            router.start_manual(&board, t0 + 50).await.expect("again"),
            None,
            "a board that has seasons keeps them"
        );
        // Five resets at one clock reading: each season lasts at least a millisecond.
        let mut seasons = vec![Season { id: "m1".into(), start_ms: t0, end_ms: OPEN_END_MS }];
        for k in 2..=6 {
            let (ended, opened) = ending(router.reset_season(&board, t0, None).await.expect("reset"));
            let last = seasons.last_mut().expect("a season");
            assert_eq!((ended.id.as_str(), ended.start_ms), (last.id.as_str(), last.start_ms), "cluster={cluster}");
            assert_eq!(ended.end_ms, last.start_ms + 1, "cluster={cluster}: ended just after it started");
            last.end_ms = ended.end_ms;
            assert_eq!(
                (opened.id.clone(), opened.start_ms, opened.end_ms),
                (format!("m{k}"), ended.end_ms, OPEN_END_MS)
            );
            seasons.push(opened);
        }
        let registry: Vec<(String, i64, i64, bool)> = router
            .seasons(&board)
            .await
            .expect("seasons")
            .into_iter()
            .rev()
            .map(|e| (e.id.clone(), e.start_ms, e.end_ms, e.closed()))
            .collect();
        let want: Vec<(String, i64, i64, bool)> =
            seasons.iter().map(|s| (s.id.clone(), s.start_ms, s.end_ms, false)).collect();
        assert_eq!(registry, want, "cluster={cluster}: the registry holds each season's interval");

        let view = router.view_manual(&board, t0 - 1, t0 + 10, false).await.expect("view");
        assert_eq!(view.place(t0 - 1), Placed::Before, "before the first season");
        for (t, season) in (t0..).zip(&seasons) {
            assert_eq!(view.place(t), Placed::In(season.clone()), "cluster={cluster}: time {t}");
        }
        let (current, previous) = view.at_and_before(t0 + 100);
        assert_eq!((current, previous), (seasons.get(5), seasons.get(4)));
        assert_eq!(router.manual_season(&board, "m3").await.expect("m3"), Some(seasons[2].clone()));
        assert_eq!(router.manual_season(&board, "m6").await.expect("m6"), Some(seasons[5].clone()), "open");
        for unknown in ["m7", "m0", "2026-01"] {
            assert_eq!(router.manual_season(&board, unknown).await.expect("lookup"), None, "{unknown}");
        }
        // A retried reset names the season it ends: the reset that ended m5 answers again, nothing moves.
        let again = router.reset_season(&board, t0 + 1_000, Some("m5")).await.expect("retry");
        assert_eq!(
            again,
            ResetOutcome::Ended { ended: seasons[4].clone(), opened: seasons[5].clone() },
            "cluster={cluster}"
        );
        let refused = router.reset_season(&board, t0 + 1_000, Some("m9")).await.expect_err("no such season");
        assert!(matches!(refused, Error::NotCurrent { ref open, .. } if open == "m6"), "{refused}");
        let (ended, _) = ending(router.reset_season(&board, t0 + 1_000, Some("m6")).await.expect("the open one"));
        assert_eq!((ended.id.as_str(), ended.end_ms), ("m6", t0 + 1_000), "cluster={cluster}");
    }
}

/// A writer read the seasons for events up to `t0 + 5000` (and may write
/// them any time later): a reset whose clock says `t0 + 10` ends the season
/// after them, so the writer's placement is what the resets say.
#[tokio::test]
async fn a_reset_ends_a_season_after_every_time_a_writer_placed() {
    for cluster in [false, true] {
        let router = router(cluster, "single").await;
        let (board, _) = manual_board(&router).await;
        let t0 = system_ms();
        router.start_manual(&board, t0).await.expect("start");
        let placed = router.view_manual(&board, t0 + 100, t0 + 5000, true).await.expect("assign");
        assert!(matches!(placed.place(t0 + 5000), Placed::In(ref s) if s.id == "m1"));
        let (ended, opened) = ending(router.reset_season(&board, t0 + 10, None).await.expect("reset"));
        assert_eq!((ended.end_ms, opened.start_ms), (t0 + 5001, t0 + 5001), "cluster={cluster}");
        let now = router.view_manual(&board, t0 + 100, t0 + 6000, false).await.expect("view");
        assert!(matches!(now.place(t0 + 5000), Placed::In(ref s) if s.id == "m1"), "cluster={cluster}");
        assert!(matches!(now.place(t0 + 5001), Placed::In(ref s) if s.id == "m2"), "cluster={cluster}");
        // A read (`assigning` false) moves nothing: the next reset ends m2 at its own clock.
        let (ended, _) = ending(router.reset_season(&board, t0 + 7000, None).await.expect("reset"));
        assert_eq!(ended.end_ms, t0 + 7000, "cluster={cluster}");
    }
}

#[tokio::test]
async fn resets_stop_at_the_bound_of_seasons_not_closed_until_the_closer_catches_up() {
    let router = router(false, "single").await;
    let (board, rules) = manual_board(&router).await;
    // A board without a first season: the first reset opens it.
    let t0 = system_ms();
    match router.reset_season(&board, t0, None).await.expect("first") {
        ResetOutcome::First(opened) => assert_eq!((opened.id.as_str(), opened.start_ms), ("m1", t0)),
        other @ ResetOutcome::Ended { .. } => panic!("no season to end: {other:?}"),
    }
    for k in 1..MAX_UNCLOSED {
        router.reset_season(&board, t0 + i64::try_from(k).expect("k"), None).await.expect("within the bound");
    }
    let refused = router.reset_season(&board, t0 + 100, None).await.expect_err("beyond the bound");
    assert!(matches!(refused, Error::TooManyUnclosed { open, .. } if open == MAX_UNCLOSED), "{refused}");
    // Past every ended season's grace, by the clock and the watermark: the closer closes them all.
    let later = t0 + 2 * 3_600_000;
    let closing = router.close_due(&board, &rules, later, later).await.expect("close");
    assert_eq!(closing.closed.len(), MAX_UNCLOSED - 1, "every ended season, not the open one");
    let (_, opened) = ending(router.reset_season(&board, t0 + 200, None).await.expect("reset once closed"));
    assert_eq!(opened.id, format!("m{}", MAX_UNCLOSED + 1));
}

#[tokio::test]
async fn a_manual_boards_resets_go_with_it() {
    let router = router(true, "hash:2").await;
    let (board, _) = manual_board(&router).await;
    router.start_manual(&board, system_ms()).await.expect("start");
    router.view_manual(&board, 0, system_ms(), true).await.expect("assign");
    router.reset_season(&board, system_ms(), None).await.expect("reset");
    router.delete_board(&board).await.expect("delete");
    for key in [keys::resets(&board), keys::viewed(&board), keys::seasons(&board)] {
        let exists: i64 = router.store().query(redis::cmd("EXISTS").arg(&key)).await.expect("exists");
        assert_eq!(exists, 0, "{key}");
    }
}
