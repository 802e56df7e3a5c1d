//! JSON Web Key Sets: parsing one into keys by `kid` and algorithm ([`KeySet`]),
//! and the node's sets ([`JwksStore`]), shared by every worker and every plan.
//!
//! A set comes from a local file or an `http://`/`https://` URL. One thread fetches
//! them, never a request: each source when it is first bound, every
//! [`REFRESH`], and at once (at most every [`MIN_REFETCH`]) when a worker met a `kid`
//! the set does not have. A fetch is bounded by [`FETCH_TIMEOUT`] and
//! [`MAX_JWKS_BYTES`] (AWS's limits); when it fails, the last good set stays.
//! Workers read the current set with one atomic load (`arc-swap`).
//!
//! Tested: parsing below; fetching, refresh on an unknown `kid` and an issuer that
//! is down end to end in `tests/jwt.rs`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};

/// How often every set is fetched again.
pub const REFRESH: Duration = Duration::from_secs(300);
/// Fewest seconds between two fetches of one set asked for by unknown `kid`s.
pub const MIN_REFETCH: Duration = Duration::from_secs(10);
/// A fetch's whole budget (AWS: 1,500 ms for the JWKS endpoint).
pub const FETCH_TIMEOUT: Duration = Duration::from_millis(1500);
/// Largest JWKS document accepted (AWS: 150,000 bytes).
pub const MAX_JWKS_BYTES: usize = 150_000;

/// The usable keys of a JWKS: asymmetric signing keys only (`kty` RSA, EC P-256 and
/// P-384, OKP Ed25519); `oct` (shared secret) keys and keys for encryption are left
/// out, so no token can be checked with an HMAC keyed by public material.
pub struct KeySet {
    keys: Vec<Key>,
}

struct Key {
    kid: Option<String>,
    algs: &'static [Algorithm],
    key: DecodingKey,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<_> = self.keys.iter().map(|k| k.kid.as_deref()).collect();
        f.debug_struct("KeySet").field("kids", &kids).finish()
    }
}

const RSA_ALGS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

impl KeySet {
    /// Parses a JWKS document. Errors say what is wrong with it; a set with no usable
    /// key is an error too.
    pub fn parse(text: &[u8]) -> Result<KeySet, String> {
        let set: JwkSet =
            serde_json::from_slice(text).map_err(|e| format!("not a JSON Web Key Set: {e}"))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            if jwk
                .common
                .public_key_use
                .as_ref()
                .is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
            {
                continue;
            }
            let by_type: &'static [Algorithm] = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => RSA_ALGS,
                AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                    EllipticCurve::P256 => &[Algorithm::ES256],
                    EllipticCurve::P384 => &[Algorithm::ES384],
                    _ => continue,
                },
                AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                    &[Algorithm::EdDSA]
                }
                _ => continue,
            };
            // an `alg` on the key narrows it to that one algorithm
            let algs = match jwk.common.key_algorithm {
                None => by_type,
                Some(a) => match by_type.iter().position(|t| same_alg(*t, a)) {
                    Some(i) => &by_type[i..=i],
                    None => continue,
                },
            };
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            keys.push(Key {
                kid: jwk.common.key_id.clone(),
                algs,
                key,
            });
        }
        if keys.is_empty() {
            return Err(
                "the key set has no usable signing key (RSA, EC P-256/P-384 or Ed25519)".into(),
            );
        }
        Ok(KeySet { keys })
    }

    /// The key for a token's `kid` and `alg`: by `kid` when the token has one, else
    /// the only key that takes the algorithm.
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<&DecodingKey> {
        let mut fits = self.keys.iter().filter(|k| k.algs.contains(&alg));
        match kid {
            Some(kid) => fits.find(|k| k.kid.as_deref() == Some(kid)).map(|k| &k.key),
            None => {
                let first = fits.next()?;
                fits.next().is_none().then_some(&first.key)
            }
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn same_alg(a: Algorithm, k: KeyAlgorithm) -> bool {
    format!("{a:?}") == format!("{k:?}")
}

/// Where a set comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    File(std::path::PathBuf),
    Url(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Url(u) => f.write_str(u),
        }
    }
}

/// One source's current set, shared by the plans that use it.
#[derive(Debug)]
pub struct Jwks {
    pub source: Source,
    current: ArcSwapOption<KeySet>,
    /// A worker met a `kid` the set does not have.
    wanted: AtomicBool,
    wake: Sender<()>,
}

impl Jwks {
    /// The set as last fetched (`None` until the first fetch succeeded).
    pub fn keys(&self) -> Option<Arc<KeySet>> {
        self.current.load_full()
    }

