//! One client's session: the protocol's requests turned into hub calls
//! and replies queued on the connection's outbox. No socket here: the
//! connection task (`conn.rs`) decodes frames and hands over each text
//! message, so requests can be exercised without one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tickwire_model::protocol::{self, ErrorCode, Request, Subscribe, SymbolSelector, Unsubscribe};
use tickwire_model::{Channel, Instrument, Topic};
use tokio_util::sync::CancellationToken;

use crate::config::GatewayConfig;
use crate::conn::push;
use crate::hub::{Hub, Start, Subscriber, now_us, push_status};
use crate::metrics::{self as m, WriterMetrics};
use crate::outbox::{CloseReason, Outbox, SlotId};

/// What a session needs from its server.
pub(crate) struct SessionContext {
    pub(crate) hub: Arc<Hub>,
    pub(crate) config: GatewayConfig,
    /// Cancelled when the drain begins: `/readyz` turns 503 and upgrades
    /// are refused, while open connections are served until their turn.
    pub(crate) drain: CancellationToken,
    /// Cancelled when the drain is over: the listener closes, HTTP
    /// connections end, the hub's tasks stop.
    pub(crate) stop: CancellationToken,
    /// Metric handles every writer of this shard records to (shared: a
    /// copy per connection would cost ~100 bytes of each idle one).
    pub(crate) writer_metrics: WriterMetrics,
    /// The listener's TLS, when configured: shared by every shard, so a
    /// reload reaches them all.
    pub(crate) tls: Option<Arc<crate::tls::Tls>>,
    /// Zero of the shard's millisecond clock ([`Self::now_ms`]).
    pub(crate) epoch: Instant,
    /// The connection limits, shared by every shard.
    pub(crate) limits: Arc<crate::server::ConnLimits>,
}

impl SessionContext {
    /// Milliseconds since the shard started, plus one (0 means "unset" in
    /// the atomics that store these).
    pub(crate) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }
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

/// One client's subscriptions, request budget and replies.
pub(crate) struct Session {
    id: u64,
    ctx: Arc<SessionContext>,
    outbox: Arc<Outbox>,
    subs: Subs,
    bucket: TokenBucket,
    /// Requests refused in a row; sustained abuse closes with 4029.
    refused: u32,
}

impl Drop for Session {
    /// Unsubscribes everything, whether the connection ended or a request
    /// was dropped half-way (its registrations are in `subs` already).
    fn drop(&mut self) {
        for (topic, slot) in std::mem::take(&mut self.subs.0) {
            self.ctx.hub.unsubscribe(&topic, self.id, slot);
        }
    }
}

/// A session's subscriptions, sorted by topic: a handful per idle client,
/// where a hash map's smallest table would cost four times the bytes.
#[derive(Default)]
struct Subs(Vec<(Topic, SlotId)>);

impl Subs {
    fn find(&self, topic: &Topic) -> Result<usize, usize> {
        self.0.binary_search_by(|(t, _)| t.cmp(topic))
    }

    fn get(&self, topic: &Topic) -> Option<&SlotId> {
        self.find(topic).ok().map(|i| &self.0[i].1)
    }

    fn contains_key(&self, topic: &Topic) -> bool {
        self.find(topic).is_ok()
    }

    fn insert(&mut self, topic: Topic, slot: SlotId) {
        match self.find(&topic) {
            Ok(i) => self.0[i].1 = slot,
            Err(i) => self.0.insert(i, (topic, slot)),
        }
    }

    fn remove(&mut self, topic: &Topic) -> Option<SlotId> {
        let i = self.find(topic).ok()?;
        let (_, slot) = self.0.remove(i);
        if self.0.is_empty() {
            self.0 = Vec::new();
        }
        Some(slot)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn keys(&self) -> impl Iterator<Item = &Topic> {
        self.0.iter().map(|(t, _)| t)
    }
}

impl Session {
    /// A session with no subscriptions yet.
    pub(crate) fn new(id: u64, ctx: Arc<SessionContext>, outbox: Arc<Outbox>) -> Self {
        Self {
            id,
            bucket: TokenBucket::new(ctx.config.max_requests_per_sec, Instant::now()),
            ctx,
            outbox,
            subs: Subs::default(),
            refused: 0,
        }
    }

    /// A binary message: counted against the rate, answered with an error.
    pub(crate) fn on_binary(&mut self) {
        if self.admit() {
            self.reply_error(
                None,
                ErrorCode::BadRequest,
                "binary frames are not accepted; send JSON text",
            );
        }
    }

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

    /// Handles one text message: a request of the protocol, or an error.
    pub(crate) async fn on_request(&mut self, text: &[u8]) {
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
