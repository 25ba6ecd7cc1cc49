//! Kraken wire → canonical.
