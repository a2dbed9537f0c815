//! Erasure and bans on every layout, on a single Redis and on the Cluster:
//! the player leaves every board and season (closed ones when the operation
//! reaches them, which amends them), every read agrees with the oracle of the
//! other players, and the registry remembers the player without their data.

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::{Oracle, Order, Rules, ScoreUpdate, Ties};
use leaderboard_store::Router;
use leaderboard_store::marker::registry::{self, Ban, BanScope};
use leaderboard_store::players::remove::Removed;

use crate::helpers::{Workload, assert_matches_oracle, daily, router, season, seasonal_board};

const PLAYERS: usize = 40;

/// A board with a closed season (day 0) and an open one (day 1), each, and
/// the board itself, holding the same random workload plus the scores of
/// `marked`, a player of this test only: erasing or banning a player reaches
/// every board of the store, other tests' included, so the ids must be unique.
struct Seasoned {
    board: BoardId,
    closed: BoardId,
    open: BoardId,
    rules: Rules,
    workload: Workload,
}

/// A player no other test uses.
fn marked() -> PlayerId {
    PlayerId::new(testkit::unique("marked")).expect("player")
}

impl Seasoned {
    async fn new(router: &Router, ties: Ties, seed: u64, marked: &PlayerId) -> Self {
        let rules = daily(Order::Desc, ties, 12);
        let board = seasonal_board(router, rules).await;
        let (first, second) = (season(&rules, 0), season(&rules, 1));
        let closed = router.open_season(&board, &rules, &first).await.expect("open");
        let open = router.open_season(&board, &rules, &second).await.expect("open");
        let names = [board.clone(), closed.clone(), open.clone()];
        let mut workload = Workload::random_in(seed, &names, PLAYERS, 900, 0..=80, 30);
        workload.batches.push(
            names
                .iter()
                .enumerate()
                .map(|(i, b)| ScoreUpdate {
                    board: b.clone(),
                    player: marked.clone(),
                    score: 40 + i as u64,
                    time_ms: 5,
                    meta: Some(crate::helpers::event_meta(7)),
                    source: None,
                })
                .collect(),
        );
        for batch in &workload.batches {
            router.apply(batch).await.expect("apply");
        }
        assert!(router.close_season(&board, &first.id, first.end_ms + 10_000).await.expect("close"));
        Self { board, closed, open, rules, workload }
    }

    /// The oracle of the workload without `gone`'s updates on the boards `gone_from` names.
    fn oracle_without(&self, gone: &PlayerId, gone_from: &[&BoardId]) -> Oracle {
        let mut oracle = Oracle::new();
        oracle.set_rules(&self.board, self.rules);
        for season in [&self.closed, &self.open] {
            oracle.set_rules(season, self.rules.for_season());
        }
        for u in self.workload.batches.iter().flatten() {
            if !(u.player == *gone && gone_from.contains(&&u.board)) {
                oracle.apply(u);
            }
        }
        oracle
    }

    /// How many shards of `names` keep metadata of `player`: none may after an
    /// erasure (it would outlive it unseen, since reads start from the sorted
    /// set). The field is the player's plain member, on `earliest` boards too.
    async fn meta_fields_of(router: &Router, names: &[&BoardId], player: &PlayerId) -> usize {
        let mut kept = 0;
        for name in names {
            for shard in router.stats(name).await.expect("stats").shards {
                let key = leaderboard_store::layout::keys::entry_meta(&shard.key);
                let field = leaderboard_store::layout::member::encode(player);
                let there: bool =
                    router.store().query(redis::cmd("HEXISTS").arg(&key).arg(field)).await.expect("hexists");
                kept += usize::from(there);
            }
        }
        kept
    }

    async fn assert_matches(&self, router: &Router, oracle: &Oracle, context: &str) {
        for name in [&self.board, &self.closed, &self.open] {
            assert_matches_oracle(router, oracle, name, PLAYERS, &format!("{context} {name}")).await;
        }
    }
}

