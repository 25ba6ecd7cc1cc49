//! The gateway server: the accept loop, the shards that serve
//! connections, and the handle a caller holds to inspect and stop it.
//! Shutdown is injected as a cancellation token, and is a drain
//! (`drain.rs`): the listener keeps answering HTTP while connections are
//! closed a few at a time, and stops when the drain is over.
//!
//! A shard is a thread running a single-threaded runtime with its own hub.
//! The accept loop hands each connection to the least loaded shard, and
//! the connection lives there: the fan-out that offers to its outbox, the
//! writer that drains it and the socket stay on one core, with no
//! cross-thread wake-up or cache-line traffic per delivery (a shared
//! multi-threaded runtime measured about twice the CPU per socket write).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tickwire_bus::Bus;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument as _, debug, info, warn};

use crate::config::GatewayConfig;
use crate::drain::Drain;
use crate::hub::Hub;
use crate::session::SessionContext;
use crate::{Error, Result, http};

/// A running gateway.
pub struct Gateway {
    addr: SocketAddr,
    tls: bool,
    shards: Arc<[Shard]>,
    accept: JoinHandle<()>,
    drain: JoinHandle<()>,
}

/// One event-loop thread and what the accept loop and callers need of it.
struct Shard {
    ctx: Arc<SessionContext>,
    /// Connections handed to this shard and not yet finished.
    load: Arc<AtomicUsize>,
    conns: mpsc::UnboundedSender<(std::net::TcpStream, SocketAddr)>,
    /// The shard's connection tasks (WebSocket and HTTP), for the drain
    /// to wait on from outside the shard.
    tracker: TaskTracker,
    /// Resolves once the shard's runtime has stopped.
    done: std::sync::Mutex<Option<oneshot::Receiver<()>>>,
}

impl Gateway {
    /// Starts serving HTTP and WebSocket clients on `listener`, fed by
    /// `bus`. Cancelling `shutdown` starts the drain: `/readyz` answers
    /// 503 and upgrades are refused at once, each connection is closed
    /// with 1012 at its turn within `drain_window_ms`, and the listener
    /// closes when the last one has gone, or `shutdown_timeout_ms` after
    /// the window at the latest ([`Gateway::wait`]).
    pub async fn start(
        listener: TcpListener,
        bus: Arc<dyn Bus>,
        config: GatewayConfig,
        shutdown: CancellationToken,
    ) -> Result<Self> {
        config.validate()?;
        let addr = listener.local_addr()?;
        let tokens = Tokens {
            drain: shutdown.clone(),
            stop: CancellationToken::new(),
            abort: CancellationToken::new(),
        };
        let limits = Arc::new(ConnLimits::new(&config));
        let tls = match (&config.tls_cert_file, &config.tls_key_file) {
            (Some(cert), Some(key)) => {
                let tls = Arc::new(crate::tls::Tls::load(cert, key).map_err(Error::Config)?);
                tokio::spawn(tls.clone().watch(
                    Duration::from_millis(config.tls_reload_poll_ms),
                    tokens.stop.clone(),
                ));
                Some(tls)
            }
            _ => None,
        };
        let mut shards = Vec::new();
        for index in 0..config.shard_count() {
            shards.push(
                start_shard(
                    index,
                    bus.clone(),
                    config.clone(),
                    tokens.clone(),
                    limits.clone(),
                    tls.clone(),
                )
                .await?,
            );
        }
        let shards: Arc<[Shard]> = shards.into();
        let accept = tokio::spawn(accept_loop(
            listener,
            shards.clone(),
            config.send_buffer_bytes,
            tokens.stop.clone(),
        ));
        let drain = Drain {
            hubs: shards.iter().map(|s| s.ctx.hub.clone()).collect(),
            trackers: shards.iter().map(|s| s.tracker.clone()).collect(),
            window: Duration::from_millis(config.drain_window_ms),
            timeout: Duration::from_millis(config.shutdown_timeout_ms),
            stop: tokens.stop.clone(),
            abort: tokens.abort,
        };
        let drain = tokio::spawn(async move {
            shutdown.cancelled().await;
            drain.run().await;
        });
        info!(%addr, shards = shards.len(), tls = tls.is_some(), "gateway listening");
        Ok(Self {
            addr,
            tls: tls.is_some(),
            shards,
            accept,
            drain,
        })
    }

