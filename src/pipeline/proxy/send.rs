//! One attempt on one target: a connection (pooled, new, or waited for in the
//! target's queue; a stream on the HTTP/2 session), the request head and body sent,
//! the response head read.

use std::time::Duration;

use super::super::body::{BodyError, BodyReader, PIECE};
use super::super::{Downstream, WorkerCtx};
use super::Fail;
use crate::error::Error;
use crate::proto::h1::{BodyFraming, RequestHead, ResponseHead};
use crate::proto::head::request_chunk;
use crate::upstream::{connect, UpConn};

/// One target to send to, with its upstream's connection settings.
#[derive(Debug, Clone, Copy)]
pub(super) struct Peer<'p> {
    pub(super) addr: std::net::SocketAddr,
    pub(super) tls: Option<&'p crate::upstream::TlsPeer>,
    pub(super) connect_timeout: Duration,
    /// Pooled connections idle longer than this are not reused.
    pub(super) idle: Duration,
    pub(super) max_requests: Option<u32>,
    /// HTTP/2 (one stream on a shared session) instead of an HTTP/1.1 connection.
    pub(super) h2: bool,
    /// This worker's share of the connects that may run at once to the target.
    pub(super) max_connecting: u32,
    /// Most requests this worker queues for a connection to the target.
    pub(super) max_queued: u32,
    pub(super) queue_timeout: Duration,
}

/// One attempt on one target: a pooled connection (once more on a fresh one if the
/// pooled one turns out closed), the request, the response head.
#[allow(clippy::too_many_arguments)]
pub(super) async fn send_and_receive(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    body: &mut BodyReader,
    req: &mut Vec<u8>,
    head_len: usize,
    resp: &mut ResponseHead,
    peer: Peer<'_>,
    replayable: bool,
    w: &WorkerCtx,
) -> Result<UpConn, Fail> {
    let mut fresh_only = false;
    // HTTP/2 upstreams: the body bytes streamed from the client so far, while they
    // fit in REPLAY_MAX, to send again if the upstream refuses the stream.
    // (Boxed: this future is part of every request's.)
    let mut replay: Option<Box<Vec<u8>>> = peer.h2.then(Box::default);
    loop {
        let tls_key = peer.tls.map_or(0, |t| t.key);
        let pooled = if peer.h2 {
            None
        } else {
            (!fresh_only)
                .then(|| w.pools.take(peer.addr, tls_key, peer.idle))
                .flatten()
        };
        let mut conn = match pooled {
            Some(c) => c,
            None if peer.h2 => Box::pin(h2_stream(w, peer, tls_key, fresh_only))
                .await
                .map_err(Fail::Respond)?,
            // Boxed: rare on a warm pool, and its state would otherwise
            // make every request's future (and every move of it) larger.
            None => Box::pin(h1_conn(w, peer, tls_key, fresh_only))
                .await
                .map_err(Fail::Respond)?,
        };
        conn.served += 1;
        let owned = std::mem::take(req);
        let (res, owned) = conn.send_request(owned, head_len, body.is_done()).await;
        *req = owned;
        let mut sent = res.is_ok();
        if let Some(r) = replay.as_mut().filter(|r| sent && !r.is_empty()) {
            // Boxed: rare, and its state would enlarge every request's future.
            sent = Box::pin(resend(&mut conn, r)).await;
        }
        // Whether body bytes were taken from the client and not kept: the request
        // cannot be sent again.
        let mut lost = false;
        if sent && !body.is_done() {
            let chunked = body.framing() == BodyFraming::Chunked && !peer.h2;
            sent = Box::pin(stream_request_body(
                ds,
                body,
                &mut conn,
                chunked,
                &mut replay,
            ))
            .await?;
            lost = replay.is_none();
        }
        let got = if sent {
            conn.read_head(head.is_head(), resp).await
        } else {
            Err(Error::UpstreamReset)
        };
        match got {
            Ok(()) => return Ok(conn),
            // A pooled connection the upstream had already closed, or a request it
            // certainly did not process (HTTP/2: refused stream): once more, on a
            // new connection.
            Err(Error::UpstreamReset)
                if !fresh_only
                    && ((conn.reused && replayable) || (conn.io.unprocessed() && !lost)) =>
            {
                fresh_only = true
            }
            Err(e) => return Err(Fail::Respond(e)),
        }
    }
}

