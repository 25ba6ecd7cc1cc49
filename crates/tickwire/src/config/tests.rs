//! Configuration loading: every table and key, the layers (file,
//! environment, flags), and errors that name the key and its origin.

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
        &[],
    )
}

#[test]
fn defaults_without_file_or_env() {
    let loaded = load(None, env(&[]), &[]).expect("defaults load");
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
kind = "redis"
url = "redis://127.0.0.1:6390"
prefix = "tw-test"
history_len = 50
subscriber_capacity = 8
publish_queue = 100
publish_batch = 10

[feeds]
file = "feeds/demo.toml"

[ingest]
listen = "127.0.0.1:9090"
"#;
    let c = load(
        Some(Source {
            path: Path::new("conf/tickwire.toml"),
            text,
        }),
        env(&[]),
        &[],
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
            kind: BusKind::Redis,
            url: Some("redis://127.0.0.1:6390".into()),
            prefix: "tw-test".into(),
            history_len: 50,
            subscriber_capacity: 8,
            publish_queue: 100,
            publish_batch: 10,
        }
    );
    let redis = c.bus.redis().expect("redis settings");
    assert_eq!(
        (
            redis.prefix.as_str(),
            redis.history_len,
            redis.publish_batch
        ),
        ("tw-test", 50, 10)
    );
    assert_eq!(
        c.ingest.listen,
        Some("127.0.0.1:9090".parse().expect("addr"))
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
fn drain_window_from_file_and_env() {
    assert_eq!(Config::default().gateway.drain_window_ms, 5000);
    let text = "[gateway]\ndrain_window_ms = 0\n";
    let c = from_text(text, &[]).expect("valid").config;
    assert_eq!(c.gateway.drain_window_ms, 0);
    let c = from_text(text, &[("TICKWIRE_GATEWAY_DRAIN_WINDOW_MS", "3000")])
        .expect("valid")
        .config;
    assert_eq!(c.gateway.drain_window_ms, 3000);
}

#[test]
fn env_without_file() {
    let c = load(None, env(&[("TICKWIRE_BUS_KIND", "memory")]), &[])
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
    let (origin, key, _) = key_error(load(None, env(&[("TICKWIRE_GATEWAY_MAX_SUBS", "1")]), &[]));
    assert_eq!(origin, Origin::Env("TICKWIRE_GATEWAY_MAX_SUBS".into()));
    assert_eq!(key, "gateway.max_subs");
    let (origin, key, _) = key_error(load(None, env(&[("TICKWIRE_LISTEN", "nowhere")]), &[]));
    assert_eq!(origin, Origin::Env("TICKWIRE_LISTEN".into()));
    assert_eq!(key, "listen");
    let (origin, _, _) = key_error(load(
        None,
        env(&[("TICKWIRE_BUS_SUBSCRIBER_CAPACITY", "0")]),
        &[],
    ));
    assert_eq!(
        origin,
        Origin::Env("TICKWIRE_BUS_SUBSCRIBER_CAPACITY".into())
    );
}

#[test]
fn bus_flag_overrides_file_and_env() {
    let text = "[bus]\nkind = \"memory\"\nhistory_len = 5\n";
    let flags = bus_flag("redis-cluster://127.0.0.1:7000,127.0.0.1:7001");
    let c = load(
        Some(Source {
            path: Path::new("tickwire.toml"),
            text,
        }),
        env(&[("TICKWIRE_BUS_URL", "redis://127.0.0.1:1")]),
        &flags,
    )
    .expect("valid")
    .config;
    assert_eq!(c.bus.kind, BusKind::Redis);
    assert_eq!(
        c.bus.url.as_deref(),
        Some("redis-cluster://127.0.0.1:7000,127.0.0.1:7001")
    );
    assert_eq!(c.bus.history_len, 5, "other keys stay");

    // `--bus memory` wins over a Redis configuration, URL included.
    let text = "[bus]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:1\"\n";
    let c = from_text_with_flags(text, &bus_flag("memory"))
        .expect("valid")
        .config;
    assert_eq!((c.bus.kind, c.bus.url), (BusKind::Memory, None));
}

fn from_text_with_flags(text: &str, flags: &[FlagOverride]) -> Result<Loaded, ConfigError> {
    load(
        Some(Source {
            path: Path::new("tickwire.toml"),
            text,
        }),
        env(&[]),
        flags,
    )
}

#[test]
fn bus_kind_and_url_must_agree() {
    let (origin, key, message) = key_error(from_text("[bus]\nkind = \"redis\"\n", &[]));
    assert_eq!(key, "bus.kind");
    assert_eq!(
        origin,
        Origin::File {
            path: "tickwire.toml".into(),
            line: Some(2)
        }
    );
    assert!(message.contains("bus.url"), "{message}");

    let (origin, key, message) = key_error(load(
        None,
        env(&[("TICKWIRE_BUS_URL", "redis://127.0.0.1:6379")]),
        &[],
    ));
    assert_eq!(origin, Origin::Env("TICKWIRE_BUS_URL".into()));
    assert_eq!(key, "bus.url");
    assert!(message.contains("bus.kind"), "{message}");

    let c = load(
        None,
        env(&[
            ("TICKWIRE_BUS_URL", "redis://127.0.0.1:6379"),
            ("TICKWIRE_BUS_KIND", "redis"),
            ("TICKWIRE_BUS_PREFIX", "x"),
            ("TICKWIRE_INGEST_LISTEN", "127.0.0.1:0"),
        ]),
        &[],
    )
    .expect("valid")
    .config;
    assert_eq!(c.bus.kind, BusKind::Redis);
    assert_eq!(c.bus.prefix, "x");
    assert!(c.ingest.listen.is_some());
}

#[test]
fn malformed_bus_url_is_named_with_its_origin() {
    let (origin, key, message) =
        key_error(from_text_with_flags("", &bus_flag("http://127.0.0.1:6379")));
    assert_eq!(origin, Origin::Flag("--bus"));
    assert_eq!(key, "bus.url");
    assert!(message.contains("redis://HOST:PORT"), "{message}");
    let shown = ConfigError::Key {
        origin,
        key,
        message,
    }
    .to_string();
    assert!(shown.starts_with("--bus: `bus.url`: "), "{shown}");

    let (origin, key, _) = key_error(load(
        None,
        env(&[
            ("TICKWIRE_BUS_KIND", "redis"),
            ("TICKWIRE_BUS_URL", "redis://"),
        ]),
        &[],
    ));
    assert_eq!(
        (origin, key.as_str()),
        (Origin::Env("TICKWIRE_BUS_URL".into()), "bus.url")
    );

    let (origin, key, _) = key_error(from_text(
        "[bus]\nkind = \"redis\"\nurl = \"redis-cluster://\"\n",
        &[],
    ));
    assert_eq!(key, "bus.url");
    assert_eq!(
        origin,
        Origin::File {
            path: "tickwire.toml".into(),
            line: Some(3)
        }
    );
    for bad in ["", "a{b", "a b"] {
        let (_, key, _) = key_error(from_text(&format!("[bus]\nprefix = {bad:?}\n"), &[]));
        assert_eq!(key, "bus.prefix");
    }
    for key in ["publish_queue", "publish_batch"] {
        let (_, named, _) = key_error(from_text(&format!("[bus]\n{key} = 0\n"), &[]));
        assert_eq!(named, format!("bus.{key}"));
    }
    let (_, key, _) = key_error(from_text("[ingest]\nlisten = \"nowhere\"\n", &[]));
    assert_eq!(key, "ingest.listen");
}

#[test]
fn urls_are_described_without_passwords() {
    assert_eq!(
        redact_url("redis://:secret@10.0.0.1:6379"),
        "redis://***@10.0.0.1:6379"
    );
    assert_eq!(
        redact_url("redis-cluster://u:p@a:1,b:2"),
        "redis-cluster://***@a:1,b:2"
    );
    assert_eq!(redact_url("redis://a:1"), "redis://a:1");
    assert_eq!(BusConfig::default().describe(), "memory");
}

/// The README documents every key with its default: it must load, and
/// describe exactly the defaults.
#[test]
fn readme_example_is_valid_and_shows_the_defaults() {
    let readme = include_str!("../../../../README.md");
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
        "drain_window_ms",
        "shards",
        "send_buffer_bytes",
        "coalesce_us",
        "max_connections",
        "max_connections_per_ip",
        "handshake_timeout_ms",
        "pong_timeout_ms",
        "allowed_origins",
        "tls_reload_poll_ms",
        "tls_handshake_timeout_ms",
        "echo_route",
        "prefix",
        "history_len",
        "subscriber_capacity",
        "publish_queue",
        "publish_batch",
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
    match load_file(Some(Path::new("/nonexistent/tickwire.toml")), env(&[]), &[]) {
        Err(ConfigError::Read { path, .. }) => {
            assert_eq!(path, Path::new("/nonexistent/tickwire.toml"))
        }
        other => panic!("expected a read error, got {other:?}"),
    }
}

#[test]
fn auth_table_keys_jwt_and_env_override() {
    let text = r#"
[auth]
anonymous = false
auth_deadline_ms = 2000

[[auth.keys]]
name = "desk"
hash = "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
entitlements = { instruments = ["coinbase:*"], min_throttle_ms = 100 }

[auth.jwt]
hs256_secret = "0123456789abcdef"
rs256_public_key_file = "keys/pub.pem"
"#;
    let c = from_text(text, &[("TICKWIRE_AUTH_ANONYMOUS", "true")])
        .expect("loads")
        .config;
    assert_eq!(c.auth.anonymous, Some(true), "the environment wins");
    assert_eq!(c.auth.auth_deadline_ms, Some(2000));
    assert_eq!(c.auth.keys.len(), 1);
    assert_eq!(c.auth.keys[0].entitlements.min_throttle_ms, 100);
    let jwt = c.auth.jwt.expect("jwt");
    assert_eq!(
        jwt.rs256_public_key_file,
        Some(PathBuf::from("keys/pub.pem")),
        "relative to the file's folder (here the working directory)"
    );
    assert_eq!(jwt.claim, "tickwire");
    let (origin, key, message) = key_error(from_text("[auth]\nanonimous = true\n", &[]));
    assert_eq!(key, "auth.anonimous");
    assert!(message.contains("unknown field"), "{message}");
    assert!(
        matches!(origin, Origin::File { line: Some(2), .. }),
        "{origin:?}"
    );
}
