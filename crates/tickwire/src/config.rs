//! Configuration of `tickwire run`, `ingest` and `gateway`: one TOML file
//! (`tickwire.toml`), every key overridable by an environment variable
//! `TICKWIRE_<TABLE>_<KEY>`, and the most common ones by flags (`--bus` is
//! a layer of its own, above the environment; `--listen` is applied by the
//! caller, last).
//!
//! Loading is a pure function of the file's text, the environment and the
//! flags, so it is tested without touching the process environment. A bad
//! key or value is reported with where it came from: the file and line, the
//! variable, or the flag.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use tickwire_bus::{MemoryBusConfig, RedisBusConfig, RedisTarget};
use tickwire_gateway::GatewayConfig;
use tickwire_gateway::auth::AuthConfig;
use toml::{Table, Value};

/// Prefix of every configuration variable.
pub(crate) const ENV_PREFIX: &str = "TICKWIRE_";

/// The variable naming the configuration file (the `--config` flag's
/// environment form); not a configuration key itself.
pub(crate) const ENV_CONFIG_FILE: &str = "TICKWIRE_CONFIG";

/// Top-level keys that are plain values, not tables.
const TOP_KEYS: [&str; 1] = ["listen"];
/// Tables, in the order they are documented.
const SECTIONS: [&str; 5] = ["gateway", "auth", "bus", "feeds", "ingest"];

/// Everything `tickwire run`, `ingest` and `gateway` can be told; each
/// command reads the keys it needs, so one file serves a whole deployment.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    /// Address to serve HTTP and WebSocket on. Default `127.0.0.1:8080`:
    /// reachable from this machine only; use `0.0.0.0:8080` in a container.
    pub(crate) listen: SocketAddr,
    /// The gateway's limits and timeouts (`[gateway]`).
    pub(crate) gateway: GatewayConfig,
    /// API keys, JWTs and entitlements (`[auth]`).
    pub(crate) auth: AuthConfig,
    /// The bus between ingest and gateway (`[bus]`).
    pub(crate) bus: BusConfig,
    /// Which feeds to run (`[feeds]`).
    pub(crate) feeds: FeedsSection,
    /// `tickwire ingest` on its own (`[ingest]`).
    pub(crate) ingest: IngestSection,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            gateway: GatewayConfig::default(),
            auth: AuthConfig::default(),
            bus: BusConfig::default(),
            feeds: FeedsSection::default(),
            ingest: IngestSection::default(),
        }
    }
}

/// Where `tickwire run` listens when nothing says otherwise.
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// Which bus implementation to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BusKind {
    /// In-process: one binary runs ingest and gateway together.
    #[default]
    Memory,
    /// Redis or Redis Cluster at `bus.url`: ingest and any number of
    /// gateways run as separate processes, on separate machines.
    Redis,
}

impl BusKind {
    /// The name as written in the configuration.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BusKind::Memory => "memory",
            BusKind::Redis => "redis",
        }
    }
}

/// `[bus]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct BusConfig {
    /// The implementation. Default `memory`.
    pub(crate) kind: BusKind,
    /// Where Redis is, with `kind = "redis"` (required then, and refused
    /// with `memory`): `redis://HOST:PORT` for one server,
    /// `redis-cluster://HOST:PORT,HOST:PORT,...` for a cluster (sharded
    /// pub/sub; any reachable nodes, the others are discovered). Default
    /// none.
    pub(crate) url: Option<String>,
    /// Redis only: prefix of every key and channel, so deployments can
    /// share one Redis. Default `tw`; no braces or spaces.
    pub(crate) prefix: String,
    /// Trades kept per trade topic for `from_seq` resume. Default 10 000:
    /// about 2 MB per busy topic; more makes longer outages resumable.
    pub(crate) history_len: usize,
    /// Updates buffered per topic for a gateway that is behind before it
    /// lags. Default 4096; at least 1.
    pub(crate) subscriber_capacity: usize,
    /// Redis only: updates waiting to be sent to Redis before ingest drops
    /// (and counts) new ones, so a slow or absent Redis never blocks a
    /// feed. Default 65 536: a few seconds of stall at full rate; more
    /// rides out longer stalls, at the cost of memory and of staler data
    /// when it drains. At least 1.
    pub(crate) publish_queue: usize,
    /// Redis only: most updates sent in one pipelined round trip. Default
    /// 512: larger batches carry bursts with fewer round trips; smaller
    /// ones bound the latency a batch adds. At least 1.
    pub(crate) publish_batch: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        let memory = MemoryBusConfig::default();
        let redis = RedisBusConfig::default();
        Self {
            kind: BusKind::Memory,
            url: None,
            prefix: redis.prefix,
            history_len: memory.history_len,
            subscriber_capacity: memory.subscriber_capacity,
            publish_queue: redis.publish_queue,
            publish_batch: redis.publish_batch,
        }
    }
}

