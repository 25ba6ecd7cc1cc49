//! The client protocol (v1): parsing client requests into typed values with
//! the right error code for every malformed shape, and encoding every
//! server message in the field order clients see documented.

use std::collections::HashSet;
use std::fmt;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::wire::JsonWriter;
use crate::{Channel, Instrument};

/// The protocol version spoken here.
pub const VERSION: u32 = 1;

/// Most symbols one request may name. Far above any sensible request, and
/// low enough that parsing one never takes a noticeable time.
pub const MAX_SYMBOLS: usize = 4096;

/// Longest accepted `throttle_ms` (one minute); longer is a client bug.
pub const MAX_THROTTLE_MS: u64 = 60_000;

/// The stable catalogue of error codes a client may receive.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum ErrorCode {
    /// The request is not valid JSON or not of a request's shape.
    BadRequest,
    /// `op` names no known operation.
    UnknownOp,
    /// `channel` names no known channel.
    UnknownChannel,
    /// One or more symbols are not served here.
    UnknownSymbol,
    /// The connection would hold more subscriptions than allowed.
    TooManySubscriptions,
    /// The connection sent requests faster than its token bucket allows.
    RateLimited,
    /// The connection has not authenticated.
    Unauthorized,
    /// The credentials do not entitle this request.
    Forbidden,
}

impl ErrorCode {
    /// Every code, for tests and documentation.
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::BadRequest,
        ErrorCode::UnknownOp,
        ErrorCode::UnknownChannel,
        ErrorCode::UnknownSymbol,
        ErrorCode::TooManySubscriptions,
        ErrorCode::RateLimited,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
    ];

    /// The code as sent on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownOp => "unknown_op",
            ErrorCode::UnknownChannel => "unknown_channel",
            ErrorCode::UnknownSymbol => "unknown_symbol",
            ErrorCode::TooManySubscriptions => "too_many_subscriptions",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request `id` as the client wrote it (a JSON string or number), kept as
/// JSON text so it is echoed back exactly.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RequestId(String);

impl RequestId {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::String(_) | Value::Number(_) => Some(Self(v.to_string())),
            _ => None,
        }
    }

    /// The id's JSON text (`7` or `"abc"`).
    pub fn as_json(&self) -> &str {
        &self.0
    }
}

/// What a symbol in a request may name.
#[derive(Clone, PartialEq, Eq, Debug, Hash)]
pub enum SymbolSelector {
    /// One instrument.
    Instrument(Instrument),
    /// `venue:*`: every instrument of a venue.
    Venue(String),
}

impl SymbolSelector {
    /// Parses `venue:BASE-QUOTE` or `venue:*`.
    pub fn parse(text: &str) -> Option<Self> {
        if let Some(venue) = text.strip_suffix(":*") {
            let ok = !venue.is_empty()
                && venue
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_');
            return ok.then(|| SymbolSelector::Venue(venue.to_ascii_lowercase()));
        }
        Instrument::parse(text).ok().map(SymbolSelector::Instrument)
    }
}

/// `{"op":"subscribe",...}`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Subscribe {
    /// Echoed in the reply.
    pub id: Option<RequestId>,
    /// The channel.
    pub channel: Channel,
    /// Well-formed symbols, in request order, without duplicates.
    pub symbols: Vec<SymbolSelector>,
    /// Symbols that are not even well-formed; reported as `unknown_symbol`.
    pub invalid: Vec<String>,
    /// Send the latest value first (default true).
    pub snapshot: bool,
    /// At most one update per topic per this many ms (0: no cap).
    pub throttle_ms: u32,
    /// Per instrument, the first `seq` wanted (trade only).
    pub from_seq: Vec<(Instrument, u64)>,
}

/// `{"op":"unsubscribe",...}`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Unsubscribe {
    /// Echoed in the reply.
    pub id: Option<RequestId>,
    /// The channel.
    pub channel: Channel,
    /// Well-formed symbols.
    pub symbols: Vec<SymbolSelector>,
    /// Symbols that are not even well-formed.
    pub invalid: Vec<String>,
}

