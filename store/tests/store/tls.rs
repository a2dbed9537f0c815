//! Redis over TLS with a private CA: a Redis (Debian's, built with TLS) listening only with TLS,
//! its certificate signed by a CA the test makes. A store given the CA (`StoreOptions::tls_root`,
//! the services' `--redis-ca`) reads and writes through it; without it, the server is not trusted.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::ScoreUpdate;
use leaderboard_store::{RedisTarget, Router, RouterOptions, Store, StoreOptions};

/// Debian's `redis-server` listening only with TLS, its certificate from `pki`; stopped when dropped.
struct TlsRedis {
    child: Child,
    port: u16,
}

impl TlsRedis {
    fn start(pki: &testkit::TestPki) -> Self {
        let port = testkit::free_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--tls-cert-file", &pki.path("cert.pem"), "--tls-key-file", &pki.path("key.pem")])
            .args(["--tls-ca-cert-file", &pki.path("ca.pem"), "--tls-auth-clients", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/infra.sh installs it)");
        Self { child, port }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_store_trusting_the_ca_works_over_tls_and_one_without_is_refused() {
    let pki = testkit::TestPki::new();
    let redis = TlsRedis::start(&pki);
    let target = RedisTarget::parse(&format!("rediss://127.0.0.1:{}", redis.port)).expect("url");
    let ca: &'static [u8] = Box::leak(pki.ca_pem().as_bytes().to_vec().into_boxed_slice());
    let options = StoreOptions { tls_root: Some(ca), ..StoreOptions::default() };
    let mut store = None;
    for _ in 0..50 {
        if let Ok(s) = Store::connect(&target, options).await {
            store = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let router =
        Router::new(store.expect("connect over TLS"), "hash:2".parse().expect("layout"), RouterOptions::default());
    let board = BoardId::new(testkit::unique("tls")).expect("board");
    let updates: Vec<ScoreUpdate> = (0..50u64)
        .map(|i| ScoreUpdate {
            board: board.clone(),
            player: PlayerId::new(format!("p{i}")).expect("id"),
            score: i,
            time_ms: 0,
            meta: None,
            source: None,
        })
        .collect();
    router.apply(&updates).await.expect("write over TLS");
    let top = router.top(&board, 0, 3).await.expect("read over TLS");
    assert_eq!((top.total, top.entries[0].score), (50, 49));

    let untrusting = Store::connect(&target, StoreOptions::default()).await;
    assert!(untrusting.is_err(), "a server signed by an unknown CA was trusted");
    let sentinel = RedisTarget::parse("rediss+sentinel://127.0.0.1:1/lb").expect("url");
    assert!(Store::connect(&sentinel, options).await.is_err_and(|e| e.to_string().contains("not supported")));
}
