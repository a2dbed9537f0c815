//! The web page in a real headless Chromium.

use std::process::Command;

use crate::helpers::{TestApi, board, router, seed};

fn chromium() -> String {
    std::env::var("LB_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// Loads the page with a player lookup in the URL and returns the DOM after
/// scripts ran (Chromium's virtual time lets the page's fetches finish).
fn rendered_dom(url: &str) -> String {
    let profile = std::env::temp_dir().join(testkit::unique("chromium-profile"));
    let output = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        .args(["--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--virtual-time-budget=8000", "--dump-dom", url])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {} ({e}); scripts/infra.sh install installs Debian's chromium", chromium())
        });
    let _ = std::fs::remove_dir_all(&profile);
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn page_shows_rows_and_a_lookup() {
    let redis = testkit::redis_url();
    let b = board("page");
    let oracle = seed(&router(&redis, "range:100,200").await, &b, 150).await;
    // The test plays ingest's part: everything stamped before now is applied.
    let topic = testkit::unique("page-topic");
    let now_ms =
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis())
            .expect("ms");
    let claim = shard_router::watermark::Claim { partition: 0, applied_before_ms: now_ms };
    let store = router(&redis, "single").await.store().clone();
    shard_router::watermark::publish(&store, &topic, 1, &[claim]).await.expect("publish");
    let api = TestApi::start(&redis, "range:100,200", |c| c.topic = topic.clone()).await;
    let player = leaderboard_contract::PlayerId::new("p0042").expect("id");
    let want = oracle.board(&b).expect("seeded").standing(&player).expect("seeded");
    let url = format!("{}/?board={b}&player={player}", api.base);
    let dom = tokio::task::spawn_blocking(move || rendered_dom(&url)).await.expect("browser task");
    let rows = dom.matches("<tr").count();
    assert!(rows > 100, "top rows rendered ({rows} <tr>): {dom}");
    let rank = format!(r#"<dd id="lookup-rank">{}</dd>"#, want.rank);
    assert!(dom.contains(&rank), "lookup shows rank {}: {dom}", want.rank);
    assert!(dom.contains("150 players"), "freshness line with the total");
    assert!(dom.contains("Every score event stamped before"), "the watermark, in words: {dom}");
    let points =
        dom.split(r#"id="freshness-line" points=""#).nth(1).and_then(|rest| rest.split('"').next()).unwrap_or("");
    assert!(points.contains(','), "the freshness chart has points: {points:?}");
    assert!(dom.contains("<dd>equal scores share a rank</dd>"), "the board's rules are shown: {dom}");
    assert!(dom.contains("<dd>higher score (descending)</dd>"), "the board's order is shown");
    api.stop().await;
}
