//! One client's session: the reader loop that turns requests into hub
//! calls and replies, and the writer task that drains the outbox into the
//! socket (many frames, one flush) and notices a client that stops reading.
//!
//! Generic over the socket (`Sink` + `Stream` of messages), so a session
//! can run over channels in unit tests as well as over a real WebSocket.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tickwire_model::protocol::{
    self, ErrorCode, Limits, Request, Subscribe, SymbolSelector, Unsubscribe,
};
use tickwire_model::{Channel, Instrument, Topic};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::config::GatewayConfig;
use crate::hub::{Hub, Start, Subscriber, now_us, push_status};
use crate::metrics::{self as m, WriterMetrics};
use crate::outbox::{CloseReason, Frame, Outbox, SlotId};

/// What a session needs from its server.
pub(crate) struct SessionContext {
    pub(crate) hub: Arc<Hub>,
    pub(crate) config: GatewayConfig,
    pub(crate) shutdown: CancellationToken,
    /// Metric handles every writer of this shard records to (shared: a
    /// copy per connection would cost ~100 bytes of each idle one).
    pub(crate) writer_metrics: WriterMetrics,
}

/// Per-connection options from the upgrade request.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct ConnOptions {
    /// `?batch=1`: several objects per frame, newline-separated.
    pub(crate) batch: bool,
}

/// A token bucket in integer micro-tokens: `rate` per second, burst `rate`.
struct TokenBucket {
    rate: u64,
    tokens: u64,
    at: Instant,
}

impl TokenBucket {
    const SCALE: u64 = 1_000_000;

    fn new(rate: u32, now: Instant) -> Self {
        let rate = u64::from(rate.max(1));
        Self {
            rate,
            tokens: rate * Self::SCALE,
            at: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_micros() as u64;
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate * Self::SCALE);
        if self.tokens >= Self::SCALE {
            self.tokens -= Self::SCALE;
            true
        } else {
            false
        }
    }
}

struct Session {
    id: u64,
    ctx: Arc<SessionContext>,
    outbox: Arc<Outbox>,
    subs: HashMap<Topic, SlotId>,
    bucket: TokenBucket,
    /// Requests refused in a row; sustained abuse closes with 4029.
    refused: u32,
}

