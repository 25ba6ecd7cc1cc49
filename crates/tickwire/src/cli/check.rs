//! `--check` of `run`, `ingest` and `gateway`: the configuration loaded and
//! validated as the command would, with no port bound and nothing
//! connected, then summarized on stdout ("validate before restart").

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;
use tickwire_ingest::FeedsConfig;

use super::common::{self, ConfigArgs, Feeds};
use crate::config::{BusKind, Config};

/// Which command's configuration is checked: each reads its own keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// `tickwire run`: feeds and gateway in one process.
    Run,
    /// `tickwire ingest`: feeds onto Redis.
    Ingest,
    /// `tickwire gateway`: clients served from Redis.
    Gateway,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Run => "run",
            Role::Ingest => "ingest",
            Role::Gateway => "gateway",
        }
    }
}

/// Loads and validates what `role` would run with (`--listen` and
/// `--feeds` applied as the command applies them) and prints a summary;
/// an error names the key, the variable or the file at fault.
pub(crate) fn check(
    role: Role,
    args: &ConfigArgs,
    listen: Option<SocketAddr>,
    feed_files: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    let mut config = common::load_config(args)?;
    if let Some(listen) = listen {
        match role {
            Role::Ingest => config.ingest.listen = Some(listen),
            Role::Run | Role::Gateway => config.listen = listen,
        }
    }
    if role != Role::Run {
        common::require_redis(&config, role.name())?;
    }
    let feeds = match role {
        Role::Run | Role::Ingest => Some(common::load_feeds(feed_files, &config)?),
        Role::Gateway => None,
    };
    let auth = match role {
        Role::Ingest => None,
        Role::Run | Role::Gateway => {
            config.gateway.validate()?;
            // The command's own default for anonymous access.
            let gateway = common::gateway_config(&config, role == Role::Run)?;
            gateway.auth
        }
    };
    if config.bus.kind == BusKind::Redis {
        // The same parse as the bus's own start-up, minus the connection.
        config
            .bus
            .redis()
            .map_err(|message| anyhow!("`bus.url`: {message}"))?;
    }
    let mut text = summary(role, args, &config, feeds.as_deref());
    if let Some(auth) = auth {
        let jwt = match &config.auth.jwt {
            None => "no JWT".to_string(),
            Some(j) if j.rs256_public_key_file.is_some() => "JWT RS256".to_string(),
            Some(_) => "JWT HS256".to_string(),
        };
        let _ = write!(
            text,
            "\n  {:<14} anonymous {}, {} API key(s), {jwt}",
            "auth:",
            if auth.anonymous() { "on" } else { "off" },
            config.auth.keys.len()
        );
    }
    common::print_line(&text);
    Ok(ExitCode::SUCCESS)
}

/// The effective configuration in a few `key: value` lines (the first says
/// it is valid); the bus URL's password is masked.
fn summary(role: Role, args: &ConfigArgs, config: &Config, feeds: Option<&[Feeds]>) -> String {
    let mut out = format!("tickwire {}: configuration is valid\n", role.name());
    let mut line = |key: &str, value: &dyn std::fmt::Display| {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "  {key:<14} {value}");
    };
    line("file:", &common::describe_file(args));
    match role {
        Role::Run | Role::Gateway => line("listen:", &config.listen),
        Role::Ingest => line(
            "ingest.listen:",
            &config
                .ingest
                .listen
                .map_or("(none: no HTTP)".to_string(), |a| a.to_string()),
        ),
    }
    let bus = match config.bus.kind {
        BusKind::Memory => format!(
            "memory (history_len {}, subscriber_capacity {})",
            config.bus.history_len, config.bus.subscriber_capacity
        ),
        BusKind::Redis => format!(
            "{} (prefix {:?}, history_len {}, publish_queue {}, publish_batch {})",
            config.bus.describe(),
            config.bus.prefix,
            config.bus.history_len,
            config.bus.publish_queue,
            config.bus.publish_batch
        ),
    };
    line("bus:", &bus);
    for feed in feeds.unwrap_or_default() {
        line("feeds:", &describe_feed(feed));
    }
    if role != Role::Ingest {
        line("gateway:", &format!("{:?}", config.gateway));
    }
    out.trim_end().to_string()
}

/// One feeds file in words: what it plays and how many instruments.
fn describe_feed(feed: &Feeds) -> String {
    let what = match &feed.config {
        FeedsConfig::Venue(v) => format!("live {} at {}", v.venue, v.url),
        FeedsConfig::Synthetic(_) => "synthetic market".to_string(),
        FeedsConfig::Replay(r) => format!("{} capture", r.capture.header.venue),
    };
    format!(
        "{} ({what}, {} instruments)",
        feed.name,
        feed.config.instruments().len()
    )
}