    /// Whether the listener speaks TLS (`https://`, `wss://`).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Each shard's hub, for inspection.
    pub fn hubs(&self) -> impl Iterator<Item = &Arc<Hub>> {
        self.shards.iter().map(|s| &s.ctx.hub)
    }

    /// Bus subscriptions held over all shards (one per topic per shard
    /// with a local subscriber).
    pub fn bus_topics(&self) -> usize {
        self.hubs().map(|h| h.bus_topics()).sum()
    }

    /// Connections currently served by each shard.
    pub fn shard_loads(&self) -> Vec<usize> {
        self.shards
            .iter()
            .map(|s| s.load.load(Ordering::Relaxed))
            .collect()
    }

    /// `(connection id, frames held in its outbox)` for every connection.
    pub fn connection_depths(&self) -> Vec<(u64, usize)> {
        self.hubs().flat_map(|h| h.connection_depths()).collect()
    }

    /// Waits until the drain is over: the listener has closed and every
    /// shard has ended its connections, or dropped the ones left at the
    /// drain's bound.
    pub async fn wait(self) {
        let _ = self.drain.await;
        let _ = self.accept.await;
        for shard in self.shards.iter() {
            let done = shard.done.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(done) = done {
                let _ = done.await;
            }
        }
    }
}

/// The gateway's three moments, shared by the accept loop, the shards and
/// the drain.
#[derive(Clone)]
struct Tokens {
    /// The caller's: the drain begins.
    drain: CancellationToken,
    /// The drain is over: stop listening and taking connections.
    stop: CancellationToken,
    /// The drain's bound has passed: drop whatever still runs.
    abort: CancellationToken,
}

/// Starts shard `index` on its own thread and returns once its hub exists.
async fn start_shard(
    index: usize,
    bus: Arc<dyn Bus>,
    config: GatewayConfig,
    tokens: Tokens,
    limits: Arc<ConnLimits>,
    tls: Option<Arc<crate::tls::Tls>>,
) -> Result<Shard> {
    let (conns, rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel();
    let load = Arc::new(AtomicUsize::new(0));
    let shard_load = load.clone();
    let tracker = TaskTracker::new();
    let shard_tracker = tracker.clone();
    std::thread::Builder::new()
        .name(format!("tickwire-shard-{index}"))
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            runtime.block_on(async move {
                let ctx = Arc::new(SessionContext {
                    hub: Hub::new(bus, tokens.stop.clone()),
                    config,
                    drain: tokens.drain,
                    stop: tokens.stop,
                    writer_metrics: crate::metrics::WriterMetrics::new(),
                    tls,
                    epoch: std::time::Instant::now(),
                    limits,
                });
                tokio::spawn(crate::conn::sweep(ctx.clone()));
                if ready_tx.send(Ok(ctx.clone())).is_err() {
                    return;
                }
                serve_shard(rx, ctx, shard_load, shard_tracker, tokens.abort).await;
            });
            // Whatever is left (tasks past the drain's bound) is dropped
            // with the runtime, before `wait` hears that this shard is done.
            drop(runtime);
            let _ = done_tx.send(());
        })?;
    let ctx = ready_rx
        .await
        .map_err(|_| Error::Config(format!("gateway shard {index} failed to start")))??;
    Ok(Shard {
        ctx,
        load,
        conns,
        tracker,
        done: std::sync::Mutex::new(Some(done_rx)),
    })
}

