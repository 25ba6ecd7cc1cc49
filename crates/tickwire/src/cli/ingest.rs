//! `tickwire ingest`: the feeds on their own, publishing onto Redis, until
//! ctrl-c or SIGTERM; optionally `/healthz`, `/readyz` and `/metrics` on a
//! port of its own.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use clap::Args;
use http::{Method, Response, StatusCode, header};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tickwire_bus::Bus;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::check::{self, Role};
use super::common::{self, ConfigArgs, Signals};
use crate::bus;

/// How long open probe connections may take to finish on shutdown.
const PROBES_DRAIN: Duration = Duration::from_secs(1);

/// Play feeds onto a Redis bus, for `tickwire gateway` processes to serve.
///
/// Runs the feeds of every --feeds file side by side (without any: the
/// configured `feeds.file`, else the same embedded venue captures as
/// `tickwire run`, replayed in a loop) and publishes each update onto Redis or Redis Cluster: last value,
/// trade history and pub/sub. Sequence numbers continue from what the bus
/// holds, so a restarted ingest goes on where the last one stopped.
///
/// Example:
///   tickwire ingest --bus redis://127.0.0.1:6379
///   tickwire ingest --bus redis://127.0.0.1:6379 --feeds a.toml b.toml --listen 127.0.0.1:9090
///
/// Prints `tickwire ingest publishing to <bus>` on stdout once the feeds
/// run. While Redis is unreachable it keeps generating, counts what it
/// cannot publish, and reconnects; it never exits for that. Serves no HTTP
/// unless --listen (or `ingest.listen`) is given: then /healthz (up),
/// /readyz (200 while Redis is reachable) and /metrics (Prometheus).
/// Ctrl-c or SIGTERM marks its instruments stale and exits; a second
/// signal exits at once.
///
/// Configuration: as for `tickwire run` ([bus], [feeds], [ingest]).
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct IngestArgs {
    #[command(flatten)]
    common: ConfigArgs,
    /// Feeds files to play side by side (overrides `feeds.file`); an
    /// instrument may appear in one file only.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    feeds: Vec<PathBuf>,
    /// Address for /healthz, /readyz and /metrics (overrides
    /// `ingest.listen`); port 0 picks a free port.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Validate the configuration (file, environment, flags, feeds files,
    /// bus URL), print a summary and exit 0, or 1 naming the key at fault;
    /// binds no port and connects to nothing.
    #[arg(long)]
    check: bool,
}

/// Runs until a signal, then stops the feeds.
pub(crate) async fn run(args: IngestArgs) -> anyhow::Result<ExitCode> {
    if args.check {
        return check::check(Role::Ingest, &args.common, args.listen, &args.feeds);
    }
    let mut signals = Signals::new().context("cannot install signal handlers")?;

    let mut config = common::load_config(&args.common)?;
    if let Some(listen) = args.listen {
        config.ingest.listen = Some(listen);
    }
    common::require_redis(&config, "ingest")?;
    let feeds = common::load_feeds(&args.feeds, &config)?;
    info!(
        file = %common::describe_file(&args.common),
        bus = %config.bus.describe(),
        feeds = %common::describe_feeds(&feeds),
        listen = %config.ingest.listen.map_or("(none)".into(), |a| a.to_string()),
        "configuration loaded"
    );
    // The recorder goes in before the feeds create their counters, which
    // would otherwise be bound to no recorder.
    let listener = match config.ingest.listen {
        None => None,
        Some(addr) => {
            if tickwire_gateway::install_metrics().is_none() {
                warn!("another metrics recorder is installed; /metrics will be empty");
            }
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            Some(listener)
        }
    };
    let connected = bus::connect(&config.bus).await?;

    let shutdown = CancellationToken::new();
    let _stop_on_exit = shutdown.clone().drop_guard();
    let feeds_tasks = common::spawn_feeds(&feeds, &connected.bus, &shutdown)?;
    let mut banner = format!("tickwire ingest publishing to {}", config.bus.describe());
    let probes = match listener {
        None => None,
        Some(listener) => {
            let addr = listener
                .local_addr()
                .context("cannot read the bound address")?;
            banner.push_str(&format!(
                " (health and metrics on http://{addr}/healthz /readyz /metrics)"
            ));
            info!(%addr, "serving /healthz, /readyz and /metrics");
            Some(tokio::spawn(serve_probes(
                listener,
                connected.bus.clone(),
                shutdown.clone(),
            )))
        }
    };
    common::print_line(&banner);

    let signal = signals.next().await;
    info!(signal, "shutting down: stopping the feeds");
    shutdown.cancel();
    let drained = async {
        common::join_feeds(feeds_tasks).await;
        connected.flush().await;
        if let Some(probes) = probes {
            if let Err(e) = probes.await {
                warn!(error = %e, "the probes server ended abnormally");
            }
        }
    };
    Ok(common::drain(&mut signals, drained).await)
}

