//! Fail points (the `failpoints` feature, fault tests only): named places
//! where a test holds a task to cause a race at the moment that matters.
//! Without the feature, [`hold_here`] compiles to nothing.

/// Evaluates the fail point `name`. Its `pause` (or a callback that waits)
/// blocks the thread until the test lifts it; on a multi-thread runtime the
/// worker first hands its other tasks to another thread, so only the held
/// task stops and the rest of the process goes on as it would behind a slow
/// Redis.
#[cfg(feature = "failpoints")]
pub fn hold_here(name: &str) {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let configured = fail::list().iter().any(|(point, _)| point == name);
    let multi_thread = Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
    if configured && multi_thread {
        tokio::task::block_in_place(|| fail::fail_point!(name));
    } else {
        fail::fail_point!(name);
    }
}

/// Without the `failpoints` feature, nothing.
#[cfg(not(feature = "failpoints"))]
pub fn hold_here(_name: &str) {}

/// Whether the fail point `name` is set to `return` now: a test makes the
/// store act as if a reply was lost after Redis applied the command (a
/// timeout at the worst moment), by construction.
#[cfg(feature = "failpoints")]
pub fn triggered(name: &str) -> bool {
    fail::fail_point!(name, |_| true);
    false
}

/// Without the `failpoints` feature, never.
#[cfg(not(feature = "failpoints"))]
pub const fn triggered(_name: &str) -> bool {
    false
}
