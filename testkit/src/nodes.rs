//! The `redis-server` processes behind the private deployments ([`crate::PrivateRedis`],
//! [`crate::PrivateSentinel`], [`crate::PrivateCluster`]): starting a node that persists every
//! write, waiting for its port, and killing, pausing or cutting off nodes by port.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::inspect::redis_cli;

/// One data node of a private deployment: its port, and its process while it runs.
struct Node {
    port: u16,
    process: Option<Child>,
}

/// The processes of a private deployment (data nodes, or Sentinels), in the order they were started.
#[derive(Default)]
pub(crate) struct Nodes(Vec<Node>);

impl Nodes {
    /// Adds a node started on `port`.
    pub(crate) fn add(&mut self, port: u16, process: Child) {
        self.0.push(Node { port, process: Some(process) });
    }

    /// The ports of every node, killed or not.
    pub(crate) fn ports(&self) -> Vec<u16> {
        self.0.iter().map(|n| n.port).collect()
    }

    /// The ports of the nodes that run.
    pub(crate) fn running(&self) -> Vec<u16> {
        self.0.iter().filter(|n| n.process.is_some()).map(|n| n.port).collect()
    }

    /// Records `process` as the node on `port`, restarted after a kill.
    pub(crate) fn restarted(&mut self, port: u16, process: Child) {
        let node = self.0.iter_mut().find(|n| n.port == port).expect("a node of this deployment");
        node.process = Some(process);
    }

    /// Kills the node on `port` (SIGKILL).
    pub(crate) fn kill(&mut self, port: u16) {
        if let Some(node) = self.0.iter_mut().find(|n| n.port == port)
            && let Some(mut c) = node.process.take()
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills every node that runs (SIGKILL).
    pub(crate) fn kill_all(&mut self) {
        for port in self.running() {
            self.kill(port);
        }
    }

    /// Sends `sig` (`-STOP`, `-CONT`) to the running node on `port`.
    pub(crate) fn signal(&self, port: u16, sig: &str) {
        let pid = self
            .0
            .iter()
            .find(|n| n.port == port)
            .and_then(|n| n.process.as_ref())
            .map(Child::id)
            .expect("a running node of this deployment");
        let status = Command::new("kill").args([sig, &pid.to_string()]).status().expect("kill");
        assert!(status.success(), "kill {sig} {pid}");
    }

    /// Pauses every replica of `primary` (SIGSTOP) and closes their replication links, so
    /// nothing written to `primary` from now on reaches them, not even into a socket buffer,
    /// until they are resumed.
    pub(crate) fn cut_off(&self, replicas: &[u16], primary: u16) {
        for &port in replicas {
            self.signal(port, "-STOP");
        }
        let killed = redis_cli(primary, &["CLIENT", "KILL", "TYPE", "replica"]);
        assert_eq!(killed.trim(), replicas.len().to_string(), "the replication links of {primary}");
    }
}

/// Starts a `redis-server` on `port` with its data in `dir`, persisting every write, plus `extra` arguments.
pub(crate) fn spawn_node(port: u16, dir: &Path, extra: &[&str]) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .args(["--appendonly", "yes", "--appendfsync", "always"])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server on PATH (scripts/infra.sh installs it)")
}

/// Starts a node of a [`crate::PrivateCluster`] on `port`, its data in `dir`.
pub(crate) fn spawn_cluster_node(port: u16, dir: &Path) -> Child {
    let cluster = ["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"];
    spawn_node(port, dir, &[&cluster[..], &["--cluster-replica-validity-factor", "0"]].concat())
}

/// Waits until something listens on `port`.
pub(crate) fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
