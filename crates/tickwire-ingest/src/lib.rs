//! tickwire ingest: turns markets into sequenced updates on the bus.
//!
//! Today that is the synthetic market ([`SyntheticMarket`], a pure seeded
//! generator) played by an async runner ([`run_synthetic`], [`spawn_feeds`],
//! [`spawn_demo`]) that stamps each event with its topic's `seq` under one
//! epoch ([`Sequencer`]) and publishes it. Which markets to play comes from a
//! feeds file ([`FeedsConfig`]); the demo one is embedded ([`DEMO_FEEDS`]).
//!
//! The venue adapters keep their order books with [`book`]: the L2 book,
//! Kraken's checksum and the per-venue sequence checkers.
//!
//! Pure core, thin shell: generation and sequencing are synchronous and take
//! time as an argument; only the runner reads the clock.

pub mod adapter;
mod backoff;
pub mod book;
pub mod capture;
mod config;
mod error;
pub mod feed;
pub mod json;
mod live;
pub mod metrics;
pub mod normalize;
pub mod record;
mod replay;
pub mod rest;
mod rng;
mod runner;
pub mod serve;
mod synthetic;
pub mod venue;

pub use config::{DEMO_FEEDS, FeedsConfig};
pub use error::{Error, Result};
pub use replay::{ReplayConfig, Speed};
pub use runner::{Sequencer, run_synthetic, spawn_demo, spawn_feeds};
pub use synthetic::{
    ChannelMix, DEFAULT_RATE_PER_INSTRUMENT, SyntheticConfig, SyntheticInstrument, SyntheticMarket,
};