async fn check_erase(cluster: bool, layout: &str, seed: u64) {
    let router = router(cluster, layout).await;
    for (i, ties) in [Ties::Shared, Ties::Earliest].into_iter().enumerate() {
        let gone = marked();
        let seasoned = Seasoned::new(&router, ties, seed * 10 + i as u64, &gone).await;
        let context = format!("{layout} cluster={cluster} {ties:?}");
        assert!(
            router.standing(&seasoned.closed, &gone).await.expect("standing").is_some_and(|s| s.meta.is_some()),
            "{context}: a score and its metadata first"
        );
        let all = [&seasoned.board, &seasoned.closed, &seasoned.open];
        assert_eq!(Seasoned::meta_fields_of(&router, &all, &gone).await, 3, "{context}: metadata on each board first");
        let erased = router.erase_player(&gone).await.expect("erase");
        let removed = &erased.removed;
        for name in [&seasoned.board, &seasoned.closed, &seasoned.open] {
            assert!(removed.boards.contains(name), "{context}: {name} in {removed:?}");
        }
        assert!(removed.amended.contains(&seasoned.closed), "{context}: the closed season is amended");
        assert!(!removed.amended.contains(&seasoned.open), "{context}: an open season is not");
        let amended: Vec<(bool, bool)> = router
            .seasons(&seasoned.board)
            .await
            .expect("seasons")
            .iter()
            .map(|e| (e.closed(), e.amended_at_ms.is_some()))
            .collect();
        assert_eq!(amended, [(false, false), (true, true)], "{context}: the closed season's entry says when");
        seasoned.assert_matches(&router, &seasoned.oracle_without(&gone, &all), &context).await;
        assert_eq!(Seasoned::meta_fields_of(&router, &all, &gone).await, 0, "{context}: no metadata left");
        let status = registry::status(router.store(), &gone).await.expect("status");
        assert_eq!(status.erased_at_ms, Some(erased.at_ms), "{context}: remembered");
        // Erasing again is harmless; the erasure's time moves forward, never back.
        let again = router.erase_player(&gone).await.expect("erase again");
        assert!(again.at_ms >= erased.at_ms && again.removed == Removed::default(), "{context}: {again:?}");
        let status = registry::status(router.store(), &gone).await.expect("status");
        assert_eq!(status.erased_at_ms, Some(again.at_ms), "{context}");
    }
}

#[tokio::test]
async fn erasing_takes_a_player_out_of_single_boards_and_every_season() {
    check_erase(false, "single", 1).await;
}

#[tokio::test]
async fn erasing_takes_a_player_out_of_hash_boards_and_every_season() {
    check_erase(false, "hash:3", 2).await;
}

#[tokio::test]
async fn erasing_takes_a_player_out_of_range_boards_and_every_season() {
    check_erase(false, "range:20,50", 3).await;
}

#[tokio::test]
async fn erasing_works_on_the_cluster() {
    check_erase(true, "hash:3", 4).await;
    check_erase(true, "range:30", 5).await;
}

/// A ban on one board reaches its open seasons only, unless asked for the
/// closed ones too (then amended once); other boards keep the player; a
/// lifted ban lets the player's new scores in again.
#[tokio::test]
async fn a_ban_reaches_closed_seasons_only_when_asked() {
    for (cluster, layout) in [(false, "single"), (false, "range:20,50"), (true, "hash:3")] {
        let router = router(cluster, layout).await;
        let cheater = marked();
        let banned_from = Seasoned::new(&router, Ties::Shared, 60, &cheater).await;
        let elsewhere = Seasoned::new(&router, Ties::Shared, 61, &cheater).await;
        let context = format!("{layout} cluster={cluster}");
        let ban = Ban {
            boards: BanScope::Boards(vec![banned_from.board.clone()]),
            closed_seasons: false,
            reason: "aimbot".into(),
            at_ms: 1,
        };
        let removed = router.ban_player(&cheater, &ban).await.expect("ban");
        assert!(removed.amended.is_empty(), "{context}: no closed season without asking");
        let open_only = [&banned_from.board, &banned_from.open];
        banned_from.assert_matches(&router, &banned_from.oracle_without(&cheater, &open_only), &context).await;
        elsewhere.assert_matches(&router, &elsewhere.oracle_without(&cheater, &[]), &context).await;
        assert_eq!(registry::status(router.store(), &cheater).await.expect("status").ban.as_ref(), Some(&ban));

        let reaching = Ban { closed_seasons: true, ..ban };
        let removed = router.ban_player(&cheater, &reaching).await.expect("ban with closed seasons");
        assert_eq!(removed.amended, vec![banned_from.closed.clone()], "{context}: the closed season is amended");
        let everywhere = [&banned_from.board, &banned_from.open, &banned_from.closed];
        banned_from.assert_matches(&router, &banned_from.oracle_without(&cheater, &everywhere), &context).await;
        assert_eq!(Seasoned::meta_fields_of(&router, &everywhere, &cheater).await, 0, "{context}: no metadata left");

        assert!(registry::unban(router.store(), &cheater).await.expect("unban"), "{context}");
        assert!(!registry::unban(router.store(), &cheater).await.expect("unban again"), "{context}: nothing left");
        assert_eq!(registry::status(router.store(), &cheater).await.expect("status"), registry::Status::default());
    }
}

