//! `tickwire loadgen`: many WebSocket clients against one server (tickwire
//! or a peer speaking the same v1 subset) for a bounded time; measures
//! delivery, latency, conflation and connects, and prints one JSON line.
//!
//! It runs on one current-thread runtime (it shares the machine with the
//! server), so clients are local tasks sharing plain `Cell`s; per update it
//! only scans bytes ([`stats::scan`]), records one histogram value and
//! bumps counters.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use clap::{Args, ValueEnum};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use super::loadgen_report::Report;
use super::loadgen_stats::{self as stats, Histogram, Line};
use super::sub::DEFAULT_URL;

/// One client's TCP connect + handshake + subscribe must end within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the `list` request may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long clients get to send their close frame at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Drive a server with many WebSocket clients and measure what they get.
///
/// Opens --clients connections (at most --connect-concurrency handshakes
/// at a time, spread over the source addresses 127.0.0.1..127.0.0.N with
/// --source-addrs N), each subscribing with `snapshot:false` to
/// --symbols-per-client symbols picked round-robin from the served list
/// (`{"op":"list"}`) or from --symbols. Once every client is subscribed (or
/// has failed) it measures for --duration-secs and stops by itself.
///
/// Measures: delivered updates/s (total, per client), latency from each
/// update's `rx` to receipt (p50/p99/p99.9/max), conflated fraction (seq
/// jumps on conflatable channels: skipped / (delivered + skipped)), gaps,
/// connect time and failures; with --server-pid, the server's RSS and CPU
/// from /proc at the start and end of the window; with --expected-rate,
/// delivered / ideal. Also delivered / published, where published is each
/// topic's seq progress over the window (highest seq any client saw) times
/// its subscribers: what the server really owed, with no rate assumed.
/// Prints one JSON line on stdout and a summary on
/// stderr. Exits 1 when no client could subscribe.
///
/// Example:
///   tickwire loadgen --url ws://127.0.0.1:8080/v1/ws --clients 1000 \
///     --symbols-per-client 10 --duration-secs 10 --expected-rate 20
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct LoadgenArgs {
    /// The server's WebSocket endpoint.
    #[arg(long, value_name = "URL", default_value = DEFAULT_URL)]
    pub(super) url: String,
    /// Client connections to open.
    #[arg(long, value_name = "C", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub(super) clients: u32,
    /// Symbols each client subscribes to (capped at the number served).
    #[arg(long, value_name = "K", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    symbols_per_client: u32,
    /// Channel to subscribe to.
    #[arg(long, value_enum, default_value_t = LoadChannel::Quote)]
    pub(super) channel: LoadChannel,
    /// Length of the measurement window, after all clients are subscribed.
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration_secs: u64,
    /// Pick from these symbols (comma-separated) instead of the served list.
    #[arg(
        long,
        value_name = "S1,S2,...",
        value_delimiter = ',',
        conflicts_with = "all_symbols"
    )]
    symbols: Vec<String>,
    /// Every client subscribes to every symbol (overrides
    /// --symbols-per-client).
    #[arg(long)]
    all_symbols: bool,
    /// Spread clients over source addresses 127.0.0.1..127.0.0.N (N > 1
    /// needs an IPv4 loopback server), so one address's ports do not run
    /// out.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=254))]
    pub(super) source_addrs: u8,
    /// Sample this process's RSS and CPU time (/proc) at the start and end
    /// of the window.
    #[arg(long, value_name = "PID")]
    pub(super) server_pid: Option<u32>,
    /// Seconds between the last subscription and the window: updates
    /// set the seq baseline but are not counted (a server's connect-time
    /// backlog drains first).
    #[arg(long, value_name = "SECS", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(0..=600))]
    pub(super) warmup_secs: u64,
    /// Ask for batched frames (`?batch=1`: several updates per frame,
    /// newline-separated).
    #[arg(long)]
    pub(super) batch: bool,
    /// Updates per second per topic the server is expected to send; adds
    /// the ideal rate and delivered/ideal to the report.
    #[arg(long, value_name = "UPDATES_PER_SEC_PER_TOPIC")]
    pub(super) expected_rate: Option<f64>,
    /// Handshakes in flight at once (a burst larger than the server's
    /// accept backlog turns into SYN retries of a second or more).
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connect_concurrency: u32,
}

