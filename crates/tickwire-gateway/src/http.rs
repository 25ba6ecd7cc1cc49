//! HTTP on the gateway's port: the WebSocket upgrade at `/v1/ws`, health
//! and readiness, Prometheus metrics, the symbol list, REST snapshots and
//! the web ticker board at `/` (its files are in [`crate::web`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tickwire_model::protocol::{self, ErrorCode};
use tickwire_model::wire::JsonWriter;
use tickwire_model::{Channel, Instrument, Topic};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_util::task::TaskTracker;
use tracing::{Instrument as _, debug};

use crate::auth::{Admission, request_token};
use crate::conn::{Conn, ConnOptions, Io};
use crate::entitle::Entitlements;
use crate::server::{LoadGuard, Refused};
use crate::session::SessionContext;

type Body = Full<Bytes>;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Routes one HTTP request.
pub(crate) async fn handle(
    req: Request<Incoming>,
    ctx: Arc<SessionContext>,
    tracker: TaskTracker,
    load: Arc<LoadGuard>,
) -> Result<Response<Body>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "only GET is served",
        ));
    }
    let path = req.uri().path().to_owned();
    let response = match path.as_str() {
        "/v1/ws" => upgrade(req, ctx, tracker, load, false),
        "/v1/echo" if ctx.config.echo_route => upgrade(req, ctx, tracker, load, true),
        "/healthz" => json(StatusCode::OK, Bytes::from_static(b"{\"status\":\"ok\"}")),
        "/readyz" => {
            if ctx.drain.is_cancelled() {
                json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Bytes::from_static(b"{\"status\":\"draining\"}"),
                )
            } else if ctx.hub.any_live().await {
                json(
                    StatusCode::OK,
                    Bytes::from_static(b"{\"status\":\"ready\"}"),
                )
            } else {
                json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Bytes::from_static(
                        b"{\"status\":\"not_ready\",\"reason\":\"no feed is live\"}",
                    ),
                )
            }
        }
        "/metrics" => Response::builder()
            .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
            .body(Full::new(Bytes::from(crate::metrics::render_metrics())))
            .unwrap_or_default(),
        "/v1/symbols" => match rest_entitlements(&req, &ctx) {
            Err(denied) => denied,
            Ok(ent) => {
                let catalogue = ctx.hub.catalogue().await;
                let visible: Vec<_> = catalogue
                    .iter()
                    .map(|(i, c)| (i, ent.filter_channels(i, c)))
                    .filter(|(_, c)| !c.is_empty())
                    .collect();
                json(
                    StatusCode::OK,
                    protocol::symbols(None, visible.iter().map(|(i, c)| (*i, c.as_slice()))),
                )
            }
        },
        p if p.starts_with("/v1/snapshot/") => match rest_entitlements(&req, &ctx) {
            Err(denied) => denied,
            Ok(ent) => snapshot(&p["/v1/snapshot/".len()..], &ctx, &ent).await,
        },
        p => match crate::web::lookup(p) {
            Some(asset) => crate::web::respond(asset, req.headers()),
            None => json_error(StatusCode::NOT_FOUND, "not_found", "no such endpoint"),
        },
    };
    Ok(response)
}

/// The entitlements of a REST request's credentials, or its 401 answer.
#[allow(clippy::result_large_err)]
fn rest_entitlements(
    req: &Request<Incoming>,
    ctx: &SessionContext,
) -> Result<std::sync::Arc<Entitlements>, Response<Body>> {
    let token = request_token(req.headers(), req.uri().query());
    match Admission::decide(ctx.config.auth.as_deref(), token.as_deref()) {
        Admission::Granted(p) => Ok(p.entitlements),
        Admission::Pending | Admission::Denied => Err(json_error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized.as_str(),
            "valid credentials required (Authorization: Bearer, or ?token=)",
        )),
    }
}

async fn snapshot(rest: &str, ctx: &SessionContext, ent: &Entitlements) -> Response<Body> {
    let Some((channel, symbol)) = rest.split_once('/') else {
        return json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "expected /v1/snapshot/{channel}/{symbol}",
        );
    };
    let Ok(channel) = channel.parse::<Channel>() else {
        return json_error(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownChannel.as_str(),
            "unknown channel",
        );
    };
    // Checked before the catalogue, so the answer says nothing about
    // whether a topic the client may not see exists.
    if let Ok(i) = Instrument::parse(symbol) {
        if !ent.allows(&i, channel) {
            return json_error(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden.as_str(),
                "not entitled to this topic",
            );
        }
    }
    let served = match Instrument::parse(symbol) {
        Ok(i)
            if ctx
                .hub
                .catalogue()
                .await
                .get(&i)
                .is_some_and(|c| c.contains(&channel)) =>
        {
            i
        }
        _ => {
            return json_error(
                StatusCode::NOT_FOUND,
                ErrorCode::UnknownSymbol.as_str(),
                "symbol not served on this channel",
            );
        }
    };
    let topic = Topic::new(served, channel);
    let last = match ent.delay_secs {
        0 => ctx.hub.last(&topic).await,
        secs => {
            let delay = std::time::Duration::from_secs(u64::from(secs));
            ctx.hub.last_delayed(&topic, delay).await
        }
    };
    match last {
        Some(update) => json(StatusCode::OK, update.bytes().clone()),
        None => json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no value yet for this topic",
        ),
    }
}

