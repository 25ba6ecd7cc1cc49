//! The gateway's error type.

/// What can stop a gateway.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket failed.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    /// A setting is out of range; the message names the key.
    #[error("{0}")]
    Config(String),
    /// The bus failed in a way the gateway cannot ride out.
    #[error("bus: {0}")]
    Bus(#[from] tickwire_bus::Error),
}

/// Result with the gateway [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
