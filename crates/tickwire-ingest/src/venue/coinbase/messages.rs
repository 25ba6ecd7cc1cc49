//! Coinbase wire types.
