//! `tickwire record`: a live venue session written to a capture file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use tickwire_ingest::FeedsConfig;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::common::{self, Signals};

/// Record a venue's raw frames, with receive times, into a capture file.
///
/// Connects as `tickwire ingest` would (subscribe, pings, REST snapshots,
/// reconnects with backoff) to the venue of a feed file
/// (`feeds/<venue>/feed.toml`) and writes every frame it receives, byte for
/// byte, until ctrl-c, SIGTERM or --duration. The capture replays with
/// `tickwire replay` and serves with `tickwire replay --serve`.
///
/// Example:
///   tickwire record --feeds feeds/binance/feed.toml --out binance.jsonl --duration 600
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct RecordArgs {
    /// The venue feed file to record (a `[venue]` table).
    #[arg(long, value_name = "FILE")]
    feeds: PathBuf,
    /// The capture file to write (replaced if it exists).
    #[arg(long, value_name = "CAPTURE")]
    out: PathBuf,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<u64>,
}

/// Records until a signal or the duration.
pub(crate) async fn run(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let mut signals = Signals::new().context("cannot install signal handlers")?;
    let config = FeedsConfig::load(&args.feeds).context("bad feeds file")?;
    let Some(feed) = config.venue() else {
        bail!(
            "{} has no [venue] table: record needs a live venue feed (e.g. feeds/binance/feed.toml)",
            args.feeds.display()
        );
    };
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let duration = args.duration.map(Duration::from_secs);
    tokio::spawn(async move {
        match duration {
            Some(d) => tokio::select! {
                _ = signals.next() => {}
                () = tokio::time::sleep(d) => {}
            },
            None => {
                signals.next().await;
            }
        }
        stop.cancel();
    });
    common::print_line(&format!(
        "tickwire recording {} into {}",
        feed.url,
        args.out.display()
    ));
    let stats = tickwire_ingest::record::record(feed, std::io::BufWriter::new(file), shutdown)
        .await
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    info!(
        frames = stats.frames,
        connections = stats.connections,
        "recording stopped"
    );
    common::print_line(&format!(
        "recorded {} frames over {} connection(s) into {}",
        stats.frames,
        stats.connections,
        args.out.display()
    ));
    Ok(ExitCode::SUCCESS)
}