/// Runs one client connection to its end.
pub(crate) async fn run<S>(
    socket: S,
    ctx: Arc<SessionContext>,
    id: u64,
    opts: ConnOptions,
    progress: Arc<AtomicU64>,
) where
    S: Sink<Message, Error = WsError>
        + Stream<Item = Result<Message, WsError>>
        + Send
        + Unpin
        + 'static,
{
    let (sink, mut stream) = socket.split();
    let outbox = Arc::new(Outbox::new(ctx.config.outbox()));
    ctx.hub.register(id, outbox.clone());
    metrics::gauge!(m::CONNECTIONS).increment(1.0);
    let writer_done = CancellationToken::new();
    let writer = {
        let (outbox, ctx, done) = (outbox.clone(), ctx.clone(), writer_done.clone());
        tokio::spawn(async move {
            write_loop(sink, outbox, ctx, opts, progress).await;
            done.cancel();
        })
    };
    let limits = Limits {
        max_subscriptions: ctx.config.max_subscriptions,
        max_requests_per_sec: ctx.config.max_requests_per_sec,
        max_message_bytes: ctx.config.max_message_bytes,
    };
    let server = concat!("tickwire/", env!("CARGO_PKG_VERSION"));
    push(
        &outbox,
        protocol::hello(server, ctx.config.heartbeat_ms, &limits),
    );
    let mut session = Session {
        id,
        bucket: TokenBucket::new(ctx.config.max_requests_per_sec, Instant::now()),
        ctx: ctx.clone(),
        outbox: outbox.clone(),
        subs: HashMap::new(),
        refused: 0,
    };
    let reason = loop {
        let msg = tokio::select! {
            biased;
            _ = ctx.shutdown.cancelled() => break CloseReason::GoingAway,
            _ = writer_done.cancelled() => break outbox.closed().unwrap_or(CloseReason::Ended),
            msg = stream.next() => msg,
        };
        match msg {
            Some(Ok(Message::Text(text))) => {
                // A request waiting on a hung bus must not hold up shutdown;
                // whatever it registered is undone by `close_all` below.
                // Boxed: requests are rare, and inlined their state would
                // make every idle connection's task about 1 KiB larger.
                tokio::select! {
                    () = Box::pin(session.on_request(text.as_bytes())) => {}
                    () = ctx.shutdown.cancelled() => break CloseReason::GoingAway,
                }
            }
            Some(Ok(Message::Binary(_))) => {
                if session.admit() {
                    session.reply_error(
                        None,
                        ErrorCode::BadRequest,
                        "binary frames are not accepted; send JSON text",
                    );
                }
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Ok(Message::Close(_))) | None => break CloseReason::Ended,
            Some(Err(WsError::Capacity(e))) => {
                debug!(conn = id, error = %e, "client message too big");
                break CloseReason::MessageTooBig;
            }
            Some(Err(e)) => {
                debug!(conn = id, error = %e, "client socket error");
                break CloseReason::Ended;
            }
        }
        if session.outbox.closed().is_some() {
            break session.outbox.closed().unwrap_or(CloseReason::Ended);
        }
    };
    session.close_all();
    outbox.close(reason);
    let grace = ctx.config.slow_consumer_timeout() + ctx.config.close_grace();
    if tokio::time::timeout(grace, writer).await.is_err() {
        debug!(conn = id, "writer did not finish in time");
    }
    ctx.hub.deregister(id);
    metrics::gauge!(m::CONNECTIONS).decrement(1.0);
    let final_reason = outbox.closed().unwrap_or(reason);
    metrics::counter!(m::CONNECTIONS_CLOSED, "reason" => final_reason.as_str()).increment(1);
    if final_reason == CloseReason::SlowConsumer {
        metrics::counter!(m::SLOW_CONSUMER_CLOSES).increment(1);
        info!(conn = id, "closed slow consumer");
    }
}

fn push(outbox: &Outbox, bytes: bytes::Bytes) {
    // Our encoder only writes UTF-8.
    if let Ok(frame) = Frame::try_from(bytes) {
        outbox.push_control(frame);
    }
}

impl Session {
    /// Takes a token for one client message; a refused one gets
    /// `rate_limited`, and sustained abuse closes the connection with 4029.
    fn admit(&mut self) -> bool {
        if self.bucket.take(Instant::now()) {
            self.refused = 0;
            return true;
        }
        self.refused += 1;
        if self.refused > 2 * self.ctx.config.max_requests_per_sec.max(1) {
            self.outbox.close(CloseReason::RateLimited);
        } else {
            self.reply_error(None, ErrorCode::RateLimited, "too many requests; slow down");
        }
        false
    }

    async fn on_request(&mut self, text: &[u8]) {
        if !self.admit() {
            return;
        }
        let request = match protocol::parse_request(text) {
            Ok(r) => r,
            Err(e) => {
                metrics::counter!(m::ERRORS, "code" => e.code.as_str()).increment(1);
                push(&self.outbox, e.encode());
                return;
            }
        };
        match request {
            Request::Subscribe(s) => {
                metrics::counter!(m::REQUESTS, "op" => "subscribe").increment(1);
                self.subscribe(s).await;
            }
            Request::Unsubscribe(u) => {
                metrics::counter!(m::REQUESTS, "op" => "unsubscribe").increment(1);
                self.unsubscribe(u);
            }
            Request::List { id } => {
                metrics::counter!(m::REQUESTS, "op" => "list").increment(1);
                let catalogue = self.ctx.hub.catalogue().await;
                push(
                    &self.outbox,
                    protocol::symbols(
                        id.as_ref(),
                        catalogue.iter().map(|(i, c)| (i, c.as_slice())),
                    ),
                );
            }
            Request::Ping { id } => {
                metrics::counter!(m::REQUESTS, "op" => "ping").increment(1);
                push(&self.outbox, protocol::pong(id.as_ref(), now_us()));
            }
        }
    }