    /// Asks for the set to be fetched again soon (an unknown `kid`: the issuer may
    /// have rotated its keys).
    pub fn want_refresh(&self) {
        if !self.wanted.swap(true, Ordering::Relaxed) {
            let _ = self.wake.send(());
        }
    }
}

/// Every key set the node uses, and the thread that fetches them.
#[derive(Debug)]
pub struct JwksStore {
    sets: Mutex<HashMap<Source, Arc<Jwks>>>,
    wake: Sender<()>,
    rx: Mutex<Option<Receiver<()>>>,
    tls: Mutex<Option<Arc<rustls::ClientConfig>>>,
}

impl Default for JwksStore {
    fn default() -> Self {
        let (wake, rx) = channel();
        JwksStore {
            sets: Mutex::default(),
            wake,
            rx: Mutex::new(Some(rx)),
            tls: Mutex::default(),
        }
    }
}

impl JwksStore {
    /// The shared set for `source`; a new one is fetched by the thread at once.
    /// `initial`: a set the caller already read (a file checked at compile time).
    pub fn bind(&self, source: &Source, initial: Option<Arc<KeySet>>) -> Arc<Jwks> {
        let mut sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        let set = sets
            .entry(source.clone())
            .or_insert_with(|| {
                Arc::new(Jwks {
                    source: source.clone(),
                    current: ArcSwapOption::empty(),
                    wanted: AtomicBool::new(true),
                    wake: self.wake.clone(),
                })
            })
            .clone();
        if let Some(keys) = initial {
            set.current.store(Some(keys));
        }
        let _ = self.wake.send(());
        set
    }

    /// Starts the fetching thread (once; later calls do nothing).
    pub fn start(self: &Arc<Self>) {
        let Some(rx) = self.rx.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let store = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("turnpike-jwks".into())
            .spawn(move || fetch_loop(store, rx));
        if let Err(e) = spawned {
            crate::warn!("JWKS fetcher thread could not start: {e}; keys from URLs will not load");
        }
    }

    fn tls(&self) -> Option<Arc<rustls::ClientConfig>> {
        let mut t = self.tls.lock().unwrap_or_else(|p| p.into_inner());
        if t.is_none() {
            *t = crate::upstream::tls::client_config(None)
                .ok()
                .map(|(c, _)| c);
        }
        t.clone()
    }
}

/// When each set was last fetched, and whether that worked.
struct Due {
    at: Instant,
    ok: bool,
}

fn fetch_loop(store: std::sync::Weak<JwksStore>, rx: Receiver<()>) {
    let mut due: HashMap<Source, Due> = HashMap::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let Some(store) = store.upgrade() else {
            return;
        };
        let sets: Vec<Arc<Jwks>> = store
            .sets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for set in sets {
            let last = due.get(&set.source);
            let wanted = set.wanted.load(Ordering::Relaxed);
            let now = Instant::now();
            let go = match last {
                None => true,
                Some(d) if wanted => {
                    now.duration_since(d.at) >= MIN_REFETCH || !d.ok && set.keys().is_none()
                }
                Some(d) => now.duration_since(d.at) >= if d.ok { REFRESH } else { MIN_REFETCH },
            };
            if !go {
                continue;
            }
            set.wanted.store(false, Ordering::Relaxed);
            let result = fetch(&set.source, &store).and_then(|b| KeySet::parse(&b));
            let ok = match result {
                Ok(keys) => {
                    let n = keys.len();
                    let first = set.keys().is_none();
                    set.current.store(Some(Arc::new(keys)));
                    if first || last.is_some_and(|d| !d.ok) {
                        crate::info!("JWKS {}: {n} signing keys loaded", set.source);
                    }
                    true
                }
                Err(e) => {
                    if last.is_none_or(|d| d.ok) {
                        let kept = if set.keys().is_some() {
                            "; the last good key set stays in use"
                        } else {
                            ""
                        };
                        crate::warn!("JWKS {}: {e}{kept}", set.source);
                    }
                    false
                }
            };
            due.insert(
                set.source.clone(),
                Due {
                    at: Instant::now(),
                    ok,
                },
            );
        }
    }
}

/// Reads a set's document: a file, or an HTTP(S) GET within [`FETCH_TIMEOUT`].
fn fetch(source: &Source, store: &JwksStore) -> Result<Vec<u8>, String> {
    match source {
        Source::File(p) => std::fs::read(p).map_err(|e| format!("cannot read: {e}")),
        Source::Url(u) => get(u, store),
    }
}

