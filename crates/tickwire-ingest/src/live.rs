//! Venue feeds in motion: a [`Lane`] publishes what its sources (venue
//! connections, or a capture being replayed) produce, decides each
//! instrument's live/stale status, reconnects with backoff, and rotates
//! connections make-before-break. Sources are tasks that run an adapter
//! over their frames and report to the lane through a bounded channel.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tickwire_bus::Bus;
use tickwire_model::protocol::FeedState;
use tickwire_model::{Channel, Event, Instrument, Payload};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::adapter::{Action, Note, Output};
use crate::backoff::Backoff;
use crate::capture::{CaptureFrame, Source};
use crate::feed::VenueFeed;
use crate::metrics::{FeedMetrics, VenueMetrics};
use crate::runner::{Publisher, announce, now_us, resume_sequences};
use crate::{rest, venue};

/// Longest a connect (TCP, TLS and WebSocket handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a rotation waits for the replacement's books before switching
/// anyway.
const SWITCH_DEADLINE: Duration = Duration::from_secs(30);
/// Trade ids remembered per instrument to drop duplicates (a rotation's
/// overlap, a venue's replay of recent trades after subscribe).
const DEDUP_IDS: usize = 4096;
/// How long a trade id is remembered: long enough for any overlap or
/// reconnect replay, short enough that a looping capture's ids pass again.
const DEDUP_WINDOW: Duration = Duration::from_secs(60);
/// How long a starting feed keeps quiet about instruments that are not live
/// yet: a feed that syncs within it shows clients only `live`, not a burst
/// of stale statuses first.
const START_GRACE: Duration = Duration::from_secs(2);
/// Frames queued from sources to their lane before sources wait.
const LANE_QUEUE: usize = 1024;

/// Status reasons, as clients see them in `status` messages.
pub(crate) mod reason {
    /// Not connected yet.
    pub(crate) const CONNECTING: &str = "feed_connecting";
    /// The venue connection was lost; reconnecting.
    pub(crate) const DISCONNECTED: &str = "feed_disconnected";
    /// Connected, waiting for the book's first snapshot.
    pub(crate) const AWAITING_SNAPSHOT: &str = "awaiting_snapshot";
    /// The venue refused the subscription.
    pub(crate) const REJECTED: &str = "subscription_rejected";
    /// The feed stopped (shutdown, or a capture that ended).
    pub(crate) const STOPPED: &str = "feed_stopped";
}

/// What a source reports to its lane.
#[derive(Debug)]
pub(crate) enum SourceEvent {
    /// Connected and subscribing. `fresh` starts a new session whose trade
    /// ids may repeat earlier ones (a replay's next loop).
    Up {
        /// Forget remembered trade ids.
        fresh: bool,
    },
    /// What the adapter produced from one frame (only non-empty outputs).
    Output(Output),
    /// The connection ended; the lane replaces it.
    Down {
        /// Metric label: `closed`, `error`, `silent`, `connect_failed`.
        reason: &'static str,
        /// For the log.
        detail: String,
    },
    /// The source has nothing more (a capture played once).
    Ended,
}

/// A source's report, tagged with the source's id.
#[derive(Debug)]
pub(crate) struct FromSource {
    /// Which source.
    pub(crate) id: u64,
    /// What happened.
    pub(crate) event: SourceEvent,
}

/// Starts a source with this id reporting to `tx`; it stops when the token
/// is cancelled.
pub(crate) type Connector =
    Box<dyn Fn(u64, mpsc::Sender<FromSource>, CancellationToken) + Send + Sync>;

/// One source as the lane sees it.
struct Conn {
    id: u64,
    stop: CancellationToken,
    up: bool,
    /// Market data arrived since `Up` (resets the backoff).
    data: bool,
    started: Instant,
    synced: HashSet<Instrument>,
    broken: HashMap<Instrument, &'static str>,
    rejected: HashSet<Instrument>,
}

