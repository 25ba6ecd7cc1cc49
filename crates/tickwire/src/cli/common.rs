//! What `run`, `ingest` and `gateway` share: the `--config` and `--bus`
//! flags, loading the configuration and the feeds files, spawning the
//! feeds, signals, the line that tells scripts where to connect, and the
//! drain after a signal.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Args;
use tickwire_bus::Bus;
use tickwire_ingest::FeedsConfig;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{self, BusKind, Config};

/// Exit code when a second signal cuts the drain short, as a shell
/// reports SIGINT.
const EXIT_INTERRUPTED: u8 = 130;

/// `--config` and `--bus`, the same for every serving command.
#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// Configuration file (tickwire.toml); without one, defaults. One file
    /// can serve a whole deployment: each command reads the keys it uses.
    #[arg(long, value_name = "FILE", env = config::ENV_CONFIG_FILE)]
    config: Option<PathBuf>,
    /// The bus: redis://HOST:PORT (one Redis),
    /// redis-cluster://HOST:PORT,HOST:PORT,... (Redis Cluster; any of its
    /// nodes), or memory (`run` only, its default). Overrides `bus.kind`
    /// and `bus.url`. A Redis that is down is waited for, never a reason to
    /// exit.
    #[arg(long, value_name = "URL")]
    bus: Option<String>,
}

/// What every command that serves clients does first: the metrics
/// recorder, the signal handlers, and the configuration with `--listen`
/// applied.
pub(crate) fn serving_setup(
    args: &ConfigArgs,
    listen: Option<SocketAddr>,
) -> anyhow::Result<(Signals, Config)> {
    if tickwire_gateway::install_metrics().is_none() {
        warn!("another metrics recorder is installed; /metrics will be empty");
    }
    let signals = Signals::new().context("cannot install signal handlers")?;
    let mut config = load_config(args)?;
    if let Some(listen) = listen {
        config.listen = listen;
    }
    Ok((signals, config))
}

/// Loads the configuration: the file, `TICKWIRE_*` variables, then
/// `--bus`. Warns about variables that name no key.
pub(crate) fn load_config(args: &ConfigArgs) -> anyhow::Result<Config> {
    let env = config::process_env()?;
    let flags = args
        .bus
        .as_deref()
        .map(config::bus_flag)
        .unwrap_or_default();
    let loaded = config::load_file(args.config.as_deref(), env, &flags)?;
    for var in &loaded.ignored_env {
        warn!(%var, "not a configuration variable; ignored");
    }
    Ok(loaded.config)
}

/// Refuses a configuration without a Redis bus for `command` (`ingest`
/// or `gateway`): both exist to share one bus between processes.
pub(crate) fn require_redis(config: &Config, command: &str) -> anyhow::Result<()> {
    if config.bus.kind == BusKind::Redis {
        return Ok(());
    }
    match command {
        "gateway" => bail!(
            "`tickwire gateway` is fed from Redis: pass --bus redis://HOST:PORT (or set \
             `bus.kind = \"redis\"` and `bus.url`); `tickwire run` serves the memory bus"
        ),
        _ => bail!(
            "`tickwire ingest` publishes for gateways in other processes: pass --bus \
             redis://HOST:PORT (or set `bus.kind = \"redis\"` and `bus.url`); `tickwire run` \
             plays the feeds over the memory bus"
        ),
    }
}

/// The configuration file in words, for the start-up log line.
pub(crate) fn describe_file(args: &ConfigArgs) -> String {
    args.config
        .as_deref()
        .map_or("(none)".into(), |p| p.display().to_string())
}

/// One feeds file to play, named for logs and errors.
pub(crate) struct Feeds {
    /// The file, or the embedded capture's name.
    pub(crate) name: String,
    /// What it defines.
    pub(crate) config: FeedsConfig,
}

/// The feeds to play: the `--feeds` files if any, else `feeds.file`, else
/// the embedded demo. Fails on a bad file, or when two files play the same
/// instrument (two sequencers on one topic would interleave two `seq`
/// runs).
pub(crate) fn load_feeds(flags: &[PathBuf], config: &Config) -> anyhow::Result<Vec<Feeds>> {
    let files: Vec<PathBuf> = if flags.is_empty() {
        config.feeds.file.iter().cloned().collect()
    } else {
        flags.to_vec()
    };
    let feeds: Vec<Feeds> = if files.is_empty() {
        tickwire_ingest::venue::demo_replays()
            .into_iter()
            .map(|(name, replay)| Feeds {
                name: format!("{name} (embedded demo, looping)"),
                config: FeedsConfig::Replay(replay),
            })
            .collect()
    } else {
        files
            .iter()
            .map(|path| {
                Ok(Feeds {
                    name: path.display().to_string(),
                    config: FeedsConfig::load(path).context("bad feeds file")?,
                })
            })
            .collect::<anyhow::Result<_>>()?
    };
    if let Some((symbol, first, second)) = overlap(&feeds) {
        bail!(
            "{symbol} is played by two feeds files, {first} and {second}; keep each instrument in one"
        );
    }
    Ok(feeds)
}

