//! The store's error type.

/// Everything that can go wrong in the store.
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
    /// Concurrent metadata changes (a rebalance step) outran this operation; trying again succeeds.
    #[error("board {0} changed during the operation; try again")]
    Contended(String),
    /// The operation needs the `range` layout.
    #[error("operation needs the range layout, the board uses {0}")]
    NotRange(&'static str),
    /// The board is stored with another layout than this process is configured with.
    #[error("board {board} is stored with layout {recorded}, but this process is configured with {configured}")]
    LayoutMismatch {
        /// The board.
        board: String,
        /// The layout recorded with the board.
        recorded: String,
        /// The layout this process uses.
        configured: String,
    },
    /// Another layout operation (a rebalance, a layout migration) is in progress on the board.
    #[error("board {board} is busy: {what}")]
    Busy {
        /// The board.
        board: String,
        /// The operation in progress.
        what: String,
    },
    /// A restore found the board already there: it loads only into a board that does not exist.
    #[error("board {0} exists; a restore loads only into a board that does not")]
    BoardExists(String),
    /// An operation that needs an existing board found none.
    #[error("board {0} does not exist")]
    UnknownBoard(String),
    /// The board's order, ties and operator are fixed when it is created ([`leaderboard_semantics::rules`]).
    #[error("board {board} is stored with {recorded}; order, ties and operator cannot change once a board exists")]
    RulesFixed {
        /// The board.
        board: String,
        /// Its recorded order and ties.
        recorded: String,
    },
    /// The board's order or ties are not the ones the caller prepared the batch
    /// under (the board was created or re-created meanwhile): prepare it again.
    #[error("board {0} changed its order or ties; prepare the batch again")]
    RulesChanged(String),
    /// A season keeps the layout it was created with: it is not rebalanced nor
    /// migrated (a closed one is frozen, and an open one lives at most a month).
    #[error("{0} is a season; seasons keep the layout they were created with")]
    SeasonLayout(String),
    /// A write to a season that has no storage (removed by retention, or never opened).
    #[error("season {0} does not exist")]
    NoSeason(String),
    /// A board's reset schedule is fixed once set: season ids and boundaries depend on it.
    #[error("board {board} resets {recorded}; a reset schedule cannot change once set")]
    ResetFixed {
        /// The board.
        board: String,
        /// Its recorded schedule.
        recorded: String,
    },
    /// A chunk of a `last` or `sum` write found its shard behind the chunks
    /// before it in the same call (one of them failed): nothing of it was
    /// written; the call is retried.
    #[error("shard {0} missed an earlier chunk of the same write; retrying")]
    OutOfOrder(String),
    /// `last` and `sum` boards keep the layout they were created with: a
    /// migration's copy and the live writes would count the same records twice.
    #[error("board {board} uses operator {operator}, which cannot be written to {layout}: it keeps its layout")]
    OperatorLayout {
        /// The board.
        board: String,
        /// Its operator.
        operator: String,
        /// The layout, or layouts, it would be written to.
        layout: String,
    },
    /// A reset of a `manual` board while [`crate::board::manual::MAX_UNCLOSED`]
    /// of its seasons are not closed yet.
    #[error("board {board} has {open} seasons not closed yet; reset it again once the closer has closed some")]
    TooManyUnclosed {
        /// The board.
        board: String,
        /// Its seasons not closed yet (the open one included).
        open: usize,
    },
    /// A reset of a board whose seasons are not `manual`.
    #[error("board {board} has {schedule}; only a manual board is reset by hand")]
    NotManual {
        /// The board.
        board: String,
        /// Its schedule, in words.
        schedule: String,
    },
    /// A reset asked to end a `manual` season that is not the open one and was not ended by a reset.
    #[error("board {board}: season {asked} is not open and no reset ended it (the open season is {open})")]
    NotCurrent {
        /// The board.
        board: String,
        /// The season the reset was to end.
        asked: String,
        /// The open season.
        open: String,
    },
    /// Rules that cannot hold.
    #[error(transparent)]
    InvalidRules(#[from] leaderboard_semantics::rules::InvalidRules),
    /// The connection settings contradict each other (a read policy the deployment cannot honour).
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl Error {
    /// `board`, of `operator`, cannot be written to `layout` (a layout, or what is asked of it).
    pub(crate) fn operator_layout(
        board: &leaderboard_contract::BoardId,
        operator: leaderboard_semantics::Operator,
        layout: impl std::fmt::Display,
    ) -> Self {
        Self::OperatorLayout { board: board.to_string(), operator: operator.to_string(), layout: layout.to_string() }
    }

    /// Whether the error is about reaching Redis (worth retrying) rather than about data or configuration.
    pub fn is_unavailable(&self) -> bool {
        matches!(self.failure(), Failure::Transient | Failure::Reconnect)
    }

    /// The Redis error codes (`OOM`, `WRONGTYPE`, ...) of a server error, one
    /// per failed command of a pipeline; empty for other errors. Safe to log,
    /// unlike the reply's text.
    pub fn codes(&self) -> Vec<String> {
        let Self::Redis(e) = self else { return Vec::new() };
        match e.clone().into_server_errors() {
            Some(errors) => errors.iter().map(|(_, server)| server.code().to_string()).collect(),
            None => e.code().map(String::from).into_iter().collect(),
        }
    }

    /// What a writer should do about this error (see [`Failure`]).
    ///
    /// Only errors that are provably about the data being written are
    /// [`Failure::Record`]; anything unknown is [`Failure::StoreBlocked`], so a
    /// misread error blocks visibly instead of setting valid events aside.
    pub fn failure(&self) -> Failure {
        match self {
            Self::Redis(e) => redis_failure(e, &self.codes()),
            Self::Contended(_) | Self::RulesChanged(_) | Self::OutOfOrder(_) => Failure::Transient,
            // Nothing of the board can be written here: its events are set aside, naming why.
            Self::OperatorLayout { .. } => Failure::Record,
            // Unreadable metadata or replies are not proof that one event is bad
            // (another version may have written them): block, never set aside.
            Self::Corrupt(_)
            | Self::InvalidLayout(_)
            | Self::Config(_)
            | Self::UnknownBoard(_)
            | Self::BoardExists(_)
            | Self::LayoutMismatch { .. }
            | Self::RebalanceConflict { .. }
            | Self::Busy { .. }
            | Self::RulesFixed { .. }
            | Self::ResetFixed { .. }
            | Self::TooManyUnclosed { .. }
            | Self::NotCurrent { .. }
            | Self::NotManual { .. }
            | Self::SeasonLayout(_)
            | Self::NoSeason(_)
            | Self::InvalidRules(_)
            | Self::NotRange(_) => Failure::StoreBlocked,
        }
    }
}

/// How a failed write should be handled: the classes of docs/ingest.md#failures-by-class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// Passes by itself (timeout, `LOADING`, `BUSY`, `TRYAGAIN`, cluster
    /// redirects and elections): retry with backoff.
    Transient,
    /// The connection is lost or points at a node that cannot take writes
    /// (`READONLY` after a failover): reconnect, forget cached state, retry.
    Reconnect,
    /// The whole store refuses writes until an operator acts (`OOM`,
    /// `MISCONF`, `NOPERM`, failed authentication, anything unrecognised):
    /// keep retrying, and say so loudly.
    StoreBlocked,
    /// This write can never succeed (`WRONGTYPE`, data this crate did not
    /// write): set the event aside; retrying cannot help.
    Record,
}

impl Failure {
    /// The class's stable name, for metrics and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::Reconnect => "reconnect",
            Self::StoreBlocked => "store_blocked",
            Self::Record => "record",
        }
    }
}