/// An HTTP/1.1 connection to the target when the pool had none at hand: a new one
/// if fewer than `max_connecting` connects are running there, else a place in the
/// target's queue until a connection comes back or a connect slot frees
/// (`upstream::gate`). `fresh`: the pooled ones are not to be trusted (one was
/// found closed), connect.
async fn h1_conn(
    w: &WorkerCtx,
    peer: Peer<'_>,
    tls_key: u64,
    fresh: bool,
) -> Result<UpConn, Error> {
    let key = (peer.addr, tls_key);
    let gates = &w.pools.gates;
    let until = std::time::Instant::now() + peer.queue_timeout;
    let mut woken = false;
    // Time spent connecting, across the sockets given up for lost SYNs.
    let mut connecting = Duration::ZERO;
    loop {
        if woken && !fresh {
            if let Some(c) = w.pools.take(peer.addr, tls_key, peer.idle) {
                return Ok(c);
            }
        }
        if let Some(slot) = gates.try_connect(key, peer.max_connecting, woken) {
            let left = peer.connect_timeout.saturating_sub(connecting);
            let lost = slot.gate().lost_after().filter(|&l| l < left);
            let started = std::time::Instant::now();
            let res = connect(peer.addr, lost.unwrap_or(left), peer.tls).await;
            connecting += started.elapsed();
            match res {
                Ok(io) => {
                    slot.succeeded(started.elapsed());
                    let mut c = UpConn::new(io, peer.addr, tls_key);
                    c.max_requests = peer.max_requests;
                    c.in_use(slot.gate().clone());
                    return Ok(c);
                }
                Err(Error::UpstreamConnectTimeout) => {
                    if let Some(limit) = slot.lost() {
                        crate::warn!(
                            "upstream target {}: a connect was lost with other connections to it busy (its accept queue is full); this worker now keeps at most {limit} connections in use there, widening as connects succeed",
                            peer.addr
                        );
                    }
                    if lost.is_none() {
                        return Err(Error::UpstreamConnectTimeout);
                    }
                    // The SYN was lost (the target's accept queue is full): rather
                    // than wait a second for the kernel to send it again, queue
                    // for another try under the lowered limit.
                    drop(slot);
                    woken = true;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        match monoio::time::timeout_at(until.into(), gates.wait(key, peer.max_queued, woken)).await
        {
            Ok(Ok(())) => woken = true,
            Ok(Err(_)) => return Err(Error::QueueFull),
            Err(_) => return Err(Error::QueueTimeout),
        }
    }
}

/// Sends the body bytes kept from an earlier attempt again.
async fn resend(conn: &mut UpConn, kept: &mut Vec<u8>) -> bool {
    let (res, again) = conn.send_body(std::mem::take(kept), false, false).await;
    *kept = again;
    res.is_ok()
}

/// A new stream on the worker's HTTP/2 session to the target, connecting one when
/// there is none it can use (or `fresh` asks for a new one).
async fn h2_stream(
    w: &WorkerCtx,
    peer: Peer<'_>,
    tls_key: u64,
    fresh: bool,
) -> Result<UpConn, Error> {
    let pools = &w.pools;
    let find = || {
        (!fresh)
            .then(|| pools.session(peer.addr, tls_key, peer.idle, peer.max_requests))
            .flatten()
    };
    let mut found = find();
    if found.is_none() && !fresh && pools.is_connecting(peer.addr, tls_key) {
        // another request is making the session: wait for it rather than open a
        // second connection (bounded by the connect timeout)
        let until = std::time::Instant::now() + peer.connect_timeout;
        while found.is_none()
            && pools.is_connecting(peer.addr, tls_key)
            && std::time::Instant::now() < until
        {
            monoio::time::sleep(Duration::from_millis(1)).await;
            found = find();
        }
    }
    let reused = found.is_some();
    let session = match found {
        Some(s) => s,
        None => {
            let _making = pools.connecting(peer.addr, tls_key);
            let s = crate::upstream::h2::connect(peer.addr, peer.connect_timeout, peer.tls).await?;
            pools.put_session(peer.addr, tls_key, s.clone(), peer.idle);
            s
        }
    };
    let io = crate::upstream::UpIo::H2(Box::new(session.stream(peer.tls.is_some())));
    let mut conn = UpConn::new(io, peer.addr, tls_key);
    conn.reused = reused;
    Ok(conn)
}

/// Most body bytes kept to send again to an HTTP/2 upstream that refused a stream.
const REPLAY_MAX: usize = 64 << 10;

/// Sends the rest of the client's body (as chunks when `chunked`), recording what
/// it sends in `replay` (dropped once it would outgrow `REPLAY_MAX`). `Ok(false)`:
/// the upstream stopped reading.
// Boxed on purpose: 8 bytes instead of 24 in a future that is part of every request's.
#[allow(clippy::box_collection)]
async fn stream_request_body(
    ds: &mut Downstream<'_>,
    body: &mut BodyReader,
    conn: &mut UpConn,
    chunked: bool,
    replay: &mut Option<Box<Vec<u8>>>,
) -> Result<bool, Fail> {
    let mut data = Vec::with_capacity(PIECE);
    let mut piece = Vec::with_capacity(PIECE + 32);
    while !body.is_done() {
        data.clear();
        if let Err(e) = body.read(ds, &mut data).await {
            if e != BodyError::Gone {
                // The upstream has part of the body: dropping `conn` closes it (an
                // HTTP/2 stream is reset), so it never sees a request that looks
                // complete.
                crate::warn!(
                    "request body {} after part of it went to upstream {}: upstream connection closed",
                    if e == BodyError::Malformed { "framing is invalid" } else { "exceeds max_body" },
                    conn.addr
                );
            }
            return Err(Fail::from(e));
        }
        if data.is_empty() && !body.is_done() {
            continue;
        }
        if let Some(r) = replay {
            if r.len() + data.len() <= REPLAY_MAX {
                r.extend_from_slice(&data);
            } else {
                *replay = None;
            }
        }
        request_chunk(&mut piece, chunked, &data);
        let (res, p) = conn.send_body(piece, chunked, body.is_done()).await;
        piece = p;
        if res.is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}
