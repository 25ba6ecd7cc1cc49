//! The command line: one subcommand per module, parsed with clap derive.

mod check;
mod common;
mod gateway;
mod hash_key;
mod ingest;
mod loadgen;
mod loadgen_report;
mod loadgen_stats;
mod normalize;
mod probe;
mod record;
mod replay;
mod run;
mod sub;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// tickwire: live market data, normalized, over one WebSocket.
///
/// Logs go to stderr and are filtered with RUST_LOG (default `info`,
/// e.g. RUST_LOG=debug or RUST_LOG=tickwire_gateway=debug).
#[derive(Debug, Parser)]
#[command(name = "tickwire", version, propagate_version = true)]
pub(crate) struct Cli {
    /// Log format on stderr: `text` for people, `json` (one object per
    /// line, with the fields of the enclosing spans) for log pipelines.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Text,
        env = "TICKWIRE_LOG_FORMAT",
        value_name = "FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    Run(run::RunArgs),
    Ingest(ingest::IngestArgs),
    Gateway(gateway::GatewayArgs),
    Sub(sub::SubArgs),
    Loadgen(loadgen::LoadgenArgs),
    Record(record::RecordArgs),
    Replay(replay::ReplayArgs),
    Normalize(normalize::NormalizeArgs),
    Probe(probe::ProbeArgs),
    HashKey(hash_key::HashKeyArgs),
}

impl Cli {
    /// Whether the command wants a current-thread runtime: the load
    /// generator runs on one thread, sharing the machine with the server;
    /// a probe, run every few seconds by health checks, needs no more.
    pub(crate) fn single_threaded(&self) -> bool {
        matches!(self.command, Command::Loadgen(_) | Command::Probe(_))
    }

    /// The log format asked for.
    pub(crate) fn log_format(&self) -> LogFormat {
        self.log_format
    }
}

/// Runs the chosen subcommand; its exit code, or an error for `main` to
/// print.
pub(crate) async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(args).await,
        Command::Ingest(args) => ingest::run(args).await,
        Command::Gateway(args) => gateway::run(args).await,
        Command::Sub(args) => sub::run(args).await,
        Command::Loadgen(args) => loadgen::run(args).await,
        Command::Record(args) => record::run(args).await,
        Command::Replay(args) => replay::run(args).await,
        Command::Normalize(args) => normalize::run(args),
        Command::Probe(args) => probe::run(args).await,
        Command::HashKey(args) => hash_key::run(args),
    }
}

/// Resolves on ctrl-c. If the handler cannot be installed it never
/// resolves (and says so once): the command goes on as if no ctrl-c came.
async fn ctrl_c() {
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!(error = %e, "cannot listen for ctrl-c");
        std::future::pending::<()>().await;
    }
}

/// The error and its causes on one line, skipping a cause whose text the
/// message before it already includes (many errors print their source).
pub(crate) fn error_chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    let mut previous = String::new();
    for cause in e.chain() {
        let message = cause.to_string();
        if !previous.contains(&message) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&message);
        }
        previous = message;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_subcommand_has_help() {
        let cmd = Cli::command();
        for sub in cmd.get_subcommands() {
            assert!(
                sub.get_about().is_some(),
                "`tickwire {}` needs an about line",
                sub.get_name()
            );
        }
    }
}
