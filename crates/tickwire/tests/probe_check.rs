//! The operator's commands of the built `tickwire` binary: `probe` against
//! a real `tickwire run` (2xx, 404, a closed port, a silent server), and
//! `--check` on `run`, `ingest` and `gateway` (valid, bad keys named,
//! nothing bound or connected).
//!
//! Every child is killed when its guard drops; every wait is bounded.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tickwire");
const WAIT: Duration = Duration::from_secs(30);

/// A `tickwire` command without the test's own `TICKWIRE_*` variables.
fn tickwire(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("RUST_LOG", "warn");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("TICKWIRE_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs a command to its end (at most [`WAIT`]).
fn run_to_end(mut cmd: Command) -> Output {
    let mut child = Guard(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tickwire"),
    );
    let out = child.0.stdout.take().expect("stdout");
    let err = child.0.stderr.take().expect("stderr");
    let (out, err) = (reader(out), reader(err));
    let status = child.wait();
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

fn reader(mut r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// A child killed and reaped when dropped.
struct Guard(Child);

impl Guard {
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {WAIT:?}");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A repository file, as an absolute path.
fn repo(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
        .to_str()
        .expect("utf-8 path")
        .to_string()
}

/// A port nothing listens on (it was free a moment ago).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn probe(args: &[&str]) -> Output {
    let mut all = vec!["probe"];
    all.extend_from_slice(args);
    run_to_end(tickwire(&all))
}

#[test]
fn probe_exits_0_only_on_2xx() {
    let mut child = tickwire(&["run", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn tickwire run");
    let stdout = child.stdout.take().expect("stdout");
    let _server = Guard(child);
    let line = common::first_line(stdout, WAIT).expect("run prints its URL");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();

    // /readyz turns 200 once a feed is live: poll it with the probe.
    let ready = format!("http://{addr}/readyz");
    let deadline = Instant::now() + WAIT;
    loop {
        let out = probe(&[&ready]);
        if out.status.success() {
            assert!(
                out.stderr.is_empty(),
                "a passing probe is silent: {}",
                out.stderr
            );
            break;
        }
        assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
        assert!(
            Instant::now() < deadline,
            "/readyz not 200 within {WAIT:?}: {}",
            out.stderr
        );
        thread::sleep(Duration::from_millis(200));
    }
    assert!(probe(&[&format!("http://{addr}/healthz")]).status.success());

    let nope = format!("http://{addr}/nope");
    let out = probe(&[&nope]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
    assert!(
        out.stderr.contains(&nope) && out.stderr.contains("404"),
        "{}",
        out.stderr
    );

    let closed = format!("http://127.0.0.1:{}/readyz", closed_port());
    let out = probe(&[&closed]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains("cannot connect to 127.0.0.1") && out.stderr.contains("refused"),
        "{}",
        out.stderr
    );
}

#[test]
fn probe_gives_up_on_a_silent_server_and_refuses_bad_urls() {
    // Accepts (the kernel does) but never answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/readyz", silent.local_addr().expect("addr"));
    let out = probe(&[&url, "--timeout-ms", "300"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains("no answer within 300 ms"),
        "{}",
        out.stderr
    );

    let out = probe(&["https://127.0.0.1:1/readyz"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("only http://"), "{}", out.stderr);

    // --check parses the URL and connects nowhere.
    let out = probe(&["--check", "http://127.0.0.1:8080/readyz"]);
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(
        out.stdout.trim(),
        "GET /readyz from 127.0.0.1:8080 (timeout 2000 ms)"
    );
}

/// `tickwire ARGS --check` with extra environment variables.
fn check(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut all = args.to_vec();
    all.push("--check");
    let mut cmd = tickwire(&all);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    run_to_end(cmd)
}

/// The value of `key:` in a `--check` summary.
fn summary_value<'a>(stdout: &'a str, key: &str) -> Option<&'a str> {
    stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(key))
        .map(str::trim)
}

#[test]
fn check_validates_and_summarizes_without_binding_or_connecting() {
    // The port is taken and nothing listens on the Redis port: a check
    // that bound or connected would fail or hang.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = taken.local_addr().expect("addr").to_string();
    let bus = format!("redis://127.0.0.1:{}", closed_port());

    let out = check(&["gateway", "--bus", &bus, "--listen", &taken], &[]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("tickwire gateway: configuration is valid\n"),
        "{}",
        out.stdout
    );
    assert_eq!(summary_value(&out.stdout, "listen:"), Some(taken.as_str()));
    assert!(
        summary_value(&out.stdout, "bus:").is_some_and(|b| b.starts_with(&bus)),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("max_subscriptions: 1024"),
        "{}",
        out.stdout
    );

    let feed = repo("feeds/coinbase/feed.toml");
    let out = check(
        &[
            "ingest", "--bus", &bus, "--listen", &taken, "--feeds", &feed,
        ],
        &[("TICKWIRE_BUS_PREFIX", "deploy")],
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(
        summary_value(&out.stdout, "ingest.listen:"),
        Some(taken.as_str())
    );
    let feeds = summary_value(&out.stdout, "feeds:").expect("feeds line");
    assert!(
        feeds.contains("live coinbase at wss://") && feeds.contains("3 instruments"),
        "{feeds}"
    );
    assert!(out.stdout.contains("prefix \"deploy\""), "{}", out.stdout);

    // A configuration file, with the environment above it.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("tickwire-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let file = dir.join("tickwire.toml");
    std::fs::write(
        &file,
        "listen = \"0.0.0.0:8080\"\n[gateway]\nmax_subscriptions = 7\n",
    )
    .expect("write config");
    let file = file.to_str().expect("utf-8 path");
    let out = check(
        &["run", "--config", file],
        &[("TICKWIRE_GATEWAY_HEARTBEAT_MS", "20000")],
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(summary_value(&out.stdout, "file:"), Some(file));
    assert_eq!(summary_value(&out.stdout, "listen:"), Some("0.0.0.0:8080"));
    assert_eq!(
        summary_value(&out.stdout, "bus:").map(|b| b.starts_with("memory")),
        Some(true)
    );
    assert!(
        out.stdout.contains("max_subscriptions: 7") && out.stdout.contains("heartbeat_ms: 20000"),
        "{}",
        out.stdout
    );
    assert_eq!(
        out.stdout.lines().filter(|l| l.contains("feeds:")).count(),
        5,
        "the five embedded venue captures: {}",
        out.stdout
    );
}

/// A configuration `--check` must refuse, and what its error must say.
struct Refused {
    args: &'static [&'static str],
    envs: &'static [(&'static str, &'static str)],
    says: &'static [&'static str],
}

#[test]
fn check_fails_naming_the_key_and_where_it_came_from() {
    const BUS: &str = "redis://127.0.0.1:6390";
    let cases = [
        Refused {
            args: &["gateway", "--bus", BUS],
            envs: &[("TICKWIRE_GATEWAY_MAX_SUBS", "3")],
            says: &[
                "TICKWIRE_GATEWAY_MAX_SUBS",
                "`gateway.max_subs`",
                "unknown field",
            ],
        },
        Refused {
            args: &["run"],
            envs: &[("TICKWIRE_GATEWAY_MAX_SUBSCRIPTIONS", "lots")],
            says: &[
                "TICKWIRE_GATEWAY_MAX_SUBSCRIPTIONS",
                "`gateway.max_subscriptions`",
            ],
        },
        Refused {
            args: &["run"],
            envs: &[("TICKWIRE_GATEWAY_HEARTBEAT_MS", "1")],
            says: &["`gateway.heartbeat_ms` = 1", "at least 100"],
        },
        Refused {
            args: &["gateway"],
            envs: &[
                ("TICKWIRE_BUS_KIND", "redis"),
                ("TICKWIRE_BUS_URL", "redis://no-port"),
            ],
            says: &["TICKWIRE_BUS_URL", "`bus.url`"],
        },
        Refused {
            args: &["ingest"],
            envs: &[],
            says: &["--bus redis://HOST:PORT"],
        },
        Refused {
            args: &["gateway", "--bus", BUS],
            envs: &[("TICKWIRE_AUTH_KEYS", r#"[{name = "desk", hash = "nope"}]"#)],
            says: &["invalid [auth]", "key \"desk\"", "sha256:<64 hex digits>"],
        },
        Refused {
            args: &["ingest", "--bus", BUS, "--feeds", "/nonexistent/feed.toml"],
            envs: &[],
            says: &["bad feeds file", "/nonexistent/feed.toml"],
        },
    ];
    for Refused { args, envs, says } in cases {
        let out = check(args, envs);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?} {envs:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
        for text in says {
            assert!(
                out.stderr.contains(text),
                "{args:?} {envs:?} says {text:?}: {}",
                out.stderr
            );
        }
    }
}
