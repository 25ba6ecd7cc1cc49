//! Okx wire types.
