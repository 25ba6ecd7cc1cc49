//! `tickwire sub`: subscribe to a running tickwire over WebSocket and print
//! what arrives as NDJSON, for scripts (`| jq`, `| head`).
//!
//! The decisions (what goes to stdout, what ends the process) are a pure
//! [`Session`] over the server's JSON text; the async loop around it only
//! moves frames and bytes.

use std::collections::HashSet;
use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use clap::{Args, CommandFactory as _, ValueEnum};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tracing::{debug, warn};

/// Where `tickwire run` serves by default.
pub(crate) const DEFAULT_URL: &str = "ws://127.0.0.1:8080/v1/ws";

/// How long to wait for the TCP connection and WebSocket handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for our close frame to go out when done.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// The server pings after `heartbeat_ms` of silence; this many heartbeats
/// without any frame means the connection is dead.
const DEAD_AFTER_HEARTBEATS: u64 = 3;

/// Exit code when the connection fails, is lost or is closed: retrying
/// later may work.
const EXIT_CONNECTION: u8 = 1;
/// Exit code when the server refuses the request (or the command line is
/// wrong): retrying the same command will not help.
const EXIT_REFUSED: u8 = 2;
/// Exit code after ctrl-c, as a shell reports SIGINT.
const EXIT_INTERRUPTED: u8 = 130;

/// Subscribe to a tickwire server and print updates as NDJSON on stdout.
///
/// Sends one subscribe request for SYMBOL... on one channel, then prints
/// every update, `gap` and `status` object exactly as the server sent it,
/// one JSON object per line (the server's `hello` and the `subscribed` ack
/// are logged at debug level on stderr, not printed). Logs and errors go to
/// stderr. Closing stdout (e.g. `| head -n 5`) ends quietly with status 0.
///
/// Unknown symbols: if some symbols are served and some are not, the
/// server's `unknown_symbol` error is a warning on stderr and the stream
/// goes on with the others (a long-running script keeps its data); pass
/// --strict to make it fatal instead. If no symbol is served, or the
/// server refuses the request for any other reason, the command exits 2.
///
/// Exit status: 0 after --count updates, or when stdout is closed;
/// 1 when the connection cannot be made, is lost, or is closed by the
/// server (the close code and reason are printed; reconnecting may help,
/// e.g. with --channel trade --from-seq <last seq + 1>); 2 when the server
/// refuses the request or the command line is invalid; 130 on ctrl-c.
///
/// Examples:
///   tickwire sub coinbase:BTC-USD binance:BTC-USDT
///   tickwire sub 'kraken:*' --channel ticker --throttle-ms 1000
///   tickwire sub binance:BTC-USDT --channel trade | jq -r .price
///   tickwire sub coinbase:BTC-USD --channel trade --from-seq 1 --count 100
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct SubArgs {
    /// Instruments as venue:BASE-QUOTE (coinbase:BTC-USD), or venue:* for
    /// every instrument of a venue.
    #[arg(required = true, value_name = "SYMBOL")]
    symbols: Vec<String>,
    /// Channel to subscribe to.
    #[arg(long, short, value_enum, default_value_t = ChannelArg::Quote)]
    channel: ChannelArg,
    /// The server's WebSocket endpoint.
    #[arg(long, value_name = "URL", default_value = DEFAULT_URL)]
    url: String,
    /// Resume trades from this seq (inclusive) for every symbol: history
    /// first, then live, or a `gap` line for what history no longer holds.
    /// Needs --channel trade and explicit instruments (no venue:*).
    #[arg(long, value_name = "N")]
    from_seq: Option<u64>,
    /// At most one update per topic per this many milliseconds (the newest
    /// wins in between); 0 means no cap.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u32).range(0..=60_000))]
    throttle_ms: Option<u32>,
    /// Do not start with the latest value of each topic; only live updates.
    #[arg(long)]
    no_snapshot: bool,
    /// Exit 0 after printing N updates (gap and status lines are printed
    /// but not counted).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Exit 2 if any symbol is unknown, even when others are served.
    #[arg(long)]
    strict: bool,
}

/// The channels, as the command line spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ChannelArg {
    /// Every trade, in order, lossless.
    Trade,
    /// Best bid and offer (conflated: the newest value wins).
    Quote,
    /// Last price and 24 h statistics (conflated).
    Ticker,
    /// Top levels of the order book (conflated).
    Book,
}

impl ChannelArg {
    fn as_str(self) -> &'static str {
        match self {
            ChannelArg::Trade => "trade",
            ChannelArg::Quote => "quote",
            ChannelArg::Ticker => "ticker",
            ChannelArg::Book => "book",
        }
    }
}