fn upgrade(
    req: Request<Incoming>,
    ctx: Arc<SessionContext>,
    tracker: TaskTracker,
    load: Arc<LoadGuard>,
    echo: bool,
) -> Response<Body> {
    if ctx.drain.is_cancelled() {
        return draining();
    }
    let headers = req.headers();
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return json_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "this endpoint speaks WebSocket only",
        );
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Response::builder()
            .status(StatusCode::UPGRADE_REQUIRED)
            .header(header::SEC_WEBSOCKET_VERSION, "13")
            .body(Full::new(Bytes::new()))
            .unwrap_or_default();
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "missing Sec-WebSocket-Key",
        );
    };
    if !origin_allowed(headers, &ctx.config.allowed_origins) {
        refused("origin");
        return json_error(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            "this origin may not open a WebSocket here",
        );
    }
    match ctx.limits.admit(load.ip) {
        Ok(slot) => {
            let _ = load.slot.set(slot);
        }
        Err(Refused::Server) => {
            refused("max_connections");
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_connections",
                "the server holds as many connections as it may",
            );
        }
        Err(Refused::Ip) => {
            refused("max_connections_per_ip");
            return json_error(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_connections",
                "this address holds as many connections as it may",
            );
        }
    }
    let accept = derive_accept_key(key.as_bytes());
    // Bad credentials still get the upgrade, then a 4001 close: a browser
    // cannot read an HTTP 401 body, but it sees the close code.
    let token = request_token(headers, req.uri().query());
    let admission = Admission::decide(ctx.config.auth.as_deref(), token.as_deref());
    let batch = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "batch=1" || kv == "batch=true"));
    let id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let conns = tracker.clone();
    tracker.spawn(
        async move {
            let upgraded = match hyper::upgrade::on(req).await {
                Ok(upgraded) => upgraded,
                Err(e) => {
                    debug!(error = %e, "upgrade failed");
                    return;
                }
            };
            // Our own framing runs on the bare socket (hyper's buffers and its
            // boxed I/O are dropped here); bytes the client sent right after
            // the handshake come along in `read_buf`.
            let (io, read_buf) = match upgraded.downcast::<TokioIo<TcpStream>>() {
                Ok(parts) => (Io::Plain(parts.io.into_inner()), parts.read_buf),
                Err(upgraded) => match upgraded.downcast::<TokioIo<TlsStream<TcpStream>>>() {
                    Ok(parts) => (Io::Tls(Box::new(parts.io.into_inner())), parts.read_buf),
                    Err(_) => {
                        debug!("upgraded connection is neither TCP nor TLS over TCP");
                        return;
                    }
                },
            };
            let conn = Conn::new(
                io,
                &read_buf,
                ctx,
                id,
                ConnOptions { batch, echo },
                load,
                admission,
            );
            drop(read_buf);
            // A task of its own, so it holds only the connection: this
            // one's state (hyper's upgrade future, and `read_buf`, a view
            // that would pin hyper's whole read buffer) ends here.
            conns.spawn(conn.in_current_span());
        }
        .in_current_span(),
    );
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Full::new(Bytes::new()))
        .unwrap_or_default()
}

fn refused(reason: &'static str) {
    metrics::counter!(crate::metrics::UPGRADES_REFUSED, "reason" => reason).increment(1);
}

/// Whether an upgrade may go on under the `allowed_origins` list: no
/// list, no `Origin` (not a browser), or an `Origin` on the list
/// (compared without case, as browsers send scheme and host lowercase).
fn origin_allowed(headers: &http::HeaderMap, allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => origin.to_str().is_ok_and(|o| {
            allowed
                .iter()
                .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(o))
        }),
    }
}

/// The answer to an upgrade during a drain: the listener stays open for
/// probes and scrapes, but new WebSocket clients belong on another
/// instance. `Retry-After` is 1 to 5 s, varied per answer, so clients
/// refused together do not come back together.
fn draining() -> Response<Body> {
    let mut response = json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "draining",
        "the server is restarting; reconnect, to another instance if there is one",
    );
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    response.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from(1 + jitter % 5),
    );
    response
}

fn json(status: StatusCode, body: Bytes) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(body))
        .unwrap_or_default()
}

/// `{"type":"error","code":..,"message":..}` with an HTTP status.
fn json_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let mut w = JsonWriter::with_capacity(96);
    w.raw("{\"type\":\"error\",")
        .key("code")
        .string(code)
        .raw(",")
        .key("message")
        .string(message)
        .raw("}");
    json(status, w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked_only_for_browsers_and_only_with_a_list() {
        let with = |origin: Option<&str>| {
            let mut h = http::HeaderMap::new();
            if let Some(o) = origin {
                h.insert(header::ORIGIN, o.parse().expect("header"));
            }
            h
        };
        let list = vec!["https://board.example/".to_string()];
        assert!(origin_allowed(&with(Some("https://evil.example")), &[]));
        assert!(origin_allowed(&with(None), &list));
        assert!(origin_allowed(&with(Some("https://board.example")), &list));
        assert!(origin_allowed(&with(Some("HTTPS://Board.Example")), &list));
        assert!(!origin_allowed(&with(Some("https://evil.example")), &list));
        assert!(!origin_allowed(&with(Some("null")), &list));
    }
}
