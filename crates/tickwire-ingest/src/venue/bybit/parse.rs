//! Bybit wire → canonical.