/// The channels, as the command line spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum LoadChannel {
    /// Trades (lossless: jumps come with a `gap`).
    Trade,
    /// Quotes (conflated).
    Quote,
    /// Tickers (conflated).
    Ticker,
    /// Book tops (conflated).
    Book,
}

impl LoadChannel {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            LoadChannel::Trade => "trade",
            LoadChannel::Quote => "quote",
            LoadChannel::Ticker => "ticker",
            LoadChannel::Book => "book",
        }
    }
}

/// What every client task adds to; single-threaded, so plain cells.
#[derive(Default)]
pub(super) struct Shared {
    /// Symbol bytes → index into each client's last-seq table.
    index: HashMap<Vec<u8>, usize>,
    /// Whether the window is open: only then are updates counted.
    measuring: Cell<bool>,
    /// Whether seq jumps are conflation (not on trades).
    conflatable: bool,
    pub(super) latency: RefCell<Histogram>,
    pub(super) per_client: RefCell<Vec<u64>>,
    pub(super) skipped: Cell<u64>,
    pub(super) gaps: Cell<u64>,
    pub(super) errors: Cell<u64>,
    pub(super) frames: Cell<u64>,
    pub(super) bytes: Cell<u64>,
    pub(super) disconnected: Cell<u64>,
    pub(super) first_problem: RefCell<Option<String>>,
    /// Highest seq seen per topic by any client: its progress over the
    /// window is what the server actually published (a jittered synthetic
    /// feed does not publish exactly `--expected-rate`).
    topic_seq: RefCell<Vec<u64>>,
    /// First seq seen per topic inside the window (0: none yet), the
    /// baseline of topics with no update before it.
    topic_first: RefCell<Vec<u64>>,
    /// Subscribed clients per topic.
    subscribers: RefCell<Vec<u64>>,
}

impl Shared {
    fn problem(&self, text: String) {
        let mut first = self.first_problem.borrow_mut();
        if first.is_none() {
            *first = Some(text);
        }
    }

