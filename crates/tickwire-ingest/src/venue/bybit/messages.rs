//! Bybit wire types.
