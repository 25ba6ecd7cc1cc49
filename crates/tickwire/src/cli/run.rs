//! `tickwire run`: ingest, bus and gateway in one process, until ctrl-c or
//! SIGTERM, then a graceful drain.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use tickwire_bus::{Bus, MemoryBus};
use tickwire_gateway::Gateway;
use tickwire_ingest::FeedsConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{self, BusKind, Config};

/// Run the whole service in one process: demo or configured feeds, the
/// in-memory bus, and the gateway (WebSocket, HTTP, metrics).
///
/// With no configuration at all it plays the embedded demo market on
/// 127.0.0.1:8080: open http://127.0.0.1:8080 in a browser, or run
/// `tickwire sub coinbase:BTC-USD`. Prints the URL it serves on stdout once
/// it accepts connections. Ctrl-c or SIGTERM closes client connections with
/// 1001 and waits for them (`gateway.shutdown_timeout_ms`); a second signal
/// exits at once.
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
    /// Configuration file (tickwire.toml); without one, defaults and the
    /// demo feeds.
    #[arg(long, value_name = "FILE", env = config::ENV_CONFIG_FILE)]
    config: Option<PathBuf>,
}

/// Runs until a signal, then drains.
pub(crate) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    if tickwire_gateway::install_metrics().is_none() {
        warn!("another metrics recorder is installed; /metrics will be empty");
    }
    let mut signals = Signals::new().context("cannot install signal handlers")?;

    let env = config::process_env()?;
    let loaded = config::load_file(args.config.as_deref(), env)?;
    for var in &loaded.ignored_env {
        warn!(%var, "not a configuration variable; ignored");
    }
    let mut config: Config = loaded.config;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }

    info!(
        file = %args.config.as_deref().map_or("(none)".into(), |p| p.display().to_string()),
        listen = %config.listen,
        bus = ?config.bus.kind,
        feeds = %config.feeds.file.as_deref().map_or("(embedded demo)".into(), |p| p.display().to_string()),
        "configuration loaded"
    );
    let feeds = match &config.feeds.file {
        Some(path) => FeedsConfig::load(path).context("bad feeds file")?,
        None => FeedsConfig::demo(),
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let bus: Arc<dyn Bus> = match config.bus.kind {
        BusKind::Memory => Arc::new(MemoryBus::new(config.bus.memory())),
    };

    let shutdown = CancellationToken::new();
    // Whatever fails below, the feeds already spawned stop with us.
    let _stop_on_exit = shutdown.clone().drop_guard();
    let feeds_task = tickwire_ingest::spawn_feeds(&feeds, bus.clone(), shutdown.clone())
        .context("cannot start the feeds")?;
    let gateway = Gateway::start(listener, bus, config.gateway, shutdown.clone())
        .await
        .context("cannot start the gateway")?;

    let addr = gateway.local_addr();
    announce(addr);

    let signal = signals.next().await;
    info!(signal, "shutting down: closing connections");
    shutdown.cancel();
    let drained = async {
        gateway.wait().await;
        if let Err(e) = feeds_task.await {
            warn!(error = %e, "the feeds task ended abnormally");
        }
    };
    tokio::select! {
        () = drained => {
            info!("stopped");
            Ok(ExitCode::SUCCESS)
        }
        signal = signals.next() => {
            warn!(signal, "second signal: exiting without waiting for connections");
            Ok(ExitCode::from(130))
        }
    }
}

/// Tells the user (stdout, for scripts) and the log where to connect.
fn announce(addr: SocketAddr) {
    let line = format!("tickwire serving on http://{addr} (ws://{addr}/v1/ws)");
    let mut out = std::io::stdout().lock();
    // A closed stdout must not stop the server: the log says it too.
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        warn!(error = %e, "cannot write the URL to stdout");
    }
    info!(%addr, "serving: open http://{addr} or connect to ws://{addr}/v1/ws");
}

/// Ctrl-c and (on Unix) SIGTERM, installed before serving so that a signal
/// sent right after start-up is a graceful stop, not a kill.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Self {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
        })
    }

    /// The next signal's name.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                () = super::ctrl_c() => "SIGINT",
                _ = self.term.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            super::ctrl_c().await;
            "SIGINT"
        }
    }
}