impl BusConfig {
    /// The memory bus settings this section describes.
    pub(crate) fn memory(&self) -> MemoryBusConfig {
        MemoryBusConfig {
            history_len: self.history_len,
            subscriber_capacity: self.subscriber_capacity,
        }
    }

    /// The Redis bus settings this section describes; fails when `url` is
    /// missing or malformed (which loading has already ruled out for
    /// `kind = "redis"`).
    pub(crate) fn redis(&self) -> Result<RedisBusConfig, String> {
        let url = self.url.as_deref().ok_or_else(|| {
            format!(
                "required when `bus.kind` is \"{}\"",
                BusKind::Redis.as_str()
            )
        })?;
        let target = parse_target(url)?;
        Ok(RedisBusConfig {
            target,
            prefix: self.prefix.clone(),
            history_len: self.history_len,
            subscriber_capacity: self.subscriber_capacity,
            publish_queue: self.publish_queue,
            publish_batch: self.publish_batch,
        })
    }

    /// The bus in words for logs and banners: `memory`, or the URL with
    /// any password masked.
    pub(crate) fn describe(&self) -> String {
        match (self.kind, &self.url) {
            (BusKind::Redis, Some(url)) => redact_url(url),
            (kind, _) => kind.as_str().to_string(),
        }
    }
}

/// A bus URL as the Redis bus reads it, or why it cannot be used.
fn parse_target(url: &str) -> Result<RedisTarget, String> {
    RedisTarget::parse(url).map_err(|e| {
        let why = match e {
            tickwire_bus::Error::Config(why) => why,
            other => other.to_string(),
        };
        format!("{why}; expected redis://HOST:PORT or redis-cluster://HOST:PORT,HOST:PORT,...")
    })
}

/// `url` with the password (and user) of every `user:password@` masked.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let hosts: Vec<String> = rest
        .split(',')
        .map(|host| match host.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => host.to_string(),
        })
        .collect();
    format!("{scheme}://{}", hosts.join(","))
}

/// Largest `bus.subscriber_capacity` accepted: a broadcast buffer this deep
/// per topic is already far more memory than any use needs.
const MAX_SUBSCRIBER_CAPACITY: usize = 1 << 24;

/// `[feeds]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct FeedsSection {
    /// A feeds file (`feeds/demo.toml` shape). Default: none, which runs
    /// the embedded demo market. A relative path in `tickwire.toml` is
    /// relative to that file's folder; from the environment, to the
    /// working directory.
    pub(crate) file: Option<PathBuf>,
}

/// `[ingest]`: what only `tickwire ingest` reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct IngestSection {
    /// Address for the ingest process's own `/healthz`, `/readyz` and
    /// `/metrics`. Default none: no HTTP at all (ingest needs no port to
    /// do its work). Not the top-level `listen`, so one file can configure
    /// ingest and gateways on one machine.
    pub(crate) listen: Option<SocketAddr>,
}

/// A command-line flag that sets a configuration key, above the file and
/// the environment.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FlagOverride {
    /// The flag, for error messages (`--bus`).
    pub(crate) flag: &'static str,
    /// The table of the key (`None` for a top-level key).
    pub(crate) section: Option<&'static str>,
    /// The key.
    pub(crate) key: &'static str,
    /// The value; `None` removes the key (back to its default).
    pub(crate) value: Option<Value>,
}

