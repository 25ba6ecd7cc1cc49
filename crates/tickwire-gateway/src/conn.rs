//! One client's WebSocket connection after the upgrade: a single task with
//! a hand-written state that reads and decodes client frames, runs the
//! session's requests one at a time, and writes what the outbox drains.
//!
//! Built for idle connections to cost little: one task (not a reader and
//! a writer), no buffer held between frames (reads and passes go through
//! per-thread scratch space; only bytes the socket refused stay with the
//! connection), no timer unless a coalescing or throttle wait needs one.
//! Heartbeats, the slow-consumer timeout and the close grace are checked
//! by the shard's [`sweep`], which pokes a connection when one is due.

use std::cell::RefCell;
use std::future::Future;
use std::io::ErrorKind;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tickwire_model::protocol::{self, Limits};
use tokio::io::{AsyncRead as _, AsyncWrite as _, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;
use tokio_rustls::server::TlsStream;
use tracing::{debug, info};

use crate::auth::{Admission, AuthState, Granted};
use crate::metrics as m;
use crate::outbox::{CloseReason, Drained, Frame, Outbox, Pulse};
use crate::server::LoadGuard;
use crate::session::{Session, SessionContext};
use crate::ws::{self, Decoder, Event, Violation};

/// The connection's socket: plain TCP, or TLS over TCP (boxed: a rustls
/// session is kilobytes, and plain connections should not carry its room).
pub(crate) enum Io {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Io {
    /// Writes what the socket takes now without registering for write
    /// readiness on plain TCP (TLS registers: it cannot write otherwise);
    /// `WouldBlock` when nothing went.
    fn try_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Io::Plain(tcp) => tcp.try_write(buf),
            Io::Tls(tls) => match Pin::new(&mut **tls).poll_write(cx, buf) {
                Poll::Ready(r) => r,
                Poll::Pending => Err(ErrorKind::WouldBlock.into()),
            },
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self {
            Io::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Io::Tls(tls) => Pin::new(&mut **tls).poll_write(cx, buf),
        }
    }

    /// Pushes out ciphertext rustls holds after a write it accepted
    /// whole; nothing to do on plain TCP.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self {
            Io::Plain(_) => Poll::Ready(Ok(())),
            Io::Tls(tls) => Pin::new(&mut **tls).poll_flush(cx),
        }
    }

    /// Whether TLS holds ciphertext the socket has not taken yet.
    fn wants_write(&self) -> bool {
        match self {
            Io::Plain(_) => false,
            Io::Tls(tls) => tls.get_ref().1.wants_write(),
        }
    }

    /// Reads into `buf`; `Ok(0)` at end of stream.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<std::io::Result<usize>> {
        match self {
            Io::Plain(tcp) => loop {
                match tcp.poll_read_ready(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Ready(Ok(())) => {}
                }
                match tcp.try_read(buf) {
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    r => return Poll::Ready(r),
                }
            },
            Io::Tls(tls) => {
                let mut read = ReadBuf::new(buf);
                match Pin::new(&mut **tls).poll_read(cx, &mut read) {
                    Poll::Ready(Ok(())) => Poll::Ready(Ok(read.filled().len())),
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

/// Per-connection options from the upgrade request.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct ConnOptions {
    /// `?batch=1`: several objects per frame, newline-separated.
    pub(crate) batch: bool,
    /// `/v1/echo`: messages are sent back instead of read as requests,
    /// and no `hello` is sent.
    pub(crate) echo: bool,
}

/// Rounds of work one poll may do before yielding to other tasks, so a
/// client that floods requests cannot monopolise its shard.
const ROUNDS_PER_POLL: usize = 32;

/// Unsent bytes past which the connection stops reading the client: its
/// pongs and replies must drain first (a ping flood from a client that
/// does not read cannot grow memory).
const READ_PAUSE_BYTES: usize = 64 * 1024;

/// Past this, a pass's scratch buffer is given back after use.
const SCRATCH_KEEP: usize = 1 << 20;

// Scratch space shared by every connection of a thread; a connection
// borrows it only within one poll. Separate cells, because a pass encodes
// the drained frames into the byte buffer while holding both.
thread_local! {
    static FRAMES: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
    static BYTES: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static READ: RefCell<Box<[u8]>> = RefCell::new(vec![0; 16 * 1024].into_boxed_slice());
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Open,
    /// Our close frame is queued: flush it, then end. With `linger`
    /// (after a protocol violation, when the client may still be sending
    /// what we refused) read and drop the client's bytes until it closes
    /// or the close grace passes: closing a socket with unread bytes
    /// resets it, and the reset could destroy our close frame in flight.
    Closing {
        linger: bool,
    },
}

/// What one round of work achieved.
enum Round {
    /// Something moved; go again.
    Progress,
    /// Everything waits on a registered wake-up.
    Idle,
    /// The connection is over.
    Done,
}

/// A client connection, driven as one task until it ends.
pub(crate) struct Conn {
    io: Io,
    ctx: Arc<SessionContext>,
    outbox: Arc<Outbox>,
    /// `None` while a request runs (the request owns it).
    session: Option<Session>,
    request: Option<Pin<Box<dyn Future<Output = Session> + Send>>>,
    /// Present only while received bytes wait to be decoded.
    decoder: Option<Box<Decoder>>,
    /// Bytes the socket has not taken yet (a pass, pongs, a close frame).
    out: Vec<u8>,
    /// Allocated on the first coalescing or throttle wait, then kept.
    timer: Option<Pin<Box<Sleep>>>,
    /// Whether `timer` is set to fire (its deadline is the wait's end).
    armed: bool,
    fired: bool,
    /// When the last pass went out, for coalescing.
    last_write: Instant,
    /// When the data of the pass in progress was first seen (the
    /// socket-write stage's latency starts here).
    woke: Option<Instant>,
    /// The outbox said more is ready after the last pass.
    more: bool,
    phase: Phase,
    opts: ConnOptions,
    id: u64,
    _load: Arc<LoadGuard>,
}

impl Conn {
    /// Registers a new connection with the hub and queues its `hello`;
    /// `received` is what the client sent right after its handshake.
    pub(crate) fn new(
        io: Io,
        received: &[u8],
        ctx: Arc<SessionContext>,
        id: u64,
        opts: ConnOptions,
        load: Arc<LoadGuard>,
        admission: Admission,
    ) -> Self {
        let outbox = Arc::new(Outbox::new(ctx.config.outbox()));
        let opened = ctx.now_ms();
        outbox.pulse.written_ms.store(opened, Ordering::Relaxed);
        outbox.pulse.heard_ms.store(opened, Ordering::Relaxed);
        ctx.hub.register(id, outbox.clone());
        metrics::gauge!(m::CONNECTIONS).increment(1.0);
        metrics::counter!(m::CONNECTIONS_OPENED).increment(1);
        debug!(conn = id, batch = opts.batch, "session opened");
        let limits = Limits {
            max_subscriptions: ctx.config.max_subscriptions,
            max_requests_per_sec: ctx.config.max_requests_per_sec,
            max_message_bytes: ctx.config.max_message_bytes,
        };
        let server = concat!("tickwire/", env!("CARGO_PKG_VERSION"));
        if !opts.echo {
            push(
                &outbox,
                protocol::hello(server, ctx.config.heartbeat_ms, &limits),
            );
        }
        // Upgraded just as the drain began: it may have missed the drain's
        // list of connections, and upgrades are refused from now on, so
        // it goes at once (after its hello) rather than at a turn.
        if ctx.drain.is_cancelled() {
            outbox.close(CloseReason::ServiceRestart);
        }
        let auth = admit(&ctx, &outbox, admission);
        let decoder = (!received.is_empty()).then(|| {
            let mut decoder = Box::<Decoder>::default();
            decoder.extend(received);
            decoder
        });
        Self {
            session: Some(Session::new(id, ctx.clone(), outbox.clone(), auth)),
            io,
            ctx,
            outbox,
            request: None,
            decoder,
            out: Vec::new(),
            timer: None,
            armed: false,
            fired: false,
            last_write: Instant::now(),
            woke: None,
            more: false,
            phase: Phase::Open,
            opts,
            id,
            _load: load,
        }
    }

    fn round(&mut self, cx: &mut Context<'_>) -> Round {
        let mut progress = false;
        let pokes = self.outbox.take_pokes();
        if pokes & Pulse::ABORT != 0 {
            debug!(conn = self.id, "close grace passed");
            return Round::Done;
        }
        if pokes & Pulse::PING != 0 && self.out.is_empty() && self.phase == Phase::Open {
            ws::ping(&mut self.out);
            // The pong timeout runs from a ping actually sent: a ping
            // skipped behind unsent bytes does not count against a slow
            // but live client.
            let _ = self.outbox.pulse.pinged_ms.compare_exchange(
                0,
                self.ctx.now_ms(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        // Registered first: a close or an offer from here on wakes us.
        self.outbox.register(cx.waker());
        if self.phase == Phase::Open && self.outbox.signalled() {
            if let Some(reason) = self.outbox.closed() {
                // A request waiting on a hung bus must not hold up a
                // close; dropping it drops the session it holds, which
                // unsubscribes whatever it registered.
                self.request = None;
                if self.out.is_empty() && reason.close_frame().is_some() {
                    // What was queued before the close (the replies that
                    // led to it: `rate_limited` errors) goes first. Left
                    // to the next pass, the close frame could wait for a
                    // wake-up that never comes once that pass had frames
                    // to send. A stuck socket (bytes still unsent) gets
                    // the close at once.
                    drain_encoded(
                        &self.outbox,
                        Instant::now(),
                        &mut self.out,
                        self.opts,
                        self.ctx.config.max_batch_bytes,
                    );
                }
                self.begin_close(reason);
            }
        }
        if let Some(request) = self.request.as_mut() {
            if let Poll::Ready(session) = request.as_mut().poll(cx) {
                self.session = Some(session);
                self.request = None;
                progress = true;
            }
        }
        match self.flush(cx) {
            Ok(moved) => progress |= moved,
            Err(()) => return Round::Done,
        }
        if self.out.is_empty() && !self.io.wants_write() {
            match self.phase {
                Phase::Open => match self.pass(cx) {
                    Ok(moved) => progress |= moved,
                    Err(()) => return Round::Done,
                },
                Phase::Closing { linger: false } => return Round::Done,
                Phase::Closing { linger: true } => {}
            }
        }
        match self.read(cx) {
            Ok(moved) => progress |= moved,
            Err(()) => return Round::Done,
        }
        if self.poll_timer(cx) {
            progress = true;
        }
        if progress {
            Round::Progress
        } else {
            Round::Idle
        }
    }

    /// Writes pending bytes; `Err` when the socket failed.
    fn flush(&mut self, cx: &mut Context<'_>) -> Result<bool, ()> {
        let mut moved = false;
        while !self.out.is_empty() {
            match self.io.poll_write(cx, &self.out) {
                Poll::Pending => break,
                Poll::Ready(Ok(0) | Err(_)) => return Err(()),
                Poll::Ready(Ok(n)) => {
                    self.out.drain(..n);
                    moved = true;
                }
            }
        }
        if let Poll::Ready(Err(_)) = self.io.poll_flush(cx) {
            return Err(());
        }
        if moved {
            let now_ms = self.ctx.now_ms();
            let pulse = &self.outbox.pulse;
            pulse.written_ms.store(now_ms, Ordering::Relaxed);
            if self.out.is_empty() {
                pulse.stalled_ms.store(0, Ordering::Relaxed);
                // Idle connections hold no buffer.
                self.out = Vec::new();
                self.pass_written();
            } else {
                pulse.stalled_ms.store(now_ms, Ordering::Relaxed);
            }
        }
        Ok(moved)
    }

    /// A pass has gone out whole: the socket-write stage ends here.
    fn pass_written(&mut self) {
        let now = Instant::now();
        if let Some(woke) = self.woke.take() {
            self.ctx
                .writer_metrics
                .write_latency
                .record(now.saturating_duration_since(woke).as_secs_f64());
        }
        self.last_write = now;
    }

    /// Drains the outbox and writes the frames, straight from scratch
    /// space when the socket takes them all.
    fn pass(&mut self, cx: &mut Context<'_>) -> Result<bool, ()> {
        let fired = std::mem::take(&mut self.fired);
        if !self.outbox.signalled() && !self.more && !fired {
            return Ok(false);
        }
        let now = Instant::now();
        self.woke.get_or_insert(now);
        // A client written to less than `coalesce` ago is busy: its next
        // pass waits out the rest of that interval, so several updates
        // share one syscall. A quiet client's update leaves at once.
        let coalesce = Duration::from_micros(self.ctx.config.coalesce_us);
        let due = self.last_write + coalesce;
        if !coalesce.is_zero() && now < due {
            self.arm(due);
            return Ok(false);
        }
        // Taken out of its cell for the pass (and put back after), so the
        // pass may use `self` freely.
        let mut bytes = BYTES.with(|b| std::mem::take(&mut *b.borrow_mut()));
        bytes.clear();
        let result = self.write_pass(now, &mut bytes, cx);
        if bytes.capacity() <= SCRATCH_KEEP {
            BYTES.with(|b| *b.borrow_mut() = bytes);
        }
        if !result? {
            return Ok(false);
        }
        // Register for write readiness if bytes are left.
        self.flush(cx).map(|_| true)
    }

    /// Drains and encodes into `bytes` and writes them; `Ok(false)` when
    /// there was nothing to send.
    fn write_pass(
        &mut self,
        now: Instant,
        bytes: &mut Vec<u8>,
        cx: &mut Context<'_>,
    ) -> Result<bool, ()> {
        let (drained, frames) = drain_encoded(
            &self.outbox,
            now,
            bytes,
            self.opts,
            self.ctx.config.max_batch_bytes,
        );
        self.more = drained.pending;
        if let Some(at) = drained.next_timer {
            self.arm(at);
        }
        if frames == 0 {
            self.woke = None;
            if let Some(reason) = self.outbox.closed() {
                self.begin_close(reason);
                return Ok(true);
            }
            return Ok(false);
        }
        let metrics = &self.ctx.writer_metrics;
        if drained.tally_pending {
            let tally = self.outbox.take_tally();
            metrics.conflated.increment(tally.conflated);
            metrics.gaps.increment(tally.gaps);
            metrics.trades_dropped.increment(tally.trades_dropped);
        }
        metrics.frames.increment(frames as u64);
        if drained.depth > 0 {
            metrics.depth.record(drained.depth as f64);
        }
        self.write_direct(bytes, cx)?;
        Ok(true)
    }

    /// Writes `bytes` as far as the socket takes them without waiting;
    /// the rest is kept for [`flush`](Self::flush).
    fn write_direct(&mut self, bytes: &[u8], cx: &mut Context<'_>) -> Result<(), ()> {
        let mut sent = 0;
        while sent < bytes.len() {
            match self.io.try_write(cx, &bytes[sent..]) {
                Ok(0) => return Err(()),
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return Err(()),
            }
        }
        let now_ms = self.ctx.now_ms();
        let pulse = &self.outbox.pulse;
        if sent > 0 {
            pulse.written_ms.store(now_ms, Ordering::Relaxed);
        }
        if sent == bytes.len() {
            self.pass_written();
        } else {
            self.out.extend_from_slice(&bytes[sent..]);
            pulse.stalled_ms.store(now_ms, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Queues the close frame `reason` calls for and stops taking requests.
    fn begin_close(&mut self, reason: CloseReason) {
        self.outbox.close(reason);
        self.request = None;
        if let Some(frame) = reason.close_frame() {
            ws::close(&mut self.out, Some(frame));
        }
        self.phase = Phase::Closing { linger: false };
        self.outbox
            .pulse
            .closing_ms
            .store(self.ctx.now_ms(), Ordering::Relaxed);
    }

    /// Decodes what was received and reads more; `Err` at end of stream.
    fn read(&mut self, cx: &mut Context<'_>) -> Result<bool, ()> {
        let mut moved = false;
        loop {
            if self.out.len() > READ_PAUSE_BYTES {
                return Ok(moved);
            }
            match self.phase {
                Phase::Open if self.request.is_some() => return Ok(moved),
                Phase::Closing { linger: true } => {}
                _ => match self.next_event() {
                    Ok(Some(event)) => {
                        moved = true;
                        if self.on_event(event, cx) {
                            return Err(());
                        }
                        continue;
                    }
                    Ok(None) => {}
                    Err(violation) => {
                        self.on_violation(violation);
                        return Ok(true);
                    }
                },
            }
            let read = READ.with(|buf| {
                let buf = &mut *buf.borrow_mut();
                match self.io.poll_read(cx, buf) {
                    Poll::Pending => Ok(None),
                    Poll::Ready(Ok(0) | Err(_)) => Err(()),
                    Poll::Ready(Ok(n)) => {
                        let pulse = &self.outbox.pulse;
                        pulse.heard_ms.store(self.ctx.now_ms(), Ordering::Relaxed);
                        pulse.pinged_ms.store(0, Ordering::Relaxed);
                        if self.phase == Phase::Open {
                            self.decoder
                                .get_or_insert_with(Box::default)
                                .extend(&buf[..n]);
                        }
                        Ok(Some(()))
                    }
                }
            });
            match read {
                Ok(None) => return Ok(moved),
                // End of stream or a failed socket: the client has gone.
                Err(()) => {
                    self.outbox.close(CloseReason::Ended);
                    return Err(());
                }
                Ok(Some(())) => moved = true,
            }
        }
    }

    /// Acts on one client event; `true` when the connection is over.
    fn on_event(&mut self, event: Event, cx: &mut Context<'_>) -> bool {
        if self.phase != Phase::Open {
            return false;
        }
        match event {
            // The echo route: the decoder has applied the frame, size and
            // UTF-8 rules already, and `READ_PAUSE_BYTES` bounds what a
            // client that does not read can queue.
            Event::Text(text) if self.opts.echo => {
                // The decoder checked it is UTF-8.
                if let Ok(text) = std::str::from_utf8(&text) {
                    ws::text(&mut self.out, text);
                }
            }
            Event::Binary(data) if self.opts.echo => ws::binary(&mut self.out, &data),
            Event::Text(text) => {
                let Some(mut session) = self.session.take() else {
                    return false;
                };
                let mut request: Pin<Box<dyn Future<Output = Session> + Send>> =
                    Box::pin(async move {
                        session.on_request(&text).await;
                        session
                    });
                match request.as_mut().poll(cx) {
                    Poll::Ready(session) => self.session = Some(session),
                    Poll::Pending => self.request = Some(request),
                }
            }
            Event::Binary(_) => {
                if let Some(session) = self.session.as_mut() {
                    session.on_binary();
                }
            }
            Event::Ping(payload) => ws::pong(&mut self.out, &payload),
            Event::Pong => {}
            Event::Close(code) => {
                // What was queued before the close (replies to the
                // client's last requests) goes first; then the client's
                // code is echoed, and the connection ends once written.
                self.request = None;
                self.outbox.close(CloseReason::Ended);
                drain_encoded(
                    &self.outbox,
                    Instant::now(),
                    &mut self.out,
                    self.opts,
                    self.ctx.config.max_batch_bytes,
                );
                ws::close(&mut self.out, code.map(|c| (c, "")));
                self.phase = Phase::Closing { linger: false };
            }
        }
        false
    }

    fn on_violation(&mut self, violation: Violation) {
        let reason = match violation {
            Violation::Protocol(what) => {
                debug!(conn = self.id, what, "client broke the WebSocket protocol");
                CloseReason::ProtocolError
            }
            Violation::InvalidUtf8 => CloseReason::InvalidPayload,
            Violation::TooBig => {
                debug!(conn = self.id, "client message too big");
                CloseReason::MessageTooBig
            }
        };
        self.begin_close(reason);
        self.decoder = None;
        self.phase = Phase::Closing { linger: true };
    }

    /// The next decoded client event; the decoder is dropped once it
    /// holds nothing.
    fn next_event(&mut self) -> Result<Option<Event>, Violation> {
        let Some(decoder) = self.decoder.as_mut() else {
            return Ok(None);
        };
        let event = decoder.next(self.ctx.config.max_message_bytes);
        if matches!(event, Ok(None)) && decoder.is_empty() {
            self.decoder = None;
        }
        event
    }

    /// Sets the timer to fire at `at`, unless it already fires sooner.
    fn arm(&mut self, at: Instant) {
        let at = tokio::time::Instant::from_std(at);
        match self.timer.as_mut() {
            Some(timer) if self.armed && timer.deadline() <= at => {}
            Some(timer) => timer.as_mut().reset(at),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(at))),
        }
        self.armed = true;
    }

    /// Polls the timer if armed; `true` when it has fired.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.armed {
            return false;
        }
        let Some(timer) = self.timer.as_mut() else {
            return false;
        };
        if timer.as_mut().poll(cx).is_ready() {
            self.armed = false;
            self.fired = true;
            return true;
        }
        false
    }
}

impl Future for Conn {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        for _ in 0..ROUNDS_PER_POLL {
            match this.round(cx) {
                Round::Progress => {}
                Round::Idle => return Poll::Pending,
                Round::Done => return Poll::Ready(()),
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Whatever the request was doing is undone by the session's drop.
        self.request = None;
        self.session = None;
        self.outbox.close(CloseReason::Ended);
        self.ctx.hub.deregister(self.id);
        metrics::gauge!(m::CONNECTIONS).decrement(1.0);
        let reason = self.outbox.closed().unwrap_or(CloseReason::Ended);
        metrics::counter!(m::CONNECTIONS_CLOSED, "reason" => reason.as_str()).increment(1);
        debug!(conn = self.id, reason = reason.as_str(), "session closed");
        if reason == CloseReason::SlowConsumer {
            metrics::counter!(m::SLOW_CONSUMER_CLOSES).increment(1);
            info!(conn = self.id, "closed slow consumer");
        }
    }
}

/// The connection's authentication from its upgrade: granted (counted
/// against the key's connections), refused (closed with 4001 after the
/// hello), or pending `op:auth`, with a task that closes it with 4001 if
/// none succeeds within the deadline.
fn admit(ctx: &SessionContext, outbox: &Arc<Outbox>, admission: Admission) -> Arc<AuthState> {
    // One shared state for every connection of a gateway without auth, so
    // an idle connection costs no extra allocation.
    static OPEN: std::sync::LazyLock<Arc<AuthState>> =
        std::sync::LazyLock::new(|| Arc::new(AuthState::granted(Granted::anonymous())));
    let Some(auth) = ctx.config.auth.as_ref() else {
        return OPEN.clone();
    };
    match admission {
        Admission::Granted(principal) => match auth.acquire(principal) {
            Some(granted) => Arc::new(AuthState::granted(granted)),
            None => {
                outbox.close(CloseReason::TooManyConnections);
                Arc::new(AuthState::default())
            }
        },
        Admission::Denied => {
            outbox.close(CloseReason::Unauthorized);
            Arc::new(AuthState::default())
        }
        Admission::Pending => {
            let state = Arc::new(AuthState::default());
            let (waiting, outbox, stop) = (state.clone(), outbox.clone(), ctx.stop.clone());
            let deadline = Duration::from_millis(auth.deadline_ms());
            tokio::spawn(async move {
                tokio::select! {
                    () = tokio::time::sleep(deadline) => {
                        if waiting.get().is_none() {
                            outbox.close(CloseReason::Unauthorized);
                        }
                    }
                    () = stop.cancelled() => {}
                }
            });
            state
        }
    }
}

/// Queues one of our own encoded messages as a control frame.
pub(crate) fn push(outbox: &Outbox, bytes: Bytes) {
    // Our encoder only writes UTF-8.
    if let Ok(frame) = Frame::try_from(bytes) {
        outbox.push_control(frame);
    }
}

/// Drains the outbox and appends the frames' encoding to `out`; returns
/// the drain's report and how many frames went in.
fn drain_encoded(
    outbox: &Outbox,
    now: Instant,
    out: &mut Vec<u8>,
    opts: ConnOptions,
    max_batch: usize,
) -> (Drained, usize) {
    FRAMES.with(|frames| {
        let frames = &mut *frames.borrow_mut();
        let drained = outbox.drain(now, frames);
        let count = frames.len();
        encode(out, frames, opts.batch, max_batch);
        frames.clear();
        (drained, count)
    })
}

/// Encodes a pass's frames: one text frame each, or with `batch` joined
/// by newlines into frames of at most `max_batch` bytes.
fn encode(out: &mut Vec<u8>, frames: &[Frame], batch: bool, max_batch: usize) {
    if !batch {
        for frame in frames {
            ws::text(out, frame.as_str());
        }
        return;
    }
    let mut start = 0;
    while start < frames.len() {
        let mut len = frames[start].len();
        let mut end = start + 1;
        while end < frames.len() && len + 1 + frames[end].len() <= max_batch {
            len += 1 + frames[end].len();
            end += 1;
        }
        ws::text_joined(out, frames[start..end].iter().map(|f| f.as_str()));
        start = end;
    }
}

/// The shard's periodic check of its connections: heartbeat pings for the
/// quiet ones, closes for the ones that answer no ping, slow-consumer closes for sockets that took nothing for the
/// timeout, and an end to closes past the close grace. Runs as long as
/// the shard (closes during shutdown need it too); one pass costs a few
/// atomic loads per connection.
pub(crate) async fn sweep(ctx: Arc<SessionContext>) {
    let config = &ctx.config;
    let heartbeat = config.heartbeat_ms;
    let slow = config.slow_consumer_timeout_ms;
    let grace = config.close_grace_ms;
    // 0 = never: past any deadline a shard's clock reaches.
    let pong = match config.pong_timeout_ms {
        0 => u64::MAX,
        ms => ms,
    };
    let tick = heartbeat
        .min(slow)
        .min(grace.max(100))
        .min(config.pong_timeout_ms.max(100))
        / 4;
    let mut interval = tokio::time::interval(Duration::from_millis(tick.clamp(5, 1000)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let now = ctx.now_ms();
        ctx.hub.each_connection(|outbox| {
            let pulse = &outbox.pulse;
            let closing = pulse.closing_ms.load(Ordering::Relaxed);
            if closing != 0 {
                if now.saturating_sub(closing) >= grace {
                    outbox.poke(Pulse::ABORT);
                }
                return;
            }
            let stalled = pulse.stalled_ms.load(Ordering::Relaxed);
            if stalled != 0 {
                if now.saturating_sub(stalled) >= slow {
                    outbox.close(CloseReason::SlowConsumer);
                }
                return;
            }
            let pinged = pulse.pinged_ms.load(Ordering::Relaxed);
            if pinged != 0 && now.saturating_sub(pinged) >= pong {
                outbox.close(CloseReason::PongTimeout);
                return;
            }
            let heard = now.saturating_sub(pulse.heard_ms.load(Ordering::Relaxed));
            // A client that only receives is pinged too, so that a dead
            // one is found; until it answers, every pass pings again
            // (a ping skipped behind unsent bytes is not lost).
            let written = pulse.written_ms.load(Ordering::Relaxed);
            if now.saturating_sub(written) >= heartbeat || heard >= heartbeat {
                outbox.poke(Pulse::PING);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tokio puts a task in a cell aligned to 128 bytes, with about 112
    /// bytes of its own (header, scheduler, trailer, tracker token): a
    /// connection of at most 272 bytes costs a 384-byte cell, one more
    /// byte a 512-byte one, for every idle client (S3 in BENCHMARKS.md).
    #[test]
    fn connection_state_fits_the_384_byte_task_cell() {
        let size = std::mem::size_of::<Conn>();
        assert!(size <= 272, "Conn is {size} bytes");
    }

    #[test]
    fn batches_join_frames_up_to_the_limit_and_never_split_one() {
        let frames: Vec<Frame> = ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"]
            .into_iter()
            .map(Frame::from)
            .collect();
        let mut plain = Vec::new();
        encode(&mut plain, &frames, false, 1024);
        assert_eq!(
            plain,
            b"\x81\x07{\"a\":1}\x81\x07{\"b\":2}\x81\x07{\"c\":3}"
        );
        let mut batched = Vec::new();
        encode(&mut batched, &frames, true, 1024);
        assert_eq!(batched, b"\x81\x17{\"a\":1}\n{\"b\":2}\n{\"c\":3}");
        // Room for two per frame; a frame over the limit goes alone.
        let mut two = Vec::new();
        encode(&mut two, &frames, true, 15);
        assert_eq!(two, b"\x81\x0f{\"a\":1}\n{\"b\":2}\x81\x07{\"c\":3}");
        let mut alone = Vec::new();
        encode(&mut alone, &frames, true, 3);
        assert_eq!(alone, plain);
    }
}
