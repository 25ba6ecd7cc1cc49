//! `tickwire gateway`: a gateway on its own, fed from Redis, until ctrl-c
//! or SIGTERM, then a graceful drain.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use tickwire_gateway::Gateway;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::common::{self, ConfigArgs};
use crate::bus;

/// Serve clients from a Redis bus: WebSocket, HTTP and metrics, no feeds.
///
/// Run any number of these, on any machines, beside one or more `tickwire
/// ingest` on the same Redis (or Redis Cluster): each gateway subscribes in
/// Redis only to the topics its own clients want, and all of them serve
/// the same streams (same `epoch` and `seq`), so a client can resume on
/// another gateway with `from_seq`.
///
/// Example:
///   tickwire gateway --bus redis://127.0.0.1:6379 --listen 0.0.0.0:8080
///
/// Prints the URL it serves on stdout once it accepts connections. While
/// Redis is unreachable it keeps every client connection, tells clients
/// their instruments are stale, answers 503 on /readyz, and reconnects;
/// when Redis is back it sends fresh snapshots. Ctrl-c or SIGTERM drains:
/// /readyz answers 503 and new WebSocket clients are refused at once,
/// connected clients keep their data until their turn to be closed with
/// 1012 (service restart), the turns spread over `gateway.drain_window_ms`
/// so they do not all reconnect in the same second; the process exits
/// within `drain_window_ms + shutdown_timeout_ms`. A second signal exits
/// at once.
///
/// Configuration: as for `tickwire run` (`listen`, [gateway], [bus]).
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct GatewayArgs {
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
}

/// Runs until a signal, then drains.
pub(crate) async fn run(args: GatewayArgs) -> anyhow::Result<ExitCode> {
    if args.check {
        return super::check::check(super::check::Role::Gateway, &args.common, args.listen, &[]);
    }
    let (mut signals, config) = common::serving_setup(&args.common, args.listen)?;
    common::require_redis(&config, "gateway")?;
    // Before binding or connecting: a bad [auth] stops start-up at once.
    let gateway_config = common::gateway_config(&config, false)?;
    info!(
        file = %common::describe_file(&args.common),
        listen = %config.listen,
        bus = %config.bus.describe(),
        "configuration loaded"
    );
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let connected = bus::connect(&config.bus).await?;

    let shutdown = CancellationToken::new();
    let _stop_on_exit = shutdown.clone().drop_guard();
    let gateway = Gateway::start(listener, connected.bus, gateway_config, shutdown.clone())
        .await
        .context("cannot start the gateway")?;

    common::announce(gateway.local_addr(), gateway.is_tls());

    let signal = signals.next().await;
    info!(
        signal,
        "shutting down: draining clients (a second signal exits at once)"
    );
    shutdown.cancel();
    Ok(common::drain(&mut signals, gateway.wait()).await)
}
