//! Store-wide markers: what the store says about itself, beside the data, on
//! every node that can be wiped, rolled back or lag alone.
//!
//! - [`epoch`]: the marker that tells a wiped store from the one processes knew.
//! - [`applied`]: how far the store has applied the topic, which tells a store
//!   that went back in time.
//! - [`loss`]: the note a process leaves when it finds the store lost, and the marking.
//! - [`watermark`]: what ingest has applied, in event time, that answers are dated by.
//! - [`audit`]: the audit log of admin actions and refused requests.
//! - [`registry`]: the player registry: erasures and bans, and the version
//!   every change raises, which writers and copies check.

pub mod applied;
pub mod audit;
pub mod epoch;
pub mod loss;
pub mod registry;
pub mod watermark;