impl Conn {
    fn new(id: u64, stop: CancellationToken) -> Self {
        Self {
            id,
            stop,
            up: false,
            data: false,
            started: Instant::now(),
            synced: HashSet::new(),
            broken: HashMap::new(),
            rejected: HashSet::new(),
        }
    }
}

/// Trade ids seen recently, per instrument.
#[derive(Default)]
struct Recent {
    ids: HashSet<Arc<str>>,
    order: VecDeque<(Instant, Arc<str>)>,
}

impl Recent {
    /// Whether `id` is new (and remembers it).
    fn first_time(&mut self, id: &str, now: Instant) -> bool {
        while let Some((at, old)) = self.order.front() {
            if self.order.len() < DEDUP_IDS && now.duration_since(*at) < DEDUP_WINDOW {
                break;
            }
            self.ids.remove(old);
            self.order.pop_front();
        }
        if self.ids.contains(id) {
            return false;
        }
        let id: Arc<str> = Arc::from(id);
        self.ids.insert(id.clone());
        self.order.push_back((now, id));
        true
    }
}

/// Publishes one venue feed's instruments from its sources.
pub(crate) struct Lane {
    instruments: Vec<Instrument>,
    wants_book: bool,
    rotate_after: Option<Duration>,
    publisher: Publisher,
    metrics: VenueMetrics,
    statuses: HashMap<Instrument, (FeedState, &'static str)>,
    recent: HashMap<Instrument, Recent>,
    connect: Connector,
    tx: mpsc::Sender<FromSource>,
    next_id: u64,
    primary: Option<Conn>,
    candidate: Option<Conn>,
    backoff: Backoff,
    reconnect_at: Option<Instant>,
    rotate_at: Option<Instant>,
    ended: bool,
    /// Whether a source has ever come up (a later outage is a
    /// disconnection, not a first connect).
    connected_once: bool,
    /// Until when not-yet-live instruments publish no stale status.
    quiet_until: Option<Instant>,
    logged_rejections: HashSet<Instrument>,
}

impl Lane {
    /// Runs a feed until `shutdown`: announces its instruments, continues
    /// their sequences from the bus, then keeps a source connected and
    /// publishes what it produces.
    pub(crate) async fn run(
        feed: &VenueFeed,
        bus: Arc<dyn Bus>,
        connect: Connector,
        shutdown: CancellationToken,
    ) -> crate::Result<()> {
        let instruments: Vec<Instrument> = feed
            .instruments
            .iter()
            .map(|i| i.instrument.clone())
            .collect();
        if !announce(&bus, &instruments, &feed.channels, &shutdown).await? {
            return Ok(());
        }
        let Some(sequencer) = resume_sequences(&instruments, &bus, &shutdown).await else {
            return Ok(());
        };
        let limits = venue::limits(feed.venue);
        let rotate_after = feed.rotate_after.or_else(|| {
            limits
                .max_lifetime
                .map(|l| l.saturating_sub((l / 20).min(Duration::from_secs(600))))
        });
        let (tx, mut rx) = mpsc::channel(LANE_QUEUE);
        let mut lane = Lane {
            wants_book: feed.wants(Channel::Book),
            rotate_after,
            publisher: Publisher {
                metrics: FeedMetrics::new(&instruments),
                bus,
                sequencer,
                logged: [false; 4],
            },
            metrics: VenueMetrics::new(feed.venue.name()),
            statuses: HashMap::new(),
            recent: HashMap::new(),
            instruments,
            connect,
            tx,
            next_id: 0,
            primary: None,
            candidate: None,
            backoff: Backoff::new(feed.backoff_min, feed.backoff_max),
            reconnect_at: None,
            rotate_at: None,
            ended: false,
            connected_once: false,
            quiet_until: Some(Instant::now() + START_GRACE),
            logged_rejections: HashSet::new(),
        };
        lane.refresh_all();
        lane.primary = Some(lane.start());
        tracing::info!(epoch = %lane.publisher.sequencer.epoch(), "venue feed starting");
        loop {
            let far = Instant::now() + Duration::from_secs(86_400);
            let switch_at = lane
                .candidate
                .as_ref()
                .filter(|c| c.up)
                .map(|c| c.started + SWITCH_DEADLINE);
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                msg = rx.recv() => match msg {
                    Some(msg) => lane.on_source(msg),
                    None => break,
                },
                () = tokio::time::sleep_until(lane.reconnect_at.unwrap_or(far)), if lane.reconnect_at.is_some() => {
                    lane.reconnect_at = None;
                    lane.primary = Some(lane.start());
                }
                () = tokio::time::sleep_until(lane.rotate_at.unwrap_or(far)), if lane.rotate_at.is_some() => {
                    lane.rotate_at = None;
                    lane.begin_rotation();
                }
                () = tokio::time::sleep_until(lane.quiet_until.unwrap_or(far)), if lane.quiet_until.is_some() => {
                    lane.quiet_until = None;
                    lane.refresh_all();
                }
                () = tokio::time::sleep_until(switch_at.unwrap_or(far)), if switch_at.is_some() => {
                    tracing::warn!("replacement connection's books not ready in time; switching anyway");
                    lane.switch();
                }
            }
        }
        for c in [lane.primary.take(), lane.candidate.take()]
            .into_iter()
            .flatten()
        {
            c.stop.cancel();
        }
        lane.set_all(FeedState::Stale, reason::STOPPED);
        tracing::info!("venue feed stopped");
        Ok(())
    }

