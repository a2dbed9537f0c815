//! `lb-admin player`, `ban`, `unban` and `erase` on a real board.

use leaderboard_contract::PlayerId;
use leaderboard_semantics::ScoreUpdate;

use crate::{admin, json, skewed_board};

#[tokio::test]
async fn describes_bans_unbans_and_erases_a_player() {
    let (router, board) = skewed_board("range:500").await;
    // A player of this test only: erasing and banning reach every board of the store.
    let player = PlayerId::new(testkit::unique("admin-player")).expect("player");
    let (p, b) = (player.as_str(), board.as_str());
    let top =
        ScoreUpdate { board: board.clone(), player: player.clone(), score: 2000, time_ms: 0, meta: None, source: None };
    router.apply(std::slice::from_ref(&top)).await.expect("write");

    let status = json(&["player", p]).await;
    assert_eq!(status["boards"], serde_json::json!([{"board": b, "score": 2000, "rank": 1}]), "{status}");
    assert!(status.get("erased_at_ms").is_none() && status.get("ban").is_none(), "{status}");

    let banned = json(&["ban", p, "--boards", b, "--reason", "smurf"]).await;
    assert_eq!(banned["boards"], serde_json::json!([b]), "{banned}");
    assert_eq!(router.standing(&board, &player).await.expect("standing"), None);
    assert_eq!(json(&["player", p]).await["ban"]["reason"], "smurf");
    assert!(admin(&["unban", p]).await.expect("unban").contains("unbanned"));
    let again = admin(&["unban", p]).await.expect_err("nothing to lift");
    assert!(again.to_string().contains("not banned"), "{again}");

    router.apply(std::slice::from_ref(&top)).await.expect("write again");
    let erased = json(&["erase", p]).await;
    assert!(erased["erased_at_ms"].as_i64().is_some(), "{erased}");
    assert_eq!(erased["boards"], serde_json::json!([b]), "{erased}");
    assert_eq!(router.standing(&board, &player).await.expect("standing"), None);
    let status = json(&["player", p]).await;
    assert!(status["erased_at_ms"].as_i64().is_some() && status["boards"] == serde_json::json!([]), "{status}");
    let text = admin(&["player", p]).await.expect("text");
    assert!(text.contains("erased at") && text.contains("not banned"), "{text}");
}
