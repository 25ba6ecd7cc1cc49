//! `tickwire record`: a venue session written to a capture file, raw
//! frames with their receive times, through the same connection code as a
//! live feed (subscribe, pings, REST snapshots, reconnects).

use std::io::Write;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::capture::{CaptureFrame, CaptureHeader, CaptureWriter};
use crate::feed::VenueFeed;
use crate::live::{self, SourceEvent};
use crate::metrics::VenueMetrics;

/// How often the capture is flushed to disk while recording.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// What a recording wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordStats {
    /// Frames written (WebSocket and REST).
    pub frames: u64,
    /// Connections opened.
    pub connections: u64,
}

/// Records `feed` into `out` until `shutdown`, reconnecting with backoff.
/// Fails only when writing fails.
pub async fn record<W: Write>(
    feed: &VenueFeed,
    out: W,
    shutdown: CancellationToken,
) -> std::io::Result<RecordStats> {
    let header = CaptureHeader {
        venue: feed.venue,
        synthetic: false,
        note: format!(
            "recorded by tickwire {} from {}",
            env!("CARGO_PKG_VERSION"),
            feed.url
        ),
        instruments: feed.instruments.clone(),
    };
    let mut writer = CaptureWriter::new(out, &header)?;
    let (tap_tx, mut tap) = mpsc::channel::<CaptureFrame>(4096);
    let metrics = VenueMetrics::new(feed.venue.name());
    let connect = live::connector(feed.clone(), metrics, Some(tap_tx));
    let (tx, mut reports) = mpsc::channel(1024);
    let mut backoff = Backoff::new(feed.backoff_min, feed.backoff_max);
    let mut stats = RecordStats::default();
    let mut id = 1;
    let mut stop = CancellationToken::new();
    connect(id, tx.clone(), stop.clone());
    stats.connections += 1;
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(frame) = tap.recv() => {
                writer.write(&frame)?;
                stats.frames += 1;
            }
            Some(report) = reports.recv() => {
                if report.id != id {
                    continue;
                }
                match report.event {
                    SourceEvent::Up { .. } => tracing::info!("recording: connected"),
                    SourceEvent::Output(out) => {
                        if !out.events.is_empty() {
                            backoff.reset();
                        }
                    }
                    SourceEvent::Down { reason, detail } => {
                        let delay = backoff.next_delay();
                        tracing::warn!(reason, %detail, delay_ms = delay.as_millis() as u64, "recording: connection lost; reconnecting");
                        tokio::select! {
                            () = shutdown.cancelled() => break,
                            () = tokio::time::sleep(delay) => {}
                        }
                        id += 1;
                        stop = CancellationToken::new();
                        connect(id, tx.clone(), stop.clone());
                        stats.connections += 1;
                    }
                    SourceEvent::Ended => break,
                }
            }
            _ = flush.tick() => writer.flush()?,
        }
    }
    stop.cancel();
    while let Ok(frame) = tap.try_recv() {
        writer.write(&frame)?;
        stats.frames += 1;
    }
    writer.flush()?;
    Ok(stats)
}