    fn reply_error(&self, id: Option<&protocol::RequestId>, code: ErrorCode, message: &str) {
        metrics::counter!(m::ERRORS, "code" => code.as_str()).increment(1);
        push(&self.outbox, protocol::error(id, code, message, &[]));
    }

    async fn subscribe(&mut self, req: Subscribe) {
        let (found, mut unknown) = self.ctx.hub.resolve(req.channel, &req.symbols).await;
        unknown.splice(0..0, req.invalid.iter().cloned());
        if found.is_empty() {
            self.unknown_symbols(req.id.as_ref(), req.channel, unknown);
            return;
        }
        let throttle = Duration::from_millis(u64::from(req.throttle_ms));
        let new: Vec<&Instrument> = found
            .iter()
            .filter(|i| {
                !self
                    .subs
                    .contains_key(&Topic::new((*i).clone(), req.channel))
            })
            .collect();
        if self.subs.len() + new.len() > self.ctx.config.max_subscriptions {
            let message = format!(
                "this would make {} subscriptions; the limit is {}",
                self.subs.len() + new.len(),
                self.ctx.config.max_subscriptions
            );
            self.reply_error(req.id.as_ref(), ErrorCode::TooManySubscriptions, &message);
            return;
        }
        let mut opened = Vec::new();
        for instrument in &found {
            let topic = Topic::new(instrument.clone(), req.channel);
            if let Some(slot) = self.subs.get(&topic) {
                self.outbox.set_throttle(*slot, throttle);
                continue;
            }
            let from_seq = req
                .from_seq
                .iter()
                .find(|(i, _)| i == instrument)
                .map(|(_, s)| *s);
            let start = match from_seq {
                Some(seq) => Start::FromSeq(seq),
                None if req.snapshot => Start::Snapshot,
                None => Start::Live,
            };
            let slot = self.outbox.open(topic.clone(), throttle, from_seq);
            self.subs.insert(topic.clone(), slot);
            let sub = Subscriber {
                conn: self.id,
                outbox: self.outbox.clone(),
                slot,
            };
            self.ctx.hub.subscribe(&topic, sub, start).await;
            opened.push((topic, slot, from_seq));
        }
        // The ack goes out once every topic is registered, and before any
        // of their data: the slots were held until now.
        push(
            &self.outbox,
            protocol::subscribed(req.id.as_ref(), req.channel, &found),
        );
        if !unknown.is_empty() {
            self.unknown_symbols(req.id.as_ref(), req.channel, unknown);
        }
        for (topic, slot, from_seq) in opened {
            if let Some(status) = self.ctx.hub.stale_notice(&topic.instrument) {
                push_status(&self.outbox, &status);
            }
            match from_seq {
                Some(from) => self.ctx.hub.replay(&topic, &self.outbox, slot, from).await,
                None => self.outbox.release(slot),
            }
        }
    }

    fn unknown_symbols(
        &self,
        id: Option<&protocol::RequestId>,
        channel: Channel,
        unknown: Vec<String>,
    ) {
        metrics::counter!(m::ERRORS, "code" => ErrorCode::UnknownSymbol.as_str()).increment(1);
        let message = format!("not served on the {channel} channel");
        push(
            &self.outbox,
            protocol::error(id, ErrorCode::UnknownSymbol, &message, &unknown),
        );
    }

