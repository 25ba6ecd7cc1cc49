//! One connection's outbox: conflating slots for quote/ticker/book, a
//! bounded lossless queue per trade topic with exact `gap` notices, a
//! control queue that never waits behind data, and per-topic throttles.
//!
//! `offer` is what the hub's fan-out calls: it never awaits, never touches
//! a socket, and allocates nothing per client (values are shared `Bytes`).
//! The connection's writer task calls `drain` and writes what it gets.
//! Everything here is synchronous; time is passed in.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;
use tickwire_model::protocol::{self, GapReason};
use tickwire_model::{Channel, Epoch, Instrument, Topic, Update};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// A frame ready for the socket: valid UTF-8 JSON, shared by reference count.
pub type Frame = Utf8Bytes;

/// Sizes of one outbox.
#[derive(Clone, Copy, Debug)]
pub struct OutboxConfig {
    /// Trades queued per trade topic before the oldest are dropped and a
    /// `gap` is announced. Default 4096: a few seconds of a busy market; a
    /// larger queue survives longer stalls but holds more memory per client.
    pub trade_queue_len: usize,
    /// Control replies (acks, errors, pongs, notices) queued before the
    /// client is treated as a slow consumer. Default 1024.
    pub control_queue_len: usize,
    /// Trades of one topic taken per drain pass, so that a busy trade topic
    /// cannot starve the others. Default 256.
    pub trade_batch: usize,
    /// Replayed (`from_seq`) trades one connection may hold beyond its
    /// queues at once; older ones are announced as a `history_expired` gap.
    /// Default 20 000: two full histories of a busy topic, so one client
    /// cannot make the gateway hold thousands of histories in memory.
    pub replay_budget: usize,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            trade_queue_len: 4096,
            control_queue_len: 1024,
            trade_batch: 256,
            replay_budget: 20_000,
        }
    }
}

/// Names one subscription slot of one outbox. Carries a generation, so an
/// id of a removed slot never reaches the slot that reuses its place.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SlotId {
    index: u32,
    generation: u32,
}

/// Why an outbox stopped accepting data; the writer closes the socket
/// with the matching close code.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CloseReason {
    /// The client reads nothing (4008).
    SlowConsumer,
    /// A client message exceeded the size limit (1009).
    MessageTooBig,
    /// The client kept sending past its request rate (4029).
    RateLimited,
    /// The server is draining for a restart or a stop (1012): reconnect,
    /// to another instance if there is one.
    ServiceRestart,
    /// The client broke WebSocket framing (1002).
    ProtocolError,
    /// The client sent text that is not UTF-8 (1007).
    InvalidPayload,
    /// No valid credentials, or none in time (4001).
    Unauthorized,
    /// The key already holds all the connections it is entitled to (1008).
    TooManyConnections,
    /// The client answered no heartbeat ping within `pong_timeout_ms`
    /// (1008).
    PongTimeout,
    /// The client left; nothing more to say.
    Ended,
}

impl CloseReason {
    /// Every reason, for metrics registered up front.
    pub const ALL: [CloseReason; 10] = [
        CloseReason::SlowConsumer,
        CloseReason::MessageTooBig,
        CloseReason::RateLimited,
        CloseReason::ServiceRestart,
        CloseReason::ProtocolError,
        CloseReason::InvalidPayload,
        CloseReason::Unauthorized,
        CloseReason::TooManyConnections,
        CloseReason::PongTimeout,
        CloseReason::Ended,
    ];

    /// The WebSocket close code and reason text, if a close frame is due.
    pub fn close_frame(self) -> Option<(u16, &'static str)> {
        match self {
            CloseReason::SlowConsumer => Some((4008, "slow consumer")),
            CloseReason::MessageTooBig => Some((1009, "message too big")),
            CloseReason::RateLimited => Some((4029, "rate limited")),
            CloseReason::ServiceRestart => Some((1012, "service restart")),
            CloseReason::ProtocolError => Some((1002, "protocol error")),
            CloseReason::InvalidPayload => Some((1007, "invalid utf-8")),
            CloseReason::Unauthorized => Some((4001, "unauthorized")),
            CloseReason::TooManyConnections => Some((1008, "too many connections for this key")),
            CloseReason::PongTimeout => Some((1008, "pong timeout")),
            CloseReason::Ended => None,
        }
    }