/// A parsed client request.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Request {
    /// Subscribe to topics.
    Subscribe(Subscribe),
    /// Unsubscribe from topics.
    Unsubscribe(Unsubscribe),
    /// List instruments and channels.
    List {
        /// Echoed in the reply.
        id: Option<RequestId>,
    },
    /// Application-level ping (browsers cannot send WebSocket pings).
    Ping {
        /// Echoed in the reply.
        id: Option<RequestId>,
    },
    /// Credentials sent as the first message, for clients that cannot set
    /// a header (browsers) and would rather not put a token in the URL.
    Auth {
        /// Echoed in the reply.
        id: Option<RequestId>,
        /// An API key or a JWT.
        token: String,
    },
}

impl Request {
    /// The request's id, echoed in its reply.
    pub fn id(&self) -> Option<&RequestId> {
        match self {
            Request::Subscribe(s) => s.id.as_ref(),
            Request::Unsubscribe(u) => u.id.as_ref(),
            Request::List { id } | Request::Ping { id } | Request::Auth { id, .. } => id.as_ref(),
        }
    }
}

/// A request that cannot be served, with what to tell the client.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RequestError {
    /// The request's id, when it could be read.
    pub id: Option<RequestId>,
    /// The error code.
    pub code: ErrorCode,
    /// A short human-readable explanation.
    pub message: String,
}

impl RequestError {
    fn new(id: &Option<RequestId>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            id: id.clone(),
            code,
            message: message.into(),
        }
    }

    /// The reply frame for this error.
    pub fn encode(&self) -> Bytes {
        error(self.id.as_ref(), self.code, &self.message, &[])
    }
}

type Parsed<T> = Result<T, RequestError>;

/// Parses one client text frame into a request.
pub fn parse_request(text: &[u8]) -> Parsed<Request> {
    let none = None;
    let value: Value = serde_json::from_slice(text).map_err(|e| {
        RequestError::new(&none, ErrorCode::BadRequest, format!("invalid JSON: {e}"))
    })?;
    let Value::Object(obj) = value else {
        return Err(RequestError::new(
            &none,
            ErrorCode::BadRequest,
            "a request is a JSON object",
        ));
    };
    let id = match obj.get("id") {
        None | Some(Value::Null) => None,
        Some(v) => Some(RequestId::from_value(v).ok_or_else(|| {
            RequestError::new(
                &none,
                ErrorCode::BadRequest,
                "`id` must be a string or a number",
            )
        })?),
    };
    let op = match obj.get("op") {
        Some(Value::String(op)) => op.as_str(),
        Some(_) => {
            return Err(RequestError::new(
                &id,
                ErrorCode::BadRequest,
                "`op` must be a string",
            ));
        }
        None => {
            return Err(RequestError::new(
                &id,
                ErrorCode::BadRequest,
                "missing `op`",
            ));
        }
    };
    match op {
        "subscribe" => {
            check_fields(
                &obj,
                &id,
                &[
                    "op",
                    "id",
                    "channel",
                    "symbols",
                    "snapshot",
                    "throttle_ms",
                    "from_seq",
                ],
            )?;
            parse_subscribe(&obj, id).map(Request::Subscribe)
        }
        "unsubscribe" => {
            check_fields(&obj, &id, &["op", "id", "channel", "symbols"])?;
            let channel = parse_channel(&obj, &id)?;
            let (symbols, invalid) = parse_symbols(&obj, &id)?;
            Ok(Request::Unsubscribe(Unsubscribe {
                id,
                channel,
                symbols,
                invalid,
            }))
        }
        "list" => {
            check_fields(&obj, &id, &["op", "id"])?;
            Ok(Request::List { id })
        }
        "ping" => {
            check_fields(&obj, &id, &["op", "id"])?;
            Ok(Request::Ping { id })
        }
        "auth" => {
            check_fields(&obj, &id, &["op", "id", "token"])?;
            match obj.get("token") {
                Some(Value::String(token)) => Ok(Request::Auth {
                    id,
                    token: token.clone(),
                }),
                _ => Err(RequestError::new(
                    &id,
                    ErrorCode::BadRequest,
                    "`token` must be a string",
                )),
            }
        }
        other => Err(RequestError::new(
            &id,
            ErrorCode::UnknownOp,
            format!("unknown op {other:?}: expected subscribe, unsubscribe, list, ping or auth"),
        )),
    }
}