/// Counts one connection against its shard's load until dropped: held by
/// the HTTP connection and, after an upgrade, by the WebSocket session,
/// which also holds its place under the connection limits here.
pub(crate) struct LoadGuard {
    load: Arc<AtomicUsize>,
    /// The client's address, for the per-IP limit.
    pub(crate) ip: IpAddr,
    /// Set once the connection is upgraded and admitted.
    pub(crate) slot: OnceLock<ConnSlot>,
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        self.load.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The WebSocket connections held, over all shards, against
/// `max_connections` and `max_connections_per_ip`.
pub(crate) struct ConnLimits {
    max: usize,
    max_per_ip: usize,
    /// Connections per client address, and their total; one lock, taken
    /// once per upgrade and once per close.
    held: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// Why an upgrade was refused by [`ConnLimits::admit`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `max_connections` is reached.
    Server,
    /// `max_connections_per_ip` is reached for this address.
    Ip,
}

impl ConnLimits {
    fn new(config: &GatewayConfig) -> Self {
        Self {
            max: config.max_connections,
            max_per_ip: config.max_connections_per_ip,
            held: Mutex::default(),
        }
    }

    /// Takes a place for a connection from `ip`, given back when the slot
    /// is dropped.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> std::result::Result<ConnSlot, Refused> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_ip) = &mut *held;
        if self.max > 0 && *total >= self.max {
            return Err(Refused::Server);
        }
        let mine = per_ip.entry(ip).or_insert(0);
        if self.max_per_ip > 0 && *mine >= self.max_per_ip {
            if *mine == 0 {
                per_ip.remove(&ip);
            }
            return Err(Refused::Ip);
        }
        *mine += 1;
        *total += 1;
        Ok(ConnSlot {
            limits: self.clone(),
            ip,
        })
    }
}

/// One admitted WebSocket connection's place under the limits.
pub(crate) struct ConnSlot {
    limits: Arc<ConnLimits>,
    ip: IpAddr,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut held = self.limits.held.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_ip) = &mut *held;
        *total = total.saturating_sub(1);
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// A shard's loop: serves the connections handed to it until the drain
/// is over (the drain closes them), then waits for them to end until the
/// drain's bound.
async fn serve_shard(
    mut incoming: mpsc::UnboundedReceiver<(std::net::TcpStream, SocketAddr)>,
    ctx: Arc<SessionContext>,
    load: Arc<AtomicUsize>,
    tracker: TaskTracker,
    abort: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            _ = ctx.stop.cancelled() => break,
            next = incoming.recv() => next,
        };
        let Some((std_stream, peer)) = next else {
            break;
        };
        let stream = match TcpStream::from_std(std_stream) {
            Ok(s) => s,
            Err(e) => {
                load.fetch_sub(1, Ordering::Relaxed);
                warn!(%peer, error = %e, "cannot register an accepted connection");
                continue;
            }
        };
        let guard = Arc::new(LoadGuard {
            load: load.clone(),
            ip: peer.ip(),
            slot: OnceLock::new(),
        });
        // One span per client connection, shared by its HTTP handling and,
        // after an upgrade, its WebSocket session.
        let span = tracing::info_span!("conn", %peer);
        tracker.spawn(
            serve_connection(stream, peer, ctx.clone(), tracker.clone(), guard).instrument(span),
        );
    }
    tracker.close();
    tokio::select! {
        () = tracker.wait() => {}
        // The drain logs what it left behind.
        () = abort.cancelled() => {}
    }
}

