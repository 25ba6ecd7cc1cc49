//! The ingest error type: bad feed configuration and bus failures that end a
//! feed task.

use std::path::PathBuf;

/// What setting up or running a feed can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A feeds file could not be read.
    #[error("cannot read feeds file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A feeds file is not valid TOML or does not have the expected shape;
    /// toml's message names the line, the column and the key.
    #[error("{0}")]
    Toml(#[from] Box<toml::de::Error>),
    /// A configuration value is out of range or inconsistent.
    #[error("invalid `{key}`: {reason}")]
    Invalid {
        /// The offending key, as written in the feeds file
        /// (`synthetic.instruments[3].tick`).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An error found in a file, with the file it came from.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// The error.
        source: Box<Error>,
    },
    /// The bus refused an operation a feed cannot go on without.
    #[error("bus: {0}")]
    Bus(#[from] tickwire_bus::Error),
}

impl Error {
    /// An [`Error::Invalid`] for `key`.
    pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// Prefixes the key of an [`Error::Invalid`] with its section
    /// (`synthetic`), so it reads as the full path in the file.
    pub(crate) fn in_section(self, section: &str) -> Self {
        match self {
            Error::Invalid { key, reason } => Error::Invalid {
                key: format!("{section}.{key}"),
                reason,
            },
            other => other,
        }
    }

    /// The offending key, for configuration errors that have one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Error::Invalid { key, .. } => Some(key),
            Error::InFile { source, .. } => source.key(),
            _ => None,
        }
    }
}

/// Result with the ingest [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
