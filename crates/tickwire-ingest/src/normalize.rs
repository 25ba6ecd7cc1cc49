//! `tickwire normalize`: raw venue frames in (one per line, or a capture
//! file), canonical updates out as NDJSON, through the real adapter. The
//! tool for checking what a venue's new message format turns into.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use tickwire_model::{Epoch, Instrument};

use crate::adapter::{Action, Output};
use crate::capture::{CaptureFrame, Source};
use crate::feed::VenueFeed;
use crate::runner::{Sequencer, now_us};
use crate::venue;

/// What a run of `normalize` saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NormalizeStats {
    /// Frames read.
    pub frames: u64,
    /// Canonical updates written.
    pub updates: u64,
    /// Frames that did not parse, by error kind.
    pub errors: HashMap<&'static str, u64>,
    /// Frames without market data, by note kind.
    pub notes: HashMap<&'static str, u64>,
}

/// Reads frames from `input` and writes one JSON object per line to `out`:
/// each canonical update (the same JSON clients receive, `seq` counted
/// from 1 per topic, epoch `normalize`), and a `status` line when a book
/// breaks or recovers. Errors go to `errors` as `line N: ...` and the run
/// goes on.
///
/// Input lines are raw venue frames; lines of a capture file (`{"rx":..}`
/// and its header) are read as such, with their receive times, and its REST
/// bodies answer the adapter's snapshot requests.
pub fn normalize(
    feed: &VenueFeed,
    input: impl BufRead,
    mut out: impl Write,
    mut errors: impl Write,
) -> std::io::Result<NormalizeStats> {
    let mut adapter = venue::adapter(feed);
    let _ = adapter.subscribe();
    let epoch = Epoch::new("normalize").map_err(std::io::Error::other)?;
    let mut sequencer = Sequencer::with_epoch(epoch);
    let mut stats = NormalizeStats::default();
    let mut pending: Vec<(Instrument, String)> = Vec::new();
    let mut output = Output::default();
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("{\"tickwire_capture\"") {
            continue;
        }
        let (rx, source, text) = if trimmed.starts_with("{\"rx\":") {
            match CaptureFrame::parse(trimmed) {
                Ok(f) => (f.rx, f.source, f.text),
                Err(e) => {
                    writeln!(errors, "line {}: bad capture line: {e}", n + 1)?;
                    continue;
                }
            }
        } else {
            (now_us(), Source::Ws, trimmed.to_owned())
        };
        stats.frames += 1;
        output.clear();
        let result = match &source {
            Source::Ws => adapter.on_text(&text, rx, &mut output),
            Source::Rest(path) => {
                let mut result = Ok(());
                let asked: Vec<_> = pending.iter().filter(|(_, p)| p == path).cloned().collect();
                pending.retain(|(_, p)| p != path);
                for (instrument, _) in asked {
                    if let Err(e) = adapter.on_rest(&instrument, &text, rx, &mut output) {
                        result = Err(e);
                    }
                }
                result
            }
        };
        if let Err(e) = result {
            *stats.errors.entry(e.kind()).or_default() += 1;
            writeln!(errors, "line {}: {e}", n + 1)?;
        }
        for note in &output.notes {
            *stats.notes.entry(note.kind()).or_default() += 1;
        }
        for action in output.actions.drain(..) {
            if let Action::Fetch { instrument, path } = action {
                if !pending.contains(&(instrument.clone(), path.clone())) {
                    pending.push((instrument, path));
                }
            }
        }
        for (instrument, broke) in &output.books {
            let line = match broke {
                Some(reason) => {
                    serde_json::json!({"type":"status","symbol":instrument.as_str(),"state":"stale","reason":reason})
                }
                None => {
                    serde_json::json!({"type":"status","symbol":instrument.as_str(),"state":"live"})
                }
            };
            writeln!(out, "{line}")?;
        }
        for event in &output.events {
            let update = sequencer.stamp(event);
            out.write_all(update.bytes())?;
            out.write_all(b"\n")?;
            stats.updates += 1;
        }
    }
    out.flush()?;
    Ok(stats)
}