    /// A short label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::MessageTooBig => "message_too_big",
            CloseReason::RateLimited => "rate_limited",
            CloseReason::ServiceRestart => "service_restart",
            CloseReason::ProtocolError => "protocol_error",
            CloseReason::InvalidPayload => "invalid_payload",
            CloseReason::Unauthorized => "unauthorized",
            CloseReason::TooManyConnections => "too_many_connections",
            CloseReason::PongTimeout => "pong_timeout",
            CloseReason::Ended => "client_left",
        }
    }
}

/// Counters an outbox accumulates between two looks by its writer, so the
/// hot path increments a plain integer under a lock it already holds.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Tally {
    /// Unsent conflatable values replaced by a newer one.
    pub conflated: u64,
    /// Trades dropped from a full queue (each covered by a `gap`).
    pub trades_dropped: u64,
    /// `gap` notices emitted.
    pub gaps: u64,
}

/// What a [`Outbox::drain`] pass produced.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Drained {
    /// The earliest time a throttled slot becomes sendable, if any waits.
    pub next_timer: Option<Instant>,
    /// Frames still held after the pass (a backlog when not 0).
    pub depth: usize,
    /// Whether [`Outbox::take_tally`] has something to report, so a writer
    /// takes the lock for it only then.
    pub tally_pending: bool,
    /// Whether more is sendable right now (a slot left in the ready queue
    /// for fairness, or frames queued during the pass): the writer passes
    /// again without waiting for a signal.
    pub pending: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mark {
    /// Nothing to send, or nothing sendable before a throttle expires.
    Idle,
    /// In the ready queue.
    Ready,
    /// Waiting for its throttle timer.
    Waiting,
}

enum Item {
    Trade(u64, Frame),
    Gap(u64, u64, GapReason),
}

struct Slot {
    generation: u32,
    topic: Topic,
    mark: Mark,
    /// Newest unsent value of a conflatable topic.
    value: Option<Frame>,
    /// Queued trades (and upstream gaps), oldest first.
    items: VecDeque<Item>,
    /// Trades dropped from the front of `items` and not yet announced.
    overflow: Option<(u64, u64)>,
    /// Highest `seq` taken into this slot; lower ones are duplicates.
    position: u64,
    /// Whether `position` is known (a snapshot, a live start, a replay or
    /// a trade set it); only then does a jump in `seq` mean a hole.
    anchored: bool,
    /// What a hole before the next trade is: trades history did not hold
    /// right after a replay, the bus losing them otherwise.
    hole: GapReason,
    epoch: Option<Epoch>,
    throttle: Duration,
    /// When this slot last went out; with `throttle`, when it may again.
    last_sent: Option<Instant>,
    /// Set until the subscription's ack is queued: values wait, so the
    /// client never sees data of a topic before its `subscribed`.
    held: bool,
    /// Set while `from_seq` history is being fetched: live trades wait here.
    replaying: bool,
    /// Trade queue bound: the configured length, or more right after a
    /// replay (the excess counts against the connection's replay budget).
    cap: usize,
}

impl Slot {
    fn queued(&self) -> usize {
        usize::from(self.value.is_some()) + self.items.len()
    }

    fn has_data(&self) -> bool {
        self.value.is_some() || !self.items.is_empty() || self.overflow.is_some()
    }
}

