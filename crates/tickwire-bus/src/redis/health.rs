//! Whether the Redis bus is usable: both of its links (commands and
//! pub/sub) must be up. Each link reports its transitions here; this is the
//! one place that logs them (once per outage, never per update) and keeps
//! the connection metrics.

use std::sync::Mutex;
use std::time::Instant;

use metrics::{Counter, Gauge};
use tokio::sync::watch;

use crate::metrics as m;

/// One of the bus's connections to Redis.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Link {
    /// Commands: publishes, last values, history, catalogue, statuses.
    Data = 0,
    /// The pub/sub connection every subscription shares.
    PubSub = 1,
}

impl Link {
    fn name(self) -> &'static str {
        match self {
            Link::Data => "data",
            Link::PubSub => "pubsub",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// No attempt finished yet.
    Unknown,
    Up,
    /// Down since then.
    Down(Instant),
}

/// The state of both links and the watch `Bus::health` hands out.
pub(crate) struct Health {
    states: Mutex<[State; 2]>,
    /// Flips to true once every link has finished its first attempt.
    settled: watch::Sender<bool>,
    up: watch::Sender<bool>,
    connected: [Gauge; 2],
    reconnects: [Counter; 2],
}

impl Health {
    pub(crate) fn new() -> Self {
        let per_link = |link: Link| {
            (
                metrics::gauge!(m::CONNECTED, "bus" => "redis", "link" => link.name()),
                metrics::counter!(m::RECONNECTS, "bus" => "redis", "link" => link.name()),
            )
        };
        let (data_gauge, data_reconnects) = per_link(Link::Data);
        let (sub_gauge, sub_reconnects) = per_link(Link::PubSub);
        data_gauge.set(0.0);
        sub_gauge.set(0.0);
        Self {
            states: Mutex::new([State::Unknown; 2]),
            settled: watch::Sender::new(false),
            up: watch::Sender::new(false),
            connected: [data_gauge, sub_gauge],
            reconnects: [data_reconnects, sub_reconnects],
        }
    }

    /// A link is up.
    pub(crate) fn up(&self, link: Link) {
        let mut states = lock(&self.states);
        match states[link as usize] {
            State::Up => return,
            State::Unknown => tracing::info!(link = link.name(), "redis connected"),
            State::Down(since) => {
                self.reconnects[link as usize].increment(1);
                tracing::info!(
                    link = link.name(),
                    down_secs = since.elapsed().as_secs_f32(),
                    "redis reachable again"
                );
            }
        }
        states[link as usize] = State::Up;
        self.connected[link as usize].set(1.0);
        self.publish(&states);
    }

    /// A link is down, because of `why`; logged only on the transition.
    pub(crate) fn down(&self, link: Link, why: &dyn std::fmt::Display) {
        let mut states = lock(&self.states);
        match states[link as usize] {
            State::Down(_) => return,
            State::Unknown => tracing::warn!(
                link = link.name(),
                error = %why,
                "redis unreachable at start; retrying in the background"
            ),
            State::Up => tracing::warn!(
                link = link.name(),
                error = %why,
                "redis connection lost; reconnecting with backoff"
            ),
        }
        states[link as usize] = State::Down(Instant::now());
        self.connected[link as usize].set(0.0);
        self.publish(&states);
    }

    fn publish(&self, states: &[State; 2]) {
        let up = states.iter().all(|s| *s == State::Up);
        self.up.send_if_modified(|v| std::mem::replace(v, up) != up);
        if states.iter().all(|s| *s != State::Unknown) {
            self.settled
                .send_if_modified(|v| !std::mem::replace(v, true));
        }
    }

    /// Whether the bus is usable now, as a watch.
    pub(crate) fn watch(&self) -> watch::Receiver<bool> {
        self.up.subscribe()
    }

    /// Waits until every link has finished its first attempt.
    pub(crate) async fn settled(&self) {
        let mut rx = self.settled.subscribe();
        // The sender lives in `self`, so waiting cannot fail.
        let _settled = rx.wait_for(|s| *s).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
