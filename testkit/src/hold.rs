//! [`FailHold`]: holding the first task that reaches a fail point until the
//! test releases it, to cause a race at the moment that matters.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Holds the first task that reaches the fail point `name` (compiled in with
/// the crate's `failpoints` feature) until [`FailHold::release`]; later ones
/// pass. Dropping it removes the fail point.
pub struct FailHold {
    name: &'static str,
    reached: Arc<Mutex<Receiver<()>>>,
    release: Sender<()>,
}

impl FailHold {
    /// Arms the fail point `name`.
    pub fn new(name: &'static str) -> Self {
        let (reached_tx, reached_rx) = channel::<()>();
        let (release_tx, release_rx) = channel::<()>();
        let (reached_tx, release_rx) = (Mutex::new(reached_tx), Mutex::new(release_rx));
        let first = std::sync::atomic::AtomicBool::new(false);
        fail::cfg_callback(name, move || {
            if !first.swap(true, std::sync::atomic::Ordering::SeqCst) {
                // The test may have given up waiting: then nothing waits to be told.
                let _ = reached_tx.lock().expect("lock").send(());
                let _ = release_rx.lock().expect("lock").recv();
            }
        })
        .expect("fail point");
        Self { name, reached: Arc::new(Mutex::new(reached_rx)), release: release_tx }
    }

    /// Waits, off the runtime's threads, until a task is held there; false after `timeout`.
    pub async fn reached(&self, timeout: Duration) -> bool {
        let reached = self.reached.clone();
        tokio::task::spawn_blocking(move || reached.lock().expect("lock").recv_timeout(timeout).is_ok())
            .await
            .expect("join")
    }

    /// Lets the held task go on.
    pub fn release(&self) {
        let _ = self.release.send(());
    }
}

impl Drop for FailHold {
    fn drop(&mut self) {
        self.release();
        fail::remove(self.name);
    }
}