#[derive(Default)]
struct State {
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    generation: u32,
    ready: VecDeque<u32>,
    control: VecDeque<Frame>,
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    closed: Option<CloseReason>,
    /// Frames held (control + values + queued trades), for bounds and metrics.
    depth: usize,
    tally: Tally,
    /// Room granted to replays beyond the configured trade queues.
    replay_extra: usize,
    /// Pending status notices, at most one per instrument (the newest):
    /// a burst of stale/live changes never grows past the instruments.
    notices: VecDeque<(Instrument, Frame)>,
}

/// One connection's outbox. Shared between the hub (offers) and the
/// connection's writer task (drains).
pub struct Outbox {
    config: OutboxConfig,
    /// Held only for memory operations, never across an await: the hub's
    /// fan-out takes it once per offer, the writer once per pass.
    state: Mutex<State>,
    /// The connection task to wake when something becomes sendable.
    waker: AtomicWaker,
    /// Set by every wake-up, cleared by `drain`: lets the connection tell
    /// "the outbox has news" from being polled for its socket.
    signalled: AtomicBool,
    /// Socket liveness shared with the shard's sweep.
    pub(crate) pulse: Pulse,
}

/// What a connection and its shard's sweep share about the socket, in
/// atomics so the sweep (every connection, several times a second) never
/// takes an outbox lock. Times are milliseconds on the shard's clock, 0
/// meaning "not set".
#[derive(Default, Debug)]
pub(crate) struct Pulse {
    /// When the socket last took bytes (or the connection opened).
    pub(crate) written_ms: AtomicU64,
    /// Since when unsent bytes have waited with no progress; 0 when the
    /// socket has taken everything.
    pub(crate) stalled_ms: AtomicU64,
    /// When the connection started closing (its close frame queued).
    pub(crate) closing_ms: AtomicU64,
    /// When the client last sent bytes (or the connection opened), for
    /// the heartbeat: a silent client is pinged, then closed.
    pub(crate) heard_ms: AtomicU64,
    /// When the oldest heartbeat ping the client has not answered (by
    /// sending anything) was queued; 0 when none is outstanding.
    pub(crate) pinged_ms: AtomicU64,
    /// Requests from the sweep: [`Pulse::PING`], [`Pulse::ABORT`].
    pub(crate) pokes: AtomicU8,
}

impl Pulse {
    /// Send a heartbeat ping: nothing was written, or nothing heard, for a
    /// heartbeat interval.
    pub(crate) const PING: u8 = 1;
    /// Give up on the close handshake: the close grace has passed.
    pub(crate) const ABORT: u8 = 2;
}

