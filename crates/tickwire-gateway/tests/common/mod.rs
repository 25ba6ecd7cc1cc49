//! Test harness: a real gateway on 127.0.0.1:0 over a real memory bus, and
//! a real WebSocket client with bounded waits.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tickwire_bus::conformance::{quote, trade};
use tickwire_bus::{Bus, CatalogueEntry, MemoryBus, MemoryBusConfig, Status};
use tickwire_gateway::{Gateway, GatewayConfig};
use tickwire_model::protocol::FeedState;
use tickwire_model::{Channel, Epoch, Instrument, Update};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

pub const WAIT: Duration = Duration::from_secs(20);

pub const SYMBOLS: [&str; 5] = [
    "coinbase:BTC-USD",
    "coinbase:ETH-USD",
    "binance:BTC-USDT",
    "binance:ETH-USDT",
    "kraken:BTC-USD",
];

pub fn inst(s: &str) -> Instrument {
    Instrument::parse(s).expect("instrument")
}

pub struct Server {
    pub gateway: Option<Gateway>,
    pub addr: std::net::SocketAddr,
    pub bus: Arc<MemoryBus>,
    pub shutdown: CancellationToken,
    pub epoch: Epoch,
}

impl Server {
    pub async fn start(config: GatewayConfig) -> Self {
        Self::start_with(config, MemoryBusConfig::default(), true).await
    }

    pub async fn start_with(
        mut config: GatewayConfig,
        bus_config: MemoryBusConfig,
        live: bool,
    ) -> Self {
        // One shard unless a test asks for more: bus-subscription counts
        // are per shard, and the tests that count them mean one.
        if config.shards == 0 {
            config.shards = 1;
        }
        // `stop` closes everyone at once: the spread of a drain is tested
        // with the binary (crates/tickwire/tests/drain.rs).
        config.drain_window_ms = 0;
        tickwire_gateway::install_metrics();
        let bus = Arc::new(MemoryBus::new(bus_config));
        let entries = SYMBOLS
            .iter()
            .map(|s| CatalogueEntry {
                instrument: inst(s),
                channels: Channel::ALL.to_vec(),
            })
            .collect();
        bus.announce(entries).await.expect("announce");
        if live {
            for s in SYMBOLS {
                bus.publish_status(Status {
                    instrument: inst(s),
                    state: FeedState::Live,
                    reason: String::new(),
                })
                .expect("status");
            }
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let shutdown = CancellationToken::new();
        let dyn_bus: Arc<dyn Bus> = bus.clone();
        let gateway = Gateway::start(listener, dyn_bus, config, shutdown.clone())
            .await
            .expect("start");
        let addr = gateway.local_addr();
        Self {
            gateway: Some(gateway),
            addr,
            bus,
            shutdown,
            epoch: Epoch::new("test").expect("epoch"),
        }
    }

    pub fn gateway(&self) -> &Gateway {
        self.gateway.as_ref().expect("running")
    }

    pub fn quote(&self, symbol: &str, seq: u64) -> Update {
        let u = quote(&inst(symbol), seq, &self.epoch);
        self.bus.publish(u.clone()).expect("publish");
        u
    }

    pub fn trade(&self, symbol: &str, seq: u64) -> Update {
        let u = trade(&inst(symbol), seq, &self.epoch);
        self.bus.publish(u.clone()).expect("publish");
        u
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Waits until `f` holds of the gateway, polling; panics after WAIT.
    pub async fn until(&self, what: &str, f: impl Fn(&Gateway) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !f(self.gateway()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(g) = self.gateway.take() {
            g.wait().await;
        }
    }
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    /// Connects and consumes `hello`.
    pub async fn connect(server: &Server) -> Self {
        let mut c = Self::connect_raw(server, "/v1/ws", None).await;
        let hello = c.recv().await;
        assert_eq!(hello["type"], "hello");
        c
    }

    /// Connects with an optional small receive buffer (to make a client
    /// that stops reading fill up quickly); does not read `hello`.
    pub async fn connect_raw(server: &Server, path: &str, recv_buffer: Option<u32>) -> Self {
        let socket = TcpSocket::new_v4().expect("socket");
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).expect("rcvbuf");
        }
        let stream = socket.connect(server.addr).await.expect("connect");
        let (ws, _) =
            tokio_tungstenite::client_async(server.url(path), MaybeTlsStream::Plain(stream))
                .await
                .expect("handshake");
        Self { ws }
    }

    pub async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn send_raw(&mut self, m: Message) {
        self.ws.send(m).await.expect("send");
    }

    /// The next text frame as it came (a `?batch=1` frame holds several
    /// newline-separated objects); pings and pongs do not extend the wait.
    pub async fn recv_frame(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let m = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("message in time")
                .expect("open")
                .expect("ok");
            match m {
                Message::Text(t) => return t.as_str().to_owned(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected message {other:?}"),
            }
        }
    }

    /// The next text message as JSON; pings and pongs do not extend the wait.
    pub async fn recv(&mut self) -> Value {
        serde_json::from_str(&self.recv_frame().await).expect("json")
    }

    /// Messages until one satisfies `f` (returned last).
    pub async fn recv_until(&mut self, f: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let v = self.recv().await;
            let done = f(&v);
            out.push(v);
            if done {
                return out;
            }
        }
    }

    /// A ping round trip: everything received before the pong.
    pub async fn sync(&mut self) -> Vec<Value> {
        self.send(json!({"op":"ping","id":"sync"})).await;
        let mut got = self
            .recv_until(|v| v["type"] == "pong" && v["id"] == "sync")
            .await;
        got.pop();
        got
    }

    /// Reads until the server closes; returns the close code.
    pub async fn closed_with(&mut self) -> u16 {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("close in time")
            {
                Some(Ok(Message::Close(Some(f)))) => return u16::from(f.code),
                Some(Ok(Message::Close(None))) => panic!("closed without a code"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("socket error before close frame: {e}"),
                None => panic!("stream ended without a close frame"),
            }
        }
    }

    pub async fn subscribe(&mut self, v: Value) -> Value {
        self.send(v).await;
        self.recv().await
    }
}

/// A raw HTTP/1.1 GET: (status, content-type, body).
pub async fn http_get(server: &Server, path: &str) -> (u16, String, String) {
    http_request(server, "GET", path).await
}

/// A raw HTTP/1.1 request with any method and no body: (status,
/// content-type, body).
pub async fn http_request(server: &Server, method: &str, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        server.addr
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("in time")
        .expect("read");
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let ctype = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, ctype, body.to_owned())
}
