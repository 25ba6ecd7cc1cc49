//! The canonical tickwire model: instruments, channels, topics, exact-decimal
//! updates, their wire encoding (done once per update), and the client
//! protocol (requests in, replies and notices out).
//!
//! Everything here is pure and synchronous: no I/O, no clock, no runtime.

mod error;
mod instrument;
mod num;
pub mod protocol;
mod topic;
mod update;
pub mod wire;

pub use error::{Error, Result};
pub use instrument::Instrument;
pub use num::{Decimal, parse_decimal};
pub use topic::{Channel, Topic};
pub use update::{BookTop, Epoch, Event, Level, Payload, Quote, Side, Ticker, Trade, Update};