impl Outbox {
    /// An empty outbox.
    pub fn new(config: OutboxConfig) -> Self {
        Self {
            config: OutboxConfig {
                trade_queue_len: config.trade_queue_len.max(1),
                ..config
            },
            state: Mutex::default(),
            waker: AtomicWaker::new(),
            signalled: AtomicBool::new(false),
            pulse: Pulse::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is plain collections: still consistent after a panic elsewhere.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a slot for a topic, holding its values until
    /// [`release`](Self::release). With `replay_from`, live trades are held
    /// until [`finish_replay`](Self::finish_replay) merges them after
    /// history, and the slot starts just before `from_seq`.
    pub fn open(&self, topic: Topic, throttle: Duration, replay_from: Option<u64>) -> SlotId {
        let mut st = self.lock();
        st.generation = st.generation.wrapping_add(1);
        let generation = st.generation;
        let slot = Slot {
            generation,
            topic,
            mark: Mark::Idle,
            value: None,
            items: VecDeque::new(),
            overflow: None,
            position: replay_from.map_or(0, |f| f.saturating_sub(1)),
            anchored: replay_from.is_some(),
            hole: if replay_from.is_some() {
                GapReason::HistoryExpired
            } else {
                GapReason::Upstream
            },
            epoch: None,
            throttle,
            last_sent: None,
            held: true,
            replaying: replay_from.is_some(),
            cap: 0,
        };
        let index = match st.free.pop() {
            Some(i) => {
                st.slots[i as usize] = Some(slot);
                i
            }
            None => {
                // Most connections hold a handful of topics: the first
                // slot is not worth the usual four (800 bytes per idle
                // connection); later growth doubles as usual.
                if st.slots.capacity() == 0 {
                    st.slots.reserve_exact(1);
                }
                st.slots.push(Some(slot));
                (st.slots.len() - 1) as u32
            }
        };
        SlotId { index, generation }
    }

    /// Changes a slot's throttle (a repeated subscribe updates options). A
    /// value held back by the old, longer throttle is reconsidered at once.
    pub fn set_throttle(&self, id: SlotId, throttle: Duration) {
        let mut st = self.lock();
        let Some(slot) = st.slot_mut(id) else { return };
        slot.throttle = throttle;
        if slot.mark == Mark::Waiting {
            // The drain re-parks it with a new timer if it must still wait;
            // the old timer entry then finds it ready and is ignored.
            slot.mark = Mark::Ready;
            st.ready.push_back(id.index);
            drop(st);
            self.signal();
        }
    }

    /// Lets a new slot's values out: called once the subscription's ack is
    /// queued, so data of a topic never precedes its `subscribed`.
    pub fn release(&self, id: SlotId) {
        let mut st = self.lock();
        let Some(slot) = st.slot_mut(id) else { return };
        if slot.replaying || !slot.held {
            return;
        }
        slot.held = false;
        if slot.has_data() && slot.mark == Mark::Idle {
            slot.mark = Mark::Ready;
            st.ready.push_back(id.index);
            drop(st);
            self.signal();
        }
    }

    /// Removes a slot and whatever it still held. Call after the hub has
    /// stopped offering to it, so nothing of its topic is written after.
    pub fn remove(&self, id: SlotId) {
        let mut st = self.lock();
        if st.slot_mut(id).is_none() {
            return;
        }
        if let Some(slot) = st.slots[id.index as usize].take() {
            st.depth -= slot.queued();
            st.replay_extra -= slot.cap.saturating_sub(self.config.trade_queue_len);
            st.free.push(id.index);
            st.ready.retain(|&i| i != id.index);
        }
    }

    /// Marks where a slot starts when it gets no snapshot: the topic's
    /// current `seq`, so the next update continues from it without a gap.
    pub fn set_position(&self, id: SlotId, seq: u64, epoch: &Epoch) {
        if let Some(slot) = self.lock().slot_mut(id) {
            slot.position = seq;
            slot.anchored = true;
            slot.epoch = Some(epoch.clone());
        }
    }

    /// Offers a topic's latest value as the subscription's snapshot.
    pub fn offer_snapshot(&self, id: SlotId, update: &Update, frame: Frame) {
        self.offer_frame(id, update, frame);
    }

    /// Offers a live update (the fan-out path). `frame` is the update's
    /// bytes as a frame, converted once per update by the hub.
    pub fn offer(&self, id: SlotId, update: &Update, frame: &Frame) {
        self.offer_frame(id, update, frame.clone());
    }

    fn offer_frame(&self, id: SlotId, update: &Update, frame: Frame) {
        let mut st = self.lock();
        if st.closed.is_some() {
            return;
        }
        let trade_cap = self.config.trade_queue_len;
        let st = &mut *st;
        let Some(slot) = st.slots.get_mut(id.index as usize).and_then(Option::as_mut) else {
            return;
        };
        if slot.generation != id.generation {
            return;
        }
        let seq = update.seq();
        match &slot.epoch {
            Some(e) if e == update.epoch() => {
                if seq <= slot.position {
                    return;
                }
            }
            Some(_) => {
                // A new sequence run (ingest restarted without shared
                // state): positions of the old run mean nothing for it.
                if !slot.replaying {
                    slot.position = 0;
                    slot.anchored = false;
                }
                slot.epoch = Some(update.epoch().clone());
            }
            None => {
                // The first update seen; a position set by a replay holds.
                if slot.anchored && seq <= slot.position {
                    return;
                }
                slot.epoch = Some(update.epoch().clone());
            }
        }
        let before = slot.queued();
        if update.topic().channel.is_conflatable() {
            if slot.value.is_some() {
                st.tally.conflated += 1;
            }
            slot.value = Some(frame);
        } else {
            if slot.anchored && seq > slot.position + 1 && !slot.replaying {
                // Trades this client should have had never reached us.
                slot.items
                    .push_back(Item::Gap(slot.position + 1, seq - 1, slot.hole));
            }
            if !slot.replaying {
                slot.hole = GapReason::Upstream;
            }
            slot.items.push_back(Item::Trade(seq, frame));
            while slot.items.len() > slot.cap.max(trade_cap) {
                drop_oldest(slot, &mut st.tally);
            }
        }
        slot.position = seq;
        slot.anchored = true;
        st.depth = st.depth + slot.queued() - before;
        if !slot.held && slot.mark == Mark::Idle {
            slot.mark = Mark::Ready;
            let was_empty = st.ready.is_empty() && st.control.is_empty();
            st.ready.push_back(id.index);
            if was_empty {
                self.signal();
            }
        }
    }

    /// Ends a `from_seq` replay: `history` (trades with `seq >= from_seq`,
    /// oldest first) goes out first, then the live trades held meanwhile,
    /// without duplicates; a hole history cannot fill becomes one `gap`.
    pub fn finish_replay(&self, id: SlotId, from_seq: u64, history: &[Update]) {
        let mut st = self.lock();
        let trade_cap = self.config.trade_queue_len;
        let st = &mut *st;
        let Some(slot) = st
            .slots
            .get_mut(id.index as usize)
            .and_then(Option::as_mut)
            .filter(|s| s.generation == id.generation)
        else {
            return;
        };
        if !slot.replaying {
            return;
        }
        let before = slot.queued();
        // Held trades dropped while history was fetched are in history, or
        // become a gap in the merge below.
        slot.overflow = None;
        let held = std::mem::take(&mut slot.items);
        let mut next = from_seq.max(1);
        let mut merged = VecDeque::with_capacity(history.len() + held.len());
        let history_epoch = history.last().map(|u| u.epoch().clone());
        let history = history.iter().filter_map(|u| {
            Frame::try_from(u.bytes().clone())
                .ok()
                .map(|f| (u.seq(), f))
        });
        let held = held.into_iter().filter_map(|item| match item {
            Item::Trade(seq, f) => Some((seq, f)),
            Item::Gap(..) => None,
        });
        for (seq, frame) in history.chain(held) {
            if seq < next {
                continue;
            }
            if seq > next {
                merged.push_back(Item::Gap(next, seq - 1, GapReason::HistoryExpired));
            }
            merged.push_back(Item::Trade(seq, frame));
            next = seq + 1;
        }
        let replayed_any = !merged.is_empty();
        slot.items = merged;
        // The replay may exceed the queue length, within the connection's
        // replay budget; the oldest beyond it become one gap at the front.
        let room = trade_cap.max(self.config.replay_budget.saturating_sub(st.replay_extra));
        while slot.items.len() > room {
            drop_oldest(slot, &mut st.tally);
        }
        if let Some((from, to)) = slot.overflow.take() {
            slot.items
                .push_front(Item::Gap(from, to, GapReason::HistoryExpired));
        }
        // Live trades get the usual room on top; the excess shrinks back
        // as the writer drains it.
        slot.cap = slot.items.len() + trade_cap;
        st.replay_extra += slot.items.len();
        slot.position = slot.position.max(next - 1);
        slot.anchored = true;
        if replayed_any {
            slot.hole = GapReason::Upstream;
        }
        // History may run ahead of the hub's fan-out: live trades it already
        // covers can still arrive, and only a known epoch lets them be
        // recognized as duplicates.
        if slot.epoch.is_none() {
            slot.epoch = history_epoch;
        }
        slot.replaying = false;
        slot.held = false;
        st.depth = st.depth + slot.queued() - before;
        if slot.has_data() && slot.mark == Mark::Idle {
            slot.mark = Mark::Ready;
            st.ready.push_back(id.index);
            self.signal();
        }
    }

    /// Queues a status notice for an instrument, replacing one still
    /// pending for it (statuses are idempotent: the newest is the truth).
    /// Sent with control frames, before data.
    pub fn push_notice(&self, instrument: &Instrument, frame: Frame) {
        let mut st = self.lock();
        if st.closed.is_some() {
            return;
        }
        match st.notices.iter_mut().find(|(i, _)| i == instrument) {
            Some(pending) => pending.1 = frame,
            None => {
                st.notices.push_back((instrument.clone(), frame));
                st.depth += 1;
            }
        }
        drop(st);
        self.signal();
    }

    /// Queues a control frame (ack, error, pong). Control frames go
    /// out before data at the next pass. Returns false if the outbox is
    /// closed, or has just been closed because the client reads nothing.
    pub fn push_control(&self, frame: Frame) -> bool {
        let mut st = self.lock();
        if st.closed.is_some() {
            return false;
        }
        if st.control.len() >= self.config.control_queue_len {
            st.closed = Some(CloseReason::SlowConsumer);
            drop(st);
            self.signal();
            return false;
        }
        st.control.push_back(frame);
        st.depth += 1;
        drop(st);
        self.signal();
        true
    }

    /// Stops accepting data; the writer sees the reason at its next pass.
    pub fn close(&self, reason: CloseReason) {
        let mut st = self.lock();
        if st.closed.is_none() {
            st.closed = Some(reason);
        }
        drop(st);
        self.signal();
    }

    /// Why the outbox is closed, if it is.
    pub fn closed(&self) -> Option<CloseReason> {
        self.lock().closed
    }

    /// Frames currently held: control frames, unsent conflatable values and
    /// queued trades.
    pub fn depth(&self) -> usize {
        self.lock().depth
    }

    /// Takes the counters accumulated since the last call.
    pub fn take_tally(&self) -> Tally {
        std::mem::take(&mut self.lock().tally)
    }

    /// Wakes the connection task: something may be sendable.
    fn signal(&self) {
        self.signalled.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Asks for `waker` to be woken at the next offer, control frame, close
    /// or sweep request. Register before draining, so nothing offered in
    /// between is missed.
    pub fn register(&self, waker: &Waker) {
        self.waker.register(waker);
    }

    /// Whether anything was signalled since the last [`drain`](Self::drain).
    pub fn signalled(&self) -> bool {
        self.signalled.load(Ordering::Acquire)
    }

    /// Sets sweep request bits and wakes the connection.
    pub(crate) fn poke(&self, bits: u8) {
        self.pulse.pokes.fetch_or(bits, Ordering::AcqRel);
        self.waker.wake();
    }

    /// Takes the pending sweep requests.
    pub(crate) fn take_pokes(&self) -> u8 {
        if self.pulse.pokes.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        self.pulse.pokes.swap(0, Ordering::AcqRel)
    }

    /// Waits until something may be ready (an offer, a control frame or a
    /// close). Spurious wake-ups are possible; drain and look.
    pub async fn ready(&self) {
        std::future::poll_fn(|cx| {
            self.register(cx.waker());
            if self.signalled() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
    }

    /// One writer pass: every control frame, then each ready slot once, in
    /// ready order (a slot still holding trades goes to the back for the
    /// next pass). Throttled slots whose time has come rejoin the queue.
    pub fn drain(&self, now: Instant, out: &mut Vec<Frame>) -> Drained {
        let trade_cap = self.config.trade_queue_len;
        // Cleared before looking, so an offer racing this pass signals again.
        self.signalled.store(false, Ordering::Release);
        let mut st = self.lock();
        let st = &mut *st;
        while let Some(Reverse((at, index, generation))) = st.timers.peek().copied() {
            if at > now {
                break;
            }
            st.timers.pop();
            if let Some(Some(slot)) = st.slots.get_mut(index as usize) {
                if slot.generation == generation && slot.mark == Mark::Waiting {
                    slot.mark = Mark::Ready;
                    st.ready.push_back(index);
                }
            }
        }
        st.depth -= st.control.len() + st.notices.len();
        if !st.control.is_empty() {
            out.extend(st.control.drain(..));
            // Replies are rare: an idle connection keeps no queue for them.
            st.control = VecDeque::new();
        }
        out.extend(st.notices.drain(..).map(|(_, f)| f));
        let passes = st.ready.len();
        for _ in 0..passes {
            let Some(index) = st.ready.pop_front() else {
                break;
            };
            let Some(Some(slot)) = st.slots.get_mut(index as usize) else {
                continue;
            };
            if let Some(at) = slot
                .last_sent
                .map(|t| t + slot.throttle)
                .filter(|at| *at > now)
            {
                slot.mark = Mark::Waiting;
                st.timers.push(Reverse((at, index, slot.generation)));
                continue;
            }
            let before = slot.queued();
            if let Some(v) = slot.value.take() {
                out.push(v);
            }
            if let Some((from, to)) = slot.overflow.take() {
                out.push(gap_frame(&slot.topic, from, to, GapReason::SlowConsumer));
                st.tally.gaps += 1;
            }
            // A throttled trade topic sends everything queued at once per
            // interval; unthrottled ones take a batch per pass for fairness.
            let batch = if slot.throttle.is_zero() {
                self.config.trade_batch
            } else {
                usize::MAX
            };
            for _ in 0..batch {
                match slot.items.pop_front() {
                    Some(Item::Trade(_, f)) => {
                        out.push(f);
                    }
                    Some(Item::Gap(from, to, reason)) => {
                        out.push(gap_frame(&slot.topic, from, to, reason));
                        st.tally.gaps += 1;
                    }
                    None => break,
                }
            }
            st.depth -= before - slot.queued();
            let extra = slot.cap.saturating_sub(trade_cap);
            slot.cap = slot.cap.min(slot.items.len() + trade_cap);
            st.replay_extra -= extra - slot.cap.saturating_sub(trade_cap);
            slot.last_sent = Some(now);
            if slot.has_data() {
                st.ready.push_back(index);
            } else {
                slot.mark = Mark::Idle;
            }
        }
        Drained {
            next_timer: st.timers.peek().map(|Reverse((at, _, _))| *at),
            depth: st.depth,
            tally_pending: st.tally != Tally::default(),
            pending: !st.ready.is_empty() || !st.control.is_empty() || !st.notices.is_empty(),
        }
    }
}

impl State {
    fn slot_mut(&mut self, id: SlotId) -> Option<&mut Slot> {
        self.slots
            .get_mut(id.index as usize)?
            .as_mut()
            .filter(|s| s.generation == id.generation)
    }
}

/// Drops the oldest queued item of a full trade queue, widening the
/// pending overflow gap so it stays one exact, contiguous range.
fn drop_oldest(slot: &mut Slot, tally: &mut Tally) {
    let (from, to) = match slot.items.pop_front() {
        Some(Item::Trade(seq, _)) => {
            tally.trades_dropped += 1;
            (seq, seq)
        }
        Some(Item::Gap(from, to, _)) => (from, to),
        None => return,
    };
    slot.overflow = Some(match slot.overflow {
        Some((start, _)) => (start, to),
        None => (from, to),
    });
}

fn gap_frame(topic: &Topic, from: u64, to: u64, reason: GapReason) -> Frame {
    let bytes = protocol::gap(Channel::Trade, &topic.instrument, from, to, reason);
    // Our own encoder writes only UTF-8.
    Frame::try_from(bytes).unwrap_or_else(|_| Frame::from("{\"type\":\"gap\"}"))
}

#[cfg(test)]
mod tests;