/// Marks are read for many players in one call, with the version every
/// change raises.
#[tokio::test]
async fn marks_come_with_the_version_every_change_raises() {
    let router = router(false, "single").await;
    let (erased, banned, clean) = (
        PlayerId::new(testkit::unique("erased")).expect("id"),
        PlayerId::new(testkit::unique("banned")).expect("id"),
        PlayerId::new(testkit::unique("clean")).expect("id"),
    );
    let before = registry::marks(router.store(), [&erased, &banned, &clean]).await.expect("marks");
    let at = registry::mark_erased(router.store(), &erased).await.expect("erase");
    let ban = Ban { boards: BanScope::ALL, closed_seasons: false, reason: String::new(), at_ms: 2 };
    registry::ban(router.store(), &banned, &ban).await.expect("ban");
    let after = registry::marks(router.store(), [&erased, &banned, &clean]).await.expect("marks");
    assert!(after.version >= before.version + 2, "{before:?} then {after:?}");
    assert_eq!(after.erased.get(&erased), Some(&at));
    assert!(after.erased_before(&erased, at - 1) && !after.erased_before(&erased, at));
    assert!(after.ban_on(&banned, &BoardId::new("any").expect("board")).is_some());
    assert!(!after.erased.contains_key(&clean) && !after.bans.contains_key(&clean));
}

/// Which copy a race test holds.
enum Copy {
    /// A migration to this layout.
    Migrate(&'static str),
    /// A range rebalance to these boundaries.
    Rebalance(Vec<u64>),
}

/// The race of a copy with an erasure and a ban, by construction: the fail
/// point `store::copy_before_write` holds the copy after it read its first
/// chunk (every player in it, none marked yet) and before it writes it; the
/// erasure and the ban run in full while it is held; then the copy writes the
/// chunk. Neither player may be in the board afterwards. A player erased
/// before the copy started, with a new start since, is copied.
async fn check_copy_race(from: &str, copy: Copy) {
    use std::time::Duration;

    let source = router(false, from).await;
    let board = crate::helpers::unique_board("copy-race");
    let (gone, cheat, reborn) = (marked(), marked(), marked());
    let mut oracle = Oracle::new();
    let mut updates: Vec<ScoreUpdate> = (0..30)
        .map(|i| ScoreUpdate {
            board: board.clone(),
            player: crate::helpers::player(i),
            score: 10 + i as u64 * 9,
            time_ms: 1,
            meta: None,
            source: None,
        })
        .collect();
    for u in &updates {
        oracle.apply(u);
    }
    // Below the range board's first boundary: in the first chunk the copy reads, which the fail point holds.
    for (player, score) in [(&gone, 95), (&cheat, 94), (&reborn, 93)] {
        updates.push(ScoreUpdate {
            board: board.clone(),
            player: player.clone(),
            score,
            time_ms: 1,
            meta: None,
            source: None,
        });
    }
    source.apply(&updates).await.expect("apply");
    source.erase_player(&reborn).await.expect("erase before the copy");
    let new_start =
        ScoreUpdate { board: board.clone(), player: reborn.clone(), score: 5, time_ms: 2, meta: None, source: None };
    source.apply(std::slice::from_ref(&new_start)).await.expect("a new start");
    oracle.apply(&new_start);

    let hold = testkit::FailHold::new("store::copy_before_write");
    let options =
        leaderboard_store::RebalanceOptions { chunk: 1000, max_chunks: None, grace: Duration::from_millis(1500) };
    let (copier, to) = (source.clone(), board.clone());
    let (task, after) = match copy {
        Copy::Migrate(layout) => {
            let spec: leaderboard_store::LayoutSpec = layout.parse().expect("layout");
            let task = tokio::spawn(async move { copier.migrate_layout(&to, &spec, options).await.map(|_| ()) });
            (task, router(false, layout).await)
        }
        Copy::Rebalance(boundaries) => {
            let task = tokio::spawn(async move { copier.rebalance(&to, boundaries, options).await.map(|_| ()) });
            (task, source.clone())
        }
    };
    assert!(hold.reached(Duration::from_secs(30)).await, "the copy read its first chunk");
    source.erase_player(&gone).await.expect("erase");
    let ban =
        Ban { boards: BanScope::Boards(vec![board.clone()]), closed_seasons: false, reason: "x".into(), at_ms: 1 };
    source.ban_player(&cheat, &ban).await.expect("ban");
    hold.release();
    task.await.expect("join").expect("copy");

    let context = format!("{from}: copy");
    assert_eq!(after.standing(&board, &gone).await.expect("standing"), None, "{context}: the erasure won");
    assert_eq!(after.standing(&board, &cheat).await.expect("standing"), None, "{context}: the ban won");
    let reborn_now = after.standing(&board, &reborn).await.expect("standing").map(|s| s.score);
    assert_eq!(reborn_now, Some(5), "{context}: a new start after an earlier erasure is copied");
    assert_matches_oracle(&after, &oracle, &board, 31, &context).await;
}

// Multi-threaded: the held copy blocks a runtime thread (`block_in_place`) while the test erases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs the fail points: run with --features leaderboard-store/failpoints"
)]
async fn an_erasure_and_a_ban_during_a_migration_chunk_win() {
    check_copy_race("single", Copy::Migrate("hash:2")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs the fail points: run with --features leaderboard-store/failpoints"
)]
async fn an_erasure_and_a_ban_during_a_rebalance_chunk_win() {
    check_copy_race("range:100", Copy::Rebalance(vec![50, 200])).await;
}
