//! `tickwire loadgen`: many WebSocket clients against one server (tickwire
//! or a peer speaking the same v1 subset) for a bounded time; measures
//! delivery, latency, conflation and connects, and prints one JSON line.
//!
//! It runs on one current-thread runtime (it shares the machine with the
//! server), so clients are local tasks sharing plain `Cell`s; per update it
//! only scans bytes ([`stats::scan`]), records one histogram value and
//! bumps counters.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
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
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
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
/// How long a slow client paused at the end may read its backlog to find
/// out whether the server closed it meanwhile (a close frame or an end of
/// stream waits behind the unread data).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Slow-client fractions are kept in parts per million, so the choice of
/// slow clients is exact integer arithmetic (every 10th for 0.1).
const PPM: u64 = 1_000_000;

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
/// With --server-pid also the server's RSS before the first connect and
/// the growth per connected client up to the window's start.
///
/// With --slow-fraction F, that share of the clients (spread evenly) are
/// slow consumers: a small receive buffer (--slow-rcvbuf), and after
/// subscribing they stop reading for --slow-pause-ms, read for
/// --slow-read-ms, and so on (--slow-stop: they never read again). The
/// headline figures are the other (normal) clients'; the slow clients'
/// are in the report's `slow` object.
///
/// Prints one JSON line on stdout and a summary on stderr. Exits 1 when
/// no client could subscribe.
///
/// Example:
///   tickwire loadgen --url ws://127.0.0.1:8080/v1/ws --clients 1000 \
///     --symbols-per-client 10 --duration-secs 10 --expected-rate 20
///   tickwire loadgen --clients 100 --slow-fraction 0.1 --slow-pause-ms 3000
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
    /// Share of the clients that are slow consumers, 0.0 to 1.0, spread
    /// evenly over the client ids (0.1: every 10th).
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = parse_fraction)]
    pub(super) slow_fraction: f64,
    /// SO_RCVBUF of a slow client's socket, set before connect (Linux
    /// doubles it and caps it at net.core.rmem_max).
    #[arg(long, value_name = "BYTES", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(super) slow_rcvbuf: u32,
    /// How long a slow client stops reading each time, starting right
    /// after it subscribed; 0: it never pauses (only its buffer is small).
    #[arg(long, value_name = "MS", default_value_t = 3000,
          value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub(super) slow_pause_ms: u64,
    /// How long a slow client reads between two pauses.
    #[arg(long, value_name = "MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub(super) slow_read_ms: u64,
    /// Slow clients stop reading for good once subscribed (the pause and
    /// read lengths are then unused): a server closes them as slow
    /// consumers (4008) once its timeout passes.
    #[arg(long)]
    pub(super) slow_stop: bool,
}

/// A fraction from 0.0 to 1.0.
fn parse_fraction(text: &str) -> Result<f64, String> {
    let f: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1.0).contains(&f) {
        Ok(f)
    } else {
        Err(format!("{text} is not between 0.0 and 1.0"))
    }
}

impl LoadgenArgs {
    /// The slow fraction in parts per million.
    fn slow_ppm(&self) -> u64 {
        (self.slow_fraction * PPM as f64).round() as u64
    }

    /// Whether client `id` is a slow consumer: the clients where the
    /// running count `floor(id * F)` steps up, so exactly `floor(C * F)`
    /// of C clients, evenly spread.
    pub(super) fn is_slow(&self, id: usize) -> bool {
        let ppm = self.slow_ppm();
        (id as u64 + 1) * ppm / PPM > id as u64 * ppm / PPM
    }

    /// How many of the clients are slow.
    pub(super) fn slow_clients(&self) -> u64 {
        u64::from(self.clients) * self.slow_ppm() / PPM
    }

    /// How a slow client reads.
    fn pace(&self) -> Pace {
        if self.slow_stop {
            Pace::Stop
        } else if self.slow_pause_ms == 0 {
            Pace::Always
        } else {
            Pace::Alternate {
                pause: Duration::from_millis(self.slow_pause_ms),
                read: Duration::from_millis(self.slow_read_ms),
            }
        }
    }
}

/// How a slow client reads once subscribed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pace {
    /// Stops reading for `pause`, reads for `read`, again and again.
    Alternate { pause: Duration, read: Duration },
    /// Reads all the time: only its receive buffer is small.
    Always,
    /// Never reads again.
    Stop,
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

