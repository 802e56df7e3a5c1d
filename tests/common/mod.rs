//! Shared helpers for end-to-end tests: start the real binary with a real config on
//! ephemeral loopback ports, start the real Python upstream, and talk HTTP/1.1 over
//! plain sockets. Every process started here is killed when its handle drops.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod browser;
pub mod h2load;
pub mod python;
pub mod recorder;

pub const BIN: &str = env!("CARGO_BIN_EXE_turnpike");

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "turnpike-test-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The gateway process.
pub struct Gateway {
    pub child: Child,
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub log: Arc<Mutex<String>>,
    pub dir: TempDir,
    pub config: PathBuf,
    started: Instant,
}

/// Default `[gateway]` table for tests: ephemeral ports, 2 workers, short timeouts.
pub const GATEWAY: &str = r#"
[gateway]
listen = ["127.0.0.1:0"]
admin = "127.0.0.1:0"
workers = 2
"#;

impl Gateway {
    /// Starts `turnpike run -c <config>`; waits until it listens.
    pub fn start(config: &str) -> Gateway {
        let dir = TempDir::new("gw");
        let path = dir.write("turnpike.toml", config);
        Gateway::start_with(dir, path, &["run", "-c"])
    }

    pub fn start_with(dir: TempDir, path: PathBuf, args: &[&str]) -> Gateway {
        Gateway::start_env(dir, path, args, &[])
    }

    pub fn start_env(dir: TempDir, path: PathBuf, args: &[&str], env: &[(&str, &str)]) -> Gateway {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        if args.last() == Some(&"-c") {
            cmd.arg(&path);
        }
        let mut child = cmd
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start turnpike");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                log2.lock().unwrap().push_str(&line);
                let _ = tx.send(line.clone());
                line.clear();
            }
        });
        let mut addr = None;
        let mut admin = None;
        let mut driver = false;
        let mut ready = false;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some(rest) = line.split("admin listening on ").nth(1) {
                        admin = rest.split_whitespace().next().and_then(|a| a.parse().ok());
                    } else if let Some(rest) = line.split("listening on ").nth(1) {
                        addr = addr.or(rest.split_whitespace().next().and_then(|a| a.parse().ok()));
                    }
                    // workers and the main thread log in either order
                    driver |= line.contains("worker driver");
                    ready |= line.trim_end().ends_with("INFO ready");
                    if driver && ready {
                        break;
                    }
                }
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!("turnpike exited with {status}:\n{}", log.lock().unwrap());
                    }
                }
            }
        }
        let addr =
            addr.unwrap_or_else(|| panic!("turnpike did not start:\n{}", log.lock().unwrap()));
        Gateway {
            child,
            addr,
            admin,
            log,
            dir,
            config: path,
            started: Instant::now(),
        }
    }

    /// The address of the first `[[gateway.tls]]` listener.
    pub fn tls_addr(&self) -> SocketAddr {
        let log = self.log();
        let line = log
            .lines()
            .find(|l| l.contains("(tls)"))
            .unwrap_or_else(|| panic!("no TLS listener in:\n{log}"));
        line.split("listening on ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits for the log to contain `needle` (bounded).
    pub fn wait_log(&self, needle: &str, within: Duration) -> bool {
        self.wait_log_times(needle, 1, within)
    }

    /// Waits for the log to contain `needle` at least `times` times (bounded).
    pub fn wait_log_times(&self, needle: &str, times: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.log().matches(needle).count() >= times {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits for exit (bounded); returns the exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Peak resident memory in KiB (VmHWM).
    pub fn peak_rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmHWM:")
    }

    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS:")
    }
}

pub fn proc_status_kib(pid: i32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A test that kept its gateway unusually long leaves a trace outside the
        // captured output, with the gateway's log (slow tests are otherwise silent).
        let lived = self.started.elapsed();
        if lived > Duration::from_secs(20) {
            let name = std::thread::current().name().unwrap_or("?").to_string();
            let note = format!(
                "== {name}: gateway lived {lived:?}\n{}\n",
                self.log.lock().map(|l| l.clone()).unwrap_or_default()
            );
            let path = std::env::temp_dir().join("turnpike-slow-tests.log");
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = std::io::Write::write_all(&mut f, note.as_bytes());
            }
        }
    }
}

/// The Python upstream (`tests/upstream.py`).
pub struct Upstream {
    child: Child,
    _stdin: ChildStdin,
    pub addr: SocketAddr,
}

impl Upstream {
    pub fn start() -> Upstream {
        Upstream::start_on(0)
    }

    pub fn start_on(port: u16) -> Upstream {
        Upstream::spawn(port, &[])
    }

    /// An upstream speaking HTTPS with the given PEM certificate chain and key.
    pub fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> Upstream {
        Upstream::spawn(0, &[cert, key])
    }

