//! Binance wire types.
