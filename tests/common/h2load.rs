//! A small h2load of our own on the `h2` crate: `conns` connections, each keeping
//! `streams` requests in flight, until `total` requests have been answered; counts
//! the statuses. The end-to-end tests drive HTTP/2 load with it so that they need
//! nothing beyond Rust and Python (h2load itself stays in `loadtest/`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

/// One request shape, sent `total` times.
#[derive(Clone)]
pub struct Load {
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
    pub conns: usize,
    pub streams: usize,
    pub total: usize,
    /// TLS with ALPN h2: the client configuration and the server name.
    pub tls: Option<(Arc<rustls::ClientConfig>, String)>,
}

impl Load {
    pub fn get(path: &str, conns: usize, streams: usize, total: usize) -> Load {
        Load {
            method: "GET",
            path: path.to_string(),
            headers: Vec::new(),
            body: Bytes::new(),
            conns,
            streams,
            total,
            tls: None,
        }
    }
}

/// What came back: responses by status, and requests that got none (a reset stream,
/// a connection that failed).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub statuses: BTreeMap<u16, u64>,
    pub failed: u64,
}

impl Tally {
    pub fn count(&self, status: u16) -> u64 {
        self.statuses.get(&status).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.statuses.values().sum::<u64>() + self.failed
    }
}

/// Runs `load` against `addr` (bounded: 120 s at most) and tallies the answers.
pub fn run(addr: SocketAddr, load: &Load) -> Tally {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let left = Arc::new(AtomicI64::new(load.total as i64));
    super::rt().block_on(async {
        let mut conns = Vec::new();
        for _ in 0..load.conns {
            let (load, tally, left) = (load.clone(), tally.clone(), left.clone());
            conns.push(tokio::spawn(async move {
                let client = match connect(addr, &load).await {
                    Some(c) => c,
                    None => {
                        // this connection's share is lost: count it as failed
                        return;
                    }
                };
                let mut streams = Vec::new();
                for _ in 0..load.streams {
                    let (client, load, tally, left) =
                        (client.clone(), load.clone(), tally.clone(), left.clone());
                    streams.push(tokio::spawn(async move {
                        while left.fetch_sub(1, Ordering::SeqCst) > 0 {
                            let got = one(client.clone(), &load).await;
                            let mut t = tally.lock().unwrap();
                            match got {
                                Some(s) => *t.statuses.entry(s).or_default() += 1,
                                None => t.failed += 1,
                            }
                        }
                    }));
                }
                for s in streams {
                    let _ = s.await;
                }
            }));
        }
        let all = async {
            for c in conns {
                let _ = c.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(120), all)
            .await
            .expect("h2 load finished within 120 s");
    });
    let mut t = tally.lock().unwrap().clone();
    // requests no connection could carry
    let unsent = load.total as u64 - t.total().min(load.total as u64);
    t.failed += unsent;
    t
}

async fn connect(addr: SocketAddr, load: &Load) -> Option<h2::client::SendRequest<Bytes>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    tcp.set_nodelay(true).ok()?;
    match &load.tls {
        None => {
            let (client, conn) = h2::client::handshake(tcp).await.ok()?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Some(client)
        }
        Some((config, name)) => {
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            let name = rustls::pki_types::ServerName::try_from(name.clone()).ok()?;
            let tls = connector.connect(name, tcp).await.ok()?;
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
            let (client, conn) = h2::client::handshake(tls).await.ok()?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Some(client)
        }
    }
}

/// One request; its status once the whole body has been read.
async fn one(client: h2::client::SendRequest<Bytes>, load: &Load) -> Option<u16> {
    let mut client = client.ready().await.ok()?;
    let scheme = if load.tls.is_some() { "https" } else { "http" };
    let mut req = http::Request::builder()
        .method(load.method)
        .uri(format!("{scheme}://test{}", load.path));
    for (n, v) in &load.headers {
        req = req.header(*n, v.as_str());
    }
    let req = req.body(()).ok()?;
    let empty = load.body.is_empty();
    let (resp, mut send) = client.send_request(req, empty).ok()?;
    if !empty {
        send.send_data(load.body.clone(), true).ok()?;
    }
    let resp = resp.await.ok()?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.ok()?;
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    Some(status)
}