/// The overrides a `--bus` flag stands for: `memory`, or a Redis URL
/// (which also sets `bus.kind = "redis"`).
pub(crate) fn bus_flag(value: &str) -> Vec<FlagOverride> {
    let set = |key, value| FlagOverride {
        flag: "--bus",
        section: Some("bus"),
        key,
        value,
    };
    if value == BusKind::Memory.as_str() {
        vec![
            set("kind", Some(Value::String(BusKind::Memory.as_str().into()))),
            set("url", None),
        ]
    } else {
        vec![
            set("kind", Some(Value::String(BusKind::Redis.as_str().into()))),
            set("url", Some(Value::String(value.to_string()))),
        ]
    }
}

/// Where a configuration value came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The configuration file, at this line when it is known.
    File {
        /// The file as it was named.
        path: PathBuf,
        /// 1-based line of the key.
        line: Option<usize>,
    },
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File {
                path,
                line: Some(line),
            } => write!(f, "{}:{line}", path.display()),
            Origin::File { path, line: None } => write!(f, "{}", path.display()),
            Origin::Env(var) => f.write_str(var),
            Origin::Flag(flag) => f.write_str(flag),
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML (toml's message shows line and column).
    #[error("{}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// An environment variable meant for the configuration is not UTF-8.
    #[error("{var}: the value is not valid UTF-8")]
    NotUtf8 {
        /// The variable.
        var: String,
    },
    /// A key is unknown, or its value has the wrong type or range.
    #[error("{origin}: `{key}`: {message}")]
    Key {
        /// Where the offending value came from.
        origin: Origin,
        /// The key, dotted (`gateway.max_subscriptions`).
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// A loaded configuration, with what was noticed along the way.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The configuration.
    pub(crate) config: Config,
    /// `TICKWIRE_*` variables that name no table or key; the caller warns.
    pub(crate) ignored_env: Vec<String>,
}

/// The file's text, when there is a file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Source<'a> {
    /// The file as named by the user.
    pub(crate) path: &'a Path,
    /// Its contents.
    pub(crate) text: &'a str,
}

/// Reads `path` (if any) and loads it with the overrides in `env`, then
/// those of `flags`.
pub(crate) fn load_file(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    flags: &[FlagOverride],
) -> Result<Loaded, ConfigError> {
    match path {
        None => load(None, env, flags),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            load(Some(Source { path, text: &text }), env, flags)
        }
    }
}

