//! The web ticker board in a real browser: `tickwire run` fed by a fake
//! Coinbase (`tickwire replay --serve`), and headless Chromium driven by
//! `tests/browser/board.mjs` (playwright-core) loading `/`. The browser
//! sees prices move, a row go stale when the venue dies and live when it
//! is back on the same port, the order book view, and the board
//! reconnecting and resubscribing when the server restarts; the
//! screenshots are kept under the test's output directory.
//!
//! Needs Debian's `chromium` and `npm ci --prefix crates/tickwire/tests/browser`
//! (`.ci/run` installs both); without them the test fails saying so.

mod common;

use std::fs::File;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use common::{BIN, WAIT, first_line};

/// Where Debian installs Chromium; `CHROMIUM_PATH` overrides it.
const CHROMIUM: &str = "/usr/bin/chromium";
/// The whole browser session, a bound so a hang fails instead.
const BROWSER_RUN: Duration = Duration::from_secs(120);
/// The instrument the browser watches.
const SYMBOL: &str = "coinbase:BTC-USD";

fn repo_path(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Fails, saying what to install, unless Chromium, Node.js and
/// playwright-core are all there.
fn require_browser_tools() -> String {
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| CHROMIUM.to_owned());
    assert!(
        Path::new(&chromium).exists(),
        "headless Chromium is missing at {chromium}: install it with \
         `sudo apt-get install chromium` (Debian; .ci/run does this), or point \
         CHROMIUM_PATH at a Chromium binary"
    );
    let node = Command::new("node")
        .arg("--version")
        .stdin(Stdio::null())
        .output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "Node.js is missing: install it with `sudo apt-get install nodejs npm` (Debian)"
    );
    assert!(
        browser_dir()
            .join("node_modules/playwright-core/package.json")
            .exists(),
        "playwright-core is not installed: run \
         `npm ci --prefix crates/tickwire/tests/browser` (.ci/run does this)"
    );
    chromium
}

/// A `tickwire` process, killed and reaped when dropped.
struct Kid {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Kid {
    /// Starts `tickwire ARGS...` (no `TICKWIRE_*` from the test's
    /// environment) and waits for its first stdout line, which must
    /// contain `banner`; the error, with its log, when it does not come up
    /// (e.g. its port is not free yet).
    fn try_start(name: &str, args: &[&str], banner: &str, dir: &Path) -> Result<Kid, String> {
        let log = dir.join(format!("{name}.log"));
        let stderr = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("TICKWIRE_") {
                cmd.env_remove(key);
            }
        }
        let mut child = cmd.spawn().map_err(|e| format!("spawn {name}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let kid = Kid {
            name: name.to_owned(),
            child,
            log,
        };
        match first_line(stdout, WAIT) {
            Some(line) if line.contains(banner) => Ok(kid),
            other => Err(format!(
                "{name} did not come up ({other:?}, wanted {banner:?}): {}",
                std::fs::read_to_string(&kid.log).unwrap_or_default()
            )),
        }
    }

    /// [`Kid::try_start`], retried for a while: a port just released by a
    /// killed process may take a moment.
    fn start(name: &str, args: &[&str], banner: &str, dir: &Path) -> Kid {
        let limit = Instant::now() + Duration::from_secs(15);
        loop {
            match Kid::try_start(name, args, banner, dir) {
                Ok(kid) => return kid,
                Err(e) if Instant::now() >= limit => panic!("{e}"),
                Err(_) => thread::sleep(Duration::from_millis(250)),
            }
        }
    }

