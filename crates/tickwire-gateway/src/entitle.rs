//! Entitlements: which topics a key or token may see, and how much of
//! them. Pure checks over instruments and channels, so a session, the REST
//! routes and `list` all ask the same question the same way. Also the
//! delayed tier's delay line: one per topic and delay on a shard, shared
//! by every delayed subscriber of it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tickwire_model::{Channel, Instrument, Update};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::hub::{Subscriber, now_us};
use crate::outbox::Frame;

/// What one principal may see. Every field has a permissive default, so
/// `{}` entitles to everything with the gateway's own limits.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Entitlements {
    /// Instrument patterns (`coinbase:*`, `*:BTC-*`, `kraken:BTC-USD`);
    /// `*` matches any run of characters. Default `["*"]`.
    pub instruments: Vec<String>,
    /// Channels allowed (`trade`, `quote`, `ticker`, `book`). Default all.
    pub channels: Option<Vec<String>>,
    /// Floor of `throttle_ms` for every subscription: a client asking for
    /// less gets this. Default 0 (no floor).
    pub min_throttle_ms: u32,
    /// Subscriptions one connection may hold; the lower of this and
    /// `gateway.max_subscriptions` applies. Default none.
    pub max_subscriptions: Option<usize>,
    /// Connections the key may hold at once, across shards. Default none.
    pub max_connections: Option<usize>,
    /// The tier: 0 is realtime; N serves every update N seconds late
    /// (snapshots included, and `from_seq` is refused). Default 0.
    pub delay_secs: u32,
}

impl Default for Entitlements {
    fn default() -> Self {
        Self {
            instruments: vec!["*".to_string()],
            channels: None,
            min_throttle_ms: 0,
            max_subscriptions: None,
            max_connections: None,
            delay_secs: 0,
        }
    }
}

impl Entitlements {
    /// Checks every channel name parses; the error names the bad one.
    pub fn validate(&self) -> Result<(), String> {
        for c in self.channels.iter().flatten() {
            c.parse::<Channel>()
                .map_err(|_| format!("unknown channel {c:?} in `channels`"))?;
        }
        if self.max_connections == Some(0) || self.max_subscriptions == Some(0) {
            return Err("`max_connections` and `max_subscriptions` must be at least 1".into());
        }
        Ok(())
    }

    /// Whether `channel` may be subscribed at all.
    pub fn allows_channel(&self, channel: Channel) -> bool {
        self.channels
            .as_ref()
            .is_none_or(|cs| cs.iter().any(|c| c == channel.as_str()))
    }

    /// Whether the instrument matches one of the patterns.
    pub fn allows_instrument(&self, instrument: &Instrument) -> bool {
        self.instruments
            .iter()
            .any(|p| glob(p.as_bytes(), instrument.as_str().as_bytes()))
    }

    /// Whether the topic (`instrument` on `channel`) may be seen.
    pub fn allows(&self, instrument: &Instrument, channel: Channel) -> bool {
        self.allows_channel(channel) && self.allows_instrument(instrument)
    }

    /// The channels of `channels` that may be seen for `instrument`.
    pub fn filter_channels(&self, instrument: &Instrument, channels: &[Channel]) -> Vec<Channel> {
        if !self.allows_instrument(instrument) {
            return Vec::new();
        }
        channels
            .iter()
            .copied()
            .filter(|c| self.allows_channel(*c))
            .collect()
    }
}

/// Updates a delay line holds at most; past it the oldest go (a trade
/// subscriber's outbox then announces the hole as a gap).
const DELAY_LINE_MAX: usize = 65_536;

/// The delayed stream of one topic for one delay: fed by the hub's
/// fan-out, released `delay` later to its subscribers by one task.
pub(crate) struct DelayLine {
    pub(crate) delay: Duration,
    state: Mutex<LineState>,
    wake: Notify,
    pub(crate) stop: CancellationToken,
}

#[derive(Default)]
struct LineState {
    subs: Vec<Subscriber>,
    queue: VecDeque<(Instant, Update, Frame)>,
    /// The newest update released: the delayed snapshot.
    released: Option<Update>,
}