/// Unknown fields are rejected so that a typo (`throtle_ms`) is reported
/// instead of silently ignored.
fn check_fields(obj: &Map<String, Value>, id: &Option<RequestId>, allowed: &[&str]) -> Parsed<()> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(RequestError::new(
            id,
            ErrorCode::BadRequest,
            format!("unknown field {k:?}"),
        )),
        None => Ok(()),
    }
}

fn parse_channel(obj: &Map<String, Value>, id: &Option<RequestId>) -> Parsed<Channel> {
    match obj.get("channel") {
        Some(Value::String(c)) => c.parse().map_err(|_| {
            RequestError::new(
                id,
                ErrorCode::UnknownChannel,
                format!("unknown channel {c:?}: expected trade, quote, ticker or book"),
            )
        }),
        Some(_) => Err(RequestError::new(
            id,
            ErrorCode::BadRequest,
            "`channel` must be a string",
        )),
        None => Err(RequestError::new(
            id,
            ErrorCode::BadRequest,
            "missing `channel`",
        )),
    }
}

fn parse_symbols(
    obj: &Map<String, Value>,
    id: &Option<RequestId>,
) -> Parsed<(Vec<SymbolSelector>, Vec<String>)> {
    let list = match obj.get("symbols") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        Some(Value::Array(_)) => {
            return Err(RequestError::new(
                id,
                ErrorCode::BadRequest,
                "`symbols` is empty",
            ));
        }
        Some(_) => {
            return Err(RequestError::new(
                id,
                ErrorCode::BadRequest,
                "`symbols` must be an array of strings",
            ));
        }
        None => {
            return Err(RequestError::new(
                id,
                ErrorCode::BadRequest,
                "missing `symbols`",
            ));
        }
    };
    if list.len() > MAX_SYMBOLS {
        return Err(RequestError::new(
            id,
            ErrorCode::BadRequest,
            format!(
                "`symbols` holds {} entries; at most {MAX_SYMBOLS} per request",
                list.len()
            ),
        ));
    }
    let mut symbols = Vec::with_capacity(list.len());
    let mut invalid = Vec::new();
    // Sets, so a request of many symbols costs linear time, not quadratic.
    let mut seen: HashSet<SymbolSelector> = HashSet::with_capacity(list.len());
    let mut seen_invalid: HashSet<&str> = HashSet::new();
    for s in list {
        let Value::String(s) = s else {
            return Err(RequestError::new(
                id,
                ErrorCode::BadRequest,
                "`symbols` must be an array of strings",
            ));
        };
        match SymbolSelector::parse(s) {
            Some(sel) => {
                if seen.insert(sel.clone()) {
                    symbols.push(sel);
                }
            }
            None => {
                if seen_invalid.insert(s.as_str()) {
                    invalid.push(s.clone());
                }
            }
        }
    }
    Ok((symbols, invalid))
}