    /// Accounts one frame received at `now_us`; `last` is the client's
    /// last seq per symbol.
    fn on_frame(&self, client: usize, frame: &[u8], now_us: u64, last: &mut [u64]) {
        let measuring = self.measuring.get();
        if measuring {
            self.frames.set(self.frames.get() + 1);
            self.bytes.set(self.bytes.get() + frame.len() as u64);
        }
        let mut delivered = 0;
        for line in frame.split(|&b| b == b'\n') {
            match stats::scan(line) {
                Line::Update { symbol, seq, rx } => {
                    let Some(&slot) = self.index.get(symbol) else {
                        continue;
                    };
                    let previous = std::mem::replace(&mut last[slot], seq);
                    let mut top = self.topic_seq.borrow_mut();
                    top[slot] = top[slot].max(seq);
                    drop(top);
                    if !measuring {
                        continue;
                    }
                    let mut first = self.topic_first.borrow_mut();
                    if first[slot] == 0 {
                        first[slot] = seq;
                    }
                    drop(first);
                    delivered += 1;
                    if self.conflatable && previous != 0 && seq > previous + 1 {
                        self.skipped.set(self.skipped.get() + (seq - previous - 1));
                    }
                    self.latency.borrow_mut().record(now_us.saturating_sub(rx));
                }
                Line::Gap if measuring => self.gaps.set(self.gaps.get() + 1),
                Line::Error => {
                    self.errors.set(self.errors.get() + 1);
                    self.problem(String::from_utf8_lossy(line).into_owned());
                }
                _ => {}
            }
        }
        if delivered > 0 {
            self.per_client.borrow_mut()[client] += delivered;
        }
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Connects, subscribes, measures, reports.
pub(crate) async fn run(args: LoadgenArgs) -> anyhow::Result<ExitCode> {
    tokio::task::LocalSet::new().run_until(drive(args)).await
}

async fn drive(args: LoadgenArgs) -> anyhow::Result<ExitCode> {
    let url = if args.batch {
        let sep = if args.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}batch=1", args.url)
    } else {
        args.url.clone()
    };
    let target = resolve(&url).await?;
    if args.source_addrs > 1 && !target.ip().is_loopback() {
        bail!("--source-addrs needs a 127.x.x.x server address, not {target}");
    }
    let channel = args.channel.as_str();
    let served = if args.symbols.is_empty() {
        list_symbols(&url, channel).await?
    } else {
        args.symbols.clone()
    };
    if served.is_empty() {
        bail!("the server serves no symbol on the {channel} channel");
    }
    let per_client = if args.all_symbols {
        served.len()
    } else {
        (args.symbols_per_client as usize).min(served.len())
    };
    let clients = args.clients as usize;

    let shared = Rc::new(Shared {
        index: served
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_bytes().to_vec(), i))
            .collect(),
        conflatable: args.channel != LoadChannel::Trade,
        per_client: RefCell::new(vec![0; clients]),
        topic_seq: RefCell::new(vec![0; served.len()]),
        topic_first: RefCell::new(vec![0; served.len()]),
        subscribers: RefCell::new(vec![0; served.len()]),
        ..Shared::default()
    });
    let stop = CancellationToken::new();
    let gate = Rc::new(Semaphore::new(args.connect_concurrency as usize));
    let (ready_tx, mut ready_rx) = mpsc::channel(clients);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for id in 0..clients {
        let slots: Vec<usize> = (0..per_client)
            .map(|j| (id * per_client + j) % served.len())
            .collect();
        let symbols: Vec<&str> = slots.iter().map(|&i| served[i].as_str()).collect();
        let request = json!({
            "op": "subscribe", "id": 1, "channel": channel,
            "symbols": symbols, "snapshot": false,
        })
        .to_string();
        let source = (args.source_addrs > 1).then(|| {
            IpAddr::V4(Ipv4Addr::new(
                127,
                0,
                0,
                1 + (id % args.source_addrs as usize) as u8,
            ))
        });
        let client = Client {
            id,
            url: url.clone(),
            target,
            source,
            request,
            shared: shared.clone(),
            stop: stop.clone(),
            gate: gate.clone(),
            ready: ready_tx.clone(),
            slots: served.len(),
            mine: slots,
        };
        tasks.push(tokio::task::spawn_local(client.run()));
    }
    drop(ready_tx);

    // Connect phase: every client reports once (ok with its connect time,
    // or a failure); bounded by the per-client timeout and the gate.
    let mut connect = Histogram::default();
    let mut failed = 0u64;
    let phase_limit = CONNECT_TIMEOUT * (1 + args.clients.div_ceil(args.connect_concurrency));
    let phase = tokio::time::timeout(phase_limit, async {
        for _ in 0..clients {
            let Some(outcome) = ready_rx.recv().await else {
                break;
            };
            match outcome {
                Ok(took) => connect.record(took),
                Err(why) => {
                    failed += 1;
                    shared.problem(why);
                }
            }
        }
    });
    let interrupted_connect = tokio::select! {
        _ = phase => false,
        () = super::ctrl_c() => true,
    };
    let connected = connect.len();
    failed += clients as u64 - connected - failed;
    let connect_all = started.elapsed();

    // Warm-up, then the window.
    let warmup_interrupted = !interrupted_connect
        && tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(args.warmup_secs)) => false,
            () = super::ctrl_c() => true,
        };
    let interrupted_connect = interrupted_connect || warmup_interrupted;
    let server = args.server_pid.map(|p| p.to_string());
    let server_start = server.as_deref().and_then(stats::sample);
    let self_start = stats::sample("self");
    let machine_start = stats::machine();
    let seq_start = shared.topic_seq.borrow().clone();
    shared.measuring.set(true);
    let window_start = Instant::now();
    let interrupted = interrupted_connect
        || tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(args.duration_secs)) => false,
            () = super::ctrl_c() => true,
        };
    shared.measuring.set(false);
    // A topic with no update before the window starts just before its
    // first update inside it.
    let published: u64 = {
        let end = shared.topic_seq.borrow();
        let first = shared.topic_first.borrow();
        let subscribers = shared.subscribers.borrow();
        (0..served.len())
            .map(|t| {
                let base = if seq_start[t] > 0 {
                    seq_start[t]
                } else {
                    first[t].saturating_sub(1)
                };
                let owed = if end[t] > 0 {
                    end[t] - base.min(end[t])
                } else {
                    0
                };
                owed * subscribers[t]
            })
            .sum()
    };
    let window = window_start.elapsed();
    let server_end = server.as_deref().and_then(stats::sample);
    let self_end = stats::sample("self");
    let machine_end = stats::machine();
    stop.cancel();
    let _ = tokio::time::timeout(CLOSE_TIMEOUT * 2, futures_util::future::join_all(tasks)).await;

    let report = Report {
        args: &args,
        served: served.len(),
        per_client,
        shared: &shared,
        connect: &connect,
        connected,
        failed,
        connect_all,
        window,
        interrupted,
        published,
        server: server_start.zip(server_end),
        myself: self_start.zip(self_end),
        machine: machine_start.zip(machine_end),
    };
    let value = report.json();
    super::common::print_line(&value.to_string());
    eprintln!("{}", report.summary(&value));
    Ok(if connected == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The server's socket address, from the URL's host and port.
async fn resolve(url: &str) -> anyhow::Result<SocketAddr> {
    let uri: http::Uri = url.parse().with_context(|| format!("bad --url {url}"))?;
    if uri.scheme_str() != Some("ws") {
        bail!("--url must be a ws:// URL such as {DEFAULT_URL}, not {url}");
    }
    let host = uri
        .host()
        .ok_or_else(|| anyhow!("--url {url} has no host"))?;
    let port = uri.port_u16().unwrap_or(80);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("cannot resolve {host}"))?
        .next()
        .ok_or_else(|| anyhow!("{host} resolves to no address"))
}

