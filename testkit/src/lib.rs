//! Helpers shared by the integration tests of every crate.
//!
//! Tests talk to the real servers that `scripts/infra.sh up` starts; their
//! addresses come from the environment that script writes, with the script's
//! defaults as fallback. Every test uses names of its own ([`unique`]) so tests
//! run in parallel against the same servers.

// Test helpers fail the test by panicking, with a message saying what is missing.
#![allow(clippy::missing_panics_doc)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The single Redis (`LB_REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("LB_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6390".into())
}

/// The Redis Cluster seed nodes (`LB_REDIS_CLUSTER_URLS`).
pub fn cluster_urls() -> String {
    std::env::var("LB_REDIS_CLUSTER_URLS")
        .unwrap_or_else(|_| "redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103".into())
}

/// The Kafka-protocol broker (`LB_KAFKA_BROKERS`).
pub fn brokers() -> String {
    std::env::var("LB_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// `prefix` plus 64 random bits: a topic, group, board or key no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

/// A Redis server of one test's own, so stopping it disturbs no other test.
/// Every acknowledged write survives a kill (`appendfsync always`).
pub struct PrivateRedis {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts a server on a free port with its own data directory.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(unique("lb-redis"));
        std::fs::create_dir_all(&dir).expect("private redis data dir");
        let mut r = Self { port: free_port(), dir, child: None };
        r.restart();
        r
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same port and data directory.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (scripts/infra.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "private redis did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's process id, while it runs (to pause it with SIGSTOP).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL): an outage.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
