//! Shared helpers for the tickwire benchmarks.
