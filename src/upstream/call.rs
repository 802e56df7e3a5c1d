//! Requests the gateway makes on its own behalf (an authorizer, an AWS API), over
//! the worker's pooled connections: one HTTP/1.1 exchange with a whole body each
//! way, bounded in time and size. The proxy path never comes here; it streams.
//!
//! Tested end to end by the authorizer tests (`tests/authorizers.rs`) and below.

use std::net::SocketAddr;
use std::time::Duration;

use super::{connect, Pools, TlsPeer, UpConn};
use crate::error::Error;
use crate::proto::h1::{BodyFraming, ChunkedDecoder, ResponseHead};

/// How long an idle pooled connection of a gateway-made call is reused.
const IDLE: Duration = Duration::from_secs(30);

/// Where a gateway-made request goes: a resolved address, the `Host` it names and
/// the TLS identity it checks (none: plain HTTP).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// `host[:port]` as configured, for `Host` (and SigV4's canonical headers).
    pub authority: String,
    pub tls: Option<TlsPeer>,
    /// The path prefix of the URL it was made from (no trailing `/`; may be empty).
    pub path: String,
}

/// A whole answer.
#[derive(Debug, Default)]
pub struct Reply {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Sends `req` (an HTTP/1.1 request: head and whole body) and reads the whole
/// answer, within `timeout` for all of it; bodies past `max_body` are an error. A
/// pooled connection the peer closed meanwhile is replaced once (nothing was read).
pub async fn call(
    pools: &Pools,
    ep: &Endpoint,
    req: &[u8],
    timeout: Duration,
    max_body: usize,
) -> Result<Reply, Error> {
    let attempt = async {
        let tls_key = ep.tls.as_ref().map_or(0, |t| t.key);
        if let Some(conn) = pools.take(ep.addr, tls_key, IDLE) {
            match exchange(pools, conn, req, max_body).await {
                Err(Error::UpstreamReset) => {}
                done => return done,
            }
        }
        let io = connect(ep.addr, timeout, ep.tls.as_ref()).await?;
        exchange(pools, UpConn::new(io, ep.addr, tls_key), req, max_body).await
    };
    match monoio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(Error::UpstreamTimeout),
    }
}

async fn exchange(
    pools: &Pools,
    mut conn: UpConn,
    req: &[u8],
    max_body: usize,
) -> Result<Reply, Error> {
    let (res, _) = conn.send_request(req.to_vec(), req.len(), true).await;
    res.map_err(|_| Error::UpstreamReset)?;
    let mut head = ResponseHead::default();
    conn.read_head(false, &mut head).await?;
    let data = conn.rbuf.data();
    let mut reply = Reply {
        status: head.status,
        headers: head
            .headers
            .iter()
            .map(|&((a, b), (c, d))| {
                (
                    String::from_utf8_lossy(&data[a..b]).to_ascii_lowercase(),
                    data[c..d].to_vec(),
                )
            })
            .collect(),
        body: Vec::new(),
    };
    conn.rbuf.consume(head.head_len);
    let clean = read_body(&mut conn, head.body, max_body, &mut reply.body).await?;
    conn.served += 1;
    if clean && head.keep_alive {
        pools.put(conn);
    }
    Ok(reply)
}

/// Reads a body framed by `framing` into `out`; true when the connection may be
/// reused after it.
async fn read_body(
    conn: &mut UpConn,
    framing: BodyFraming,
    max: usize,
    out: &mut Vec<u8>,
) -> Result<bool, Error> {
    let too_big = Error::UpstreamMalformed;
    match framing {
        BodyFraming::Empty => Ok(true),
        BodyFraming::Length(n) => {
            let n = usize::try_from(n).map_err(|_| too_big)?;
            if n > max {
                return Err(too_big);
            }
            while conn.rbuf.data().len() < n {
                fill(conn).await?;
            }
            out.extend_from_slice(&conn.rbuf.data()[..n]);
            conn.rbuf.consume(n);
            Ok(true)
        }
        BodyFraming::Chunked => {
            let mut dec = ChunkedDecoder::default();
            loop {
                let used = dec
                    .decode(conn.rbuf.data(), out)
                    .map_err(|_| Error::UpstreamMalformed)?;
                conn.rbuf.consume(used);
                if out.len() > max {
                    return Err(too_big);
                }
                if dec.is_done() {
                    return Ok(true);
                }
                fill(conn).await?;
            }
        }
        BodyFraming::UntilClose => loop {
            out.extend_from_slice(conn.rbuf.data());
            let n = conn.rbuf.data().len();
            conn.rbuf.consume(n);
            if out.len() > max {
                return Err(too_big);
            }
            match conn.rbuf.fill(&mut conn.io).await {
                Ok(0) | Err(_) => return Ok(false),
                Ok(_) => {}
            }
        },
    }
}

async fn fill(conn: &mut UpConn) -> Result<(), Error> {
    match conn.rbuf.fill(&mut conn.io).await {
        Ok(0) | Err(_) => Err(Error::UpstreamMalformed),
        Ok(_) => Ok(()),
    }
}
