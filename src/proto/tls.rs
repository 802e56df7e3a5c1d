//! TLS termination on `[[gateway.tls]]` listeners: rustls with the `ring` provider,
//! TLS 1.2 and 1.3 only, a certificate per host chosen by SNI (exact names first, then
//! `*.example.com` wildcards, then the listener's first certificate as the default),
//! ALPN `http/1.1`.
//!
//! Certificates are loaded and checked when the plan compiles (missing, unreadable,
//! not PEM, expired or not yet valid, key not matching the certificate: each an error
//! at `turnpike check`), so a reload brings new certificates to new connections
//! while open ones keep theirs. [`ClientIo`] is a client connection, plain or TLS.
//! Tested end to end in `tests/tls.rs`.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;
use monoio::BufResult;
use monoio_rustls::ServerTlsStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

/// One certificate and the host names it serves.
#[derive(Debug)]
pub struct CertSpec<'a> {
    pub hosts: &'a [String],
    pub cert: &'a Path,
    pub key: &'a Path,
    /// A DER-encoded OCSP response to staple (RFC 6066 `status_request`).
    pub ocsp: Option<&'a Path>,
}

/// Picks a listener's certificate by SNI.
#[derive(Debug)]
struct ByName {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `example.com` for `*.example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl ResolvesServerCert for ByName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = hello.server_name() else {
            return Some(self.default.clone());
        };
        let name = name.to_ascii_lowercase();
        if let Some(c) = self.exact.get(&name) {
            return Some(c.clone());
        }
        if let Some((_, parent)) = name.split_once('.') {
            if let Some(c) = self.wildcard.get(parent) {
                return Some(c.clone());
            }
        }
        Some(self.default.clone())
    }
}

/// Client certificates a listener asks for (mutual TLS).
#[derive(Debug)]
pub struct ClientAuth<'a> {
    /// PEM file of the CAs that sign acceptable client certificates.
    pub ca: &'a Path,
    /// Without a certificate the handshake fails (else the client is anonymous).
    pub required: bool,
}

/// Builds a listener's server configuration; every problem with every certificate is
/// returned (as `(index of the cert, message)`).
pub fn server_config(
    certs: &[CertSpec<'_>],
    client: Option<ClientAuth<'_>>,
) -> Result<Arc<ServerConfig>, Vec<(usize, String)>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut errors = Vec::new();
    let mut loaded = Vec::new();
    for (i, c) in certs.iter().enumerate() {
        match load(c, &provider) {
            Ok(k) => loaded.push((c.hosts, Arc::new(k))),
            Err(msg) => errors.push((i, msg)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let Some(default) = loaded.first().map(|(_, k)| k.clone()) else {
        return Err(vec![(
            0,
            "a TLS listener needs at least one certificate".into(),
        )]);
    };
    let mut by = ByName {
        exact: HashMap::new(),
        wildcard: HashMap::new(),
        default,
    };
    for (hosts, key) in &loaded {
        for h in hosts.iter() {
            let h = h.to_ascii_lowercase();
            match h.strip_prefix("*.") {
                Some(parent) => by.wildcard.insert(parent.to_string(), key.clone()),
                None if h == "*" => {
                    by.default = key.clone();
                    None
                }
                None => by.exact.insert(h, key.clone()),
            };
        }
    }
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| vec![(0, e.to_string())])?;
    let builder = match client {
        None => builder.with_no_client_auth(),
        Some(c) => {
            let pem = std::fs::read(c.ca)
                .map_err(|e| vec![(0, format!("client_ca `{}`: {e}", c.ca.display()))])?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok) {
                roots
                    .add(cert)
                    .map_err(|e| vec![(0, format!("client_ca `{}`: {e}", c.ca.display()))])?;
            }
            if roots.is_empty() {
                return Err(vec![(
                    0,
                    format!("client_ca `{}`: no certificate in it", c.ca.display()),
                )]);
            }
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            let v = if c.required {
                v
            } else {
                v.allow_unauthenticated()
            };
            let verifier = v
                .build()
                .map_err(|e| vec![(0, format!("client_ca: {e}"))])?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(Arc::new(by));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn load(
    c: &CertSpec<'_>,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<CertifiedKey, String> {
    let cert_pem =
        std::fs::read(c.cert).map_err(|e| format!("cert `{}`: {e}", c.cert.display()))?;
    let key_pem = std::fs::read(c.key).map_err(|e| format!("key `{}`: {e}", c.key.display()))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cert `{}`: not PEM ({e})", c.cert.display()))?;
    let Some(leaf) = chain.first() else {
        return Err(format!("cert `{}`: no certificate in it", c.cert.display()));
    };
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("key `{}`: no private key in it ({e})", c.key.display()))?;
    match validity(leaf) {
        Some((not_before, not_after)) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            if now > not_after {
                return Err(format!(
                    "cert `{}` expired {} days ago",
                    c.cert.display(),
                    (now - not_after) / 86_400
                ));
            }
            if now < not_before {
                return Err(format!("cert `{}` is not valid yet", c.cert.display()));
            }
        }
        None => {
            return Err(format!(
                "cert `{}`: cannot read its validity dates",
                c.cert.display()
            ))
        }
    }
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("key `{}`: {e}", c.key.display()))?;
    let mut ck = CertifiedKey::new(chain, signer);
    ck.keys_match().map_err(|_| {
        format!(
            "key `{}` does not belong to cert `{}`",
            c.key.display(),
            c.cert.display()
        )
    })?;
    if let Some(path) = c.ocsp {
        let der = std::fs::read(path).map_err(|e| format!("ocsp `{}`: {e}", path.display()))?;
        // an OCSPResponse is a DER SEQUENCE; a PEM or empty file is a mistake
        if der.len() < 3 || der[0] != 0x30 {
            return Err(format!(
                "ocsp `{}`: not a DER-encoded OCSP response (openssl ocsp -respout writes one)",
                path.display()
            ));
        }
        ck.ocsp = Some(der);
    }
    Ok(ck)
}

/// `(notBefore, notAfter)` of a certificate, in Unix seconds: Certificate → TBS →
/// (skip version, serial, signature algorithm, issuer) → Validity.
fn validity(cert: &[u8]) -> Option<(i64, i64)> {
    let (certificate, _) = der(cert, 0x30)?;
    let (tbs, _) = der(certificate, 0x30)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = der_any(rest)?.1;
    }
    for _ in 0..3 {
        rest = der_any(rest)?.1; // serial, signature, issuer
    }
    let (validity, _) = der(rest, 0x30)?;
    let (nb_tag, nb, after) = der_tagged(validity)?;
    let (na_tag, na, _) = der_tagged(after)?;
    Some((time(nb_tag, nb)?, time(na_tag, na)?))
}

/// The contents of the element at the start of `b` if its tag is `tag`, and what follows.
fn der(b: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, body, rest) = der_tagged(b)?;
    (t == tag).then_some((body, rest))
}

fn der_any(b: &[u8]) -> Option<(&[u8], &[u8])> {
    der_tagged(b).map(|(_, body, rest)| (body, rest))
}

fn der_tagged(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)? as usize;
    let (len, start) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let body = b.get(start..start.checked_add(len)?)?;
    Some((tag, body, &b[start + len..]))
}

/// UTCTime (`YYMMDDHHMMSSZ`, tag 0x17) or GeneralizedTime (`YYYYMMDDHHMMSSZ`, 0x18).
fn time(tag: u8, b: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(b).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i64 = s.get(0..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, s.get(2..)?)
        }
        0x18 => (s.get(0..4)?.parse().ok()?, s.get(4..)?),
        _ => return None,
    };
    let n = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    let (mo, d, h, mi, se) = (n(0)?, n(2)?, n(4)?, n(6)?, n(8)?);
    Some(days_from_civil(year, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Runs a server handshake on `tcp` with our own buffering, so that bytes the client
/// sent right after its Finished (an HTTP request, an HTTP/2 preface) all end up in
/// the session and none are left in a reader that is then thrown away. The caller
/// bounds it in time.
pub async fn handshake(
    mut tcp: TcpStream,
    config: Arc<ServerConfig>,
) -> io::Result<(TcpStream, rustls::ServerConnection)> {
    use monoio::io::AsyncWriteRentExt;
    let bad = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
    let mut conn = rustls::ServerConnection::new(config).map_err(bad)?;
    let mut buf: Vec<u8> = Vec::with_capacity(16 << 10);
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        while conn.wants_write() {
            out.clear();
            conn.write_tls(&mut out)?;
            let (res, o) = tcp.write_all(std::mem::take(&mut out)).await;
            out = o;
            res?;
        }
        if !conn.is_handshaking() {
            break;
        }
        if pos < buf.len() {
            let mut rd = &buf[pos..];
            pos += conn.read_tls(&mut rd)?;
            if let Err(e) = conn.process_new_packets() {
                // the alert says why, then the connection goes
                out.clear();
                let _ = conn.write_tls(&mut out);
                let _ = tcp.write_all(std::mem::take(&mut out)).await;
                return Err(bad(e));
            }
            continue;
        }
        buf.clear();
        pos = 0;
        let (res, b) = tcp.read(buf).await;
        buf = b;
        if res? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    // what came after the handshake: into the session, decrypted there
    while pos < buf.len() {
        let mut rd = &buf[pos..];
        let n = conn.read_tls(&mut rd)?;
        if n == 0 {
            break;
        }
        pos += n;
        conn.process_new_packets().map_err(bad)?;
    }
    Ok((tcp, conn))
}

/// The subject of the client's verified certificate (mutual TLS), as
/// `CN=…,O=…` (attributes in certificate order; common ones by name).
pub fn client_subject(conn: &rustls::ServerConnection) -> Option<String> {
    let leaf = conn.peer_certificates()?.first()?;
    subject(leaf)
}

/// Certificate → TBS → (skip version, serial, signature, issuer, validity) → subject.
fn subject(cert: &[u8]) -> Option<String> {
    let (certificate, _) = der(cert, 0x30)?;
    let (tbs, _) = der(certificate, 0x30)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = der_any(rest)?.1;
    }
    for _ in 0..4 {
        rest = der_any(rest)?.1; // serial, signature, issuer, validity
    }
    let (name, _) = der(rest, 0x30)?;
    let mut parts = Vec::new();
    let mut rdns = name;
    while !rdns.is_empty() {
        let (set, after) = der(rdns, 0x31)?;
        rdns = after;
        let mut atvs = set;
        while !atvs.is_empty() {
            let (atv, after) = der(atvs, 0x30)?;
            atvs = after;
            let (oid, value) = der(atv, 0x06)?;
            let (_, text, _) = der_tagged(value)?;
            let key = match oid {
                [0x55, 0x04, 0x03] => "CN".to_string(),
                [0x55, 0x04, 0x0a] => "O".to_string(),
                [0x55, 0x04, 0x0b] => "OU".to_string(),
                [0x55, 0x04, 0x06] => "C".to_string(),
                [0x55, 0x04, 0x07] => "L".to_string(),
                [0x55, 0x04, 0x08] => "ST".to_string(),
                other => other.iter().map(|b| format!("{b:02x}")).collect(),
            };
            let text = String::from_utf8_lossy(text).replace([',', '\n', '\r'], " ");
            parts.push(format!("{key}={text}"));
        }
    }
    Some(parts.join(","))
}

/// A client connection: plain TCP or TLS over it.
#[derive(Debug)]
pub enum ClientIo {
    Plain(TcpStream),
    Tls(Box<ServerTlsStream<TcpStream>>),
    /// One HTTP/2 stream (see `proto::h2`).
    H2(Box<super::h2::H2Io>),
}

impl ClientIo {
    /// The HTTP/2 stream, when the client speaks HTTP/2: heads go to it as fields.
    pub fn h2(&mut self) -> Option<&mut super::h2::H2Io> {
        match self {
            ClientIo::H2(h) => Some(h),
            _ => None,
        }
    }

    /// The plain socket, for readiness waits that hold no buffer.
    pub fn plain(&self) -> Option<&TcpStream> {
        match self {
            ClientIo::Plain(s) => Some(s),
            ClientIo::Tls(_) | ClientIo::H2(_) => None,
        }
    }
}

/// An HTTP/2 stream is no byte stream: the pipeline reads its body and writes its
/// response through the session (`pipeline::body`, `proto::head`, `proto::sink`).
fn stream_io() -> io::Error {
    io::Error::other("an HTTP/2 stream is read and written through proto::sink, not as bytes")
}

impl AsyncReadRent for ClientIo {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ClientIo::Plain(s) => s.read(buf).await,
            ClientIo::Tls(s) => Box::pin(s.read(buf)).await,
            ClientIo::H2(_) => (Err(stream_io()), buf),
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ClientIo::Plain(s) => s.readv(buf).await,
            ClientIo::Tls(s) => Box::pin(s.readv(buf)).await,
            ClientIo::H2(_) => (Err(stream_io()), buf),
        }
    }
}

impl AsyncWriteRent for ClientIo {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ClientIo::Plain(s) => s.write(buf).await,
            ClientIo::Tls(s) => Box::pin(s.write(buf)).await,
            ClientIo::H2(_) => (Err(stream_io()), buf),
        }
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ClientIo::Plain(s) => s.writev(buf).await,
            ClientIo::Tls(s) => Box::pin(s.writev(buf)).await,
            ClientIo::H2(_) => (Err(stream_io()), buf),
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        match self {
            ClientIo::Plain(s) => s.flush().await,
            ClientIo::Tls(s) => Box::pin(s.flush()).await,
            ClientIo::H2(_) => Ok(()),
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            ClientIo::Plain(s) => s.shutdown().await,
            ClientIo::Tls(s) => Box::pin(s.shutdown()).await,
            ClientIo::H2(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(
            time(0x18, b"20261121000000Z"),
            Some(days_from_civil(2026, 11, 21) * 86_400)
        );
        assert_eq!(time(0x17, b"bogus"), None);
    }

    #[test]
    fn reads_the_validity_of_a_real_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["a.test".to_string()]).unwrap();
        p.not_before = rcgen::date_time_ymd(2024, 2, 29);
        p.not_after = rcgen::date_time_ymd(2060, 1, 2);
        let cert = p.self_signed(&key).unwrap();
        assert_eq!(
            validity(cert.der()),
            Some((
                days_from_civil(2024, 2, 29) * 86_400,
                days_from_civil(2060, 1, 2) * 86_400
            ))
        );
    }

    #[test]
    fn reads_the_subject_of_a_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "client, one");
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, "Acme");
        let cert = p.self_signed(&key).unwrap();
        // commas inside a value cannot split it
        assert_eq!(
            subject(cert.der()).as_deref(),
            Some("CN=client  one,O=Acme")
        );
        assert_eq!(subject(&[0x30, 0x03, 0x30, 0x01, 0x00]), None);
    }

    #[test]
    fn der_lengths_never_read_past_the_end() {
        assert!(der_tagged(&[0x30, 0x82, 0xff]).is_none());
        assert!(der_tagged(&[0x30, 0x05, 1, 2]).is_none());
        assert!(validity(&[0x30, 0x00]).is_none());
        assert_eq!(
            der_tagged(&[0x02, 0x01, 7, 9]),
            Some((0x02, &[7u8][..], &[9u8][..]))
        );
    }
}
