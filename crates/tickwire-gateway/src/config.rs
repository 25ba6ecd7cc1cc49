//! Gateway settings, with their defaults and trade-offs.

use std::path::PathBuf;

use serde::Deserialize;

use crate::outbox::OutboxConfig;

/// More shards than this is a typo, not a machine.
const MAX_SHARDS: usize = 1024;

/// A drain window past an hour is a typo (seconds for milliseconds), and
/// would hold a restart that long.
const MAX_DRAIN_WINDOW_MS: u64 = 3_600_000;

/// Everything a gateway can be told. Every field has a default, so an empty
/// `[gateway]` table (or none) is a working configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Subscriptions one connection may hold. Default 1024.
    pub max_subscriptions: usize,
    /// Requests per second per connection, and the burst allowed. Default 20.
    pub max_requests_per_sec: u32,
    /// Largest client message or frame; larger closes with 1009. Default 1 MiB.
    pub max_message_bytes: usize,
    /// Idle time after which the server pings the client, announced in
    /// `hello`. Default 15 000 ms.
    pub heartbeat_ms: u64,
    /// A client whose socket takes no bytes for this long is closed with
    /// 4008. Default 30 000 ms: long enough for a paused tab, short enough
    /// to free a stuck connection's memory.
    pub slow_consumer_timeout_ms: u64,
    /// How long a closing connection may take to flush its close frame.
    /// Default 5 000 ms.
    pub close_grace_ms: u64,
    /// Trades queued per trade subscription before the oldest are dropped
    /// with a `gap`. Default 4096.
    pub trade_queue_len: usize,
    /// Control replies queued per connection before it counts as a slow
    /// consumer. Default 1024.
    pub control_queue_len: usize,
    /// Largest batched frame for `?batch=1` clients. Default 64 KiB.
    pub max_batch_bytes: usize,
    /// After the drain window, how long the last closes may take to flush
    /// before whatever is left is dropped: the process exits within
    /// `drain_window_ms + shutdown_timeout_ms` of SIGTERM, whatever clients
    /// do. Default 10 000 ms.
    pub shutdown_timeout_ms: u64,
    /// How long a drain (SIGTERM, ctrl-c) spreads its 1012 closes over:
    /// connection k of n closes at `k/n` of the window and is served live
    /// data until then, so clients reconnect elsewhere a few at a time
    /// instead of all in the same second. Longer is gentler on the other
    /// instances but slows a rolling restart; 0 closes every connection at
    /// once. Default 5 000 ms.
    pub drain_window_ms: u64,
    /// Event-loop threads serving connections. Each shard runs its own
    /// single-threaded runtime with its own hub (one bus subscription per
    /// topic per shard), so a connection's fan-out, outbox and socket stay
    /// on one core. 0 = one per CPU core. Default 0.
    pub shards: usize,
    /// Kernel send buffer per client socket (`SO_SNDBUF`), in bytes. It is
    /// a queue the outbox cannot conflate: a slow client's data can be this
    /// many bytes stale. Default 64 KiB (Linux doubles it); raise it for
    /// high-volume clients over long links; 0 keeps the kernel's
    /// autotuning (up to several MiB).
    pub send_buffer_bytes: usize,
    /// Least time between two writes to one connection while it is busy,
    /// in microseconds: a client written to less than this ago gets its
    /// next updates together, one syscall for many frames. A client that
    /// was quiet for longer gets its update at once, so this only adds
    /// latency (at most this much, rounded up to the 1 ms timer tick) to
    /// clients receiving more than one update per interval. 0 writes every
    /// update as soon as it is offered. Default 1000.
    pub coalesce_us: u64,
    /// WebSocket connections the whole server (all shards) holds at once;
    /// an upgrade past it is answered 503 `too_many_connections`. 0 = no
    /// limit. Default 0.
    pub max_connections: usize,
    /// WebSocket connections one client IP address holds at once; an
    /// upgrade past it is answered 429 `too_many_connections`. 0 = no
    /// limit. Default 0.
    pub max_connections_per_ip: usize,
    /// Time a new TCP connection has to send its whole HTTP request head
    /// (and so its upgrade); a slower one is dropped without an answer, so
    /// a slowloris cannot hold sockets. Default 10 000 ms.
    pub handshake_timeout_ms: u64,
    /// How long a heartbeat ping may go unanswered: the server pings a
    /// client it has not heard from (or not written to) for
    /// `heartbeat_ms`, and closes with 1008 one that then sends nothing,
    /// not even a pong, for this long. 0 = never. Default 30 000 ms.
    pub pong_timeout_ms: u64,
    /// Browser origins (`https://board.example.com`) allowed to open a
    /// WebSocket; an upgrade whose `Origin` header is not listed is
    /// answered 403 `forbidden_origin`. Requests without `Origin` (not from
    /// a browser) are not affected. Empty = every origin. Default empty.
    pub allowed_origins: Vec<String>,
    /// PEM certificate chain for TLS (`wss://`, `https://`); with
    /// `tls_key_file`, the listener speaks only TLS. Default none (plain).
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// How often the TLS files' modification times are checked for a
    /// reload (SIGHUP reloads at once). Default 5 000 ms.
    pub tls_reload_poll_ms: u64,
    /// A TLS client that has not finished its handshake in this long is
    /// dropped. Default 10 000 ms.
    pub tls_handshake_timeout_ms: u64,
    /// Serves `/v1/echo`, a WebSocket route that echoes text and binary
    /// messages through the same WebSocket stack and limits as `/v1/ws`,
    /// for conformance suites (Autobahn). Default false.
    pub echo_route: bool,
    /// Credentials and entitlements, from the `[auth]` table (set by the
    /// binary, not read from `[gateway]`). Default none: every client is
    /// served anonymously with every entitlement.
    #[serde(skip)]
    pub auth: Option<std::sync::Arc<crate::auth::Authenticator>>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            max_subscriptions: 1024,
            max_requests_per_sec: 20,
            max_message_bytes: 1 << 20,
            heartbeat_ms: 15_000,
            slow_consumer_timeout_ms: 30_000,
            close_grace_ms: 5_000,
            trade_queue_len: 4096,
            control_queue_len: 1024,
            max_batch_bytes: 64 << 10,
            shutdown_timeout_ms: 10_000,
            drain_window_ms: 5_000,
            shards: 0,
            send_buffer_bytes: 64 << 10,
            coalesce_us: 1000,
            max_connections: 0,
            max_connections_per_ip: 0,
            handshake_timeout_ms: 10_000,
            pong_timeout_ms: 30_000,
            allowed_origins: Vec::new(),
            tls_cert_file: None,
            tls_key_file: None,
            tls_reload_poll_ms: 5_000,
            tls_handshake_timeout_ms: 10_000,
            echo_route: false,
            auth: None,
        }
    }
}