    fn unsubscribe(&mut self, req: Unsubscribe) {
        let mut removed: Vec<Instrument> = Vec::new();
        for sel in &req.symbols {
            let matching: Vec<Topic> = self
                .subs
                .keys()
                .filter(|t| {
                    t.channel == req.channel
                        && match sel {
                            SymbolSelector::Instrument(i) => &t.instrument == i,
                            SymbolSelector::Venue(v) => t.instrument.venue() == v,
                        }
                })
                .cloned()
                .collect();
            for topic in matching {
                if let Some(slot) = self.subs.remove(&topic) {
                    // Hub first: once it returns, nothing more is offered
                    // to the slot; then the slot's unsent values go.
                    self.ctx.hub.unsubscribe(&topic, self.id, slot);
                    self.outbox.remove(slot);
                    removed.push(topic.instrument);
                }
            }
        }
        push(
            &self.outbox,
            protocol::unsubscribed(req.id.as_ref(), req.channel, &removed),
        );
    }

    fn close_all(&mut self) {
        for (topic, slot) in self.subs.drain() {
            self.ctx.hub.unsubscribe(&topic, self.id, slot);
        }
    }
}

/// Drains the outbox into the socket until the session closes.
async fn write_loop<W>(
    mut sink: W,
    outbox: Arc<Outbox>,
    ctx: Arc<SessionContext>,
    opts: ConnOptions,
    progress: Arc<AtomicU64>,
) where
    W: Sink<Message, Error = WsError> + Send + Unpin,
{
    // Borrowed from the shared context: owned copies would sit in every
    // idle connection's task (twice, as async-fn arguments and locals).
    let (config, metrics) = (&ctx.config, &ctx.writer_metrics);
    // Grows to the largest pass this connection needed; idle ones stay small.
    let mut frames: Vec<Frame> = Vec::new();
    let mut woke = Instant::now();
    let mut last_write = Instant::now();
    // One timer for the connection's life, re-armed only when it fires or
    // a throttle needs it sooner: re-registering it on every pass cost a
    // timer-wheel insert and removal per write.
    let mut armed = last_write + config.heartbeat();
    let coalesce = Duration::from_micros(config.coalesce_us);
    let timer = tokio::time::sleep_until(armed.into());
    tokio::pin!(timer);
    loop {
        let drained = outbox.drain(Instant::now(), &mut frames);
        if frames.is_empty() {
            if let Some(reason) = outbox.closed() {
                Box::pin(finish(&mut sink, reason, config)).await;
                return;
            }
            if let Some(t) = drained.next_timer.filter(|t| *t < armed) {
                armed = t;
                timer.as_mut().reset(armed.into());
            }
            tokio::select! {
                _ = outbox.ready() => {
                    // The stage's latency counts from here: a coalescing
                    // wait is part of what the update experiences.
                    woke = Instant::now();
                    // A client written to less than `coalesce` ago is busy:
                    // its next write waits out the rest of that interval, so
                    // several updates share one syscall. A quiet client's
                    // update leaves at once.
                    let due = last_write + coalesce;
                    if !coalesce.is_zero() && Instant::now() < due {
                        tokio::time::sleep_until(due.into()).await;
                    } else {
                        // Let the fan-out that woke us finish its round
                        // first: what other topics offer meanwhile leaves
                        // in the same write; when idle, this returns at once.
                        tokio::task::yield_now().await;
                    }
                }
                () = &mut timer => {
                    let now = Instant::now();
                    if now >= last_write + config.heartbeat() {
                        last_write = now;
                        let ping = sink.send(Message::Ping(Default::default()));
                        if Box::pin(tokio::time::timeout(config.slow_consumer_timeout(), ping)).await.is_err() {
                            outbox.close(CloseReason::SlowConsumer);
                        }
                    }
                    armed = last_write + config.heartbeat();
                    timer.as_mut().reset(armed.into());
                    woke = Instant::now();
                }
            }
            continue;
        }
        // One lock per pass (the drain) unless something was conflated or
        // dropped; depth is recorded only when a backlog remains (0 after
        // almost every pass of a client that keeps up).
        if drained.tally_pending {
            let tally = outbox.take_tally();
            metrics.conflated.increment(tally.conflated);
            metrics.gaps.increment(tally.gaps);
            metrics.trades_dropped.increment(tally.trades_dropped);
        }
        metrics.frames.increment(frames.len() as u64);
        if drained.depth > 0 {
            metrics.depth.record(drained.depth as f64);
        }
        match write_pass(&mut sink, &mut frames, opts, config, &progress).await {
            Ok(()) => {
                let now = Instant::now();
                metrics
                    .write_latency
                    .record(now.saturating_duration_since(woke).as_secs_f64());
                last_write = now;
                woke = now;
            }
            Err(PassError::Stalled) => {
                outbox.close(CloseReason::SlowConsumer);
                Box::pin(finish(&mut sink, CloseReason::SlowConsumer, config)).await;
                return;
            }
            Err(PassError::Socket) => {
                outbox.close(CloseReason::Ended);
                return;
            }
        }
    }
}

