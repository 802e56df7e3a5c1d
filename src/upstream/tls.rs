//! TLS to upstreams (`https://` integrations, `tls = true` upstreams): rustls with the
//! `ring` provider, TLS 1.2 and 1.3, certificates verified against the system's roots
//! or a configured CA, SNI and verification by the target's host name (or
//! `tls_server_name`), ALPN `http/1.1`.
//!
//! [`UpIo`] is an upstream connection, plain or TLS, so pools and the proxy handle both
//! the same way. The TLS side's futures are boxed so that a plain connection's request
//! future does not grow by the size of a TLS read. Tested end to end in
//! `tests/upstream_tls.rs`.

use std::hash::{Hash, Hasher};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;
use monoio::BufResult;
use monoio_rustls::{ClientTlsStream, TlsConnector};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

/// How to reach one target over TLS.
#[derive(Debug, Clone)]
pub struct TlsPeer {
    pub config: Arc<ClientConfig>,
    /// SNI, and the name the certificate must carry.
    pub name: ServerName<'static>,
    /// Tells pooled connections of different TLS identities apart (0: plain).
    pub key: u64,
}

impl TlsPeer {
    /// `host` is the target's host as configured (a DNS name or an IP address).
    pub fn new(config: Arc<ClientConfig>, ca_id: &str, host: &str) -> Result<TlsPeer, String> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| format!("`{host}` is not a TLS server name"))?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (ca_id, host).hash(&mut h);
        Ok(TlsPeer {
            config,
            name,
            key: h.finish() | 1,
        })
    }
}

/// A client configuration trusting `ca` (a PEM file) or, without one, the system's
/// roots. The second value is a warning to log (no system roots found).
pub fn client_config(ca: Option<&Path>) -> Result<(Arc<ClientConfig>, Option<String>), String> {
    let mut roots = RootCertStore::empty();
    let mut warning = None;
    match ca {
        Some(path) => {
            let pem =
                std::fs::read(path).map_err(|e| format!("tls_ca `{}`: {e}", path.display()))?;
            let certs = pem_certs(&pem);
            if certs.is_empty() {
                return Err(format!(
                    "tls_ca `{}`: no PEM certificate in it",
                    path.display()
                ));
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| format!("tls_ca `{}`: {e}", path.display()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                warning = Some(
                    "no system root certificates found: TLS upstreams without tls_ca will fail verification"
                        .to_string(),
                );
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), warning))
}

/// The DER certificates of a PEM text.
fn pem_certs(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect()
}

/// Runs the handshake on a connected socket.
pub async fn handshake(tcp: TcpStream, peer: &TlsPeer) -> Result<UpIo, String> {
    let connector = TlsConnector::from(peer.config.clone());
    match connector.connect(peer.name.clone(), tcp).await {
        Ok(s) => Ok(UpIo::Tls(Box::new(s))),
        Err(e) => {
            let msg = format!("TLS handshake with {:?} failed: {e}", peer.name);
            log_handshake_failure(&msg);
            Err(msg)
        }
    }
}

/// Handshake failures are logged at most every 10 s (a bad certificate would
/// otherwise log once per request).
pub(super) fn log_handshake_failure(msg: &str) {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST.load(Ordering::Relaxed);
    if now >= last + 10
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        crate::warn!("upstream {msg}");
    }
}

/// An upstream connection: plain TCP or TLS over it.
#[derive(Debug)]
pub enum UpIo {
    Plain(TcpStream),
    Tls(Box<ClientTlsStream<TcpStream>>),
    /// One stream on an HTTP/2 session (`upstream::h2`).
    H2(Box<super::h2::H2Stream>),
}

impl UpIo {
    /// Whether the upstream certainly did not process the request sent on this
    /// connection (HTTP/2 only: a refused stream).
    pub fn unprocessed(&self) -> bool {
        matches!(self, UpIo::H2(s) if s.unprocessed())
    }
}

/// An HTTP/2 stream takes its request through `upstream::exchange`, not as bytes.
fn stream_io() -> io::Error {
    io::Error::other("an HTTP/2 stream is written through upstream::exchange, not as bytes")
}

impl AsyncReadRent for UpIo {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            UpIo::Plain(s) => s.read(buf).await,
            UpIo::Tls(s) => Box::pin(s.read(buf)).await,
            UpIo::H2(s) => Box::pin(s.read(buf)).await,
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            UpIo::Plain(s) => s.readv(buf).await,
            UpIo::Tls(s) => Box::pin(s.readv(buf)).await,
            UpIo::H2(s) => s.readv(buf).await,
        }
    }
}

impl AsyncWriteRent for UpIo {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            UpIo::Plain(s) => s.write(buf).await,
            UpIo::Tls(s) => Box::pin(s.write(buf)).await,
            UpIo::H2(_) => (Err(stream_io()), buf),
        }
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            UpIo::Plain(s) => s.writev(buf).await,
            UpIo::Tls(s) => Box::pin(s.writev(buf)).await,
            UpIo::H2(_) => (Err(stream_io()), buf),
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        match self {
            UpIo::Plain(s) => s.flush().await,
            UpIo::Tls(s) => Box::pin(s.flush()).await,
            UpIo::H2(_) => Ok(()),
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            UpIo::Plain(s) => s.shutdown().await,
            UpIo::Tls(s) => Box::pin(s.shutdown()).await,
            UpIo::H2(_) => Ok(()),
        }
    }
}