impl GatewayConfig {
    /// Checks every value is usable; the error names the key
    /// (`gateway.control_queue_len`) and the least value accepted.
    pub fn validate(&self) -> Result<(), crate::Error> {
        let minimums: [(&str, u64, u64); 12] = [
            ("tls_reload_poll_ms", self.tls_reload_poll_ms, 100),
            (
                "tls_handshake_timeout_ms",
                self.tls_handshake_timeout_ms,
                100,
            ),
            ("max_subscriptions", self.max_subscriptions as u64, 1),
            (
                "max_requests_per_sec",
                u64::from(self.max_requests_per_sec),
                1,
            ),
            ("max_message_bytes", self.max_message_bytes as u64, 1024),
            ("heartbeat_ms", self.heartbeat_ms, 100),
            (
                "slow_consumer_timeout_ms",
                self.slow_consumer_timeout_ms,
                100,
            ),
            ("trade_queue_len", self.trade_queue_len as u64, 1),
            // hello, acks and errors of a burst of requests must fit.
            ("control_queue_len", self.control_queue_len as u64, 16),
            ("max_batch_bytes", self.max_batch_bytes as u64, 1024),
            ("shutdown_timeout_ms", self.shutdown_timeout_ms, 1),
            ("handshake_timeout_ms", self.handshake_timeout_ms, 100),
        ];
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(crate::Error::Config(
                "`gateway.tls_cert_file` and `gateway.tls_key_file` go together: set both or neither"
                    .to_string(),
            ));
        }
        if self.shards > MAX_SHARDS {
            return Err(crate::Error::Config(format!(
                "invalid `gateway.shards` = {}: must be at most {MAX_SHARDS} (0 = one per core)",
                self.shards
            )));
        }
        if self.drain_window_ms > MAX_DRAIN_WINDOW_MS {
            return Err(crate::Error::Config(format!(
                "invalid `gateway.drain_window_ms` = {}: must be at most {MAX_DRAIN_WINDOW_MS} (0 = close every connection at once)",
                self.drain_window_ms
            )));
        }
        if self.send_buffer_bytes != 0 && self.send_buffer_bytes < 4096 {
            return Err(crate::Error::Config(format!(
                "invalid `gateway.send_buffer_bytes` = {}: must be 0 (kernel default) or at least 4096",
                self.send_buffer_bytes
            )));
        }
        match minimums.into_iter().find(|(_, value, min)| value < min) {
            Some((key, value, min)) => Err(crate::Error::Config(format!(
                "invalid `gateway.{key}` = {value}: must be at least {min}"
            ))),
            None => Ok(()),
        }
    }

    /// The number of shards to run: `shards`, or one per core when 0.
    pub fn shard_count(&self) -> usize {
        match self.shards {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    pub(crate) fn outbox(&self) -> OutboxConfig {
        OutboxConfig {
            trade_queue_len: self.trade_queue_len,
            control_queue_len: self.control_queue_len,
            ..OutboxConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        assert!(GatewayConfig::default().validate().is_ok());
        let bad = GatewayConfig {
            control_queue_len: 0,
            ..GatewayConfig::default()
        };
        let err = bad.validate().expect_err("refused").to_string();
        assert!(err.contains("`gateway.control_queue_len` = 0"), "{err}");
        let bad = GatewayConfig {
            heartbeat_ms: 0,
            ..GatewayConfig::default()
        };
        assert!(
            bad.validate()
                .expect_err("refused")
                .to_string()
                .contains("gateway.heartbeat_ms")
        );
    }

    #[test]
    fn drain_window_may_be_zero_but_not_absurd() {
        let zero = GatewayConfig {
            drain_window_ms: 0,
            ..GatewayConfig::default()
        };
        assert!(zero.validate().is_ok());
        let bad = GatewayConfig {
            drain_window_ms: 5_000_000,
            ..GatewayConfig::default()
        };
        let err = bad.validate().expect_err("refused").to_string();
        assert!(err.contains("`gateway.drain_window_ms` = 5000000"), "{err}");
    }
}