impl SubArgs {
    /// Checks what clap cannot express; the message for the user.
    fn validate(&self) -> Result<(), String> {
        if self.from_seq.is_some() {
            if self.channel != ChannelArg::Trade {
                return Err("--from-seq needs --channel trade (only trades keep history)".into());
            }
            if let Some(sel) = self.symbols.iter().find(|s| s.ends_with(":*")) {
                return Err(format!(
                    "--from-seq needs explicit instruments; {sel} names a whole venue"
                ));
            }
        }
        if !(self.url.starts_with("ws://") || self.url.starts_with("wss://")) {
            return Err(format!(
                "--url must be a ws:// URL such as {DEFAULT_URL}, not {}",
                self.url
            ));
        }
        Ok(())
    }

    /// The one subscribe request this command sends.
    fn request(&self) -> String {
        let mut req = serde_json::Map::new();
        req.insert("op".into(), "subscribe".into());
        req.insert("id".into(), 1.into());
        req.insert("channel".into(), self.channel.as_str().into());
        req.insert("symbols".into(), self.symbols.clone().into());
        if self.no_snapshot {
            req.insert("snapshot".into(), false.into());
        }
        if let Some(ms) = self.throttle_ms {
            req.insert("throttle_ms".into(), ms.into());
        }
        if let Some(seq) = self.from_seq {
            let from: serde_json::Map<String, Value> = self
                .symbols
                .iter()
                .map(|s| (s.clone(), Value::from(seq)))
                .collect();
            req.insert("from_seq".into(), from.into());
        }
        Value::Object(req).to_string()
    }
}

/// What to do with one JSON object from the server.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Print it on stdout; `counted` for updates (not gaps or statuses).
    Print {
        /// Counts toward `--count`.
        counted: bool,
    },
    /// Not for stdout (hello, acks, replies to nothing we asked).
    Skip,
    /// Tell the user on stderr and go on.
    Warn(String),
    /// The server refused the request: stop with [`EXIT_REFUSED`].
    Refused(String),
}

/// One subscription's state: what was asked, what the server said.
#[derive(Debug)]
struct Session {
    requested: Vec<String>,
    strict: bool,
    subscribed: bool,
    heartbeat_ms: Option<u64>,
}

impl Session {
    fn new(symbols: &[String], strict: bool) -> Self {
        let mut seen = HashSet::new();
        let requested = symbols
            .iter()
            .filter(|s| seen.insert(s.as_str()))
            .cloned()
            .collect();
        Self {
            requested,
            strict,
            subscribed: false,
            heartbeat_ms: None,
        }
    }

    /// How long silence may last before the connection counts as dead,
    /// once the server has announced its heartbeat.
    fn idle_limit(&self) -> Option<Duration> {
        self.heartbeat_ms
            .filter(|&ms| ms > 0)
            .map(|ms| Duration::from_millis(ms.saturating_mul(DEAD_AFTER_HEARTBEATS)))
    }

    /// Judges one JSON object (one line of a text frame).
    fn on_object(&mut self, text: &str) -> Verdict {
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                return Verdict::Warn(format!(
                    "server sent a line that is not JSON ({e}); skipped"
                ));
            }
        };
        let kind = value.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "trade" | "quote" | "ticker" | "book" => Verdict::Print { counted: true },
            "gap" | "status" => Verdict::Print { counted: false },
            "hello" => {
                self.heartbeat_ms = value.get("heartbeat_ms").and_then(Value::as_u64);
                Verdict::Skip
            }
            "subscribed" => {
                self.subscribed = true;
                Verdict::Skip
            }
            "error" => self.on_error(&value),
            "" => Verdict::Warn("server sent an object without a `type`; skipped".into()),
            _ => Verdict::Skip,
        }
    }

    fn on_error(&self, value: &Value) -> Verdict {
        let code = value
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        let message = value.get("message").and_then(Value::as_str).unwrap_or("");
        let named: Vec<&str> = value
            .get("symbols")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut text = format!("{code}: {message}");
        if !named.is_empty() {
            text.push_str(&format!(" ({})", named.join(", ")));
        }
        // Partial success: the server subscribed the others (it says so in
        // `subscribed`, or its error leaves some requested symbol out).
        let partial = self.subscribed
            || (!named.is_empty() && self.requested.iter().any(|s| !named.contains(&s.as_str())));
        if code == "unknown_symbol" && partial && !self.strict {
            Verdict::Warn(format!("{text}; streaming the other symbols"))
        } else {
            Verdict::Refused(text)
        }
    }
}

