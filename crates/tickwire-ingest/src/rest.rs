//! REST snapshots (Binance `/api/v3/depth`): one HTTP/1.1 GET over plain
//! TCP or TLS (rustls with the webpki roots), bounded in time and size.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Largest snapshot body accepted (a 5 000-level Binance book is ~250 KB).
const MAX_BODY: usize = 16 << 20;
/// Longest a whole GET may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Why a GET failed.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// The URL is not `http://host[:port]/...` or `https://...`.
    #[error("bad URL {0:?}")]
    Url(String),
    /// Connecting, TLS, or the HTTP exchange failed.
    #[error("{0}")]
    Io(String),
    /// The server answered with a status other than 200.
    #[error("HTTP {0}")]
    Status(u16),
    /// No answer within the time limit.
    #[error("timed out")]
    Timeout,
}

/// The TLS client configuration, built once: rustls with ring and the
/// Mozilla roots (no system store needed in a container).
pub(crate) fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                .map_err(|e| format!("TLS client configuration: {e}"))
        })
        .clone()
}

/// GETs `base` + `path_and_query` and returns the body of a 200 answer.
pub async fn get(base: &str, path_and_query: &str) -> Result<Bytes, RestError> {
    tokio::time::timeout(TIMEOUT, get_inner(base, path_and_query))
        .await
        .map_err(|_| RestError::Timeout)?
}

async fn get_inner(base: &str, path_and_query: &str) -> Result<Bytes, RestError> {
    let (tls, rest) = if let Some(r) = base.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = base.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(RestError::Url(base.to_owned()));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(RestError::Url(base.to_owned()));
    }
    let prefix = rest[authority.len()..].trim_end_matches('/');
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
            h,
            p.parse::<u16>()
                .map_err(|_| RestError::Url(base.to_owned()))?,
        ),
        _ => (authority, if tls { 443 } else { 80 }),
    };
    let io = |e: &dyn std::fmt::Display| RestError::Io(e.to_string());
    let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| io(&e))?;
    let _ = tcp.set_nodelay(true);
    let uri = format!("{prefix}{path_and_query}");
    let request = http::Request::get(uri)
        .header(http::header::HOST, authority)
        .header(
            http::header::USER_AGENT,
            concat!("tickwire/", env!("CARGO_PKG_VERSION")),
        )
        .header(http::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| io(&e))?;
    if tls {
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|_| RestError::Url(base.to_owned()))?;
        let stream = tokio_rustls::TlsConnector::from(tls_config().map_err(RestError::Io)?)
            .connect(name, tcp)
            .await
            .map_err(|e| io(&e))?;
        exchange(TokioIo::new(stream), request).await
    } else {
        exchange(TokioIo::new(tcp), request).await
    }
}

async fn exchange<T>(io: T, request: http::Request<Empty<Bytes>>) -> Result<Bytes, RestError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let err = |e: &dyn std::fmt::Display| RestError::Io(e.to_string());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| err(&e))?;
    let driver = tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "REST connection ended");
        }
    });
    let result = async {
        let response = sender.send_request(request).await.map_err(|e| err(&e))?;
        if response.status() != http::StatusCode::OK {
            return Err(RestError::Status(response.status().as_u16()));
        }
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| err(&e))?;
        Ok(body.to_bytes())
    }
    .await;
    driver.abort();
    result
}