/// The symbols served on `channel`, from `{"op":"list"}` on one extra
/// connection.
async fn list_symbols(url: &str, channel: &str) -> anyhow::Result<Vec<String>> {
    let fetch = async {
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        ws.send(Message::text(r#"{"op":"list","id":"loadgen"}"#))
            .await
            .context("cannot send the list request")?;
        while let Some(frame) = ws.next().await {
            let Message::Text(text) = frame.context("connection lost during list")? else {
                continue;
            };
            for line in text.as_str().lines() {
                let value: Value = match serde_json::from_str(line) {
                    Ok(v) => v,
                    Err(_) => continue,
                };
                if value["type"] != "symbols" {
                    continue;
                }
                let _ = ws.close(None).await;
                let listed = value["symbols"].as_array().cloned().unwrap_or_default();
                return Ok(listed
                    .iter()
                    .filter(|s| {
                        s["channels"]
                            .as_array()
                            .is_none_or(|c| c.iter().any(|c| c == channel))
                    })
                    .filter_map(|s| s["symbol"].as_str().map(str::to_string))
                    .collect());
            }
        }
        bail!("the server closed the connection before listing its symbols")
    };
    tokio::time::timeout(LIST_TIMEOUT, fetch)
        .await
        .map_err(|_| anyhow!("no symbol list from {url} within {LIST_TIMEOUT:?}"))?
}

/// Each read zeroes a whole `read_buffer_size` chunk first: tungstenite's
/// 128 KiB default made that memset 43 % of the load generator's CPU at
/// one ~200-byte frame per read. 8 KiB still takes a batch of frames (or
/// a large frame, assembled over several reads) per read.
const READ_BUFFER: usize = 8 << 10;

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
}

/// One client connection's task.
struct Client {
    id: usize,
    url: String,
    target: SocketAddr,
    source: Option<IpAddr>,
    request: String,
    shared: Rc<Shared>,
    stop: CancellationToken,
    gate: Rc<Semaphore>,
    ready: mpsc::Sender<Result<u64, String>>,
    /// Size of the last-seq table (symbols served).
    slots: usize,
    /// The slots this client subscribes to.
    mine: Vec<usize>,
}

impl Client {
    async fn run(self) {
        let mut last = vec![0u64; self.slots];
        let setup = async {
            let _permit = self.gate.acquire().await.map_err(|e| e.to_string())?;
            let began = Instant::now();
            let ws = tokio::time::timeout(CONNECT_TIMEOUT, self.connect(&mut last))
                .await
                .map_err(|_| format!("no subscription within {CONNECT_TIMEOUT:?}"))??;
            Ok::<_, String>((ws, began.elapsed().as_micros() as u64))
        };
        let outcome = tokio::select! {
            r = setup => r,
            () = self.stop.cancelled() => return,
        };
        let mut ws = match outcome {
            Ok((ws, took)) => {
                {
                    let mut subscribers = self.shared.subscribers.borrow_mut();
                    for &slot in &self.mine {
                        subscribers[slot] += 1;
                    }
                }
                // The receiver lives until the phase ends; a late report
                // only means the phase gave up on us.
                let _ = self.ready.send(Ok(took)).await;
                ws
            }
            Err(why) => {
                let _ = self
                    .ready
                    .send(Err(format!("client {}: {why}", self.id)))
                    .await;
                return;
            }
        };
        // Registered once: a fresh `cancelled()` per frame would join and
        // leave the token's waiter list (a lock) on every update.
        let stopped = self.stop.cancelled();
        tokio::pin!(stopped);
        loop {
            let frame = tokio::select! {
                biased;
                () = &mut stopped => break,
                f = ws.next() => f,
            };
            match frame {
                Some(Ok(Message::Text(text))) => {
                    self.shared
                        .on_frame(self.id, text.as_bytes(), now_us(), &mut last);
                }
                Some(Ok(Message::Binary(bytes))) => {
                    self.shared.on_frame(self.id, &bytes, now_us(), &mut last);
                }
                Some(Ok(Message::Close(frame))) => {
                    self.lost(format!("closed by the server: {frame:?}"));
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    self.lost(e.to_string());
                    return;
                }
                None => {
                    self.lost("closed without a close frame".into());
                    return;
                }
            }
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
    }

    fn lost(&self, why: String) {
        if !self.stop.is_cancelled() {
            self.shared
                .disconnected
                .set(self.shared.disconnected.get() + 1);
            self.shared.problem(format!("client {}: {why}", self.id));
        }
    }

    /// TCP connect (from the chosen source address), handshake, subscribe,
    /// and wait for `subscribed`.
    async fn connect(&self, last: &mut [u64]) -> Result<WebSocketStream<TcpStream>, String> {
        let socket = match self.target {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .map_err(|e| format!("socket: {e}"))?;
        if let Some(ip) = self.source {
            socket
                .bind(SocketAddr::new(ip, 0))
                .map_err(|e| format!("bind {ip}: {e}"))?;
        }
        let stream = socket
            .connect(self.target)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (mut ws, _) = tokio_tungstenite::client_async_with_config(
            self.url.as_str(),
            stream,
            Some(ws_config()),
        )
        .await
        .map_err(|e| format!("handshake: {e}"))?;
        ws.send(Message::text(self.request.as_str()))
            .await
            .map_err(|e| format!("subscribe: {e}"))?;
        while let Some(frame) = ws.next().await {
            let bytes = match frame.map_err(|e| format!("before subscribed: {e}"))? {
                Message::Text(text) => text.as_bytes().to_vec(),
                Message::Close(frame) => return Err(format!("closed: {frame:?}")),
                _ => continue,
            };
            for line in bytes.split(|&b| b == b'\n') {
                match stats::scan(line) {
                    Line::Subscribed => return Ok(ws),
                    Line::Error => {
                        return Err(format!("refused: {}", String::from_utf8_lossy(line)));
                    }
                    _ => {}
                }
            }
            // Updates before the ack (none with snapshot:false) still
            // set the seq baseline.
            self.shared.on_frame(self.id, &bytes, now_us(), last);
        }
        Err("closed before subscribed".into())
    }
}