/// How the receive loop ended.
enum End {
    /// `--count` reached.
    Done,
    /// Stdout is closed: a reader like `head` has what it wanted.
    StdoutClosed,
    /// The server refused the request.
    Refused(String),
    /// Ctrl-c.
    Interrupted,
}

/// Connects, subscribes and prints until told to stop.
pub(crate) async fn run(args: SubArgs) -> anyhow::Result<ExitCode> {
    if let Err(message) = args.validate() {
        let mut cmd = super::Cli::command();
        let err = cmd.error(clap::error::ErrorKind::ArgumentConflict, message);
        // Printing the usage error can only fail if stderr is gone.
        let _ = err.print();
        return Ok(ExitCode::from(EXIT_REFUSED));
    }

    let url = args.url.as_str();
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(url))
        .await
        .map_err(|_| anyhow!("cannot connect to {url}: no answer within {CONNECT_TIMEOUT:?}"));
    let (ws, _response) =
        match connected.and_then(|r| r.with_context(|| format!("cannot connect to {url}"))) {
            Ok(ok) => ok,
            Err(e) => return Ok(fail(EXIT_CONNECTION, &super::error_chain(&e))),
        };
    debug!(%url, "connected");
    let (mut sink, mut stream) = ws.split();
    let request = args.request();
    debug!(%request, "subscribing");
    if let Err(e) = sink.send(Message::text(request)).await {
        return Ok(fail(
            EXIT_CONNECTION,
            &format!("connection to {url} lost: {e}"),
        ));
    }

    let mut session = Session::new(&args.symbols, args.strict);
    let mut printed: u64 = 0;
    let mut out = io::BufWriter::new(io::stdout().lock());
    let ctrl_c = super::ctrl_c();
    tokio::pin!(ctrl_c);

    let end = 'frames: loop {
        let next = async {
            match session.idle_limit() {
                Some(limit) => tokio::time::timeout(limit, stream.next())
                    .await
                    .map_err(|_| limit),
                None => Ok(stream.next().await),
            }
        };
        let frame = tokio::select! {
            f = next => f,
            _ = &mut ctrl_c => break 'frames End::Interrupted,
        };
        let text = match frame {
            Err(limit) => {
                return Ok(fail(
                    EXIT_CONNECTION,
                    &format!("connection to {url} lost: nothing received for {limit:?}"),
                ));
            }
            Ok(None) => {
                return Ok(fail(
                    EXIT_CONNECTION,
                    &format!("connection to {url} lost: closed without a close frame"),
                ));
            }
            Ok(Some(Err(e))) => {
                return Ok(fail(
                    EXIT_CONNECTION,
                    &format!("connection to {url} lost: {e}"),
                ));
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Ok(fail(EXIT_CONNECTION, &closed_message(url, frame.as_ref())));
            }
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(Some(Ok(Message::Binary(b)))) => {
                debug!(bytes = b.len(), "binary frame ignored");
                continue;
            }
            // Pings are answered by tungstenite while we keep reading.
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)))) => continue,
        };
        // Several objects per frame only with `?batch=1`; harmless otherwise.
        for line in text.as_str().split('\n').filter(|l| !l.trim().is_empty()) {
            match session.on_object(line) {
                Verdict::Print { counted } => {
                    if let Err(e) = out
                        .write_all(line.as_bytes())
                        .and_then(|()| out.write_all(b"\n"))
                    {
                        break 'frames stdout_error(e)?;
                    }
                    if counted {
                        printed += 1;
                        if args.count.is_some_and(|n| printed >= n) {
                            break 'frames End::Done;
                        }
                    }
                }
                Verdict::Skip => debug!(message = line, "from server"),
                Verdict::Warn(w) => warn!("{w}"),
                Verdict::Refused(why) => break 'frames End::Refused(why),
            }
        }
        if let Err(e) = out.flush() {
            break 'frames stdout_error(e)?;
        }
    };

    let flushed = out.flush();
    let code = match end {
        End::Done => match flushed {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                return Err(anyhow!(e).context("cannot write to stdout"));
            }
            _ => ExitCode::SUCCESS,
        },
        End::StdoutClosed => {
            debug!("stdout closed; exiting");
            ExitCode::SUCCESS
        }
        End::Refused(why) => fail(
            EXIT_REFUSED,
            &format!("server refused the subscription: {why}"),
        ),
        End::Interrupted => ExitCode::from(EXIT_INTERRUPTED),
    };
    // Say goodbye so the server logs a clean close, but do not hang on it.
    let bye = Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }));
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(bye)).await;
    Ok(code)
}