fn parse_subscribe(obj: &Map<String, Value>, id: Option<RequestId>) -> Parsed<Subscribe> {
    let channel = parse_channel(obj, &id)?;
    let (symbols, invalid) = parse_symbols(obj, &id)?;
    let snapshot = match obj.get("snapshot") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(RequestError::new(
                &id,
                ErrorCode::BadRequest,
                "`snapshot` must be true or false",
            ));
        }
    };
    let throttle_ms = match obj.get("throttle_ms") {
        None => 0,
        Some(v) => match v.as_u64() {
            Some(ms) if ms <= MAX_THROTTLE_MS => ms as u32,
            _ => {
                return Err(RequestError::new(
                    &id,
                    ErrorCode::BadRequest,
                    format!("`throttle_ms` must be an integer from 0 to {MAX_THROTTLE_MS}"),
                ));
            }
        },
    };
    let from_seq = match obj.get("from_seq") {
        None => Vec::new(),
        Some(Value::Object(map)) => {
            if channel != Channel::Trade {
                return Err(RequestError::new(
                    &id,
                    ErrorCode::BadRequest,
                    "`from_seq` is only for the trade channel",
                ));
            }
            let mut out = Vec::with_capacity(map.len());
            let listed: HashSet<&SymbolSelector> = symbols.iter().collect();
            for (sym, seq) in map {
                let instrument = Instrument::parse(sym)
                    .ok()
                    .filter(|i| listed.contains(&SymbolSelector::Instrument(i.clone())));
                let Some(instrument) = instrument else {
                    return Err(RequestError::new(
                        &id,
                        ErrorCode::BadRequest,
                        format!("`from_seq` names {sym:?}, which is not in `symbols`"),
                    ));
                };
                let Some(seq) = seq.as_u64() else {
                    return Err(RequestError::new(
                        &id,
                        ErrorCode::BadRequest,
                        "`from_seq` values must be non-negative integers",
                    ));
                };
                out.push((instrument, seq));
            }
            out
        }
        Some(_) => {
            return Err(RequestError::new(
                &id,
                ErrorCode::BadRequest,
                "`from_seq` must be an object of symbol to seq",
            ));
        }
    };
    Ok(Subscribe {
        id,
        channel,
        symbols,
        invalid,
        snapshot,
        throttle_ms,
        from_seq,
    })
}

/// Limits announced in `hello`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Limits {
    /// Subscriptions one connection may hold.
    pub max_subscriptions: usize,
    /// Request rate (and burst) per connection.
    pub max_requests_per_sec: u32,
    /// Largest client message accepted.
    pub max_message_bytes: usize,
}

fn open(w: &mut JsonWriter, kind: &str, id: Option<&RequestId>) {
    w.raw("{\"type\":\"").raw(kind).raw("\"");
    if let Some(id) = id {
        w.raw(",\"id\":").raw(id.as_json());
    }
}

/// `{"type":"hello",...}`, sent first on every connection.
pub fn hello(server: &str, heartbeat_ms: u64, limits: &Limits) -> Bytes {
    let mut w = JsonWriter::with_capacity(192);
    open(&mut w, "hello", None);
    w.raw(",").key("version").uint(u64::from(VERSION));
    w.raw(",").key("server").string(server);
    w.raw(",").key("heartbeat_ms").uint(heartbeat_ms);
    w.raw(",").key("limits").raw("{");
    w.key("max_subscriptions")
        .uint(limits.max_subscriptions as u64);
    w.raw(",")
        .key("max_requests_per_sec")
        .uint(u64::from(limits.max_requests_per_sec));
    w.raw(",")
        .key("max_message_bytes")
        .uint(limits.max_message_bytes as u64);
    w.raw("}}");
    w.finish()
}

fn ack(kind: &str, id: Option<&RequestId>, channel: Channel, symbols: &[Instrument]) -> Bytes {
    let mut w = JsonWriter::with_capacity(64 + 24 * symbols.len());
    open(&mut w, kind, id);
    w.raw(",").key("channel").string(channel.as_str());
    w.raw(",").key("symbols").raw("[");
    for (i, s) in symbols.iter().enumerate() {
        if i > 0 {
            w.raw(",");
        }
        w.string(s.as_str());
    }
    w.raw("]}");
    w.finish()
}

/// `{"type":"subscribed",...}`.
pub fn subscribed(id: Option<&RequestId>, channel: Channel, symbols: &[Instrument]) -> Bytes {
    ack("subscribed", id, channel, symbols)
}

/// `{"type":"unsubscribed",...}`, listing what was removed.
pub fn unsubscribed(id: Option<&RequestId>, channel: Channel, symbols: &[Instrument]) -> Bytes {
    ack("unsubscribed", id, channel, symbols)
}

