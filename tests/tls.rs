//! TLS termination: certificates by SNI (exact, wildcard, default), ALPN, HTTP/1.1
//! over TLS through the whole pipeline, certificates reloaded without dropping open
//! connections, and certificate mistakes reported by `turnpike check`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, "turnpike test CA");
    Ca {
        cert: p.self_signed(&key).unwrap(),
        key,
    }
}

/// A leaf for `names`, written as NAME.pem / NAME.key; returns the cert's DER.
fn leaf(ca: &Ca, dir: &TempDir, file: &str, names: &[&str]) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &ca.cert, &ca.key)
        .unwrap();
    dir.write(&format!("{file}.pem"), &cert.pem());
    dir.write(&format!("{file}.key"), &key.serialize_pem());
    cert.der().to_vec()
}

fn tls_addr(gw: &Gateway) -> SocketAddr {
    gw.tls_addr()
}

fn client_config(ca: &Ca, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut c = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(c)
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn connect(addr: SocketAddr, sni: &str, config: &Arc<rustls::ClientConfig>) -> Tls {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = ServerName::try_from(sni.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).unwrap();
    }
    s
}

fn presented(s: &Tls) -> Vec<u8> {
    let certs: &[CertificateDer<'_>] = s.conn.peer_certificates().unwrap();
    certs[0].to_vec()
}

/// One keep-alive GET over the TLS stream; returns status and body.
fn get_tls(s: &mut Tls, path: &str) -> (u16, String) {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: api.example.com\r\n\r\n").as_bytes())
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                let status = head[9..12].parse().unwrap();
                return (status, body[..len].to_string());
            }
        }
    }
}

fn tls_config(up: SocketAddr) -> String {
    config(
        &format!(
            r#"
[[gateway.tls]]
listen = "127.0.0.1:0"
certs = [
  {{ hosts = ["default.test"], cert = "default.pem", key = "default.key" }},
  {{ hosts = ["api.example.com"], cert = "api.pem", key = "api.key" }},
  {{ hosts = ["*.wild.test"], cert = "wild.pem", key = "wild.key" }},
]

[apis.a.routes."GET /ping"]
integration = {{ type = "mock", body = "pong" }}

[apis.a.routes."ANY /up/{{p+}}"]
integration = {{ type = "http_proxy", uri = "http://{up}/{{p}}" }}

[stages.prod]
api = "a"
"#
        ),
        None,
    )
}

