//! Binance wire → canonical.
