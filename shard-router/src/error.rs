//! The shard-router's error type.

/// Everything that can go wrong in the shard-router.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Redis could not be reached or answered with an error.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A layout specification or boundary list is invalid.
    #[error("invalid layout: {0}")]
    InvalidLayout(String),
    /// Redis holds data this crate did not write (a foreign member, bad metadata).
    #[error("unexpected data in redis: {0}")]
    Corrupt(String),
    /// A rebalance to different boundaries is already in progress on the board.
    #[error("a rebalance to other boundaries is in progress on board {board}: {current}")]
    RebalanceConflict {
        /// The board.
        board: String,
        /// The target boundaries of the rebalance in progress.
        current: String,
    },
    /// The operation needs the `range` layout.
    #[error("operation needs the range layout, the board uses {0}")]
    NotRange(&'static str),
}

impl Error {
    /// Whether the error is about reaching Redis (worth retrying) rather than about data or configuration.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Redis(e) => {
                e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_unrecoverable_error()
                    || matches!(
                        e.kind(),
                        redis::ErrorKind::Server(
                            redis::ServerErrorKind::BusyLoading
                                | redis::ServerErrorKind::TryAgain
                                | redis::ServerErrorKind::ClusterDown
                                | redis::ServerErrorKind::MasterDown
                        )
                    )
            }
            _ => false,
        }
    }
}

/// The shard-router's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
