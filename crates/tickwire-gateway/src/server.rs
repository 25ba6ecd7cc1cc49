//! The gateway server: the accept loop and the handle a caller holds to
//! inspect and stop it. Shutdown is injected as a cancellation token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tickwire_bus::Bus;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::config::GatewayConfig;
use crate::hub::Hub;
use crate::session::SessionContext;
use crate::{Result, http};

/// A running gateway.
pub struct Gateway {
    addr: SocketAddr,
    ctx: Arc<SessionContext>,
    accept: JoinHandle<()>,
    tracker: TaskTracker,
}

impl Gateway {
    /// Starts serving HTTP and WebSocket clients on `listener`, fed by
    /// `bus`, until `shutdown` is cancelled.
    pub async fn start(
        listener: TcpListener,
        bus: Arc<dyn Bus>,
        config: GatewayConfig,
        shutdown: CancellationToken,
    ) -> Result<Self> {
        config.validate()?;
        let addr = listener.local_addr()?;
        let hub = Hub::new(bus, shutdown.clone());
        let ctx = Arc::new(SessionContext {
            hub,
            config,
            shutdown,
        });
        let tracker = TaskTracker::new();
        let accept = tokio::spawn(accept_loop(listener, ctx.clone(), tracker.clone()));
        info!(%addr, "gateway listening");
        Ok(Self {
            addr,
            ctx,
            accept,
            tracker,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The hub, for inspection.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.ctx.hub
    }

    /// `(connection id, frames held in its outbox)` for every connection.
    pub fn connection_depths(&self) -> Vec<(u64, usize)> {
        self.ctx.hub.connection_depths()
    }

    /// Waits until shutdown has stopped the listener and closed the
    /// connections (or the shutdown timeout passed).
    pub async fn wait(self) {
        let _ = self.accept.await;
        self.tracker.close();
        let limit = Duration::from_millis(self.ctx.config.shutdown_timeout_ms);
        if tokio::time::timeout(limit, self.tracker.wait())
            .await
            .is_err()
        {
            warn!(
                open = self.tracker.len(),
                "shutdown timeout: leaving connections behind"
            );
        }
    }
}

/// The next accepted connection, or `None` once `shutdown` is cancelled.
/// A failing accept (out of file descriptors and the like) is logged and
/// retried after a pause instead of spinning.
pub async fn accept_next(
    listener: &TcpListener,
    shutdown: &CancellationToken,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return None,
            a = listener.accept() => a,
        };
        match accepted {
            Ok(a) => return Some(a),
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, ctx: Arc<SessionContext>, tracker: TaskTracker) {
    while let Some((stream, peer)) = accept_next(&listener, &ctx.shutdown).await {
        let _ = stream.set_nodelay(true);
        let (ctx, conn_tracker) = (ctx.clone(), tracker.clone());
        tracker.spawn(async move {
            let service = {
                let ctx = ctx.clone();
                service_fn(move |req| http::handle(req, ctx.clone(), conn_tracker.clone()))
            };
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = ctx.shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                debug!(%peer, error = %e, "http connection ended with an error");
            }
        });
    }
}