/// Feeds a pass's frames (joined into batch messages of at most
/// `max_batch_bytes` when the client asked for batches) without flushing.
async fn feed_frames<W>(
    sink: &mut W,
    frames: &mut Vec<Frame>,
    opts: ConnOptions,
    max_batch: usize,
) -> Result<(), WsError>
where
    W: Sink<Message, Error = WsError> + Unpin,
{
    if !opts.batch {
        for f in frames.drain(..) {
            sink.feed(Message::Text(f)).await?;
        }
        return Ok(());
    }
    let mut buf = String::new();
    for f in frames.drain(..) {
        if !buf.is_empty() && buf.len() + 1 + f.len() > max_batch {
            sink.feed(Message::Text(std::mem::take(&mut buf).into()))
                .await?;
        }
        if !buf.is_empty() {
            buf.push('\n');
        }
        buf.push_str(f.as_str());
    }
    if !buf.is_empty() {
        sink.feed(Message::Text(buf.into())).await?;
    }
    Ok(())
}

enum PassError {
    /// The socket took no bytes for the slow-consumer timeout.
    Stalled,
    /// The socket failed or closed.
    Socket,
}

/// Feeds a pass's frames and flushes once, giving up when the socket
/// makes no progress at all for the slow-consumer timeout.
async fn write_pass<W>(
    sink: &mut W,
    frames: &mut Vec<Frame>,
    opts: ConnOptions,
    config: &GatewayConfig,
    progress: &AtomicU64,
) -> Result<(), PassError>
where
    W: Sink<Message, Error = WsError> + Send + Unpin,
{
    let pass = async {
        feed_frames(sink, frames, opts, config.max_batch_bytes).await?;
        sink.flush().await
    };
    tokio::pin!(pass);
    let mut mark = progress.load(Ordering::Relaxed);
    loop {
        match tokio::time::timeout(config.slow_consumer_timeout(), &mut pass).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(_)) => return Err(PassError::Socket),
            Err(_) => {
                let now = progress.load(Ordering::Relaxed);
                if now == mark {
                    return Err(PassError::Stalled);
                }
                mark = now;
            }
        }
    }
}

/// Sends the close frame a reason calls for, within the close grace.
async fn finish<W>(sink: &mut W, reason: CloseReason, config: &GatewayConfig)
where
    W: Sink<Message, Error = WsError> + Send + Unpin,
{
    let close = async {
        if let Some((code, text)) = reason.close_frame() {
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: text.into(),
            };
            sink.send(Message::Close(Some(frame))).await?;
        }
        sink.close().await
    };
    let _ = tokio::time::timeout(config.close_grace(), close).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket_allows_burst_then_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(20, t0);
        assert_eq!((0..25).filter(|_| b.take(t0)).count(), 20, "burst of 20");
        assert!(!b.take(t0 + Duration::from_millis(10)));
        assert!(
            b.take(t0 + Duration::from_millis(60)),
            "one token per 50 ms"
        );
        assert!(!b.take(t0 + Duration::from_millis(61)));
        assert_eq!(
            (0..40)
                .filter(|_| b.take(t0 + Duration::from_secs(10)))
                .count(),
            20,
            "refill caps at the burst"
        );
    }
}