/// A minimal HTTP/1.1 GET (`connection: close`, body by length, chunked or close).
fn get(url: &str, store: &JwksStore) -> Result<Vec<u8>, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err("only http:// and https:// URLs are fetched".into());
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host = authority.rsplit_once(':').map_or(authority, |(h, p)| {
        if p.parse::<u16>().is_ok() {
            h
        } else {
            authority
        }
    });
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addr = crate::plan::socket_addr(authority, if tls { 443 } else { 80 })?;
    let deadline = Instant::now() + FETCH_TIMEOUT;
    let tcp = std::net::TcpStream::connect_timeout(&addr, FETCH_TIMEOUT)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let _ = tcp.set_read_timeout(Some(left()));
    let _ = tcp.set_write_timeout(Some(left()));
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: {authority}\r\nuser-agent: turnpike-jwks\r\naccept: application/json\r\nconnection: close\r\n\r\n"
    );
    let mut raw = Vec::new();
    if tls {
        let config = store
            .tls()
            .ok_or("no TLS roots to verify the JWKS server with")?;
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|_| format!("`{host}` is not a valid TLS server name"))?;
        let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
        read_bounded(&mut s, &mut raw, deadline)?;
    } else {
        let mut s = tcp;
        s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
        read_bounded(&mut s, &mut raw, deadline)?;
    }
    body_of(&raw)
}

fn read_bounded(r: &mut impl Read, out: &mut Vec<u8>, deadline: Instant) -> Result<(), String> {
    let mut buf = [0u8; 8192];
    loop {
        if Instant::now() > deadline {
            return Err(format!("no complete answer within {FETCH_TIMEOUT:?}"));
        }
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > MAX_JWKS_BYTES + 16 * 1024 {
                    return Err(format!("the answer is larger than {MAX_JWKS_BYTES} bytes"));
                }
            }
            // a TLS peer that closes without close_notify: what came is what there is
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(format!("reading the answer: {e}")),
        }
    }
}

/// The body of a complete HTTP/1.1 response, which must be a 200.
fn body_of(raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut head = crate::proto::h1::ResponseHead::default();
    let n = match crate::proto::h1::parse_response(raw, 64 << 10, false, &mut head) {
        Ok(Some(n)) => n,
        _ => return Err("not an HTTP response".into()),
    };
    if head.status != 200 {
        return Err(format!("status {}", head.status));
    }
    let rest = &raw[n..];
    let body = match head.body {
        crate::proto::h1::BodyFraming::Length(len) => rest
            .get(..len as usize)
            .ok_or("the answer is cut short")?
            .to_vec(),
        crate::proto::h1::BodyFraming::Chunked => {
            let mut dec = crate::proto::h1::ChunkedDecoder::default();
            let mut out = Vec::new();
            dec.decode(rest, &mut out)
                .map_err(|_| "bad chunked framing")?;
            if !dec.is_done() {
                return Err("the answer is cut short".into());
            }
            out
        }
        _ => rest.to_vec(),
    };
    if body.len() > MAX_JWKS_BYTES {
        return Err(format!("the key set is larger than {MAX_JWKS_BYTES} bytes"));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_keep_only_asymmetric_signing_keys() {
        let (_, jwks) = crate::auth::jwt::tests::es256("a");
        let set = KeySet::parse(jwks.as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        assert!(set.find(Some("a"), Algorithm::ES256).is_some());
        assert!(set.find(Some("a"), Algorithm::RS256).is_none());
        assert!(set.find(Some("b"), Algorithm::ES256).is_none());
        assert!(set.find(None, Algorithm::ES256).is_some(), "the only key");
        let oct = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}"#;
        assert!(KeySet::parse(oct.as_bytes())
            .unwrap_err()
            .contains("no usable"));
        assert!(KeySet::parse(b"{")
            .unwrap_err()
            .contains("not a JSON Web Key Set"));
        let enc = jwks.replace(r#""use":"sig""#, r#""use":"enc""#);
        assert!(KeySet::parse(enc.as_bytes()).is_err());
    }

    #[test]
    fn answers_are_read_by_their_framing() {
        assert_eq!(
            body_of(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").unwrap(),
            b"{}"
        );
        assert_eq!(
            body_of(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
                .unwrap(),
            b"{}"
        );
        assert!(body_of(b"HTTP/1.1 503 x\r\ncontent-length: 0\r\n\r\n")
            .unwrap_err()
            .contains("503"));
        assert!(body_of(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{}").is_err());
        assert!(body_of(b"garbage").is_err());
    }
}
