//! Configuration of `tickwire run`: one TOML file (`tickwire.toml`), every
//! key overridable by an environment variable `TICKWIRE_<TABLE>_<KEY>`, and
//! the most common ones by flags (applied by the caller, last).
//!
//! Loading is a pure function of the file's text and the environment, so it
//! is tested without touching the process environment. A bad key or value
//! is reported with where it came from: the file and line, or the variable.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use tickwire_bus::MemoryBusConfig;
use tickwire_gateway::GatewayConfig;
use toml::{Table, Value};

/// Prefix of every configuration variable.
pub(crate) const ENV_PREFIX: &str = "TICKWIRE_";

/// The variable naming the configuration file (the `--config` flag's
/// environment form); not a configuration key itself.
pub(crate) const ENV_CONFIG_FILE: &str = "TICKWIRE_CONFIG";

/// Top-level keys that are plain values, not tables.
const TOP_KEYS: [&str; 1] = ["listen"];
/// Tables, in the order they are documented.
const SECTIONS: [&str; 3] = ["gateway", "bus", "feeds"];

/// Everything `tickwire run` can be told.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    /// Address to serve HTTP and WebSocket on. Default `127.0.0.1:8080`:
    /// reachable from this machine only; use `0.0.0.0:8080` in a container.
    pub(crate) listen: SocketAddr,
    /// The gateway's limits and timeouts (`[gateway]`).
    pub(crate) gateway: GatewayConfig,
    /// The bus between ingest and gateway (`[bus]`).
    pub(crate) bus: BusConfig,
    /// Which feeds to run (`[feeds]`).
    pub(crate) feeds: FeedsSection,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            gateway: GatewayConfig::default(),
            bus: BusConfig::default(),
            feeds: FeedsSection::default(),
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
}