/// The process environment's `TICKWIRE_*` variables (other variables are
/// not looked at); fails on one that is not UTF-8.
pub(crate) fn process_env() -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (key, value) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if !key.starts_with(ENV_PREFIX) {
            continue;
        }
        let value = value.into_string().map_err(|_| ConfigError::NotUtf8 {
            var: key.to_string(),
        })?;
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// Loads a configuration from a file's text (none: all defaults),
/// environment overrides, then flag overrides. Pure: `env` and `flags` are
/// passed in.
pub(crate) fn load(
    source: Option<Source<'_>>,
    env: impl IntoIterator<Item = (String, String)>,
    flags: &[FlagOverride],
) -> Result<Loaded, ConfigError> {
    let mut table = match source {
        None => Table::new(),
        Some(src) => src.text.parse::<Table>().map_err(|e| ConfigError::Syntax {
            path: src.path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?,
    };

    let mut env_origins: HashMap<(Option<String>, String), Origin> = HashMap::new();
    let mut ignored_env = Vec::new();
    let mut env: Vec<(String, String)> = env.into_iter().collect();
    env.sort();
    for (var, raw) in env {
        if var == ENV_CONFIG_FILE {
            continue;
        }
        let Some((section, key)) = env_key(&var) else {
            if var.starts_with(ENV_PREFIX) {
                ignored_env.push(var);
            }
            continue;
        };
        let value = env_value(&raw);
        match &section {
            None => {
                table.insert(key.clone(), value);
            }
            Some(section) => {
                let entry = table
                    .entry(section.clone())
                    .or_insert_with(|| Value::Table(Table::new()));
                // A non-table section in the file is reported by the check
                // below, against the file; the override cannot fix it.
                if let Value::Table(t) = entry {
                    t.insert(key.clone(), value);
                }
            }
        }
        env_origins.insert((section, key), Origin::Env(var));
    }
    for flag in flags {
        let slot = match flag.section {
            None => Some(&mut table),
            Some(section) => match table
                .entry(section)
                .or_insert_with(|| Value::Table(Table::new()))
            {
                Value::Table(t) => Some(t),
                // Reported below against the file, as for the environment.
                _ => None,
            },
        };
        if let Some(t) = slot {
            match &flag.value {
                Some(value) => {
                    t.insert(flag.key.to_string(), value.clone());
                }
                None => {
                    t.remove(flag.key);
                }
            }
        }
        env_origins.insert(
            (flag.section.map(str::to_string), flag.key.to_string()),
            Origin::Flag(flag.flag),
        );
    }

    let origin_of = |section: Option<&str>, key: &str| -> Origin {
        if let Some(origin) = env_origins.get(&(section.map(str::to_string), key.to_string())) {
            return origin.clone();
        }
        match source {
            Some(src) => Origin::File {
                path: src.path.to_path_buf(),
                line: line_of(src.text, section, key),
            },
            // Unreachable in practice: without a file every key is from env.
            None => Origin::Env(format!(
                "{ENV_PREFIX}{}",
                dotted(section, key).to_uppercase()
            )),
        }
    };
    let key_error = |section: Option<&str>, key: &str, message: String| ConfigError::Key {
        origin: origin_of(section, key),
        key: dotted(section, key),
        message,
    };

    // Check one key at a time (every field has a default, so a table with
    // a single key deserializes on its own), to name the exact culprit and
    // its origin whatever the deserializer's message says.
    for (key, value) in &table {
        match (key.as_str(), value) {
            ("gateway", Value::Table(t)) => {
                check_keys::<GatewayConfig>(t, |k, m| key_error(Some("gateway"), k, m))?
            }
            ("auth", Value::Table(t)) => {
                check_keys::<AuthConfig>(t, |k, m| key_error(Some("auth"), k, m))?
            }
            ("bus", Value::Table(t)) => {
                check_keys::<BusConfig>(t, |k, m| key_error(Some("bus"), k, m))?
            }
            ("feeds", Value::Table(t)) => {
                check_keys::<FeedsSection>(t, |k, m| key_error(Some("feeds"), k, m))?
            }
            ("ingest", Value::Table(t)) => {
                check_keys::<IngestSection>(t, |k, m| key_error(Some("ingest"), k, m))?
            }
            _ => {
                let mut single = Table::new();
                single.insert(key.clone(), value.clone());
                if let Err(e) = single.try_into::<Config>() {
                    let message = if SECTIONS.contains(&key.as_str())
                        || TOP_KEYS.contains(&key.as_str())
                    {
                        e.message().to_string()
                    } else {
                        "unknown key; expected one of `listen`, [gateway], [auth], [bus], [feeds], [ingest]"
                            .to_string()
                    };
                    return Err(key_error(None, key, message));
                }
            }
        }
    }

    let source_path = source.map(|s| s.path.to_path_buf());
    let mut config: Config = table.try_into().map_err(|e| ConfigError::Key {
        origin: match &source_path {
            Some(path) => Origin::File {
                path: path.clone(),
                line: None,
            },
            None => Origin::Env(ENV_PREFIX.to_string()),
        },
        key: "(configuration)".to_string(),
        message: e.message().to_string(),
    })?;

    if !(1..=MAX_SUBSCRIBER_CAPACITY).contains(&config.bus.subscriber_capacity) {
        return Err(key_error(
            Some("bus"),
            "subscriber_capacity",
            format!("must be from 1 to {MAX_SUBSCRIBER_CAPACITY}"),
        ));
    }
    if let Err(message) = check_prefix(&config.bus.prefix) {
        return Err(key_error(Some("bus"), "prefix", message));
    }
    for (key, value) in [
        ("publish_queue", config.bus.publish_queue),
        ("publish_batch", config.bus.publish_batch),
    ] {
        if value == 0 {
            return Err(key_error(Some("bus"), key, "must be at least 1".into()));
        }
    }
    match (config.bus.kind, &config.bus.url) {
        (BusKind::Redis, None) => {
            return Err(key_error(
                Some("bus"),
                "kind",
                "\"redis\" needs `bus.url` (e.g. redis://127.0.0.1:6379), or pass --bus URL".into(),
            ));
        }
        (BusKind::Redis, Some(url)) => {
            parse_target(url).map_err(|m| key_error(Some("bus"), "url", m))?;
        }
        (BusKind::Memory, Some(_)) => {
            return Err(key_error(
                Some("bus"),
                "url",
                "only used with `bus.kind = \"redis\"`; set that too, or pass --bus URL".into(),
            ));
        }
        (BusKind::Memory, None) => {}
    }

    // A relative feeds file named in the config file is relative to it.
    if let (Some(file), Some(src)) = (&config.feeds.file, source) {
        let from_file = matches!(origin_of(Some("feeds"), "file"), Origin::File { .. });
        if from_file && file.is_relative() {
            if let Some(dir) = src.path.parent() {
                config.feeds.file = Some(dir.join(file));
            }
        }
    }

    // Likewise the RS256 public key file.
    if let (Some(jwt), Some(src)) = (config.auth.jwt.as_mut(), source) {
        if let (Some(file), Some(dir)) = (&jwt.rs256_public_key_file, src.path.parent()) {
            if file.is_relative() {
                jwt.rs256_public_key_file = Some(dir.join(file));
            }
        }
    }

    Ok(Loaded {
        config,
        ignored_env,
    })
}

/// A Redis key prefix must be non-empty and must not break the hash tags
/// (`{topic}`) or the space-separated values the Redis bus writes.
fn check_prefix(prefix: &str) -> Result<(), String> {
    let bad = prefix.is_empty()
        || prefix
            .chars()
            .any(|c| c == '{' || c == '}' || c.is_whitespace() || c.is_control());
    if bad {
        return Err(format!(
            "{prefix:?}: must be non-empty, without braces, spaces or control characters"
        ));
    }
    Ok(())
}

/// Deserializes each key of `table` alone into `T`, reporting the first
/// one that is unknown or has a bad value.
fn check_keys<T: DeserializeOwned>(
    table: &Table,
    error: impl Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    for (key, value) in table {
        let mut single = Table::new();
        single.insert(key.clone(), value.clone());
        if let Err(e) = single.try_into::<T>() {
            return Err(error(key, e.message().to_string()));
        }
    }
    Ok(())
}

fn dotted(section: Option<&str>, key: &str) -> String {
    match section {
        Some(s) => format!("{s}.{key}"),
        None => key.to_string(),
    }
}

/// Maps `TICKWIRE_GATEWAY_MAX_SUBSCRIPTIONS` to `(Some("gateway"),
/// "max_subscriptions")` and `TICKWIRE_LISTEN` to `(None, "listen")`;
/// `None` for a variable that names no table or top-level key.
pub(crate) fn env_key(var: &str) -> Option<(Option<String>, String)> {
    let rest = var.strip_prefix(ENV_PREFIX)?.to_ascii_lowercase();
    if TOP_KEYS.contains(&rest.as_str()) {
        return Some((None, rest));
    }
    SECTIONS.iter().find_map(|section| {
        let key = rest.strip_prefix(section)?.strip_prefix('_')?;
        (!key.is_empty()).then(|| (Some(section.to_string()), key.to_string()))
    })
}

/// An environment value read as a TOML value (`10`, `true`, `"text"`,
/// `[1, 2]`), or else as a plain string (`127.0.0.1:8080`, `feeds/x.toml`).
pub(crate) fn env_value(raw: &str) -> Value {
    raw.parse::<Value>()
        .unwrap_or_else(|_| Value::String(raw.to_string()))
}

/// The 1-based line where `key` (in `[section]`, or at the top) is written.
fn line_of(text: &str, section: Option<&str>, key: &str) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    fn find<'a, 'i>(
        table: &'a DeTable<'i>,
        name: &str,
    ) -> Option<(std::ops::Range<usize>, &'a DeValue<'i>)> {
        table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == name)
            .map(|(k, v)| (k.span(), v.get_ref()))
    }
    let span = match section {
        None => find(doc.get_ref(), key)?.0,
        Some(section) => match find(doc.get_ref(), section)?.1 {
            DeValue::Table(t) => find(t, key)?.0,
            _ => return None,
        },
    };
    let before = text.get(..span.start)?;
    Some(before.bytes().filter(|&b| b == b'\n').count() + 1)
}

#[cfg(test)]
mod tests;