#[test]
fn sni_picks_the_certificate_and_requests_flow_over_tls() {
    let up = Upstream::start();
    let dir = TempDir::new("tls");
    let ca = ca();
    let default = leaf(&ca, &dir, "default", &["default.test"]);
    let api = leaf(&ca, &dir, "api", &["api.example.com"]);
    let wild = leaf(&ca, &dir, "wild", &["*.wild.test"]);
    let path = dir.write("turnpike.toml", &tls_config(up.addr));
    let gw = Gateway::start_with(dir, path, &["run", "-c"]);
    let addr = tls_addr(&gw);
    let cc = client_config(&ca, &[b"http/1.1"]);

    // ALPN: h2 when the client offers it, HTTP/1.1 otherwise
    let both = client_config(&ca, &[b"h2", b"http/1.1"]);
    assert_eq!(
        connect(addr, "api.example.com", &both).conn.alpn_protocol(),
        Some(&b"h2"[..])
    );
    let mut s = connect(addr, "api.example.com", &cc);
    assert_eq!(presented(&s), api);
    assert_eq!(s.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(get_tls(&mut s, "/ping"), (200, "pong".to_string()));
    // keep-alive, and the upstream learns the client came over https
    let (status, body) = get_tls(&mut s, "/up/echo");
    assert_eq!(status, 200);
    assert!(body.contains(r#""x-forwarded-proto": "https""#), "{body}");

    assert_eq!(presented(&connect(addr, "x.wild.test", &cc)), wild);
    assert_eq!(presented(&connect(addr, "API.EXAMPLE.COM", &cc)), api);
    // an unknown name gets the default certificate (and this client rejects it)
    let tcp = TcpStream::connect(addr).unwrap();
    let name = ServerName::try_from("other.test".to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(cc.clone(), name).unwrap();
    let mut sock = tcp;
    let mut failed = false;
    while conn.is_handshaking() {
        if conn.complete_io(&mut sock).is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "the default certificate does not name other.test");
    let _ = default;

    // the plain listener still speaks plain HTTP
    assert_eq!(get(gw.addr, "/ping").text(), "pong");

    // and curl, with SNI from --resolve, gets the same
    let ca_file = gw.dir.write("ca.pem", &ca.cert.pem());
    let out = Command::new("curl")
        .args(["-s", "--http1.1", "--cacert"])
        .arg(&ca_file)
        .args([
            "--resolve",
            &format!("api.example.com:{}:127.0.0.1", addr.port()),
            &format!("https://api.example.com:{}/ping", addr.port()),
        ])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pong");

    // HTTP/2 over TLS (ALPN h2), small and large responses
    let h2 = |path: &str, fmt: &str| {
        let out = Command::new("curl")
            .args(["-s", "--http2", "-o", "/dev/null", "-w", fmt, "--cacert"])
            .arg(&ca_file)
            .args([
                "--resolve",
                &format!("api.example.com:{}:127.0.0.1", addr.port()),
                &format!("https://api.example.com:{}{path}", addr.port()),
            ])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(h2("/ping", "%{http_version} %{http_code}"), "2 200");
    assert_eq!(
        h2("/up/bytes/3000000", "%{http_version} %{size_download}"),
        "2 3000000"
    );
    let upload = gw.dir.write("upload.bin", &"u".repeat(2_000_000));
    let out = Command::new("curl")
        .args(["-s", "--http2", "--data-binary"])
        .arg(format!("@{}", upload.display()))
        .arg("--cacert")
        .arg(&ca_file)
        .args([
            "--resolve",
            &format!("api.example.com:{}:127.0.0.1", addr.port()),
            &format!("https://api.example.com:{}/up/echo", addr.port()),
        ])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(r#""body_len": 2000000"#), "{text}");

    // load: many streams on a few TLS connections (ALPN h2)
    let mut load = h2load::Load::get("/ping", 4, 20, 2000);
    load.tls = Some((client_config(&ca, &[b"h2"]), "api.example.com".to_string()));
    let t = h2load::run(addr, &load);
    assert_eq!((t.count(200), t.total()), (2000, 2000), "{t:?}");
}

#[test]
fn a_reload_brings_new_certificates_without_dropping_connections() {
    let up = Upstream::start();
    let dir = TempDir::new("tls-reload");
    let ca = ca();
    leaf(&ca, &dir, "default", &["default.test"]);
    let first = leaf(&ca, &dir, "api", &["api.example.com"]);
    leaf(&ca, &dir, "wild", &["*.wild.test"]);
    let dir_path = dir.0.clone();
    let path = dir.write("turnpike.toml", &tls_config(up.addr));
    let gw = Gateway::start_with(dir, path, &["run", "-c"]);
    let addr = tls_addr(&gw);
    let cc = client_config(&ca, &[b"http/1.1"]);
    let mut old = connect(addr, "api.example.com", &cc);
    assert_eq!(presented(&old), first);

    // a new certificate for the same name, then SIGHUP
    let dir2 = TempDir(dir_path.clone());
    let second = leaf(&ca, &dir2, "api", &["api.example.com"]);
    std::mem::forget(dir2); // the gateway's own TempDir removes it
    assert_ne!(first, second);
    gw.signal("HUP");
    assert!(
        gw.wait_log("reload: plan", Duration::from_secs(5)),
        "{}",
        gw.log()
    );

    assert_eq!(presented(&connect(addr, "api.example.com", &cc)), second);
    // the connection opened before the reload still serves
    assert_eq!(get_tls(&mut old, "/ping"), (200, "pong".to_string()));
}

#[test]
fn check_reports_certificate_mistakes() {
    let dir = TempDir::new("tls-check");
    let ca = ca();
    leaf(&ca, &dir, "good", &["good.test"]);
    leaf(&ca, &dir, "other", &["other.test"]);
    // expired yesterday
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["old.test".to_string()]).unwrap();
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let old = p.signed_by(&key, &ca.cert, &ca.key).unwrap();
    dir.write("old.pem", &old.pem());
    dir.write("old.key", &key.serialize_pem());
    dir.write("garbage.pem", "not a certificate");
    let path = dir.write(
        "t.toml",
        r#"
[gateway]
listen = ["127.0.0.1:0"]

[[gateway.tls]]
listen = "127.0.0.1:0"
certs = [
  { hosts = ["a.test"], cert = "missing.pem", key = "good.key" },
  { hosts = ["b.test"], cert = "old.pem", key = "old.key" },
  { hosts = ["c.test"], cert = "good.pem", key = "other.key" },
  { hosts = ["d.test"], cert = "garbage.pem", key = "good.key" },
]

[apis.a.routes."GET /a"]
integration = { type = "mock" }

[stages.s]
api = "a"
"#,
    );
    check_reports(
        &path,
        &[
            "missing.pem`: No such file or directory",
            "old.pem` expired",
            "other.key` does not belong to cert `",
            "garbage.pem`: no certificate in it",
            "4 errors",
        ],
    );
    let _: PathBuf = path;
}

/// A client certificate signed by `ca` for `cn`, as rustls wants it.
fn client_identity(
    ca: &Ca,
    cn: &str,
) -> (
    Vec<CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name.push(DnType::OrganizationName, "Acme");
    let cert = p.signed_by(&key, &ca.cert, &ca.key).unwrap();
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
    (vec![cert.der().clone()], der.into())
}

fn mtls_config(up: SocketAddr, auth: &str, log: &std::path::Path) -> String {
    let marker = "]\n\n[apis.a.routes.\"GET /ping\"]";
    let cfg = tls_config(up);
    assert!(cfg.contains(marker));
    cfg.replace(
        marker,
        &format!(
            "]\nclient_ca = \"clients.pem\"\nclient_auth = \"{auth}\"\n\n[access_log]\npath = \"{}\"\nformat = '$context.identity.clientCert.subjectDN'\n\n[apis.a.routes.\"GET /ping\"]",
            log.display()
        ),
    )
}

#[test]
fn mutual_tls_verifies_clients_and_passes_their_subject_on() {
    let up = Upstream::start();
    let dir = TempDir::new("mtls");
    let ca = ca();
    let clients = self::ca();
    dir.write("clients.pem", &clients.cert.pem());
    leaf(&ca, &dir, "default", &["default.test"]);
    leaf(&ca, &dir, "api", &["api.example.com"]);
    leaf(&ca, &dir, "wild", &["*.wild.test"]);
    let log = dir.0.join("access.log");
    let path = dir.write("turnpike.toml", &mtls_config(up.addr, "required", &log));
    let gw = Gateway::start_with(dir, path, &["run", "-c"]);
    let addr = tls_addr(&gw);

    let (chain, key) = client_identity(&clients, "client-one");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut with_cert = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    with_cert.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut s = connect(addr, "api.example.com", &Arc::new(with_cert));
    // a client cannot forge the subject: the gateway replaces the header
    s.write_all(
        b"GET /up/echo HTTP/1.1\r\nHost: api.example.com\r\nx-client-cert-subject: CN=forged\r\n\r\n",
    )
    .unwrap();
    let mut buf = vec![0u8; 64 << 10];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("body_sha256") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.contains(r#""x-client-cert-subject": "CN=client-one,O=Acme""#),
        "{text}"
    );
    assert!(!text.contains("CN=forged"), "{text}");

    // without a certificate, the handshake fails
    let anonymous = client_config(&ca, &[b"http/1.1"]);
    let tcp = TcpStream::connect(addr).unwrap();
    let name = ServerName::try_from("api.example.com".to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(anonymous, name).unwrap();
    let mut sock = tcp;
    let mut refused = false;
    for _ in 0..20 {
        match conn.complete_io(&mut sock) {
            Err(_) => {
                refused = true;
                break;
            }
            Ok(_) if !conn.is_handshaking() => {
                // TLS 1.3: the refusal arrives with the first read
                let mut rs = rustls::Stream::new(&mut conn, &mut sock);
                let _ = rs.write_all(b"GET /ping HTTP/1.1\r\nHost: a\r\n\r\n");
                let mut b = [0u8; 16];
                refused = !matches!(rs.read(&mut b), Ok(n) if n > 0);
                break;
            }
            Ok(_) => {}
        }
    }
    assert!(refused, "a client without a certificate is refused");

    // the access log names the subject
    let mut text = String::new();
    for _ in 0..50 {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if !text.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(text.lines().next(), Some("CN=client-one,O=Acme"), "{text}");
}

/// Keeps the OCSP response the server stapled, after verifying as usual.
#[derive(Debug)]
struct Stapled {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    seen: Arc<std::sync::Mutex<Vec<u8>>>,
}

impl rustls::client::danger::ServerCertVerifier for Stapled {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        *self.seen.lock().unwrap() = ocsp_response.to_vec();
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The OCSP response stapled to a handshake with `sni`.
fn stapled(addr: SocketAddr, sni: &str, ca: &Ca) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Stapled {
            inner,
            seen: seen.clone(),
        }))
        .with_no_client_auth();
    let mut s = connect(addr, sni, &Arc::new(config));
    assert_eq!(get_tls(&mut s, "/ping").0, 200);
    let got = seen.lock().unwrap().clone();
    got
}

#[test]
fn ocsp_responses_are_stapled_and_renewed_on_reload() {
    let ca = ca();
    let dir = TempDir::new("tls-ocsp");
    leaf(&ca, &dir, "api", &["api.example.com"]);
    leaf(&ca, &dir, "other", &["other.test"]);
    // (the gateway staples the bytes as given; checking them is the client's job)
    let first: &[u8] = b"\x30\x03\x0a\x01\x00";
    let ocsp = dir.0.join("api.ocsp");
    std::fs::write(&ocsp, first).unwrap();
    let config = config(
        r#"
[[gateway.tls]]
listen = "127.0.0.1:0"
certs = [
  { hosts = ["api.example.com"], cert = "api.pem", key = "api.key", ocsp = "api.ocsp" },
  { hosts = ["other.test"], cert = "other.pem", key = "other.key" },
]

[apis.a.routes."GET /ping"]
integration = { type = "mock", body = "pong" }

[stages.prod]
api = "a"
"#,
        None,
    );
    let path = dir.write("turnpike.toml", &config);
    let gw = Gateway::start_with(dir, path, &["run", "-c"]);
    let addr = gw.tls_addr();
    assert_eq!(stapled(addr, "api.example.com", &ca), first);
    assert!(
        stapled(addr, "other.test", &ca).is_empty(),
        "no response configured, none stapled"
    );
    // a renewed response is picked up by a reload
    let second: &[u8] = b"\x30\x04\x0a\x01\x00\x00";
    std::fs::write(&ocsp, second).unwrap();
    gw.signal("HUP");
    assert!(
        gw.wait_log("reload: plan", Duration::from_secs(5)),
        "{}",
        gw.log()
    );
    assert_eq!(stapled(addr, "api.example.com", &ca), second);
    // check: a PEM file or a missing one is refused
    let bad = TempDir::new("tls-ocsp-bad");
    leaf(&ca, &bad, "api", &["api.example.com"]);
    bad.write("pem.ocsp", "-----BEGIN OCSP RESPONSE-----\n");
    let text = config
        .replace("\"api.ocsp\" },\n  { hosts = [\"other.test\"], cert = \"other.pem\", key = \"other.key\" },", "\"pem.ocsp\" },\n  { hosts = [\"b.test\"], cert = \"api.pem\", key = \"api.key\", ocsp = \"gone.ocsp\" },");
    let path = bad.write("turnpike.toml", &text);
    check_reports(
        &path,
        &[
            "not a DER-encoded OCSP response",
            "gone.ocsp`: No such file",
        ],
    );
}
