//! Names and ports of a test's own, so tests run in parallel against the same servers.

use std::net::TcpListener;

/// `prefix` plus 64 random bits: a topic, group, board or key no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}
