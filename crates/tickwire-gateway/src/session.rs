//! One client's session: the protocol's requests turned into hub calls
//! and replies queued on the connection's outbox. No socket here: the
//! connection task (`conn.rs`) decodes frames and hands over each text
//! message, so requests can be exercised without one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tickwire_model::protocol::{self, ErrorCode, Request, Subscribe, SymbolSelector, Unsubscribe};
use tickwire_model::{Channel, Instrument, Topic};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::auth::AuthState;
use crate::config::GatewayConfig;
use crate::conn::push;
use crate::entitle::Entitlements;
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
    /// Who the client is, once known; nothing but `op:auth` is served
    /// before.
    auth: Arc<AuthState>,
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
    pub(crate) fn new(
        id: u64,
        ctx: Arc<SessionContext>,
        outbox: Arc<Outbox>,
        auth: Arc<AuthState>,
    ) -> Self {
        Self {
            auth,
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
        let (ent, request) = match (self.auth.get(), request) {
            (None, Request::Auth { id, token }) => {
                metrics::counter!(m::REQUESTS, "op" => "auth").increment(1);
                self.authenticate(id.as_ref(), &token);
                return;
            }
            (None, r) => {
                self.reply_error(
                    r.id(),
                    ErrorCode::Unauthorized,
                    "authenticate first: {\"op\":\"auth\",\"token\":...}",
                );
                return;
            }
            (Some(_), Request::Auth { id, .. }) => {
                self.reply_error(id.as_ref(), ErrorCode::BadRequest, "already authenticated");
                return;
            }
            (Some(g), r) => (g.principal.entitlements.clone(), r),
        };
        match request {
            // Answered above, before or after authentication.
            Request::Auth { .. } => {}
            Request::Subscribe(s) => {
                metrics::counter!(m::REQUESTS, "op" => "subscribe").increment(1);
                self.subscribe(s, &ent).await;
            }
            Request::Unsubscribe(u) => {
                metrics::counter!(m::REQUESTS, "op" => "unsubscribe").increment(1);
                self.unsubscribe(u);
            }
            Request::List { id } => {
                metrics::counter!(m::REQUESTS, "op" => "list").increment(1);
                let catalogue = self.ctx.hub.catalogue().await;
                let visible: Vec<(&Instrument, Vec<Channel>)> = catalogue
                    .iter()
                    .map(|(i, c)| (i, ent.filter_channels(i, c)))
                    .filter(|(_, c)| !c.is_empty())
                    .collect();
                push(
                    &self.outbox,
                    protocol::symbols(id.as_ref(), visible.iter().map(|(i, c)| (*i, c.as_slice()))),
                );
            }
            Request::Ping { id } => {
                metrics::counter!(m::REQUESTS, "op" => "ping").increment(1);
                push(&self.outbox, protocol::pong(id.as_ref(), now_us()));
            }
        }
    }

    /// `op:auth`: the connection gets its principal, or an `unauthorized`
    /// error (it may try again until the deadline closes it).
    fn authenticate(&mut self, id: Option<&protocol::RequestId>, token: &str) {
        let Some(auth) = self.ctx.config.auth.clone() else {
            self.reply_error(id, ErrorCode::BadRequest, "already authenticated");
            return;
        };
        let principal = match auth.authenticate(Some(token)) {
            Ok(p) => p,
            Err(e) => {
                debug!(conn = self.id, error = %e, "op:auth refused");
                self.reply_error(id, ErrorCode::Unauthorized, "invalid credentials");
                return;
            }
        };
        let name = principal.name.clone();
        match auth.acquire(principal) {
            Some(granted) => {
                let _ = self.auth.set(granted);
                debug!(conn = self.id, principal = %name, "authenticated");
                push(&self.outbox, protocol::authenticated(id));
            }
            None => self.outbox.close(CloseReason::TooManyConnections),
        }
    }

    fn reply_error(&self, id: Option<&protocol::RequestId>, code: ErrorCode, message: &str) {
        metrics::counter!(m::ERRORS, "code" => code.as_str()).increment(1);
        push(&self.outbox, protocol::error(id, code, message, &[]));
    }

    async fn subscribe(&mut self, req: Subscribe, ent: &Entitlements) {
        let (mut found, mut unknown) = self.ctx.hub.resolve(req.channel, &req.symbols).await;
        unknown.splice(0..0, req.invalid.iter().cloned());
        // Named instruments outside the entitlement are refused by name;
        // those a `venue:*` brought in are left out silently (the client
        // asked for "what I may see of this venue").
        let mut forbidden: Vec<String> = Vec::new();
        found.retain(|i| {
            if ent.allows(i, req.channel) {
                return true;
            }
            if req
                .symbols
                .iter()
                .any(|s| matches!(s, SymbolSelector::Instrument(n) if n == i))
            {
                forbidden.push(i.to_string());
            }
            false
        });
        if found.is_empty() && forbidden.is_empty() && unknown.is_empty() {
            // Only wildcards, and none of what they cover is entitled.
            forbidden.extend(req.symbols.iter().map(|s| match s {
                SymbolSelector::Instrument(i) => i.to_string(),
                SymbolSelector::Venue(v) => format!("{v}:*"),
            }));
        }
        if !forbidden.is_empty() {
            metrics::counter!(m::ERRORS, "code" => ErrorCode::Forbidden.as_str()).increment(1);
            let message = format!("not entitled on the {} channel", req.channel);
            push(
                &self.outbox,
                protocol::error(req.id.as_ref(), ErrorCode::Forbidden, &message, &forbidden),
            );
        }
        if found.is_empty() {
            if !unknown.is_empty() {
                self.unknown_symbols(req.id.as_ref(), req.channel, unknown);
            }
            return;
        }
        let throttle = Duration::from_millis(u64::from(req.throttle_ms.max(ent.min_throttle_ms)));
        if ent.delay_secs > 0 && !req.from_seq.is_empty() {
            // History is realtime: replaying it would skip the delay.
            self.reply_error(
                req.id.as_ref(),
                ErrorCode::Forbidden,
                "from_seq is not available on the delayed tier",
            );
            return;
        }
        let max_subscriptions = ent
            .max_subscriptions
            .map_or(self.ctx.config.max_subscriptions, |m| {
                m.min(self.ctx.config.max_subscriptions)
            });
        let new: Vec<&Instrument> = found
            .iter()
            .filter(|i| {
                !self
                    .subs
                    .contains_key(&Topic::new((*i).clone(), req.channel))
            })
            .collect();
        if self.subs.len() + new.len() > max_subscriptions {
            let message = format!(
                "this would make {} subscriptions; the limit is {}",
                self.subs.len() + new.len(),
                max_subscriptions
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
            if ent.delay_secs > 0 {
                let delay = Duration::from_secs(u64::from(ent.delay_secs));
                let snapshot = start == Start::Snapshot;
                self.ctx
                    .hub
                    .subscribe_delayed(&topic, sub, delay, snapshot)
                    .await;
            } else {
                self.ctx.hub.subscribe(&topic, sub, start).await;
            }
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
