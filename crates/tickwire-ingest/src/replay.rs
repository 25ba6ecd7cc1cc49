//! Replaying captures through the real adapters onto the bus: frames are
//! fed at their recorded pace (scaled by a speed factor, optionally in a
//! loop), REST snapshots the adapter asks for are answered from the
//! capture's recorded REST bodies, and the results are published by the
//! same [`Lane`] as a live feed.

use std::sync::Arc;
use std::time::Duration;

use tickwire_bus::Bus;
use tickwire_model::Channel;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::adapter::{Action, Adapter, Output};
use crate::capture::{Capture, CaptureFrame, Source};
use crate::feed::VenueFeed;
use crate::live::{Connector, Lane, Reporter, SourceEvent, forward};
use crate::metrics::VenueMetrics;
use crate::runner::now_us;
use crate::venue;

/// The pause between two passes of a looping replay.
const LOOP_PAUSE: Duration = Duration::from_secs(1);
/// How many REST answers one frame may chain (a snapshot found too old asks
/// again): bounded so a capture without a usable one cannot spin.
const MAX_FETCH_ROUNDS: usize = 4;

/// A replay speed factor: 1 plays at the recorded pace, 10 ten times
/// faster. Positive and finite.
#[derive(Clone, Copy, Debug)]
pub struct Speed(f64);

impl Speed {
    /// The recorded pace.
    pub const REAL_TIME: Speed = Speed(1.0);

    /// A speed factor; `None` unless positive and finite.
    pub fn new(factor: f64) -> Option<Self> {
        (factor.is_finite() && factor > 0.0).then_some(Self(factor))
    }

    /// How long a recorded interval takes at this speed.
    pub(crate) fn scale(self, recorded: Duration) -> Duration {
        recorded.div_f64(self.0)
    }
}

impl PartialEq for Speed {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Speed {}

/// A capture to replay onto the bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayConfig {
    /// Where it came from, for logs.
    pub name: String,
    /// The frames.
    pub capture: Arc<Capture>,
    /// Pace factor.
    pub speed: Speed,
    /// Start over at the end (with a fresh adapter, as after a reconnect).
    pub looped: bool,
}

impl ReplayConfig {
    /// The feed definition a capture implies: its venue and instruments,
    /// every channel, 10 levels.
    pub fn feed(&self) -> VenueFeed {
        let h = &self.capture.header;
        VenueFeed {
            venue: h.venue,
            url: format!("capture:{}", self.name),
            rest_url: Some(format!("capture:{}", self.name)),
            channels: Channel::ALL.to_vec(),
            book_depth: 10,
            instruments: h.instruments.clone(),
            silence: None,
            rotate_after: None,
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(5),
        }
    }
}

/// Spawns a replay onto `bus`; the task ends at `shutdown` (or when a
/// capture played once has ended and `shutdown` comes).
pub(crate) fn spawn_replay(
    config: ReplayConfig,
    bus: Arc<dyn Bus>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let feed = config.feed();
    let span = tracing::info_span!("replay", venue = %feed.venue, capture = %config.name);
    tokio::spawn(
        async move {
            let metrics = VenueMetrics::new(feed.venue.name());
            let connect = connector(config, feed.clone(), metrics);
            if let Err(e) = Lane::run(&feed, bus, connect, shutdown).await {
                tracing::error!(error = %e, "replay ended");
            }
        }
        .instrument(span),
    )
}

fn connector(config: ReplayConfig, feed: VenueFeed, metrics: VenueMetrics) -> Connector {
    Box::new(move |id, tx, stop| {
        let config = config.clone();
        let feed = feed.clone();
        let metrics = metrics.clone();
        tokio::spawn(
            async move {
                let report = Reporter::new(id, tx);
                let end = play(&config, &feed, &metrics, &report, &stop).await;
                if let Some(event) = end {
                    report.send(event).await;
                }
            }
            .in_current_span(),
        );
    })
}

