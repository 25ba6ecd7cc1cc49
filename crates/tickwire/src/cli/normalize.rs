//! `tickwire normalize`: raw venue frames in, canonical updates out.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use tickwire_ingest::FeedsConfig;
use tickwire_ingest::feed::VenueKind;

/// Print the canonical updates of raw venue frames as NDJSON.
///
/// Reads one venue frame per line (from FILE, or stdin without one), runs
/// it through the venue's real adapter and prints each canonical update as
/// one JSON line: the same JSON clients receive, with `seq` counted per
/// topic. Book breaks and recoveries print as `status` lines. Frames that
/// do not parse are reported on stderr with their line number; the rest go
/// on. A capture file (`tickwire record`) is read too, with its receive
/// times and REST snapshots. The tool to reach for when a venue changes its
/// format.
///
/// Instruments map through the venue's embedded feed definition
/// (`feeds/<venue>/feed.toml`), or --feeds FILE.
///
/// Example:
///   tickwire normalize --venue binance frames.txt
///   websocat wss://stream.binance.com/ws/btcusdt@trade | tickwire normalize --venue binance
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct NormalizeArgs {
    /// The venue: coinbase, binance, kraken, okx or bybit.
    #[arg(long, value_name = "VENUE")]
    venue: String,
    /// A feed file mapping the venue's instrument names (default: the
    /// embedded feeds/<venue>/feed.toml).
    #[arg(long, value_name = "FILE")]
    feeds: Option<PathBuf>,
    /// Frames to read; stdin without it.
    file: Option<PathBuf>,
}

/// Normalizes the input; exit code 1 if any frame failed to parse.
pub(crate) fn run(args: NormalizeArgs) -> anyhow::Result<ExitCode> {
    let Some(kind) = VenueKind::from_name(&args.venue) else {
        let known: Vec<_> = VenueKind::ALL.iter().map(|v| v.name()).collect();
        bail!(
            "unknown venue {:?}; known: {}",
            args.venue,
            known.join(", ")
        );
    };
    let feed = match &args.feeds {
        None => tickwire_ingest::venue::default_feed(kind),
        Some(path) => {
            let config = FeedsConfig::load(path).context("bad feeds file")?;
            match config.venue() {
                Some(f) if f.venue == kind => f.clone(),
                Some(f) => bail!("{} is a {} feed, not {kind}", path.display(), f.venue),
                None => bail!("{} has no [venue] table", path.display()),
            }
        }
    };
    let input: Box<dyn BufRead> = match &args.file {
        Some(path) => Box::new(BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let stdout = std::io::stdout().lock();
    let stats = tickwire_ingest::normalize::normalize(
        &feed,
        input,
        std::io::BufWriter::new(stdout),
        std::io::stderr().lock(),
    )
    .context("cannot read the frames or write the updates")?;
    let errors: u64 = stats.errors.values().sum();
    eprintln!(
        "normalize: {} frames, {} updates, {} errors",
        stats.frames, stats.updates, errors
    );
    Ok(if errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