/// A broken pipe on stdout is a normal end; any other write error is not.
fn stdout_error(e: io::Error) -> anyhow::Result<End> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(End::StdoutClosed)
    } else {
        Err(anyhow!(e).context("cannot write to stdout"))
    }
}

/// Prints `message` on stderr and returns `code`.
fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("tickwire: error: {message}");
    ExitCode::from(code)
}

fn closed_message(url: &str, frame: Option<&CloseFrame>) -> String {
    match frame {
        None => format!("server closed the connection to {url} (no close code)"),
        Some(f) => {
            let code = u16::from(f.code);
            let name = close_code_name(code);
            if f.reason.is_empty() {
                format!("server closed the connection to {url}: {code} ({name})")
            } else {
                format!(
                    "server closed the connection to {url}: {code} ({name}): {}",
                    f.reason.as_str()
                )
            }
        }
    }
}

/// The meaning of the close codes tickwire uses (DESIGN: close codes).
fn close_code_name(code: u16) -> &'static str {
    match code {
        1000 => "normal",
        1001 => "going away: server shutting down",
        1008 => "policy violation",
        1009 => "message too big",
        1011 => "internal error",
        1012 => "service restart: reconnect",
        4001 => "unauthorized",
        4008 => "slow consumer",
        4029 => "rate limited",
        _ => "unknown code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn args(argv: &[&str]) -> SubArgs {
        let mut full = vec!["tickwire", "sub"];
        full.extend_from_slice(argv);
        match crate::cli::Cli::try_parse_from(full) {
            Ok(crate::cli::Cli {
                command: crate::cli::Command::Sub(a),
                ..
            }) => a,
            other => panic!("expected sub args, got {other:?}"),
        }
    }

    fn session(symbols: &[&str]) -> Session {
        let s: Vec<String> = symbols.iter().map(|s| s.to_string()).collect();
        Session::new(&s, false)
    }

    #[test]
    fn default_request() {
        let a = args(&["coinbase:BTC-USD"]);
        assert!(a.validate().is_ok());
        let req: Value = serde_json::from_str(&a.request()).expect("json");
        assert_eq!(
            req,
            serde_json::json!({"op":"subscribe","id":1,"channel":"quote","symbols":["coinbase:BTC-USD"]})
        );
        assert_eq!(a.url, DEFAULT_URL);
    }

    #[test]
    fn full_request() {
        let a = args(&[
            "coinbase:BTC-USD",
            "binance:BTC-USDT",
            "--channel",
            "trade",
            "--from-seq",
            "7",
            "--throttle-ms",
            "250",
            "--no-snapshot",
        ]);
        assert!(a.validate().is_ok());
        let req: Value = serde_json::from_str(&a.request()).expect("json");
        assert_eq!(
            req,
            serde_json::json!({
                "op":"subscribe","id":1,"channel":"trade",
                "symbols":["coinbase:BTC-USD","binance:BTC-USDT"],
                "snapshot":false,"throttle_ms":250,
                "from_seq":{"coinbase:BTC-USD":7,"binance:BTC-USDT":7}
            })
        );
    }

    #[test]
    fn invalid_combinations() {
        let e = args(&["coinbase:BTC-USD", "--from-seq", "1"]).validate();
        assert!(e.is_err_and(|m| m.contains("--channel trade")));
        let e = args(&["coinbase:*", "--channel", "trade", "--from-seq", "1"]).validate();
        assert!(e.is_err_and(|m| m.contains("coinbase:*")));
        let e = args(&["coinbase:BTC-USD", "--url", "http://127.0.0.1:8080/v1/ws"]).validate();
        assert!(e.is_err_and(|m| m.contains("ws://")));
        assert!(
            crate::cli::Cli::try_parse_from(["tickwire", "sub"]).is_err(),
            "a symbol is required"
        );
        assert!(
            crate::cli::Cli::try_parse_from(["tickwire", "sub", "a:B-C", "--count", "0"]).is_err()
        );
        assert!(
            crate::cli::Cli::try_parse_from(["tickwire", "sub", "a:B-C", "--throttle-ms", "60001"])
                .is_err()
        );
    }

    #[test]
    fn prints_data_and_notices_not_control() {
        let mut s = session(&["coinbase:BTC-USD"]);
        let hello = r#"{"type":"hello","version":1,"server":"tickwire/0.1.0","heartbeat_ms":15000,"limits":{}}"#;
        assert_eq!(s.on_object(hello), Verdict::Skip);
        assert_eq!(s.idle_limit(), Some(Duration::from_secs(45)));
        assert_eq!(
            s.on_object(
                r#"{"type":"subscribed","id":1,"channel":"quote","symbols":["coinbase:BTC-USD"]}"#
            ),
            Verdict::Skip
        );
        for kind in ["trade", "quote", "ticker", "book"] {
            let line = format!(r#"{{"type":"{kind}","symbol":"coinbase:BTC-USD","seq":1}}"#);
            assert_eq!(s.on_object(&line), Verdict::Print { counted: true });
        }
        assert_eq!(
            s.on_object(r#"{"type":"gap","channel":"trade","symbol":"x:A-B","from_seq":1,"to_seq":2,"reason":"slow_consumer"}"#),
            Verdict::Print { counted: false }
        );
        assert_eq!(
            s.on_object(r#"{"type":"status","symbol":"x:A-B","state":"stale"}"#),
            Verdict::Print { counted: false }
        );
        assert_eq!(s.on_object(r#"{"type":"pong","ts":1}"#), Verdict::Skip);
        assert!(matches!(s.on_object("not json"), Verdict::Warn(_)));
        assert!(matches!(s.on_object("{}"), Verdict::Warn(_)));
    }

    #[test]
    fn error_before_ack_is_refused() {
        let mut s = session(&["nope:FOO-BAR"]);
        let v = s.on_object(
            r#"{"type":"error","id":1,"code":"unknown_symbol","message":"not served on the quote channel","symbols":["nope:FOO-BAR"]}"#,
        );
        assert_eq!(
            v,
            Verdict::Refused(
                "unknown_symbol: not served on the quote channel (nope:FOO-BAR)".into()
            )
        );
        let mut s = session(&["coinbase:BTC-USD"]);
        let v = s.on_object(
            r#"{"type":"error","id":1,"code":"too_many_subscriptions","message":"limit"}"#,
        );
        assert!(matches!(v, Verdict::Refused(m) if m.starts_with("too_many_subscriptions")));
    }

    #[test]
    fn partial_unknown_symbol_is_a_warning_unless_strict() {
        let err = r#"{"type":"error","id":1,"code":"unknown_symbol","message":"m","symbols":["nope:FOO-BAR"]}"#;
        let ack =
            r#"{"type":"subscribed","id":1,"channel":"quote","symbols":["coinbase:BTC-USD"]}"#;
        let mut s = session(&["coinbase:BTC-USD", "nope:FOO-BAR"]);
        assert_eq!(s.on_object(ack), Verdict::Skip);
        assert!(matches!(s.on_object(err), Verdict::Warn(w) if w.contains("nope:FOO-BAR")));

        // Order-independent: the error leaves a requested symbol out.
        let mut s = session(&["coinbase:BTC-USD", "nope:FOO-BAR"]);
        assert!(matches!(s.on_object(err), Verdict::Warn(_)));

        let both = ["coinbase:BTC-USD".to_string(), "nope:FOO-BAR".to_string()];
        let mut strict = Session::new(&both, true);
        assert_eq!(strict.on_object(ack), Verdict::Skip);
        assert!(matches!(strict.on_object(err), Verdict::Refused(_)));

        // Other errors after the ack are still refusals.
        let mut s = session(&["coinbase:BTC-USD"]);
        assert_eq!(s.on_object(ack), Verdict::Skip);
        assert!(matches!(
            s.on_object(r#"{"type":"error","code":"bad_request","message":"m"}"#),
            Verdict::Refused(_)
        ));
    }

    #[test]
    fn close_messages_name_code_and_reason() {
        let frame = CloseFrame {
            code: CloseCode::from(4008),
            reason: "no progress".into(),
        };
        assert_eq!(
            closed_message("ws://h/v1/ws", Some(&frame)),
            "server closed the connection to ws://h/v1/ws: 4008 (slow consumer): no progress"
        );
        let frame = CloseFrame {
            code: CloseCode::Away,
            reason: "".into(),
        };
        assert_eq!(
            closed_message("ws://h/v1/ws", Some(&frame)),
            "server closed the connection to ws://h/v1/ws: 1001 (going away: server shutting down)"
        );
        let frame = CloseFrame {
            code: CloseCode::Restart,
            reason: "service restart".into(),
        };
        assert_eq!(
            closed_message("ws://h/v1/ws", Some(&frame)),
            "server closed the connection to ws://h/v1/ws: 1012 (service restart: reconnect): service restart"
        );
    }
}