/// What one kind of client (normal or slow) adds to; single-threaded, so
/// plain cells.
#[derive(Default)]
pub(super) struct Group {
    /// Update `rx` → receipt, µs, in the window.
    pub(super) latency: RefCell<Histogram>,
    /// Updates missed by seq jumps on conflatable channels (conflated).
    pub(super) skipped: Cell<u64>,
    /// `gap` notices (trades dropped for a slow consumer).
    pub(super) gaps: Cell<u64>,
    /// `error` notices.
    pub(super) errors: Cell<u64>,
    /// WebSocket frames received in the window.
    pub(super) frames: Cell<u64>,
    /// Their payload bytes.
    pub(super) bytes: Cell<u64>,
    /// Connections that ended before the run did.
    pub(super) disconnected: Cell<u64>,
    /// How connections ended, by close code (`"4008"`), `"no_code"` (a
    /// close frame without one), `"eof"` (no close frame), `"reset"` or
    /// `"error"`; with the closes a paused slow client finds in its
    /// backlog at the end. Touched only when a connection ends.
    pub(super) closes: RefCell<BTreeMap<String, u64>>,
    /// The first thing that went wrong, for the reader.
    pub(super) first_problem: RefCell<Option<String>>,
    /// Clients of this kind that subscribed.
    pub(super) connected: Cell<u64>,
    /// Subscribed clients of this kind per topic.
    pub(super) subscribers: RefCell<Vec<u64>>,
}

impl Group {
    /// An empty group for `topics` symbols.
    fn with_topics(topics: usize) -> Self {
        Self {
            subscribers: RefCell::new(vec![0; topics]),
            ..Self::default()
        }
    }

    /// Keeps `text` if it is the first problem.
    fn problem(&self, text: String) {
        let mut first = self.first_problem.borrow_mut();
        if first.is_none() {
            *first = Some(text);
        }
    }

    /// Counts one connection ended `how`.
    fn closed(&self, how: String) {
        *self.closes.borrow_mut().entry(how).or_insert(0) += 1;
    }

    /// Deliveries the server owed this kind of client in the window: each
    /// topic's seq progress times its subscribers of this kind.
    pub(super) fn owed(&self, progress: &[u64]) -> u64 {
        let subscribers = self.subscribers.borrow();
        progress
            .iter()
            .zip(subscribers.iter())
            .map(|(p, s)| p * s)
            .sum()
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
    /// Updates received per client id, in the window.
    pub(super) per_client: RefCell<Vec<u64>>,
    /// The clients that read normally: the headline figures.
    pub(super) normal: Group,
    /// The slow consumers (--slow-fraction).
    pub(super) slow: Group,
    /// Highest seq seen per topic by any client: its progress over the
    /// window is what the server actually published (a jittered synthetic
    /// feed does not publish exactly `--expected-rate`).
    topic_seq: RefCell<Vec<u64>>,
    /// First seq seen per topic inside the window (0: none yet), the
    /// baseline of topics with no update before it.
    topic_first: RefCell<Vec<u64>>,
}

impl Shared {
    /// The group a client belongs to.
    fn group(&self, slow: bool) -> &Group {
        if slow { &self.slow } else { &self.normal }
    }

