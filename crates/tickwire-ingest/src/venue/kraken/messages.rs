//! Kraken wire types.