    /// Starts a new source.
    fn start(&mut self) -> Conn {
        self.next_id += 1;
        let stop = CancellationToken::new();
        (self.connect)(self.next_id, self.tx.clone(), stop.clone());
        Conn::new(self.next_id, stop)
    }

    fn begin_rotation(&mut self) {
        if self.candidate.is_some() || self.ended {
            return;
        }
        if self.primary.as_ref().is_none_or(|p| !p.up) {
            return;
        }
        tracing::info!("rotating the venue connection: opening its replacement");
        self.candidate = Some(self.start());
    }

    fn on_source(&mut self, msg: FromSource) {
        let is_primary = self.primary.as_ref().is_some_and(|c| c.id == msg.id);
        let is_candidate = self.candidate.as_ref().is_some_and(|c| c.id == msg.id);
        if !is_primary && !is_candidate {
            return;
        }
        match msg.event {
            SourceEvent::Up { fresh } => {
                if fresh {
                    self.recent.clear();
                }
                self.connected_once = true;
                let conn = self.conn_mut(is_primary);
                conn.up = true;
                conn.started = Instant::now();
                if is_primary {
                    self.rotate_at = self.rotate_after.map(|d| Instant::now() + d);
                    self.refresh_all();
                }
            }
            SourceEvent::Output(out) => self.on_output(is_primary, out),
            SourceEvent::Down { reason, detail } => {
                self.metrics.reconnect(reason);
                if is_candidate {
                    tracing::warn!(reason, %detail, "replacement connection failed; retrying the rotation");
                    self.candidate = None;
                    self.rotate_at = Some(Instant::now() + self.backoff.next_delay());
                    return;
                }
                tracing::warn!(reason, %detail, "venue connection lost");
                if self.candidate.as_ref().is_some_and(|c| c.up) {
                    self.switch();
                    return;
                }
                self.primary = None;
                self.rotate_at = None;
                self.refresh_all();
                let delay = self.backoff.next_delay();
                tracing::info!(delay_ms = delay.as_millis() as u64, "reconnecting");
                self.reconnect_at = Some(Instant::now() + delay);
            }
            SourceEvent::Ended => {
                self.ended = true;
                self.primary = None;
                self.set_all(FeedState::Stale, reason::STOPPED);
            }
        }
    }

    fn conn_mut(&mut self, primary: bool) -> &mut Conn {
        let slot = if primary {
            &mut self.primary
        } else {
            &mut self.candidate
        };
        slot.as_mut().expect("the caller checked the id")
    }