    /// Accounts one frame received at `now_us` by a client of `group`;
    /// `last` is the client's last seq per symbol.
    fn on_frame(&self, group: &Group, client: usize, frame: &[u8], now_us: u64, last: &mut [u64]) {
        let measuring = self.measuring.get();
        if measuring {
            group.frames.set(group.frames.get() + 1);
            group.bytes.set(group.bytes.get() + frame.len() as u64);
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
                        group
                            .skipped
                            .set(group.skipped.get() + (seq - previous - 1));
                    }
                    group.latency.borrow_mut().record(now_us.saturating_sub(rx));
                }
                Line::Gap if measuring => group.gaps.set(group.gaps.get() + 1),
                Line::Error => {
                    group.errors.set(group.errors.get() + 1);
                    group.problem(String::from_utf8_lossy(line).into_owned());
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
    // Before any connection of ours (the list request included): the
    // baseline of the per-connection memory figure.
    let server = args.server_pid.map(|p| p.to_string());
    let server_before = server.as_deref().and_then(stats::sample);
    let target = resolve(&url).await?;
    let slow_closes_before = slow_consumer_closes(target).await;
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
        normal: Group::with_topics(served.len()),
        slow: Group::with_topics(served.len()),
        topic_seq: RefCell::new(vec![0; served.len()]),
        topic_first: RefCell::new(vec![0; served.len()]),
        ..Shared::default()
    });
    let stop = CancellationToken::new();
    let gate = Rc::new(Semaphore::new(args.connect_concurrency as usize));
    let (ready_tx, mut ready_rx) = mpsc::channel(clients);
    let pace = args.pace();
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
            pace: args.is_slow(id).then_some(pace),
            rcvbuf: args.slow_rcvbuf,
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
                    shared.normal.problem(why);
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
    // Each topic's seq progress over the window; a topic with no update
    // before the window starts just before its first update inside it.
    let progress: Vec<u64> = {
        let end = shared.topic_seq.borrow();
        let first = shared.topic_first.borrow();
        (0..served.len())
            .map(|t| {
                let base = if seq_start[t] > 0 {
                    seq_start[t]
                } else {
                    first[t].saturating_sub(1)
                };
                end[t] - base.min(end[t])
            })
            .collect()
    };
    let window = window_start.elapsed();
    let server_end = server.as_deref().and_then(stats::sample);
    let self_end = stats::sample("self");
    let machine_end = stats::machine();
    let slow_closes_end = slow_consumer_closes(target).await;
    stop.cancel();
    // Paused slow clients may read their backlog first (DRAIN_TIMEOUT).
    let _ = tokio::time::timeout(
        DRAIN_TIMEOUT + CLOSE_TIMEOUT * 2,
        futures_util::future::join_all(tasks),
    )
    .await;

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
        published: shared.normal.owed(&progress),
        published_slow: shared.slow.owed(&progress),
        server_before,
        server_slow_closes: slow_closes_before
            .zip(slow_closes_end)
            .map(|(a, b)| b.saturating_sub(a)),
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

/// How long the `/metrics` request may take.
const METRICS_TIMEOUT: Duration = Duration::from_secs(2);
/// The most of a `/metrics` answer read.
const METRICS_MAX_BYTES: u64 = 4 << 20;

/// The server's own count of slow-consumer closes
/// ([`stats::SLOW_CONSUMER_CLOSES`] on `GET /metrics`, same host and
/// port): a client that stopped reading cannot see its 4008 close frame,
/// which waits behind the unread data. `None` for a server without it.
async fn slow_consumer_closes(target: SocketAddr) -> Option<u64> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let fetch = async {
        let mut stream = TcpStream::connect(target).await.ok()?;
        let request =
            format!("GET /metrics HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream
            .take(METRICS_MAX_BYTES)
            .read_to_end(&mut answer)
            .await
            .ok()?;
        stats::metric_from_http(&answer, stats::SLOW_CONSUMER_CLOSES)
    };
    tokio::time::timeout(METRICS_TIMEOUT, fetch)
        .await
        .ok()
        .flatten()
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
    /// How a slow client reads; `None` for a normal one.
    pace: Option<Pace>,
    /// A slow client's SO_RCVBUF.
    rcvbuf: u32,
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
    fn group(&self) -> &Group {
        self.shared.group(self.pace.is_some())
    }

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
        let group = self.group();
        let mut ws = match outcome {
            Ok((ws, took)) => {
                {
                    let mut subscribers = group.subscribers.borrow_mut();
                    for &slot in &self.mine {
                        subscribers[slot] += 1;
                    }
                }
                group.connected.set(group.connected.get() + 1);
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
        // A slow client starts with a pause; `switch` ends the current
        // phase (polled only for alternating clients, so a normal client
        // pays no timer per frame).
        let (mut reading, first_phase) = match self.pace {
            None | Some(Pace::Always) => (true, None),
            Some(Pace::Stop) => (false, None),
            Some(Pace::Alternate { pause, .. }) => (false, Some(pause)),
        };
        let timed = first_phase.is_some();
        let switch = tokio::time::sleep(first_phase.unwrap_or(CONNECT_TIMEOUT));
        tokio::pin!(switch);
        loop {
            if !reading {
                tokio::select! {
                    biased;
                    () = &mut stopped => break,
                    () = &mut switch, if timed => {
                        reading = true;
                        if let Some(Pace::Alternate { read, .. }) = self.pace {
                            switch.as_mut().reset(tokio::time::Instant::now() + read);
                        }
                    }
                }
                continue;
            }
            let frame = tokio::select! {
                biased;
                () = &mut stopped => break,
                () = &mut switch, if timed => {
                    reading = false;
                    if let Some(Pace::Alternate { pause, .. }) = self.pace {
                        switch.as_mut().reset(tokio::time::Instant::now() + pause);
                    }
                    continue;
                }
                f = ws.next() => f,
            };
            match frame {
                Some(Ok(Message::Text(text))) => {
                    self.shared
                        .on_frame(group, self.id, text.as_bytes(), now_us(), &mut last);
                }
                Some(Ok(Message::Binary(bytes))) => {
                    self.shared
                        .on_frame(group, self.id, &bytes, now_us(), &mut last);
                }
                Some(Ok(Message::Close(frame))) => {
                    self.lost(
                        close_key(frame.as_ref()),
                        format!("closed by the server: {frame:?}"),
                    );
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    self.lost(error_key(&e), e.to_string());
                    return;
                }
                None => {
                    self.lost("eof".into(), "closed without a close frame".into());
                    return;
                }
            }
        }
        if !reading && self.drain(&mut ws).await {
            return;
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
    }

    /// The connection ended during the run: counted (with how it ended)
    /// unless the window is over and we are closing anyway.
    fn lost(&self, how: String, why: String) {
        if !self.stop.is_cancelled() {
            let group = self.group();
            group.disconnected.set(group.disconnected.get() + 1);
            group.closed(how);
            group.problem(format!("client {}: {why}", self.id));
        }
    }

    /// A client that was not reading when the window ended reads its
    /// backlog (not counted as deliveries) to see whether the server had
    /// closed it: its close frame, if any, waits behind the unread data.
    /// True when the connection turned out closed.
    async fn drain(&self, ws: &mut WebSocketStream<TcpStream>) -> bool {
        let read = async {
            loop {
                return match ws.next().await {
                    Some(Ok(Message::Close(frame))) => close_key(frame.as_ref()),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => error_key(&e),
                    None => "eof".into(),
                };
            }
        };
        match tokio::time::timeout(DRAIN_TIMEOUT, read).await {
            Ok(how) => {
                self.group().closed(how);
                true
            }
            Err(_) => false,
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
        if self.pace.is_some() {
            // Before connect, so the window the client advertises (and
            // its scaling) is small from the handshake on.
            socket
                .set_recv_buffer_size(self.rcvbuf)
                .map_err(|e| format!("SO_RCVBUF {}: {e}", self.rcvbuf))?;
        }
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
            self.shared
                .on_frame(self.group(), self.id, &bytes, now_us(), last);
        }
        Err("closed before subscribed".into())
    }
}

/// How a read error ended a connection, as the report counts it: `"eof"`
/// (the stream ended without a close frame), `"reset"` (TCP reset: a
/// server that gives up on a client whose socket is full cannot send its
/// close frame either), or `"error"`.
fn error_key(e: &WsError) -> String {
    match e {
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => "eof",
        WsError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionReset => "reset",
        WsError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => "eof",
        _ => "error",
    }
    .into()
}

/// How a close frame ended a connection, as the report counts it: its
/// code (`"4008"`), or `"no_code"`.
fn close_key(frame: Option<&CloseFrame>) -> String {
    frame.map_or_else(|| "no_code".into(), |f| u16::from(f.code).to_string())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LoadgenArgs,
    }

    fn args(words: &[&str]) -> LoadgenArgs {
        let mut argv = vec!["loadgen"];
        argv.extend_from_slice(words);
        Cli::parse_from(argv).args
    }

    #[test]
    fn slow_clients_are_spread_evenly() {
        let a = args(&["--clients", "100", "--slow-fraction", "0.1"]);
        let slow: Vec<usize> = (0..100).filter(|&id| a.is_slow(id)).collect();
        assert_eq!(slow, (0..10).map(|k| 10 * k + 9).collect::<Vec<_>>());
        assert_eq!(a.slow_clients(), 10);
        let q = args(&["--clients", "20", "--slow-fraction", "0.25"]);
        assert_eq!((0..20).filter(|&id| q.is_slow(id)).count(), 5);
        assert_eq!(q.slow_clients(), 5);
        let none = args(&["--clients", "7"]);
        assert!((0..7).all(|id| !none.is_slow(id)));
        assert_eq!(none.slow_clients(), 0);
        let all = args(&["--clients", "7", "--slow-fraction", "1"]);
        assert!((0..7).all(|id| all.is_slow(id)));
        // A third of 10: the running count steps up 3 times.
        let third = args(&["--clients", "10", "--slow-fraction", "0.333333"]);
        assert_eq!((0..10).filter(|&id| third.is_slow(id)).count(), 3);
        assert_eq!(third.slow_clients(), 3);
    }

    #[test]
    fn slow_pace_follows_the_flags() {
        assert_eq!(
            args(&[]).pace(),
            Pace::Alternate {
                pause: Duration::from_millis(3000),
                read: Duration::from_millis(500)
            }
        );
        assert_eq!(args(&["--slow-pause-ms", "0"]).pace(), Pace::Always);
        assert_eq!(
            args(&["--slow-pause-ms", "0", "--slow-stop"]).pace(),
            Pace::Stop
        );
        assert!(parse_fraction("1.5").is_err());
        assert!(parse_fraction("-0.1").is_err());
        assert!(parse_fraction("x").is_err());
        assert_eq!(parse_fraction("0.1"), Ok(0.1));
    }
}
