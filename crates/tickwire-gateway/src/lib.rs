//! The tickwire gateway: the hub that subscribes to the bus once per topic
//! and fans out to per-connection outboxes, client sessions speaking the v1
//! protocol over WebSocket, and the HTTP endpoints on the same port.

mod config;
mod conn;
mod drain;
mod error;
mod http;
pub mod hub;
pub mod metrics;
pub mod outbox;
mod server;
mod session;
mod tls;
mod web;
mod ws;

pub use config::GatewayConfig;
pub use error::{Error, Result};
pub use metrics::{install_metrics, render_metrics};
pub use server::{Gateway, accept_next};