    fn on_output(&mut self, is_primary: bool, mut out: Output) {
        let mut touched = Vec::new();
        {
            let conn = self.conn_mut(is_primary);
            for (instrument, broke) in out.books.drain(..) {
                match broke {
                    None => {
                        conn.synced.insert(instrument.clone());
                        conn.broken.remove(&instrument);
                    }
                    Some(r) => {
                        conn.synced.remove(&instrument);
                        conn.broken.insert(instrument.clone(), r);
                    }
                }
                touched.push((instrument, broke));
            }
            for note in &out.notes {
                if let Note::Rejected {
                    instrument: Some(i),
                    ..
                } = note
                {
                    conn.rejected.insert(i.clone());
                    touched.push((i.clone(), None));
                }
            }
            if !out.events.is_empty() {
                conn.data = true;
            }
        }
        for note in &out.notes {
            if let Note::Rejected { instrument, reason } = note {
                let first = instrument
                    .as_ref()
                    .is_none_or(|i| self.logged_rejections.insert(i.clone()));
                if first {
                    tracing::warn!(instrument = ?instrument.as_ref().map(|i| i.as_str()), reason = %reason, "the venue rejected a subscription; the other instruments go on");
                }
            }
        }
        if out.actions.contains(&Action::Rotate) && is_primary {
            tracing::info!("the venue announced a shutdown of this connection");
            self.begin_rotation();
        }
        if is_primary {
            for (instrument, broke) in &touched {
                if let Some(r) = broke {
                    self.metrics.resync(r);
                }
                self.refresh(instrument);
            }
            if !out.events.is_empty() {
                self.backoff.reset();
            }
            for event in &out.events {
                self.publish(event);
            }
        } else {
            // The replacement's trades go out now (deduplicated against the
            // old connection's), so the switch leaves no hole; its other
            // channels wait for the switch.
            for event in &out.events {
                if matches!(event.payload, Payload::Trade(_)) {
                    self.publish(event);
                }
            }
            if self.candidate_ready() {
                self.switch();
            }
        }
    }

    fn candidate_ready(&self) -> bool {
        let Some(c) = &self.candidate else {
            return false;
        };
        if !c.up || !c.data {
            return false;
        }
        !self.wants_book
            || self
                .instruments
                .iter()
                .all(|i| c.synced.contains(i) || c.rejected.contains(i))
    }

    /// Makes the replacement the primary and stops the old connection.
    fn switch(&mut self) {
        let Some(new) = self.candidate.take() else {
            return;
        };
        if let Some(old) = self.primary.replace(new) {
            old.stop.cancel();
        }
        self.metrics.rotations.increment(1);
        self.rotate_at = self.rotate_after.map(|d| Instant::now() + d);
        tracing::info!("switched to the replacement connection");
        self.refresh_all();
    }

    fn publish(&mut self, event: &Event) {
        if let Payload::Trade(t) = &event.payload {
            let recent = self.recent.entry(event.instrument.clone()).or_default();
            if !recent.first_time(&t.trade_id, Instant::now()) {
                self.metrics.duplicates.increment(1);
                return;
            }
        }
        self.publisher.publish(event);
    }

    /// What an instrument's status should be now.
    fn wanted(&self, instrument: &Instrument) -> (FeedState, &'static str) {
        let Some(p) = self.primary.as_ref().filter(|p| p.up) else {
            return if self.ended {
                (FeedState::Stale, reason::STOPPED)
            } else if !self.connected_once {
                (FeedState::Stale, reason::CONNECTING)
            } else {
                (FeedState::Stale, reason::DISCONNECTED)
            };
        };
        if p.rejected.contains(instrument) {
            return (FeedState::Stale, reason::REJECTED);
        }
        if self.wants_book && !p.synced.contains(instrument) {
            let why = p
                .broken
                .get(instrument)
                .copied()
                .unwrap_or(reason::AWAITING_SNAPSHOT);
            return (FeedState::Stale, why);
        }
        (FeedState::Live, "")
    }

