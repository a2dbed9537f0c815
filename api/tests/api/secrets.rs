//! Secrets never reach logs, errors or `--help`: the api binary runs with a Redis password it
//! is refused (a canary string), logs at `debug`, answers, stops; none of its output holds the
//! canary. `scripts/secrets-check.sh` greps every log of the suite for the same canary and the
//! test Redis users' real passwords.

use std::process::{Command, Stdio};
use std::time::Duration;

/// The password every test that must never print it uses (also grepped for by scripts/secrets-check.sh).
const CANARY: &str = "canary-password-6c1f9d";

fn redis_with_canary() -> String {
    let redis = testkit::redis_url();
    let host = redis.trim_start_matches("redis://");
    format!("redis://lb-api:{CANARY}@{host}")
}

#[tokio::test]
async fn a_refused_password_is_never_printed() {
    let port = testkit::free_port();
    let admin_url = format!("{}?x={CANARY}", redis_with_canary());
    let mut api = Command::new(env!("CARGO_BIN_EXE_api"))
        .args(["--redis", &redis_with_canary(), "--addr", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the api binary");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().expect("client");
    let base = format!("http://127.0.0.1:{port}");
    // Whether it serves (503s: Redis refuses the password) or exits at start, it says why in its logs.
    for _ in 0..30 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            assert!(!r.text().await.unwrap_or_default().contains(CANARY), "a /readyz answer holds the password");
            let top = client.get(format!("{base}/v1/boards/b/top")).send().await.expect("top");
            assert!(!top.text().await.unwrap_or_default().contains(CANARY), "an error answer holds the password");
            break;
        }
        if api.try_wait().expect("wait").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // SIGTERM, as an orchestrator stops it.
    let _ = Command::new("kill").args(["-TERM", &api.id().to_string()]).status();
    let output = tokio::task::spawn_blocking(move || api.wait_with_output()).await.expect("join").expect("output");
    let logs = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!logs.is_empty(), "the api logged nothing at debug");
    assert!(!logs.contains(CANARY), "the api printed the password:\n{logs}");

    // The admin routes connect at start: refused, the api exits, saying why.
    let refused = Command::new(env!("CARGO_BIN_EXE_api"))
        .args(["--redis", &redis_with_canary(), "--addr", "127.0.0.1:0"])
        .args(["--admin-token", "ops:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08:admin"])
        .env("LB_ADMIN_REDIS_URL", &admin_url)
        .env("RUST_LOG", "debug")
        .output()
        .expect("api with a refused admin password");
    let logs = format!("{}{}", String::from_utf8_lossy(&refused.stdout), String::from_utf8_lossy(&refused.stderr));
    assert!(!refused.status.success() && logs.contains("admin routes"), "{logs}");
    assert!(!logs.contains(CANARY), "the api printed the admin password:\n{logs}");

    let help = Command::new(env!("CARGO_BIN_EXE_api"))
        .arg("--help")
        .env("LB_REDIS_URL", redis_with_canary())
        .env("LB_ADMIN_REDIS_URL", &admin_url)
        .output()
        .expect("api --help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("LB_REDIS_URL") && !help.contains(CANARY), "--help shows the password:\n{help}");
}