/// The first instrument that two feeds (two files, or one file given
/// twice) play, with their names.
fn overlap(feeds: &[Feeds]) -> Option<(String, &str, &str)> {
    let mut owner: HashMap<String, usize> = HashMap::new();
    for (index, feed) in feeds.iter().enumerate() {
        for instrument in feed.config.instruments() {
            let symbol = instrument.to_string();
            match owner.get(&symbol) {
                Some(&first) if first != index => {
                    return Some((symbol, feeds[first].name.as_str(), feed.name.as_str()));
                }
                _ => {
                    owner.insert(symbol, index);
                }
            }
        }
    }
    None
}

/// The feeds in words, for the start-up log line.
pub(crate) fn describe_feeds(feeds: &[Feeds]) -> String {
    feeds
        .iter()
        .map(|f| f.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Spawns every feed onto `bus`, side by side; each task ends when
/// `shutdown` is cancelled.
pub(crate) fn spawn_feeds(
    feeds: &[Feeds],
    bus: &Arc<dyn Bus>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    feeds
        .iter()
        .map(|f| {
            tickwire_ingest::spawn_feeds(&f.config, bus.clone(), shutdown.clone())
                .with_context(|| format!("cannot start the feeds of {}", f.name))
        })
        .collect()
}

/// Waits for feed tasks to end (after `shutdown` was cancelled).
pub(crate) async fn join_feeds(tasks: Vec<JoinHandle<()>>) {
    for task in tasks {
        if let Err(e) = task.await {
            warn!(error = %e, "a feeds task ended abnormally");
        }
    }
}

/// Tells the user (stdout, for scripts) and the log where to connect.
pub(crate) fn announce(addr: SocketAddr, tls: bool) {
    let (http, ws) = if tls {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    print_line(&format!(
        "tickwire serving on {http}://{addr} ({ws}://{addr}/v1/ws)"
    ));
    info!(%addr, "serving: open {http}://{addr} or connect to {ws}://{addr}/v1/ws");
}

/// One line on stdout, flushed at once for scripts that wait for it.
pub(crate) fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout must not stop the server: the log says it too.
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        warn!(error = %e, "cannot write to stdout");
    }
}

/// After the first signal: waits for `drained`, unless a second signal
/// comes first, which exits at once.
pub(crate) async fn drain(signals: &mut Signals, drained: impl Future<Output = ()>) -> ExitCode {
    tokio::select! {
        () = drained => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        signal = signals.next() => {
            warn!(signal, "second signal: exiting without waiting");
            ExitCode::from(EXIT_INTERRUPTED)
        }
    }
}

/// Ctrl-c and (on Unix) SIGTERM, installed before serving so that a signal
/// sent right after start-up is a graceful stop, not a kill.
pub(crate) struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers.
    pub(crate) fn new() -> std::io::Result<Self> {
        Ok(Self {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
        })
    }

    /// The next signal's name.
    pub(crate) async fn next(&mut self) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn feeds(name: &str, symbols: &[&str]) -> Feeds {
        let instruments: String = symbols
            .iter()
            .map(|s| {
                format!(
                    "{{ symbol = \"{s}\", price = \"1.00\", tick = \"0.01\", size_scale = 2, typical_size = \"1\" }},"
                )
            })
            .collect();
        let text = format!("[synthetic]\ninstruments = [{instruments}]\n");
        Feeds {
            name: name.into(),
            config: FeedsConfig::parse(&text).expect("valid feeds"),
        }
    }

    #[test]
    fn feeds_files_must_not_share_an_instrument() {
        let a = feeds("a.toml", &["x:A-B", "x:C-D"]);
        let b = feeds("b.toml", &["y:A-B"]);
        assert_eq!(overlap(&[a, b]), None);
        let a = feeds("a.toml", &["x:A-B", "x:C-D"]);
        let c = feeds("c.toml", &["y:A-B", "x:C-D"]);
        assert_eq!(
            overlap(&[a, c]),
            Some(("x:C-D".to_string(), "a.toml", "c.toml"))
        );
        let twice = [feeds("a.toml", &["x:A-B"]), feeds("a.toml", &["x:A-B"])];
        assert_eq!(
            overlap(&twice),
            Some(("x:A-B".to_string(), "a.toml", "a.toml"))
        );
    }

    #[test]
    fn default_feeds_replay_every_venue_capture() {
        let loaded = load_feeds(&[], &Config::default()).expect("demo");
        let venues: Vec<&str> = loaded
            .iter()
            .filter_map(|f| match &f.config {
                FeedsConfig::Replay(r) if r.looped => Some(r.capture.header.venue.name()),
                _ => None,
            })
            .collect();
        assert_eq!(venues, ["coinbase", "binance", "kraken", "okx", "bybit"]);
        assert!(
            loaded[0].name.contains("feeds/coinbase/capture.jsonl"),
            "{}",
            loaded[0].name
        );
    }
}
