//! The fake venue (`tickwire replay --serve`): a local WebSocket and REST
//! server that speaks a venue's handshake and plays a capture as a live
//! broadcast, so the adapters can be demonstrated and tested without the
//! internet. Faults (a dropped connection, a garbage frame, silence, a
//! forced cutoff with the venue's notice) are options, for tests and for
//! trying a deployment's recovery by hand.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_util::sync::CancellationToken;

use crate::capture::{Capture, Source};
use crate::replay::Speed;
use crate::runner::now_us;
use crate::venue::{self, FakeVenue};

/// Tape frames buffered for a client that reads slowly before it misses
/// some (as a venue would drop a slow consumer's data).
const BROADCAST: usize = 8192;
/// The pause between two passes of a looping tape.
const LOOP_PAUSE: Duration = Duration::from_secs(1);

/// How the fake venue plays its tape and which faults it injects. Faults
/// marked "first connection" hit only the first client to connect, so a
/// test can watch the adapter recover on its next connection.
#[derive(Clone, Debug)]
pub struct FakeOptions {
    /// Tape pace factor.
    pub speed: Speed,
    /// Start the tape over at its end.
    pub looped: bool,
    /// First connection: drop the TCP connection (no close frame) after
    /// serving this many tape frames.
    pub drop_after: Option<usize>,
    /// First connection: send a frame that is not JSON after this many
    /// tape frames.
    pub garbage_after: Option<usize>,
    /// First connection: send nothing more after this many tape frames,
    /// keeping the socket open.
    pub silence_after: Option<usize>,
    /// Every connection: close it (1000) this long after it opened, as
    /// Binance does at 24 h.
    pub max_lifetime: Option<Duration>,
    /// Send the venue's shutdown notice this long before `max_lifetime`.
    pub notice_before: Option<Duration>,
    /// Send WebSocket pings this often (Binance: 20 s).
    pub ping_every: Option<Duration>,
    /// Answer REST requests after this long (a real venue's latency; a
    /// resync is then visible to clients as stale, then live).
    pub rest_delay: Option<Duration>,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            speed: Speed::REAL_TIME,
            looped: false,
            drop_after: None,
            garbage_after: None,
            silence_after: None,
            max_lifetime: None,
            notice_before: None,
            ping_every: None,
            rest_delay: None,
        }
    }
}

/// A running fake venue.
#[derive(Debug)]
pub struct FakeServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl FakeServer {
    /// Where it listens: `ws://ADDR/...` for the WebSocket (any path),
    /// `http://ADDR/...` for REST.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many WebSocket clients have connected so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

struct Shared {
    fake: Mutex<Box<dyn FakeVenue>>,
    tape: broadcast::Sender<Arc<str>>,
    options: FakeOptions,
    connections: Arc<AtomicUsize>,
    shutdown: CancellationToken,
}

impl Shared {
    fn fake(&self) -> std::sync::MutexGuard<'_, Box<dyn FakeVenue>> {
        // A panic while holding it leaves nothing half-written that matters
        // to a fake; carry on.
        self.fake.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts a fake venue for `capture` on `listener`; it runs until
/// `shutdown`.
pub fn serve(
    listener: TcpListener,
    capture: Capture,
    options: FakeOptions,
    shutdown: CancellationToken,
) -> std::io::Result<FakeServer> {
    let addr = listener.local_addr()?;
    let natives: Vec<String> = capture
        .header
        .instruments
        .iter()
        .map(|i| i.native.clone())
        .collect();
    let (tape, _) = broadcast::channel(BROADCAST);
    let connections = Arc::new(AtomicUsize::new(0));
    let shared = Arc::new(Shared {
        fake: Mutex::new(venue::fake(capture.header.venue, &natives)),
        tape,
        options,
        connections: connections.clone(),
        shutdown,
    });
    let frames: Vec<String> = capture
        .frames
        .iter()
        .filter(|f| f.source == Source::Ws)
        .map(|f| f.text.clone())
        .collect();
    // The tape's preamble (acks, snapshots) is taken in before anyone can
    // connect, so the first client's snapshot is the market's, not empty.
    let mut preamble = 0;
    {
        let mut fake = shared.fake();
        while preamble < frames.len() && !fake.observe(&frames[preamble]) {
            preamble += 1;
        }
    }
    tokio::spawn(play_tape(shared.clone(), capture, preamble));
    tokio::spawn(accept(listener, shared));
    Ok(FakeServer { addr, connections })
}

/// Plays the tape: every frame is observed by the fake (keeping its books)
/// and broadcast to subscribed clients when the fake says so. The first
/// pass starts at `preamble`, whose frame the fake has already observed.
async fn play_tape(shared: Arc<Shared>, capture: Capture, preamble: usize) {
    let frames: Vec<_> = capture
        .frames
        .into_iter()
        .filter(|f| f.source == Source::Ws)
        .collect();
    let first_rx = frames.first().map_or(0, |f| f.rx);
    let mut skip = preamble;
    loop {
        let start = Instant::now();
        for (i, frame) in frames.iter().enumerate() {
            if i < skip {
                continue;
            }
            let due = start
                + shared
                    .options
                    .speed
                    .scale(Duration::from_micros(frame.rx.saturating_sub(first_rx)));
            tokio::select! {
                biased;
                () = shared.shutdown.cancelled() => return,
                () = tokio::time::sleep_until(due) => {}
            }
            let send = if i == skip && skip > 0 {
                // Observed with the preamble; broadcast it now.
                true
            } else {
                shared.fake().observe(&frame.text)
            };
            if send {
                // No receivers is fine: nobody is subscribed yet.
                let _ = shared.tape.send(Arc::from(frame.text.as_str()));
            }
        }
        if !shared.options.looped {
            return;
        }
        skip = 0;
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            () = tokio::time::sleep(LOOP_PAUSE) => {}
        }
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let stream = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::debug!(error = %e, "fake venue: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let shared = shared.clone();
                async move {
                    let is_rest = req.headers().get(header::UPGRADE).is_none();
                    if let (true, Some(delay)) = (is_rest, shared.options.rest_delay) {
                        tokio::time::sleep(delay).await;
                    }
                    Ok::<_, Infallible>(route(req, shared))
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "fake venue: connection ended");
            }
        });
    }
}

fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn route(req: Request<Incoming>, shared: Arc<Shared>) -> Response<Full<Bytes>> {
    let wants_ws = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !wants_ws {
        if req.method() != Method::GET {
            return respond(StatusCode::METHOD_NOT_ALLOWED, r#"{"error":"GET only"}"#);
        }
        let path = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        return match shared.fake().rest(&path) {
            Some(body) => respond(StatusCode::OK, body),
            None => respond(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#),
        };
    }
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return respond(
            StatusCode::BAD_REQUEST,
            r#"{"error":"no Sec-WebSocket-Key"}"#,
        );
    };
    let accept = derive_accept_key(key.as_bytes());
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                session(ws, shared).await;
            }
            Err(e) => tracing::debug!(error = %e, "fake venue: upgrade failed"),
        }
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("upgrade"),
    );
    h.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("websocket"),
    );
    if let Ok(v) = header::HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

/// One client of the fake venue.
async fn session<S>(mut ws: WebSocketStream<S>, shared: Arc<Shared>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let number = shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
    let faulty = number == 1;
    let options = shared.options.clone();
    let opened = Instant::now();
    let far = opened + Duration::from_secs(86_400 * 365);
    let cutoff = options.max_lifetime.map(|l| opened + l);
    let mut notice_at = match (cutoff, options.notice_before) {
        (Some(c), Some(n)) => Some(c.checked_sub(n).unwrap_or(opened)),
        _ => None,
    };
    let mut tape = shared.tape.subscribe();
    let mut subscribed = false;
    let mut served = 0usize;
    let mut silent = false;
    let mut garbage_sent = false;
    let mut tape_open = true;
    let mut next_ping = options.ping_every.map(|p| opened + p);
    let greeting = shared.fake().greeting();
    for g in greeting {
        if ws.send(Message::text(g)).await.is_err() {
            return;
        }
    }
    loop {
        tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => {
                let _ = ws.close(None).await;
                return;
            }
            () = tokio::time::sleep_until(cutoff.unwrap_or(far)), if cutoff.is_some() => {
                let _ = ws.close(None).await;
                return;
            }
            () = tokio::time::sleep_until(notice_at.unwrap_or(far)), if notice_at.is_some() => {
                notice_at = None;
                let notice = shared.fake().shutdown_notice(now_us() / 1_000);
                if let Some(n) = notice {
                    if ws.send(Message::text(n)).await.is_err() {
                        return;
                    }
                }
            }
            () = tokio::time::sleep_until(next_ping.unwrap_or(far)), if next_ping.is_some() && !silent => {
                next_ping = options.ping_every.map(|p| Instant::now() + p);
                if ws.send(Message::Ping(Bytes::from_static(b"fake"))).await.is_err() {
                    return;
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    if silent {
                        continue;
                    }
                    let mut replies = Vec::new();
                    shared.fake().on_client(text.as_str(), &mut replies);
                    subscribed = true;
                    for r in replies {
                        if ws.send(Message::text(r)).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            frame = tape.recv(), if tape_open => match frame {
                Ok(frame) => {
                    if !subscribed || silent {
                        continue;
                    }
                    if ws.send(Message::text(frame.as_ref())).await.is_err() {
                        return;
                    }
                    served += 1;
                    if faulty {
                        if options.drop_after == Some(served) {
                            // Drop without a close frame, as a broken link does.
                            return;
                        }
                        if options.garbage_after.is_some_and(|n| served >= n) && !garbage_sent {
                            garbage_sent = true;
                            if ws.send(Message::text("{\"garbage\": tru")).await.is_err() {
                                return;
                            }
                        }
                        if options.silence_after == Some(served) {
                            silent = true;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(missed = n, "fake venue: a slow client missed tape frames");
                }
                Err(broadcast::error::RecvError::Closed) => {
                    // The tape ended: stay connected and quiet, as a venue
                    // with no more trading would.
                    tape_open = false;
                }
            },
        }
    }
}
