//! `tickwire replay`: captures played through the real adapters and
//! served like `tickwire run`, or served as a fake venue.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Args;
use tickwire_ingest::capture::Capture;
use tickwire_ingest::serve::FakeOptions;
use tickwire_ingest::{FeedsConfig, ReplayConfig, Speed};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::common::{self, ConfigArgs, Feeds, Signals};
use super::run;

/// Replay captured venue sessions, or serve one as a fake venue.
///
/// Without --serve: plays each capture through its venue's real adapter
/// (books, checksums, resyncs) at its recorded pace times --speed, and
/// serves the result exactly like `tickwire run` (same gateway, bus and
/// configuration); with --loop each capture starts over at its end.
///
/// With --serve ADDR: becomes a local fake of the capture's venue: a
/// WebSocket (any path) that answers the venue's subscribe handshake and
/// pings and broadcasts the capture as a live feed, plus the venue's REST
/// snapshot endpoint; point a feed file's `url` (and `rest_url`) at it.
///
/// Examples:
///   tickwire replay feeds/kraken/capture.jsonl --speed 10 --loop
///   tickwire replay --serve 127.0.0.1:9443 feeds/binance/capture.jsonl --loop
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct ReplayArgs {
    /// Capture files (`tickwire record`, or feeds/<venue>/capture.jsonl).
    #[arg(value_name = "CAPTURE", required = true, num_args = 1..)]
    captures: Vec<PathBuf>,
    /// Pace factor: 2 plays twice as fast as recorded.
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    speed: f64,
    /// Start each capture over at its end.
    #[arg(long = "loop")]
    looped: bool,
    /// Serve one capture as a fake venue on ADDR instead.
    #[arg(long, value_name = "ADDR")]
    serve: Option<SocketAddr>,
    /// Address the gateway listens on (not with --serve).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    common: ConfigArgs,
}

/// Replays or serves until a signal.
pub(crate) async fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let Some(speed) = Speed::new(args.speed) else {
        bail!("--speed must be a positive number, not {}", args.speed);
    };
    let mut captures = Vec::new();
    for path in &args.captures {
        let capture =
            Capture::load(path).with_context(|| format!("bad capture {}", path.display()))?;
        captures.push((path.display().to_string(), capture));
    }
    if let Some(addr) = args.serve {
        let [(name, capture)] = <[_; 1]>::try_from(captures)
            .map_err(|_| anyhow::anyhow!("--serve plays one capture; give exactly one"))?;
        return serve(addr, &name, capture, speed, args.looped).await;
    }
    let feeds = captures
        .into_iter()
        .map(|(name, capture)| Feeds {
            config: FeedsConfig::Replay(ReplayConfig {
                name: name.clone(),
                capture: Arc::new(capture),
                speed,
                looped: args.looped,
            }),
            name,
        })
        .collect();
    run::serve(&args.common, args.listen, Some(feeds)).await
}

async fn serve(
    addr: SocketAddr,
    name: &str,
    capture: Capture,
    speed: Speed,
    looped: bool,
) -> anyhow::Result<ExitCode> {
    let mut signals = Signals::new().context("cannot install signal handlers")?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let venue = capture.header.venue;
    let options = FakeOptions {
        speed,
        looped,
        ..FakeOptions::default()
    };
    let shutdown = CancellationToken::new();
    let server = tickwire_ingest::serve::serve(listener, capture, options, shutdown.clone())
        .context("cannot start the fake venue")?;
    let addr = server.local_addr();
    common::print_line(&format!(
        "tickwire fake {venue} serving {name} on ws://{addr}/ (REST on http://{addr}/)"
    ));
    info!(%addr, %venue, "fake venue serving");
    let signal = signals.next().await;
    info!(signal, "stopping the fake venue");
    shutdown.cancel();
    Ok(ExitCode::SUCCESS)
}
