//! Coinbase wire → canonical.