    fn spawn(port: u16, tls: &[&std::path::Path]) -> Upstream {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/upstream.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .args(tls)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is needed for the test upstream");
        let stdin = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let port: u16 = line.trim().parse().expect("upstream port");
        Upstream {
            child,
            _stdin: stdin,
            addr: ([127, 0, 0, 1], port).into(),
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The header lines as `name: value\r\n` each (names as received).
    pub fn head_text(&self) -> String {
        self.headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}\r\n"))
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json_field(&self, key: &str) -> Option<String> {
        json_field(&self.text(), key)
    }
}

/// Pulls `"key": value` out of flat JSON text (enough for the echo upstream's answers).
pub fn json_field(text: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\": ");
    let alt = format!("\"{key}\":");
    let start = text
        .find(&pat)
        .map(|i| i + pat.len())
        .or_else(|| text.find(&alt).map(|i| i + alt.len()))?;
    let rest = &text[start..];
    if let Some(s) = rest.strip_prefix('"') {
        let end = s.find('"')?;
        Some(s[..end].to_string())
    } else {
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        Some(rest[..end].trim().to_string())
    }
}

/// A keep-alive client connection that reads whole responses.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).unwrap();
    }

    /// Reads one response; `head_request` = it answers a HEAD (no body).
    pub fn read_response(&mut self, head_request: bool) -> Option<Response> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if !self.fill() {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        self.buf.drain(..head_end);
        let mut lines = head.split("\r\n");
        let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| {
                l.split_once(':')
                    .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        let mut resp = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if head_request || status == 204 || status == 304 || status < 200 {
            return Some(resp);
        }
        if resp.header("transfer-encoding").is_some() {
            loop {
                let line_end = loop {
                    if let Some(i) = find(&self.buf, b"\r\n") {
                        break i;
                    }
                    if !self.fill() {
                        return None;
                    }
                };
                let size = usize::from_str_radix(
                    std::str::from_utf8(&self.buf[..line_end]).ok()?.trim(),
                    16,
                )
                .ok()?;
                self.buf.drain(..line_end + 2);
                while self.buf.len() < size + 2 {
                    if !self.fill() {
                        return None;
                    }
                }
                resp.body.extend_from_slice(&self.buf[..size]);
                self.buf.drain(..size + 2);
                if size == 0 {
                    return Some(resp);
                }
            }
        } else if let Some(cl) = resp.header("content-length") {
            let n: usize = cl.parse().ok()?;
            while self.buf.len() < n {
                if !self.fill() {
                    return None;
                }
            }
            resp.body = self.buf.drain(..n).collect();
            Some(resp)
        } else {
            while self.fill() {}
            resp.body = std::mem::take(&mut self.buf);
            Some(resp)
        }
    }

    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// True when the server closed the connection (EOF within the timeout).
    pub fn is_closed(&mut self, within: Duration) -> bool {
        self.stream.set_read_timeout(Some(within)).unwrap();
        let mut b = [0u8; 1];
        let closed = matches!(self.stream.read(&mut b), Ok(0))
            || matches!(self.stream.read(&mut b), Err(ref e) if e.kind() == std::io::ErrorKind::ConnectionReset);
        self.stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        closed
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
        self.read_response(false).expect("a response")
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// One request on a fresh connection.
pub fn request(addr: SocketAddr, raw: &[u8]) -> Option<Response> {
    let mut c = Client::connect(addr);
    c.send(raw);
    let head = raw.starts_with(b"HEAD ");
    c.read_response(head)
}

pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .expect("a response")
}

/// The admin listener's answer to `METHOD path`.
pub fn admin(gw: &Gateway, method: &str, path: &str) -> Response {
    let a = gw.admin.expect("admin address");
    request(
        a,
        format!("{method} {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n").as_bytes(),
    )
    .expect("admin response")
}

/// A config with the test gateway table plus `rest`, `{UP}` replaced by `up`.
pub fn config(rest: &str, up: Option<SocketAddr>) -> String {
    let mut s = String::from(GATEWAY);
    s.push_str(rest);
    if let Some(u) = up {
        s = s.replace("{UP}", &u.to_string());
    }
    s
}

/// Runs `turnpike check -c PATH`: whether it passed, and what it printed on stderr.
pub fn check(path: &std::path::Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["check", "-c"])
        .arg(path)
        .output()
        .expect("turnpike check");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// How many requests the Python upstream has served (asking counts as one).
pub fn upstream_count(up: SocketAddr) -> u64 {
    get(up, "/count")
        .json_field("count")
        .unwrap()
        .parse()
        .unwrap()
}

/// The sum of the `/metrics` samples whose line starts with `prefix` (one sample when
/// the prefix names a whole series).
pub fn metric_sum(gw: &Gateway, prefix: &str) -> f64 {
    admin(gw, "GET", "/metrics")
        .text()
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Runs `turnpike check -c path`, asserts it fails (exit 1) and names every needle.
pub fn check_reports(path: &std::path::Path, needles: &[&str]) {
    let out = Command::new(BIN)
        .args(["check", "-c"])
        .arg(path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}

/// A current-thread tokio runtime for the tests' HTTP/2 clients and servers.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub type H2Client = h2::client::SendRequest<bytes::Bytes>;

/// An h2c connection (prior knowledge); the connection task runs on the runtime.
pub async fn h2c(addr: SocketAddr) -> H2Client {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A CA and a server certificate for `names`, as PEM files in `dir`: (ca.pem,
/// server.pem, server.key).
pub fn pki(dir: &TempDir, names: &[&str]) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "turnpike test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let leaf = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &ca_cert, &ca_key)
        .unwrap();
    (
        dir.write("ca.pem", &ca_cert.pem()),
        dir.write("server.pem", &leaf.pem()),
        dir.write("server.key", &key.serialize_pem()),
    )
}