/// `{"type":"symbols",...}`: every instrument with the channels it has.
pub fn symbols<'a>(
    id: Option<&RequestId>,
    entries: impl IntoIterator<Item = (&'a Instrument, &'a [Channel])>,
) -> Bytes {
    let mut w = JsonWriter::with_capacity(1024);
    open(&mut w, "symbols", id);
    w.raw(",").key("symbols").raw("[");
    for (i, (inst, channels)) in entries.into_iter().enumerate() {
        if i > 0 {
            w.raw(",");
        }
        w.raw("{")
            .key("symbol")
            .string(inst.as_str())
            .raw(",")
            .key("channels")
            .raw("[");
        for (j, c) in channels.iter().enumerate() {
            if j > 0 {
                w.raw(",");
            }
            w.string(c.as_str());
        }
        w.raw("]}");
    }
    w.raw("]}");
    w.finish()
}

/// `{"type":"pong","id":..,"ts":..}` with the server time in µs.
pub fn pong(id: Option<&RequestId>, ts: u64) -> Bytes {
    let mut w = JsonWriter::with_capacity(64);
    open(&mut w, "pong", id);
    w.raw(",").key("ts").uint(ts).raw("}");
    w.finish()
}

/// `{"type":"authenticated","id":..}`: the reply to a good `op:auth`.
pub fn authenticated(id: Option<&RequestId>) -> Bytes {
    let mut w = JsonWriter::with_capacity(48);
    open(&mut w, "authenticated", id);
    w.raw("}");
    w.finish()
}

/// `{"type":"error",...}`; `symbols` is written only when not empty.
pub fn error(id: Option<&RequestId>, code: ErrorCode, message: &str, symbols: &[String]) -> Bytes {
    let mut w = JsonWriter::with_capacity(128);
    open(&mut w, "error", id);
    w.raw(",").key("code").string(code.as_str());
    w.raw(",").key("message").string(message);
    if !symbols.is_empty() {
        w.raw(",").key("symbols").raw("[");
        for (i, s) in symbols.iter().enumerate() {
            if i > 0 {
                w.raw(",");
            }
            w.string(s);
        }
        w.raw("]");
    }
    w.raw("}");
    w.finish()
}

/// Why a client missed a range of trades.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum GapReason {
    /// The client's trade queue overflowed because it did not read.
    SlowConsumer,
    /// `from_seq` asked for trades history no longer holds.
    HistoryExpired,
    /// The bus lost updates before they reached this gateway.
    Upstream,
}

impl GapReason {
    /// The reason as sent on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            GapReason::SlowConsumer => "slow_consumer",
            GapReason::HistoryExpired => "history_expired",
            GapReason::Upstream => "upstream_loss",
        }
    }
}

/// `{"type":"gap",...}`: trades `from_seq..=to_seq` will not be delivered.
pub fn gap(
    channel: Channel,
    symbol: &Instrument,
    from_seq: u64,
    to_seq: u64,
    reason: GapReason,
) -> Bytes {
    let mut w = JsonWriter::with_capacity(128);
    open(&mut w, "gap", None);
    w.raw(",").key("channel").string(channel.as_str());
    w.raw(",").key("symbol").string(symbol.as_str());
    w.raw(",").key("from_seq").uint(from_seq);
    w.raw(",").key("to_seq").uint(to_seq);
    w.raw(",").key("reason").string(reason.as_str()).raw("}");
    w.finish()
}

/// Whether an instrument's data is flowing.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum FeedState {
    /// Updates are current.
    Live,
    /// Updates stopped; the last values may be old.
    Stale,
}

impl FeedState {
    /// The state as sent on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            FeedState::Live => "live",
            FeedState::Stale => "stale",
        }
    }
}

/// `{"type":"status",...}`; `reason` is omitted when empty.
pub fn status(symbol: &Instrument, state: FeedState, reason: &str) -> Bytes {
    let mut w = JsonWriter::with_capacity(112);
    open(&mut w, "status", None);
    w.raw(",").key("symbol").string(symbol.as_str());
    w.raw(",").key("state").string(state.as_str());
    if !reason.is_empty() {
        w.raw(",").key("reason").string(reason);
    }
    w.raw("}");
    w.finish()
}

#[cfg(test)]
mod tests;
