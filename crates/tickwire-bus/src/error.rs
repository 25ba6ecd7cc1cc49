//! The bus's error type.

use tickwire_model::Topic;

/// What a bus operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The update's `seq` is not above the topic's last one.
    #[error("out-of-order publish on {topic}: seq {seq} is not above {last}")]
    OutOfOrder {
        /// The topic.
        topic: Topic,
        /// The refused sequence number.
        seq: u64,
        /// The topic's last sequence number.
        last: u64,
    },
    /// The bus cannot take more right now; the update was dropped.
    #[error("bus overloaded: update dropped")]
    Overloaded,
    /// The bus is not reachable (transient: retry after backoff).
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    /// The bus was shut down.
    #[error("bus closed")]
    Closed,
    /// The bus settings can never work (a malformed URL, a bad prefix);
    /// the message names what is wrong.
    #[error("bad bus settings: {0}")]
    Config(String),
}

impl Error {
    /// Whether retrying can never succeed.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Error::Closed | Error::OutOfOrder { .. } | Error::Config(_)
        )
    }
}

/// Result with the bus [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
