//! [`PrivateRedis`]: one Redis server of a test's own, to kill, restart or roll back to a
//! [`Checkpoint`] without disturbing any other test.

use std::path::PathBuf;
use std::process::{Child, Command};

use crate::inspect::redis_cli;
use crate::names::{free_port, unique};
use crate::nodes::{spawn_node, wait_for_port};

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
        self.child = Some(spawn_node(self.port, &self.dir, &[]));
        wait_for_port(self.port);
    }

    /// A copy of the server's persisted state now: every write it acknowledged
    /// (`appendfsync always`), taken while writes wait (`CLIENT PAUSE WRITE`),
    /// so the copy is one moment's state. [`PrivateRedis::roll_back_to`] restarts from it.
    pub fn checkpoint(&self) -> Checkpoint {
        let copy = std::env::temp_dir().join(unique("lb-redis-checkpoint"));
        let paused = redis_cli(self.port, &["CLIENT", "PAUSE", "30000", "WRITE"]);
        assert_eq!(paused.trim(), "OK", "CLIENT PAUSE: {paused}");
        let copied = Command::new("cp").arg("-a").arg(&self.dir).arg(&copy).status();
        let unpaused = redis_cli(self.port, &["CLIENT", "UNPAUSE"]);
        assert!(copied.is_ok_and(|s| s.success()), "copying {}", self.dir.display());
        assert_eq!(unpaused.trim(), "OK", "CLIENT UNPAUSE: {unpaused}");
        Checkpoint { dir: copy }
    }

    /// Kills the server (SIGKILL) and restarts it from `checkpoint`'s files:
    /// a Redis that comes back from an older state (an RDB-only node, an
    /// `everysec` AOF that missed its last second, a restored VM).
    pub fn roll_back_to(&mut self, checkpoint: &Checkpoint) {
        self.kill();
        std::fs::remove_dir_all(&self.dir).expect("removing the data dir");
        let copied = Command::new("cp").arg("-a").arg(&checkpoint.dir).arg(&self.dir).status();
        assert!(copied.is_ok_and(|s| s.success()), "restoring {}", checkpoint.dir.display());
        self.restart();
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

/// A [`PrivateRedis`]'s persisted state at one moment; deleted when dropped.
pub struct Checkpoint {
    dir: PathBuf,
}

impl Drop for Checkpoint {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
