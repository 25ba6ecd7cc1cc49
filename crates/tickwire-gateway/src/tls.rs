//! TLS on the gateway's listener: the certificate and key come from PEM
//! files and are reloaded without a restart (SIGHUP, or a change of the
//! files' modification times seen by a poll). A reload swaps what the
//! certificate resolver hands to new handshakes; connections already
//! established keep the session they negotiated. A file that does not
//! load is logged and the certificate in use is kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The gateway's TLS state: the acceptor new connections use and the
/// files it reloads from.
pub(crate) struct Tls {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
    resolver: Arc<Resolver>,
    cert_file: PathBuf,
    key_file: PathBuf,
}

/// Hands every handshake the certificate loaded last.
#[derive(Debug)]
struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

impl Tls {
    /// Loads the certificate chain and key; an error names the file.
    pub(crate) fn load(cert_file: &Path, key_file: &Path) -> Result<Self, String> {
        let key = load_key(cert_file, key_file)?;
        let resolver = Arc::new(Resolver {
            current: RwLock::new(Arc::new(key)),
        });
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        // HTTP/1.1 only: the WebSocket upgrade needs it.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            resolver,
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
        })
    }

    /// Loads the files again; on failure the certificate in use stays.
    pub(crate) fn reload(&self, why: &str) -> bool {
        match load_key(&self.cert_file, &self.key_file) {
            Ok(key) => {
                *self
                    .resolver
                    .current
                    .write()
                    .unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
                info!(why, cert = %self.cert_file.display(), "TLS certificate reloaded");
                true
            }
            Err(e) => {
                warn!(why, error = %e, "TLS certificate reload failed; keeping the current one");
                false
            }
        }
    }

    fn stamp(&self) -> (Option<SystemTime>, Option<SystemTime>) {
        let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        (mtime(&self.cert_file), mtime(&self.key_file))
    }

    /// Reloads on SIGHUP and whenever the files' modification times
    /// change (checked every `poll`), until `stop`.
    pub(crate) async fn watch(self: Arc<Self>, poll: Duration, stop: CancellationToken) {
        let mut hangup = hangup_signal();
        let mut seen = self.stamp();
        let mut interval = tokio::time::interval(poll);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let why = tokio::select! {
                _ = stop.cancelled() => return,
                _ = interval.tick() => "file change",
                _ = recv_hangup(&mut hangup) => "SIGHUP",
            };
            let now = self.stamp();
            if why == "SIGHUP" || now != seen {
                // Remembered even when the load fails, so a bad file is
                // reported once, not at every poll; fixing it changes the
                // stamp again.
                seen = now;
                self.reload(why);
            }
        }
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            warn!(error = %e, "cannot listen for SIGHUP; TLS reloads on file change only");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangup_signal() -> Hangup {
    None
}

async fn recv_hangup(hangup: &mut Hangup) {
    #[cfg(unix)]
    if let Some(s) = hangup {
        if s.recv().await.is_some() {
            return;
        }
    }
    let _ = hangup;
    std::future::pending::<()>().await;
}

fn load_key(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, String> {
    let certs = CertificateDer::pem_file_iter(cert_file)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", cert_file.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("{}: {e}", key_file.display()))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("{}: {e}", key_file.display()))?;
    let certified = CertifiedKey::new(certs, signer);
    certified.keys_match().map_err(|e| {
        format!(
            "{} and {} do not match: {e}",
            cert_file.display(),
            key_file.display()
        )
    })?;
    Ok(certified)
}