/// Plays the capture (in a loop if asked) until it ends or `stop`.
async fn play(
    config: &ReplayConfig,
    feed: &VenueFeed,
    metrics: &VenueMetrics,
    report: &Reporter,
    stop: &CancellationToken,
) -> Option<SourceEvent> {
    let frames = &config.capture.frames;
    let mut logged = std::collections::HashSet::new();
    loop {
        let mut adapter = venue::adapter(feed);
        // A live connection would send these; a replay only needs the
        // adapter to know what it subscribed.
        let _ = adapter.subscribe();
        if !report.send(SourceEvent::Up { fresh: true }).await {
            return None;
        }
        let start = Instant::now();
        let first_rx = frames.first().map_or(0, |f| f.rx);
        let mut out = Output::default();
        for (pos, frame) in frames.iter().enumerate() {
            if frame.source != Source::Ws {
                continue;
            }
            let due = start
                + config
                    .speed
                    .scale(Duration::from_micros(frame.rx.saturating_sub(first_rx)));
            tokio::select! {
                biased;
                () = stop.cancelled() => return None,
                () = tokio::time::sleep_until(due) => {}
            }
            out.clear();
            // The adapter sees the recorded receive time; its events are
            // then moved to now, `ts` and `rx` alike, so a replay looks
            // current to clients while venue→ingest latency stays the
            // recorded one (and `ts = rx` venues keep `ts = rx`).
            let rx = frame.rx;
            if let Err(e) = adapter.on_text(&frame.text, rx, &mut out) {
                metrics.parse_error(e.kind());
                if logged.insert(e.kind()) {
                    tracing::warn!(error = %e, line = pos + 2, "skipping a captured frame that does not parse; counting further ones of this kind without logging");
                }
            }
            answer_fetches(adapter.as_mut(), frames, pos, rx, &mut out, metrics);
            let shift = now_us().saturating_sub(rx);
            for event in &mut out.events {
                event.ts = event.ts.saturating_add(shift);
                event.rx = event.rx.saturating_add(shift);
            }
            if !forward(&mut out, metrics, report).await {
                return None;
            }
        }
        if !config.looped {
            return Some(SourceEvent::Ended);
        }
        tokio::select! {
            biased;
            () = stop.cancelled() => return None,
            () = tokio::time::sleep(LOOP_PAUSE) => {}
        }
    }
}

/// Answers the adapter's REST requests from the capture: the first
/// recorded body of the same path at or after `pos` (what the recording
/// got when it asked), else the last one before it. Sends and rotations
/// mean nothing in a replay and are dropped.
fn answer_fetches(
    adapter: &mut dyn Adapter,
    frames: &[CaptureFrame],
    pos: usize,
    rx: u64,
    out: &mut Output,
    metrics: &VenueMetrics,
) {
    let mut used = Vec::new();
    for _ in 0..MAX_FETCH_ROUNDS {
        let fetches: Vec<_> = out
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Fetch { instrument, path } => Some((instrument.clone(), path.clone())),
                _ => None,
            })
            .collect();
        out.actions.clear();
        if fetches.is_empty() {
            return;
        }
        for (instrument, path) in fetches {
            let is_it = |(i, f): &(usize, &CaptureFrame)| {
                !used.contains(i) && matches!(&f.source, Source::Rest(p) if *p == path)
            };
            let found = frames
                .iter()
                .enumerate()
                .skip(pos)
                .find(|x| is_it(x))
                .or_else(|| frames[..pos].iter().enumerate().rev().find(|x| is_it(x)));
            let Some((i, body)) = found else {
                tracing::debug!(%instrument, %path, "the capture holds no REST snapshot for this request");
                continue;
            };
            used.push(i);
            if let Err(e) = adapter.on_rest(&instrument, &body.text, rx, out) {
                metrics.parse_error(e.kind());
            }
        }
    }
    out.actions.clear();
}