/// The next accepted connection, or `None` once `shutdown` is cancelled.
/// A failing accept (out of file descriptors and the like) is logged and
/// retried after a pause instead of spinning.
pub async fn accept_next(
    listener: &TcpListener,
    shutdown: &CancellationToken,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return None,
            a = listener.accept() => a,
        };
        match accepted {
            Ok(a) => return Some(a),
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    shards: Arc<[Shard]>,
    send_buffer: usize,
    stop: CancellationToken,
) {
    let mut next = 0usize;
    while let Some((stream, peer)) = accept_next(&listener, &stop).await {
        let _ = stream.set_nodelay(true);
        if send_buffer > 0 {
            let _ = socket2::SockRef::from(&stream).set_send_buffer_size(send_buffer);
        }
        let std_stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                warn!(%peer, error = %e, "cannot hand an accepted connection to a shard");
                continue;
            }
        };
        // Least loaded shard; ties go round-robin so a burst of connects
        // (loads all equal) still spreads.
        let n = shards.len();
        let pick = (0..n)
            .map(|k| (next + k) % n)
            .min_by_key(|&i| shards[i].load.load(Ordering::Relaxed))
            .unwrap_or(0);
        next = (pick + 1) % n.max(1);
        let shard = &shards[pick];
        shard.load.fetch_add(1, Ordering::Relaxed);
        if shard.conns.send((std_stream, peer)).is_err() {
            // The shard has stopped: the drain is over.
            shard.load.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Serves one connection: its TLS handshake first when TLS is on (here in
/// the connection's task, bounded by `tls_handshake_timeout_ms`, so a slow
/// or silent client holds up no one else), then its HTTP.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<SessionContext>,
    tracker: TaskTracker,
    load: Arc<LoadGuard>,
) {
    let Some(tls) = ctx.tls.clone() else {
        return serve_http(stream, peer, ctx, tracker, load).await;
    };
    let timeout = Duration::from_millis(ctx.config.tls_handshake_timeout_ms);
    let handshake = tokio::select! {
        h = tokio::time::timeout(timeout, tls.acceptor.accept(stream)) => h,
        _ = ctx.stop.cancelled() => return,
    };
    match handshake {
        Ok(Ok(stream)) => serve_http(stream, peer, ctx, tracker, load).await,
        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => debug!(%peer, "TLS handshake timed out"),
    }
}

/// Serves one connection's HTTP (and, after an upgrade, its WebSocket
/// session) until it ends or the end of the drain finishes it gracefully.
async fn serve_http<S>(
    stream: S,
    peer: SocketAddr,
    ctx: Arc<SessionContext>,
    tracker: TaskTracker,
    load: Arc<LoadGuard>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let ctx = ctx.clone();
        service_fn(move |req| http::handle(req, ctx.clone(), tracker.clone(), load.clone()))
    };
    // hyper's header timeout runs from the connection's start, so a
    // client that connects and sends nothing (or a byte a second) is
    // dropped too.
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(ctx.config.handshake_timeout_ms))
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    // Plain HTTP goes on during the drain, so probes see `/readyz` 503 and
    // scrapes see the drain; it ends with the drain.
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = ctx.stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        debug!(%peer, error = %e, "http connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, max_per_ip: usize) -> Arc<ConnLimits> {
        Arc::new(ConnLimits::new(&GatewayConfig {
            max_connections: max,
            max_connections_per_ip: max_per_ip,
            ..GatewayConfig::default()
        }))
    }

    #[test]
    fn places_are_counted_per_ip_and_overall_and_given_back() {
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let l = limits(3, 2);
        let a1 = l.admit(a).expect("a1");
        let _a2 = l.admit(a).expect("a2");
        assert_eq!(l.admit(a).err(), Some(Refused::Ip));
        let _b1 = l.admit(b).expect("b1");
        assert_eq!(l.admit(b).err(), Some(Refused::Server));
        drop(a1);
        let _a3 = l.admit(a).expect("a place given back");
        let held = l.held.lock().expect("lock");
        assert_eq!(held.0, 3);
        assert_eq!(held.1.len(), 2);
    }

    #[test]
    fn zero_means_no_limit_and_refusals_leave_no_entry() {
        let l = limits(0, 0);
        let slots: Vec<_> = (0..100u8)
            .map(|i| l.admit([10, 0, 0, i].into()).expect("admitted"))
            .collect();
        drop(slots);
        let held = l.held.lock().expect("lock");
        assert_eq!(held.0, 0);
        assert!(held.1.is_empty());
        drop(held);
        let l = limits(0, 1);
        let ip: IpAddr = [127, 0, 0, 9].into();
        let kept = l.admit(ip).expect("first");
        assert!(l.admit(ip).is_err());
        drop(kept);
        assert!(l.held.lock().expect("lock").1.is_empty());
    }
}
