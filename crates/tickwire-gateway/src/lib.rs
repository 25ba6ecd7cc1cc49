//! The tickwire gateway: the hub that subscribes to the bus once per topic
//! and fans out to per-connection outboxes, client sessions speaking the v1
//! protocol over WebSocket, and the HTTP endpoints on the same port.

pub mod outbox;
