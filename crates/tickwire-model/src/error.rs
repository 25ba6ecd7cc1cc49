//! The model's error type: what can be wrong with a value from outside.

/// A value that does not fit the canonical model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A price or size that is not a plain decimal number.
    #[error("invalid decimal {0:?}: expected digits with an optional '.' and sign")]
    Decimal(String),
    /// An instrument that is not `venue:BASE-QUOTE`.
    #[error("invalid instrument {0:?}: expected venue:BASE-QUOTE, e.g. coinbase:BTC-USD")]
    Instrument(String),
    /// A channel name that is not one of trade, quote, ticker, book.
    #[error("unknown channel {0:?}: expected trade, quote, ticker or book")]
    Channel(String),
    /// An epoch that is empty, too long or not alphanumeric.
    #[error("invalid epoch {0:?}: expected 1 to 32 of [A-Za-z0-9_-]")]
    Epoch(String),
}

/// Result with the model's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