fn lock(m: &Mutex<LineState>) -> std::sync::MutexGuard<'_, LineState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl DelayLine {
    /// A line with its release task; it stops with `stop`.
    pub(crate) fn start(delay: Duration, stop: CancellationToken) -> Arc<Self> {
        let line = Arc::new(Self {
            delay,
            state: Mutex::default(),
            wake: Notify::new(),
            stop,
        });
        tokio::spawn(release(line.clone()));
        line
    }

    /// Queues a live update for release `delay` from now.
    pub(crate) fn push(&self, update: &Update, frame: &Frame) {
        let mut st = lock(&self.state);
        if st.queue.len() >= DELAY_LINE_MAX {
            st.queue.pop_front();
        }
        let was_empty = st.queue.is_empty();
        st.queue
            .push_back((Instant::now() + self.delay, update.clone(), frame.clone()));
        drop(st);
        if was_empty {
            self.wake.notify_one();
        }
    }

    /// Adds a subscriber, with the delayed snapshot when asked: the newest
    /// update released, or `last` if it is at least `delay` old.
    pub(crate) fn add(&self, sub: Subscriber, snapshot: bool, last: Option<&Update>) {
        let mut st = lock(&self.state);
        if snapshot {
            let old_enough = last.filter(|u| self.is_old(u));
            let newest = match (&st.released, old_enough) {
                (Some(r), Some(l)) if l.epoch() == r.epoch() && l.seq() > r.seq() => Some(l),
                (Some(r), _) => Some(r),
                (None, l) => l,
            };
            if let Some(u) = newest {
                if let Ok(frame) = Frame::try_from(u.snapshot_bytes()) {
                    sub.outbox.offer_snapshot(sub.slot, u, frame);
                }
            }
        }
        st.subs.push(sub);
    }

    /// Removes a subscriber; true if it was there.
    pub(crate) fn remove(&self, conn: u64, slot: crate::outbox::SlotId) -> bool {
        let mut st = lock(&self.state);
        let before = st.subs.len();
        st.subs.retain(|s| !(s.conn == conn && s.slot == slot));
        st.subs.len() < before
    }

    /// The line's subscribers.
    pub(crate) fn subscribers(&self) -> Vec<Subscriber> {
        lock(&self.state).subs.clone()
    }

    /// Whether no subscriber is left.
    pub(crate) fn is_empty(&self) -> bool {
        lock(&self.state).subs.is_empty()
    }

    /// The delayed snapshot, for REST.
    pub(crate) fn released(&self) -> Option<Update> {
        lock(&self.state).released.clone()
    }

    /// Whether `update` was received at least `delay` ago.
    pub(crate) fn is_old(&self, update: &Update) -> bool {
        is_older_than(update, self.delay)
    }
}

/// Whether `update` was received by ingest at least `delay` ago.
pub(crate) fn is_older_than(update: &Update, delay: Duration) -> bool {
    now_us().saturating_sub(update.rx()) >= delay.as_micros() as u64
}

/// Releases each queued update when its time comes, until the line stops.
async fn release(line: Arc<DelayLine>) {
    loop {
        let due = lock(&line.state).queue.front().map(|(at, _, _)| *at);
        let wait = async {
            match due {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => line.wake.notified().await,
            }
        };
        tokio::select! {
            () = line.stop.cancelled() => return,
            () = wait => {}
        }
        let now = Instant::now();
        let mut st = lock(&line.state);
        while st.queue.front().is_some_and(|(at, _, _)| *at <= now) {
            let Some((_, update, frame)) = st.queue.pop_front() else {
                break;
            };
            for s in &st.subs {
                s.outbox.offer(s.slot, &update, &frame);
            }
            st.released = Some(update);
        }
    }
}

/// `*`-only glob, iterative with one backtrack point: linear in practice
/// and never recursive, whatever a pattern holds.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(s: &str) -> Instrument {
        Instrument::parse(s).expect("valid instrument")
    }

    #[test]
    fn patterns_match_venue_symbol_and_exact() {
        let cases = [
            ("*", "coinbase:BTC-USD", true),
            ("coinbase:*", "coinbase:BTC-USD", true),
            ("coinbase:*", "kraken:BTC-USD", false),
            ("*:BTC-*", "kraken:BTC-USD", true),
            ("*:BTC-*", "kraken:ETH-USD", false),
            ("kraken:BTC-USD", "kraken:BTC-USD", true),
            ("kraken:BTC-USD", "kraken:BTC-USDT", false),
            ("*USD", "kraken:BTC-USDT", false),
            ("**:*-*", "binance:ETH-USDT", true),
        ];
        for (pattern, symbol, want) in cases {
            let e = Entitlements {
                instruments: vec![pattern.to_string()],
                ..Entitlements::default()
            };
            assert_eq!(
                e.allows_instrument(&inst(symbol)),
                want,
                "{pattern} {symbol}"
            );
        }
    }

    #[test]
    fn channels_filter_and_validate() {
        let e = Entitlements {
            channels: Some(vec!["trade".into(), "quote".into()]),
            instruments: vec!["coinbase:*".into()],
            ..Entitlements::default()
        };
        assert!(e.validate().is_ok());
        assert!(e.allows(&inst("coinbase:BTC-USD"), Channel::Trade));
        assert!(!e.allows(&inst("coinbase:BTC-USD"), Channel::Book));
        assert_eq!(
            e.filter_channels(&inst("coinbase:BTC-USD"), &Channel::ALL),
            vec![Channel::Trade, Channel::Quote]
        );
        assert!(
            e.filter_channels(&inst("kraken:BTC-USD"), &Channel::ALL)
                .is_empty()
        );
        let bad = Entitlements {
            channels: Some(vec!["trades".into()]),
            ..Entitlements::default()
        };
        assert!(bad.validate().expect_err("refused").contains("trades"));
    }
}
