//! `tickwire`: the one binary. Parses the command line, sets up logging to
//! stderr, and hands over to a subcommand in [`cli`].

mod bus;
mod cli;
mod config;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    init_tracing(args.log_format());
    let mut builder = if args.single_threaded() {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tickwire: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::dispatch(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tickwire: error: {}", cli::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (stdout carries data: URLs, NDJSON), filtered by
/// `RUST_LOG` (default `info`), as text or as JSON lines.
fn init_tracing(format: cli::LogFormat) {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env_lossy();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        cli::LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        // Span fields flattened into each line's `span`/`spans`, so a
        // pipeline can filter one connection or one feed.
        cli::LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}