    fn refresh(&mut self, instrument: &Instrument) {
        let wanted = self.wanted(instrument);
        if self.quiet_until.is_some()
            && wanted.0 == FeedState::Stale
            && !self.statuses.contains_key(instrument)
        {
            return;
        }
        if self.statuses.get(instrument) != Some(&wanted) {
            tracing::debug!(%instrument, state = ?wanted.0, reason = wanted.1, "status");
            self.statuses.insert(instrument.clone(), wanted);
            self.publisher
                .publish_status(instrument, wanted.0, wanted.1);
        }
    }

    fn refresh_all(&mut self) {
        let all = self.instruments.clone();
        for i in &all {
            self.refresh(i);
        }
    }

    fn set_all(&mut self, state: FeedState, why: &'static str) {
        let all = self.instruments.clone();
        for i in &all {
            if self.statuses.get(i) != Some(&(state, why)) {
                self.statuses.insert(i.clone(), (state, why));
                self.publisher.publish_status(i, state, why);
            }
        }
    }
}

/// Spawns a live venue feed: one lane per share of instruments that fits a
/// connection's stream limit; the handle ends when every lane has.
pub(crate) fn spawn_venue(
    feed: VenueFeed,
    bus: Arc<dyn Bus>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let limits = venue::limits(feed.venue);
    let per_connection = (limits.max_streams / limits.streams_per_instrument.max(1)).max(1);
    let mut lanes = Vec::new();
    for (n, share) in feed.instruments.chunks(per_connection).enumerate() {
        let lane_feed = feed.with_instruments(share.to_vec());
        let bus = bus.clone();
        let shutdown = shutdown.clone();
        let span = tracing::info_span!("feed", venue = %feed.venue, lane = n);
        lanes.push(tokio::spawn(
            async move {
                let metrics = VenueMetrics::new(lane_feed.venue.name());
                let connect = connector(lane_feed.clone(), metrics, None);
                if let Err(e) = Lane::run(&lane_feed, bus, connect, shutdown).await {
                    tracing::error!(error = %e, "venue feed ended");
                }
            }
            .instrument(span),
        ));
    }
    tokio::spawn(async move {
        for lane in lanes {
            if let Err(e) = lane.await {
                tracing::warn!(error = %e, "a venue lane ended abnormally");
            }
        }
    })
}

/// A connector that opens live venue connections for `feed`; with `tap`,
/// every raw frame received is also sent there (`tickwire record`).
pub(crate) fn connector(
    feed: VenueFeed,
    metrics: VenueMetrics,
    tap: Option<mpsc::Sender<CaptureFrame>>,
) -> Connector {
    Box::new(move |id, tx, stop| {
        let feed = feed.clone();
        let metrics = metrics.clone();
        let tap = tap.clone();
        tokio::spawn(
            async move {
                let report = Reporter { id, tx };
                let event = connection(&feed, &metrics, &report, &stop, tap.as_ref()).await;
                report.send(event).await;
            }
            .instrument(tracing::info_span!("connection", id)),
        );
    })
}

/// Runs one venue connection until it ends; returns why (sent to the lane
/// by the caller).
async fn connection(
    feed: &VenueFeed,
    metrics: &VenueMetrics,
    report: &Reporter,
    stop: &CancellationToken,
    tap: Option<&mpsc::Sender<CaptureFrame>>,
) -> SourceEvent {
    let connector = match rest::tls_config() {
        Ok(c) => Some(tokio_tungstenite::Connector::Rustls(c)),
        Err(e) => {
            return SourceEvent::Down {
                reason: "connect_failed",
                detail: e,
            };
        }
    };
    let connecting =
        tokio_tungstenite::connect_async_tls_with_config(feed.url.as_str(), None, true, connector);
    let ws = tokio::select! {
        () = stop.cancelled() => return SourceEvent::Down { reason: "closed", detail: "stopped".into() },
        r = tokio::time::timeout(CONNECT_TIMEOUT, connecting) => match r {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(e)) => return SourceEvent::Down { reason: "connect_failed", detail: e.to_string() },
            Err(_) => return SourceEvent::Down { reason: "connect_failed", detail: "connect timed out".into() },
        },
    };
    metrics.connections.increment(1.0);
    let event = session(ws, feed, metrics, report, stop, tap).await;
    metrics.connections.decrement(1.0);
    event
}

