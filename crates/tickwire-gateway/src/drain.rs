//! The graceful drain: once the caller cancels the gateway's token, every
//! WebSocket connection is told 1012 at its own turn, the turns spread
//! evenly over `gateway.drain_window_ms`; the gateway stops when the last
//! one is gone, or at `drain_window_ms + shutdown_timeout_ms` whatever
//! clients do.
//!
//! One schedule for the whole gateway, not one per shard: connection ids
//! are global and rise with each upgrade, so ordering every shard's
//! connections by id gives one even rate over the gateway (per-shard
//! schedules would each be even, but their closes could bunch together).
//! The closes are cross-thread wake-ups of each connection's task, one per
//! connection per drain, so running the schedule outside the shards costs
//! nothing on their hot path.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::hub::Hub;
use crate::outbox::CloseReason;

/// How often the drain looks whether the last connection has gone.
const POLL: Duration = Duration::from_millis(20);

/// When connection `k` of `n` (in the drain's order) is closed, counted
/// from the start of the drain: `window * k / n`. The first goes at once
/// and the last at `window * (n - 1) / n`, so the closes are evenly spaced
/// and the window's end is left for flushing. A zero window closes all at
/// once.
pub(crate) fn turn(k: usize, n: usize, window: Duration) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    let nanos = window.as_nanos() * k.min(n) as u128 / n as u128;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// The gateway's parts a drain works on, and the limits it keeps.
pub(crate) struct Drain {
    /// Every shard's hub: its connections are the ones to close.
    pub(crate) hubs: Vec<Arc<Hub>>,
    /// Every shard's tasks (connections, HTTP), to wait for at the end.
    pub(crate) trackers: Vec<TaskTracker>,
    /// `gateway.drain_window_ms`.
    pub(crate) window: Duration,
    /// `gateway.shutdown_timeout_ms`.
    pub(crate) timeout: Duration,
    /// Cancelled when the drain is over: the listener closes, HTTP
    /// connections end, the shards stop taking connections.
    pub(crate) stop: CancellationToken,
    /// Cancelled at the exit bound: the shards drop whatever still runs.
    pub(crate) abort: CancellationToken,
}

impl Drain {
    /// Runs the drain from now to its end; returns once every shard may
    /// stop.
    pub(crate) async fn run(self) {
        let start = Instant::now();
        let deadline = start + self.window + self.timeout;
        let mut conns: Vec<_> = self.hubs.iter().flat_map(|h| h.connections()).collect();
        conns.sort_unstable_by_key(|(id, _)| *id);
        let n = conns.len();
        info!(
            connections = n,
            window_ms = self.window.as_millis() as u64,
            bound_ms = (self.window + self.timeout).as_millis() as u64,
            "draining: /readyz answers 503, WebSocket upgrades are refused, \
             connections close with 1012 spread over the window"
        );
        for (k, (_, outbox)) in conns.iter().enumerate() {
            tokio::time::sleep_until(start + turn(k, n, self.window)).await;
            outbox.close(CloseReason::ServiceRestart);
        }
        let scheduled: Vec<u64> = conns.into_iter().map(|(id, _)| id).collect();
        // A connection that registered just as the drain began closes
        // itself on seeing the drain token; this catches one that did so
        // after the list above was taken.
        let mut late = 0;
        for hub in &self.hubs {
            for (id, outbox) in hub.connections() {
                if scheduled.binary_search(&id).is_err() {
                    late += 1;
                    outbox.close(CloseReason::ServiceRestart);
                }
            }
        }
        while self.open() > 0 && Instant::now() < deadline {
            tokio::time::sleep_until((Instant::now() + POLL).min(deadline)).await;
        }
        self.stop.cancel();
        // HTTP connections finish the request in hand, if any.
        let finished = async {
            for tracker in &self.trackers {
                tracker.wait().await;
            }
        };
        let _ = tokio::time::timeout_at(deadline, finished).await;
        let left = self.open();
        self.abort.cancel();
        let closed = (n + late).saturating_sub(left);
        let elapsed_ms = start.elapsed().as_millis() as u64;
        if left == 0 {
            info!(closed, left_behind = left, elapsed_ms, "drain finished");
        } else {
            warn!(
                closed,
                left_behind = left,
                elapsed_ms,
                "drain finished at its bound: dropping the connections left"
            );
        }
    }

    /// WebSocket connections still open over all shards.
    fn open(&self) -> usize {
        self.hubs.iter().map(|h| h.connection_count()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_millis(3000);

    #[test]
    fn turns_are_evenly_spaced_from_the_start_and_end_before_the_window() {
        let turns: Vec<Duration> = (0..4).map(|k| turn(k, 4, WINDOW)).collect();
        assert_eq!(
            turns,
            [0, 750, 1500, 2250].map(Duration::from_millis).to_vec()
        );
        assert_eq!(turn(0, 1, WINDOW), Duration::ZERO);
    }

    #[test]
    fn turns_rise_and_no_second_holds_more_than_its_share() {
        let n = 1000;
        let turns: Vec<Duration> = (0..n).map(|k| turn(k, n, WINDOW)).collect();
        assert!(turns.windows(2).all(|w| w[0] <= w[1]));
        assert!(turns.iter().all(|t| *t < WINDOW));
        let mut per_second = [0usize; 3];
        for t in &turns {
            per_second[t.as_secs() as usize] += 1;
        }
        // 1000 closes over 3 s: a third in each second, give or take one.
        assert!(
            per_second.iter().all(|&c| c.abs_diff(n / 3) <= 1),
            "{per_second:?}"
        );
    }

    #[test]
    fn zero_window_or_no_connections_means_at_once() {
        assert!((0..10).all(|k| turn(k, 10, Duration::ZERO) == Duration::ZERO));
        assert_eq!(turn(0, 0, WINDOW), Duration::ZERO);
        // Out-of-range k is clamped to the window, never past it.
        assert_eq!(turn(7, 5, WINDOW), WINDOW);
    }

    #[test]
    fn an_hour_long_window_with_many_connections_does_not_overflow() {
        let hour = Duration::from_secs(3600);
        let n = 1_000_000;
        assert_eq!(turn(n / 2, n, hour), Duration::from_secs(1800));
        assert!(turn(n - 1, n, hour) < hour);
    }
}
