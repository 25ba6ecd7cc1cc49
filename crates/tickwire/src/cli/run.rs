//! `tickwire run`: ingest, bus and gateway in one process, until ctrl-c or
//! SIGTERM, then a graceful drain.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use tickwire_gateway::Gateway;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::common::{self, ConfigArgs, Feeds};
use crate::bus;

/// Run the whole service in one process: demo or configured feeds, the
/// bus, and the gateway (WebSocket, HTTP, metrics).
///
/// With no configuration at all it replays the embedded sessions of five
/// venues (feeds/<venue>/capture.jsonl: Coinbase, Binance, Kraken, OKX,
/// Bybit) through their real adapters, in a loop at the recorded pace, over
/// the in-memory bus on 127.0.0.1:8080: open http://127.0.0.1:8080 in a
/// browser, or run `tickwire sub coinbase:BTC-USD`. With --bus
/// redis://HOST:PORT (or redis-cluster://...) the same process publishes
/// onto Redis and serves from it, like one `tickwire ingest` plus one
/// `tickwire gateway`. Prints the URL it serves on stdout once it accepts
/// connections. Ctrl-c or SIGTERM drains: /readyz answers 503 and new
/// WebSocket clients are refused at once, connected clients keep their
/// data until their turn to be closed with 1012 (service restart), the
/// turns spread over `gateway.drain_window_ms`; then the feeds stop and
/// the process exits, within `drain_window_ms + shutdown_timeout_ms`. A
/// second signal exits at once.
///
/// Configuration: `--config FILE` (a `tickwire.toml` with `listen` and the
/// tables [gateway], [bus], [feeds]); every key can be overridden by an
/// environment variable `TICKWIRE_<TABLE>_<KEY>` (e.g.
/// TICKWIRE_GATEWAY_MAX_SUBSCRIPTIONS=10, TICKWIRE_LISTEN=0.0.0.0:8080);
/// flags override both.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Address to listen on (overrides `listen`); port 0 picks a free port
    /// and the real address is printed.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    common: ConfigArgs,
    /// Validate the configuration and print a summary; binds no port and
    /// connects to nothing (exit 0, or 1 naming the key at fault).
    #[arg(long)]
    check: bool,
    /// Feeds files to play side by side (overrides `feeds.file`): a live
    /// venue (feeds/<venue>/feed.toml) or a synthetic market
    /// (feeds/demo.toml); without any, the embedded venue captures.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    feeds: Vec<PathBuf>,
}

/// Runs until a signal, then drains.
pub(crate) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    if args.check {
        return super::check::check(
            super::check::Role::Run,
            &args.common,
            args.listen,
            &args.feeds,
        );
    }
    serve_with(&args.common, args.listen, None, &args.feeds).await
}

/// Serves `feeds` (or the configured ones) with the gateway in this
/// process until a signal, then drains: `run`, and `replay` without
/// `--serve`.
pub(crate) async fn serve(
    common_args: &ConfigArgs,
    listen: Option<SocketAddr>,
    feeds: Option<Vec<Feeds>>,
) -> anyhow::Result<ExitCode> {
    serve_with(common_args, listen, feeds, &[]).await
}

async fn serve_with(
    common_args: &ConfigArgs,
    listen: Option<SocketAddr>,
    feeds: Option<Vec<Feeds>>,
    feed_files: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    let (mut signals, config) = common::serving_setup(common_args, listen)?;
    let feeds = match feeds {
        Some(f) => f,
        None => common::load_feeds(feed_files, &config)?,
    };
    info!(
        file = %common::describe_file(common_args),
        listen = %config.listen,
        bus = %config.bus.describe(),
        feeds = %common::describe_feeds(&feeds),
        "configuration loaded"
    );
    // Before binding or connecting: a bad [auth] stops start-up at once.
    let gateway_config = common::gateway_config(&config, true)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let connected = bus::connect(&config.bus).await?;

    // Two stops: clients keep live data while they are drained, so the
    // feeds stop only once the gateway is done.
    let drain = CancellationToken::new();
    let stop_feeds = CancellationToken::new();
    // Whatever fails below, what was already spawned stops with us.
    let _stop_on_exit = (drain.clone().drop_guard(), stop_feeds.clone().drop_guard());
    let feeds_tasks = common::spawn_feeds(&feeds, &connected.bus, &stop_feeds)?;
    let gateway = Gateway::start(
        listener,
        connected.bus.clone(),
        gateway_config,
        drain.clone(),
    )
    .await
    .context("cannot start the gateway")?;

    common::announce(gateway.local_addr(), gateway.is_tls());

    let signal = signals.next().await;
    info!(
        signal,
        "shutting down: draining clients, then the feeds (a second signal exits at once)"
    );
    drain.cancel();
    let drained = async {
        gateway.wait().await;
        stop_feeds.cancel();
        common::join_feeds(feeds_tasks).await;
        connected.flush().await;
    };
    Ok(common::drain(&mut signals, drained).await)
}