/// A source's way to report to its lane.
pub(crate) struct Reporter {
    id: u64,
    tx: mpsc::Sender<FromSource>,
}

impl Reporter {
    /// A reporter for source `id`.
    pub(crate) fn new(id: u64, tx: mpsc::Sender<FromSource>) -> Self {
        Self { id, tx }
    }

    /// Sends an event; false when the lane is gone.
    pub(crate) async fn send(&self, event: SourceEvent) -> bool {
        self.tx
            .send(FromSource { id: self.id, event })
            .await
            .is_ok()
    }
}

/// A client WebSocket to a venue.
type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn session(
    mut ws: Ws,
    feed: &VenueFeed,
    metrics: &VenueMetrics,
    report: &Reporter,
    stop: &CancellationToken,
    tap: Option<&mpsc::Sender<CaptureFrame>>,
) -> SourceEvent {
    let limits = venue::limits(feed.venue);
    let silence = feed.silence.unwrap_or(limits.silence);
    let pace = Duration::from_secs(1) / limits.messages_per_sec.max(1);
    let mut adapter = venue::adapter(feed);
    let mut outgoing: VecDeque<String> = adapter.subscribe().into();
    if !report.send(SourceEvent::Up { fresh: false }).await {
        return SourceEvent::Ended;
    }
    let mut last_rx = Instant::now();
    let mut last_tx = Instant::now();
    let mut next_send = Instant::now();
    let mut fetches: JoinSet<(Instrument, String, bytes::Bytes)> = JoinSet::new();
    let mut fetching: HashSet<Instrument> = HashSet::new();
    let mut logged: HashSet<&'static str> = HashSet::new();
    let mut out = Output::default();
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => {
                let _ = ws.close(None).await;
                return SourceEvent::Down { reason: "closed", detail: "stopped".into() };
            }
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Ping(_))) => {
                        last_rx = Instant::now();
                        // tungstenite queued the pong; send it now.
                        if let Err(e) = ws.flush().await {
                            return SourceEvent::Down { reason: "error", detail: e.to_string() };
                        }
                        continue;
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let detail = frame.map_or_else(|| "closed by the venue".to_owned(), |f| format!("closed by the venue: {} {}", f.code, f.reason));
                        return SourceEvent::Down { reason: "closed", detail };
                    }
                    Some(Ok(_)) => {
                        last_rx = Instant::now();
                        continue;
                    }
                    Some(Err(e)) => return SourceEvent::Down { reason: "error", detail: e.to_string() },
                    None => return SourceEvent::Down { reason: "closed", detail: "the venue ended the stream".into() },
                };
                last_rx = Instant::now();
                let rx = now_us();
                if let Some(tap) = tap {
                    let frame = CaptureFrame { rx, source: Source::Ws, text: text.as_str().to_owned() };
                    if tap.send(frame).await.is_err() {
                        return SourceEvent::Ended;
                    }
                }
                out.clear();
                if let Err(e) = adapter.on_text(text.as_str(), rx, &mut out) {
                    metrics.parse_error(e.kind());
                    if logged.insert(e.kind()) {
                        tracing::warn!(error = %e, "skipping a venue frame that does not parse; counting further ones of this kind without logging");
                    }
                }
                take_actions(&mut out, feed, &mut outgoing, &mut fetches, &mut fetching);
                if !forward(&mut out, metrics, report).await {
                    return SourceEvent::Ended;
                }
            }
            () = tokio::time::sleep_until(last_rx + silence) => {
                return SourceEvent::Down { reason: "silent", detail: format!("no frame for {} ms", silence.as_millis()) };
            }
            () = tokio::time::sleep_until(next_send.max(Instant::now())), if !outgoing.is_empty() => {
                if let Some(frame) = outgoing.pop_front() {
                    if let Err(e) = ws.send(Message::text(frame)).await {
                        return SourceEvent::Down { reason: "error", detail: e.to_string() };
                    }
                    last_tx = Instant::now();
                    next_send = last_tx + pace;
                }
            }
            () = tokio::time::sleep_until(last_tx + limits.keepalive) => {
                last_tx = Instant::now();
                if let Some(ping) = adapter.keepalive() {
                    outgoing.push_back(ping);
                }
            }
            Some(done) = fetches.join_next(), if !fetches.is_empty() => {
                let Ok((instrument, path, body)) = done else { continue };
                fetching.remove(&instrument);
                out.clear();
                let rx = now_us();
                let text = String::from_utf8_lossy(&body);
                if let Some(tap) = tap {
                    let frame = CaptureFrame { rx, source: Source::Rest(path.clone()), text: text.clone().into_owned() };
                    if tap.send(frame).await.is_err() {
                        return SourceEvent::Ended;
                    }
                }
                if let Err(e) = adapter.on_rest(&instrument, &text, rx, &mut out) {
                    metrics.parse_error(e.kind());
                    tracing::warn!(error = %e, %instrument, "REST snapshot unusable");
                }
                tracing::debug!(%instrument, books = ?out.books, actions = out.actions.len(), "REST snapshot applied");
                take_actions(&mut out, feed, &mut outgoing, &mut fetches, &mut fetching);
                if !forward(&mut out, metrics, report).await {
                    return SourceEvent::Ended;
                }
            }
        }
    }
}

