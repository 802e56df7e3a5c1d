//! An upstream that records every byte it receives, per connection, and answers each
//! complete request with `200 ok`: for tests that must see exactly what the gateway
//! sent upstream (a request cut short, a body re-framed, nothing at all).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What one upstream connection carried.
#[derive(Debug, Clone, Default)]
pub struct Conn {
    /// Every byte received, in order.
    pub bytes: Vec<u8>,
    /// Requests received whole (head and body by their framing).
    pub complete: Vec<Request>,
    /// The peer closed in the middle of a request.
    pub cut_short: bool,
    /// The connection has ended.
    pub closed: bool,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub head: String,
    /// The body as framed on the wire (chunked framing kept).
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

pub struct Recorder {
    pub addr: SocketAddr,
    pub conns: Arc<Mutex<Vec<Conn>>>,
}

impl Recorder {
    pub fn start() -> Recorder {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let conns: Arc<Mutex<Vec<Conn>>> = Arc::default();
        let c2 = conns.clone();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let i = {
                    let mut all = c2.lock().unwrap();
                    all.push(Conn::default());
                    all.len() - 1
                };
                let c3 = c2.clone();
                std::thread::spawn(move || serve(s, i, c3));
            }
        });
        Recorder { addr, conns }
    }

    pub fn snapshot(&self) -> Vec<Conn> {
        self.conns.lock().unwrap().clone()
    }

    /// Waits (bounded) until every connection so far has ended.
    pub fn wait_closed(&self, within: Duration) -> Vec<Conn> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let s = self.snapshot();
            if s.iter().all(|c| c.closed) || std::time::Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn serve(mut s: TcpStream, i: usize, conns: Arc<Mutex<Vec<Conn>>>) {
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        let n = match s.read(&mut chunk) {
            Ok(0) | Err(_) => 0,
            Ok(n) => n,
        };
        let mut all = conns.lock().unwrap();
        let c = &mut all[i];
        if n == 0 {
            c.cut_short = !pending.is_empty();
            c.closed = true;
            return;
        }
        c.bytes.extend_from_slice(&chunk[..n]);
        pending.extend_from_slice(&chunk[..n]);
        let mut answers = 0;
        while let Some((req, used)) = parse(&pending) {
            pending.drain(..used);
            c.complete.push(req);
            answers += 1;
        }
        drop(all);
        for _ in 0..answers {
            if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
        }
    }
}

/// A complete request at the start of `b`, and how many bytes it took.
fn parse(b: &[u8]) -> Option<(Request, usize)> {
    let end = b.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&b[..end]).into_owned();
    let req = Request {
        head,
        body: Vec::new(),
    };
    if let Some(n) = req.header("content-length") {
        let n: usize = n.parse().ok()?;
        let body = b.get(end..end + n)?.to_vec();
        return Some((Request { body, ..req }, end + n));
    }
    if req
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        let mut at = end;
        loop {
            let line = b[at..].windows(2).position(|w| w == b"\r\n")?;
            let size_text = std::str::from_utf8(&b[at..at + line]).ok()?;
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            at += line + 2;
            if size == 0 {
                // no trailers from the gateway: the blank line ends it
                if b.get(at..at + 2)? != b"\r\n" {
                    return None;
                }
                at += 2;
                break;
            }
            b.get(at..at + size + 2)?;
            at += size + 2;
        }
        return Some((
            Request {
                body: b[end..at].to_vec(),
                ..req
            },
            at,
        ));
    }
    Some((req, end))
}