/// `[bus]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct BusConfig {
    /// The implementation. Default `memory`.
    pub(crate) kind: BusKind,
    /// Trades kept per trade topic for `from_seq` resume. Default 10 000:
    /// about 2 MB per busy topic; more makes longer outages resumable.
    pub(crate) history_len: usize,
    /// Updates buffered per topic for a gateway that is behind before it
    /// lags. Default 4096; at least 1.
    pub(crate) subscriber_capacity: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        let memory = MemoryBusConfig::default();
        Self {
            kind: BusKind::Memory,
            history_len: memory.history_len,
            subscriber_capacity: memory.subscriber_capacity,
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

/// Reads `path` (if any) and loads it with the overrides in `env`.
pub(crate) fn load_file(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigError> {
    match path {
        None => load(None, env),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            load(Some(Source { path, text: &text }), env)
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

/// Loads a configuration from a file's text (none: all defaults) and
/// environment overrides. Pure: `env` is passed in.
pub(crate) fn load(
    source: Option<Source<'_>>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigError> {
    let mut table = match source {
        None => Table::new(),
        Some(src) => src.text.parse::<Table>().map_err(|e| ConfigError::Syntax {
            path: src.path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?,
    };

    let mut env_origins: HashMap<(Option<String>, String), String> = HashMap::new();
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
        env_origins.insert((section, key), var);
    }

    let origin_of = |section: Option<&str>, key: &str| -> Origin {
        if let Some(var) = env_origins.get(&(section.map(str::to_string), key.to_string())) {
            return Origin::Env(var.clone());
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
            ("bus", Value::Table(t)) => {
                check_keys::<BusConfig>(t, |k, m| key_error(Some("bus"), k, m))?
            }
            ("feeds", Value::Table(t)) => {
                check_keys::<FeedsSection>(t, |k, m| key_error(Some("feeds"), k, m))?
            }
            _ => {
                let mut single = Table::new();
                single.insert(key.clone(), value.clone());
                if let Err(e) = single.try_into::<Config>() {
                    let message =
                        if SECTIONS.contains(&key.as_str()) || TOP_KEYS.contains(&key.as_str()) {
                            e.message().to_string()
                        } else {
                            "unknown key; expected one of `listen`, [gateway], [bus], [feeds]"
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

    // A relative feeds file named in the config file is relative to it.
    if let (Some(file), Some(src)) = (&config.feeds.file, source) {
        let from_file = matches!(origin_of(Some("feeds"), "file"), Origin::File { .. });
        if from_file && file.is_relative() {
            if let Some(dir) = src.path.parent() {
                config.feeds.file = Some(dir.join(file));
            }
        }
    }

    Ok(Loaded {
        config,
        ignored_env,
    })
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
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn from_text(text: &str, vars: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
        load(
            Some(Source {
                path: Path::new("tickwire.toml"),
                text,
            }),
            env(vars),
        )
    }

    #[test]
    fn defaults_without_file_or_env() {
        let loaded = load(None, env(&[])).expect("defaults load");
        let c = loaded.config;
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.bus, BusConfig::default());
        assert_eq!(c.bus.kind, BusKind::Memory);
        assert_eq!(c.feeds.file, None);
        assert_eq!(
            c.gateway.max_subscriptions,
            GatewayConfig::default().max_subscriptions
        );
        assert!(loaded.ignored_env.is_empty());
    }

    #[test]
    fn parses_every_table() {
        let text = r#"
listen = "0.0.0.0:9000"

[gateway]
max_subscriptions = 10
heartbeat_ms = 500

[bus]
kind = "memory"
history_len = 50
subscriber_capacity = 8

[feeds]
file = "feeds/demo.toml"
"#;
        let c = load(
            Some(Source {
                path: Path::new("conf/tickwire.toml"),
                text,
            }),
            env(&[]),
        )
        .expect("valid file")
        .config;
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.gateway.max_subscriptions, 10);
        assert_eq!(c.gateway.heartbeat_ms, 500);
        assert_eq!(
            c.gateway.max_requests_per_sec,
            GatewayConfig::default().max_requests_per_sec,
            "unset keys keep their defaults"
        );
        assert_eq!(
            c.bus,
            BusConfig {
                kind: BusKind::Memory,
                history_len: 50,
                subscriber_capacity: 8
            }
        );
        assert_eq!(
            c.feeds.file,
            Some(PathBuf::from("conf/feeds/demo.toml")),
            "relative to the config file's folder"
        );
    }

    #[test]
    fn env_overrides_file() {
        let text = "listen = \"127.0.0.1:1\"\n[gateway]\nmax_subscriptions = 10\n";
        let loaded = from_text(
            text,
            &[
                ("TICKWIRE_GATEWAY_MAX_SUBSCRIPTIONS", "20"),
                ("TICKWIRE_LISTEN", "127.0.0.1:2"),
                ("TICKWIRE_BUS_HISTORY_LEN", "7"),
                ("TICKWIRE_FEEDS_FILE", "feeds/demo.toml"),
                ("TICKWIRE_CONFIG", "tickwire.toml"),
                ("TICKWIRE_NOPE", "1"),
            ],
        )
        .expect("valid overrides");
        let c = loaded.config;
        assert_eq!(c.gateway.max_subscriptions, 20);
        assert_eq!(c.listen.to_string(), "127.0.0.1:2");
        assert_eq!(c.bus.history_len, 7);
        assert_eq!(
            c.feeds.file,
            Some(PathBuf::from("feeds/demo.toml")),
            "relative to the working directory"
        );
        assert_eq!(loaded.ignored_env, vec!["TICKWIRE_NOPE".to_string()]);
    }

    #[test]
    fn env_without_file() {
        let c = load(None, env(&[("TICKWIRE_BUS_KIND", "memory")]))
            .expect("valid")
            .config;
        assert_eq!(c.bus.kind, BusKind::Memory);
    }

    #[test]
    fn env_keys_and_values() {
        assert_eq!(
            env_key("TICKWIRE_GATEWAY_MAX_SUBSCRIPTIONS"),
            Some((Some("gateway".into()), "max_subscriptions".into()))
        );
        assert_eq!(env_key("TICKWIRE_LISTEN"), Some((None, "listen".into())));
        assert_eq!(env_key("TICKWIRE_GATEWAY_"), None);
        assert_eq!(env_key("TICKWIRE_GATEWAYX_A"), None);
        assert_eq!(env_key("OTHER_LISTEN"), None);
        assert_eq!(env_value("10"), Value::Integer(10));
        assert_eq!(env_value("true"), Value::Boolean(true));
        assert_eq!(env_value("\"x y\""), Value::String("x y".into()));
        assert_eq!(
            env_value("127.0.0.1:8080"),
            Value::String("127.0.0.1:8080".into())
        );
        assert_eq!(env_value(""), Value::String(String::new()));
        assert_eq!(
            env_value("1\nlisten = 2"),
            Value::String("1\nlisten = 2".into()),
            "one value, never a document"
        );
    }

    fn key_error(r: Result<Loaded, ConfigError>) -> (Origin, String, String) {
        match r {
            Err(ConfigError::Key {
                origin,
                key,
                message,
            }) => (origin, key, message),
            other => panic!("expected a key error, got {other:?}"),
        }
    }

    #[test]
    fn unknown_key_in_file_is_named_with_its_line() {
        let (origin, key, message) = key_error(from_text(
            "[gateway]\nmax_subscriptions = 1\nmax_subs = 10\n",
            &[],
        ));
        assert_eq!(
            origin,
            Origin::File {
                path: "tickwire.toml".into(),
                line: Some(3)
            }
        );
        assert_eq!(key, "gateway.max_subs");
        assert!(message.contains("unknown field `max_subs`"), "{message}");
        let shown = key_error(from_text("[gateway]\nmax_subs = 10\n", &[]));
        let text = ConfigError::Key {
            origin: shown.0,
            key: shown.1,
            message: shown.2,
        }
        .to_string();
        assert!(
            text.starts_with("tickwire.toml:2: `gateway.max_subs`: unknown field `max_subs`"),
            "{text}"
        );
    }

    #[test]
    fn unknown_top_level_key_and_table() {
        let (origin, key, _) = key_error(from_text("lisen = \"127.0.0.1:1\"\n", &[]));
        assert_eq!(key, "lisen");
        assert_eq!(
            origin,
            Origin::File {
                path: "tickwire.toml".into(),
                line: Some(1)
            }
        );
        let (_, key, _) = key_error(from_text("[redis]\nurl = \"x\"\n", &[]));
        assert_eq!(key, "redis");
        let (_, key, message) = key_error(from_text("gateway = 5\n", &[]));
        assert_eq!(key, "gateway");
        assert!(message.contains("invalid type"), "{message}");
    }

    #[test]
    fn bad_value_in_file_is_named() {
        let (origin, key, message) = key_error(from_text("\n[bus]\nhistory_len = \"lots\"\n", &[]));
        assert_eq!(key, "bus.history_len");
        assert_eq!(
            origin,
            Origin::File {
                path: "tickwire.toml".into(),
                line: Some(3)
            }
        );
        assert!(message.contains("invalid type"), "{message}");
        let (_, key, _) = key_error(from_text("[bus]\nkind = \"carrier-pigeon\"\n", &[]));
        assert_eq!(key, "bus.kind");
        let (_, key, _) = key_error(from_text("listen = \"localhost\"\n", &[]));
        assert_eq!(key, "listen");
        let (_, key, message) = key_error(from_text("[bus]\nsubscriber_capacity = 0\n", &[]));
        assert_eq!(key, "bus.subscriber_capacity");
        assert!(message.contains("from 1"), "{message}");
    }

    #[test]
    fn bad_value_in_env_is_named() {
        let (origin, key, message) = key_error(from_text(
            "[gateway]\nmax_subscriptions = 10\n",
            &[("TICKWIRE_GATEWAY_MAX_SUBSCRIPTIONS", "abc")],
        ));
        assert_eq!(
            origin,
            Origin::Env("TICKWIRE_GATEWAY_MAX_SUBSCRIPTIONS".into())
        );
        assert_eq!(key, "gateway.max_subscriptions");
        assert!(message.contains("invalid type"), "{message}");
        let (origin, key, _) = key_error(load(None, env(&[("TICKWIRE_GATEWAY_MAX_SUBS", "1")])));
        assert_eq!(origin, Origin::Env("TICKWIRE_GATEWAY_MAX_SUBS".into()));
        assert_eq!(key, "gateway.max_subs");
        let (origin, key, _) = key_error(load(None, env(&[("TICKWIRE_LISTEN", "nowhere")])));
        assert_eq!(origin, Origin::Env("TICKWIRE_LISTEN".into()));
        assert_eq!(key, "listen");
        let (origin, _, _) = key_error(load(
            None,
            env(&[("TICKWIRE_BUS_SUBSCRIBER_CAPACITY", "0")]),
        ));
        assert_eq!(
            origin,
            Origin::Env("TICKWIRE_BUS_SUBSCRIBER_CAPACITY".into())
        );
    }

    /// The README documents every key with its default: it must load, and
    /// describe exactly the defaults.
    #[test]
    fn readme_example_is_valid_and_shows_the_defaults() {
        let readme = include_str!("../../../README.md");
        let block = readme
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("README has a ```toml block");
        let loaded = from_text(block, &[]).expect("README config loads");
        assert_eq!(
            format!("{:?}", loaded.config),
            format!("{:?}", Config::default())
        );
        for key in [
            "max_subscriptions",
            "max_requests_per_sec",
            "max_message_bytes",
            "heartbeat_ms",
            "slow_consumer_timeout_ms",
            "close_grace_ms",
            "trade_queue_len",
            "control_queue_len",
            "max_batch_bytes",
            "shutdown_timeout_ms",
            "history_len",
            "subscriber_capacity",
        ] {
            assert!(block.contains(&format!("\n{key} = ")), "README omits {key}");
        }
    }

    #[test]
    fn syntax_error_names_the_file() {
        match from_text("[gateway\n", &[]) {
            Err(ConfigError::Syntax { path, message }) => {
                assert_eq!(path, Path::new("tickwire.toml"));
                assert!(message.contains("line 1"), "{message}");
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn missing_file_is_a_read_error() {
        match load_file(Some(Path::new("/nonexistent/tickwire.toml")), env(&[])) {
            Err(ConfigError::Read { path, .. }) => {
                assert_eq!(path, Path::new("/nonexistent/tickwire.toml"))
            }
            other => panic!("expected a read error, got {other:?}"),
        }
    }
}