    /// SIGTERM, then waits (bounded) for it to exit.
    fn terminate(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let limit = Instant::now() + WAIT;
        while matches!(self.child.try_wait(), Ok(None)) {
            assert!(
                Instant::now() < limit,
                "{} still running {WAIT:?} after SIGTERM; {}",
                self.name,
                self.describe()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn describe(&self) -> String {
        format!("{} log: {}", self.name, self.log.display())
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fake Coinbase on `port`, round `round` (each start its own log).
fn fake_venue(port: u16, round: u32, dir: &Path) -> Kid {
    let capture = repo_path("feeds/coinbase/capture.jsonl");
    let capture = capture.to_str().expect("utf-8 path");
    let addr = format!("127.0.0.1:{port}");
    Kid::start(
        &format!("fake-coinbase-{round}"),
        &["replay", "--serve", &addr, capture, "--loop"],
        &format!("ws://{addr}/"),
        dir,
    )
}

/// `tickwire run` on `port`, fed from the fake venue by `feed`.
fn server(port: u16, feed: &str, round: u32, dir: &Path) -> Kid {
    let addr = format!("127.0.0.1:{port}");
    Kid::start(
        &format!("run-{round}"),
        &["run", "--listen", &addr, "--feeds", feed],
        &format!("tickwire serving on http://{addr}"),
        dir,
    )
}

/// A port nobody listens on right now (the fake venue and the server are
/// restarted on the same ones, so they get explicit ports).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `node board.mjs`: asked to end with SIGTERM (Playwright then closes its
/// browser), killed if it does not.
struct Browser {
    child: Child,
    stdin: Option<ChildStdin>,
    log: PathBuf,
}

impl Browser {
    fn answer(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("board.mjs stdin");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("writing to board.mjs: {e}; {}", self.log_text()));
    }

    fn log_text(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!("board.mjs log ({}):\n{text}", self.log.display())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.stdin = None;
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let limit = Instant::now() + Duration::from_secs(5);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < limit {
                thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn png_size(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    bytes.len() as u64
}

#[test]
fn board_shows_prices_staleness_and_the_book_in_chromium() {
    let chromium = require_browser_tools();
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("board");
    std::fs::create_dir_all(&out).expect("output dir");
    for shot in [
        "board.png",
        "stale.png",
        "depth.png",
        "disconnected.png",
        "failure.png",
    ] {
        let _ = std::fs::remove_file(out.join(shot));
    }
    println!("board screenshots and logs: {}", out.display());

    let venue_port = free_port();
    let mut fake = Some(fake_venue(venue_port, 1, &out));
    let feed = out.join("coinbase-feed.toml");
    let text = std::fs::read_to_string(repo_path("feeds/coinbase/feed.toml"))
        .expect("feeds/coinbase/feed.toml")
        .replace(
            "wss://ws-feed.exchange.coinbase.com",
            &format!("ws://127.0.0.1:{venue_port}"),
        );
    assert!(text.contains(&format!("127.0.0.1:{venue_port}")), "{text}");
    std::fs::write(&feed, text).expect("write the feed file");
    let feed = feed.to_str().expect("utf-8 path").to_owned();
    let server_port = free_port();
    let mut run = Some(server(server_port, &feed, 1, &out));
    let url = format!("http://127.0.0.1:{server_port}/");

    let log = out.join("board-mjs.log");
    let mut child = Command::new("node")
        .arg(browser_dir().join("board.mjs"))
        .arg(&url)
        .arg(&out)
        .arg(SYMBOL)
        .env("CHROMIUM_PATH", &chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn node");
    let stdout = child.stdout.take().expect("stdout");
    let stdin = child.stdin.take();
    let mut browser = Browser { child, stdin, log };

    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let limit = Instant::now() + BROWSER_RUN;
    let (mut venue_round, mut server_round) = (1, 1);
    let mut ok = false;
    loop {
        let left = limit.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => match line.trim() {
                "kill-venue" => {
                    // SIGKILL: the venue vanishes mid-stream, as a crash
                    // or a cut network would look to ingest.
                    drop(fake.take());
                    browser.answer("venue-killed");
                }
                "start-venue" => {
                    venue_round += 1;
                    fake = Some(fake_venue(venue_port, venue_round, &out));
                    browser.answer("venue-started");
                }
                "stop-server" => {
                    if let Some(r) = run.take() {
                        r.terminate();
                    }
                    browser.answer("server-stopped");
                }
                "start-server" => {
                    server_round += 1;
                    run = Some(server(server_port, &feed, server_round, &out));
                    browser.answer("server-started");
                }
                "ok" => ok = true,
                other => panic!("board.mjs said {other:?}; {}", browser.log_text()),
            },
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => panic!(
                "board.mjs still running after {BROWSER_RUN:?}; {}; logs in {}",
                browser.log_text(),
                out.display()
            ),
        }
    }
    let status = loop {
        if let Some(status) = browser.child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            Instant::now() < limit,
            "board.mjs closed stdout but did not exit; {}",
            browser.log_text()
        );
        thread::sleep(Duration::from_millis(50));
    };
    let logs: Vec<String> = fake.iter().chain(run.iter()).map(Kid::describe).collect();
    assert!(
        status.success() && ok,
        "board.mjs failed ({status}); {}\n{}",
        browser.log_text(),
        logs.join("; ")
    );
    for shot in ["board.png", "stale.png", "depth.png", "disconnected.png"] {
        let size = png_size(&out.join(shot));
        assert!(size > 20_000, "{shot} is only {size} bytes: an empty page?");
        println!("{}: {size} bytes", out.join(shot).display());
    }
    println!("{}", browser.log_text());
}