fn redis_failure(e: &redis::RedisError, codes: &[String]) -> Failure {
    use redis::ErrorKind;
    match e.kind() {
        ErrorKind::AuthenticationFailed => return Failure::StoreBlocked,
        ErrorKind::ClusterConnectionNotFound
        | ErrorKind::MasterNameNotFoundBySentinel
        | ErrorKind::NoValidReplicasFoundBySentinel => return Failure::Reconnect,
        _ => {}
    }
    if e.is_timeout() {
        return Failure::Transient;
    }
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_unrecoverable_error() {
        return Failure::Reconnect;
    }
    // A pipeline reports every failed command: the batch is a refusal only
    // if every one of them is; otherwise the most severe other class wins.
    codes
        .iter()
        .map(|code| code_failure(code))
        .max_by_key(|f| match f {
            Failure::Record => 0,
            Failure::Transient => 1,
            Failure::Reconnect => 2,
            Failure::StoreBlocked => 3,
        })
        .unwrap_or(Failure::StoreBlocked)
}

/// The class of a Redis error code (the reply's first word).
fn code_failure(code: &str) -> Failure {
    match code {
        "READONLY" => Failure::Reconnect,
        "LOADING" | "BUSY" | "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN" | "MOVED" | "ASK" => Failure::Transient,
        "WRONGTYPE" => Failure::Record,
        _ => Failure::StoreBlocked,
    }
}

/// The store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: &str) -> Error {
        Error::Redis(redis::make_extension_error(code.to_string(), Some("detail".into())))
    }

    #[test]
    fn classifies_errors() {
        assert_eq!(server("WRONGTYPE").failure(), Failure::Record);
        assert_eq!(server("OOM").failure(), Failure::StoreBlocked);
        assert_eq!(server("MISCONF").failure(), Failure::StoreBlocked);
        assert_eq!(server("BUSY").failure(), Failure::Transient);
        assert_eq!(server("READONLY").failure(), Failure::Reconnect);
        assert_eq!(server("LOADING").failure(), Failure::Transient);
        assert_eq!(Error::Corrupt("x".into()).failure(), Failure::StoreBlocked);
        assert_eq!(server("WRONGTYPE").codes(), ["WRONGTYPE"]);
        assert_eq!(Error::Contended("b".into()).failure(), Failure::Transient);
        let io = Error::Redis(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into());
        assert_eq!(io.failure(), Failure::Reconnect);
        assert!(io.is_unavailable());
    }
}
