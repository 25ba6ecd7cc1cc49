//! Okx wire → canonical.