/// Serves the probes until `shutdown`, then lets open requests finish for
/// at most [`PROBES_DRAIN`].
async fn serve_probes(listener: TcpListener, bus: Arc<dyn Bus>, shutdown: CancellationToken) {
    let tracker = TaskTracker::new();
    while let Some((stream, peer)) = tickwire_gateway::accept_next(&listener, &shutdown).await {
        let (bus, shutdown) = (bus.clone(), shutdown.clone());
        tracker.spawn(async move {
            let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let up = *bus.health().borrow();
                let response = probe(
                    req.method(),
                    req.uri().path(),
                    up,
                    tickwire_gateway::render_metrics,
                );
                async move { Ok::<_, Infallible>(response) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                () = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                debug!(%peer, error = %e, "probe connection ended with an error");
            }
        });
    }
    tracker.close();
    // Probe requests are tiny; one still open after this is abandoned.
    let _ = tokio::time::timeout(PROBES_DRAIN, tracker.wait()).await;
}

/// The answer to one probe request: pure but for `metrics`, called only
/// for `/metrics`.
fn probe(
    method: &Method,
    path: &str,
    bus_up: bool,
    metrics: impl FnOnce() -> String,
) -> Response<Full<Bytes>> {
    let json = |status: StatusCode, body: &'static str| {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap_or_default()
    };
    if method != Method::GET && method != Method::HEAD {
        return json(
            StatusCode::METHOD_NOT_ALLOWED,
            r#"{"error":"method_not_allowed","message":"only GET is served"}"#,
        );
    }
    match path {
        "/healthz" => json(StatusCode::OK, r#"{"status":"ok"}"#),
        "/readyz" if bus_up => json(StatusCode::OK, r#"{"status":"ready"}"#),
        "/readyz" => json(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"status":"not_ready","reason":"bus unreachable"}"#,
        ),
        "/metrics" => Response::builder()
            .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
            .body(Full::new(Bytes::from(metrics())))
            .unwrap_or_default(),
        _ => json(
            StatusCode::NOT_FOUND,
            r#"{"error":"not_found","message":"ingest serves /healthz, /readyz and /metrics"}"#,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(method: &Method, path: &str, up: bool) -> StatusCode {
        probe(method, path, up, || "tickwire_x 1\n".into()).status()
    }

    #[test]
    fn probes_answer_by_path_and_bus_health() {
        assert_eq!(status(&Method::GET, "/healthz", false), StatusCode::OK);
        assert_eq!(status(&Method::GET, "/readyz", true), StatusCode::OK);
        assert_eq!(
            status(&Method::GET, "/readyz", false),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(status(&Method::GET, "/metrics", false), StatusCode::OK);
        assert_eq!(status(&Method::GET, "/v1/ws", true), StatusCode::NOT_FOUND);
        assert_eq!(
            status(&Method::POST, "/healthz", true),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