/// Carries out the actions a connection can (sends, fetches), leaving
/// `Rotate` for the lane.
fn take_actions(
    out: &mut Output,
    feed: &VenueFeed,
    outgoing: &mut VecDeque<String>,
    fetches: &mut JoinSet<(Instrument, String, bytes::Bytes)>,
    fetching: &mut HashSet<Instrument>,
) {
    out.actions.retain(|a| match a {
        Action::Send(frame) => {
            outgoing.push_back(frame.clone());
            false
        }
        Action::Fetch { instrument, path } => {
            let Some(base) = feed.rest_url.clone() else {
                tracing::warn!(%instrument, "the adapter asked for a REST snapshot but the feed has no rest_url");
                return false;
            };
            if fetching.insert(instrument.clone()) {
                tracing::debug!(%instrument, %path, "fetching a REST snapshot");
                let (instrument, path) = (instrument.clone(), path.clone());
                fetches.spawn(async move {
                    let body = fetch_until_ok(&base, &path).await;
                    (instrument, path, body)
                });
            }
            false
        }
        Action::Rotate => true,
    });
}

/// Counts notes and sends a non-empty output to the lane; false when the
/// lane is gone.
pub(crate) async fn forward(out: &mut Output, metrics: &VenueMetrics, report: &Reporter) -> bool {
    for n in &out.notes {
        metrics.noted(n.kind());
    }
    out.notes.retain(|n| matches!(n, Note::Rejected { .. }));
    if out.is_empty() {
        return true;
    }
    report.send(SourceEvent::Output(std::mem::take(out))).await
}

/// GETs a REST snapshot, retrying with a growing pause (0.5 s to 10 s)
/// until it succeeds; the connection drops the task if it ends first.
async fn fetch_until_ok(base: &str, path: &str) -> bytes::Bytes {
    let mut pause = Duration::from_millis(500);
    let mut logged = false;
    loop {
        match rest::get(base, path).await {
            Ok(body) => return body,
            Err(e) => {
                if !std::mem::replace(&mut logged, true) {
                    tracing::warn!(error = %e, %path, "REST snapshot failed; retrying");
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
        }
    }
}
