//! One client connection: read a head, run the pipeline, repeat while keep-alive.
//!
//! Pipelined requests are answered in order; responses are batched in the write
//! buffer and flushed when no complete request is left to parse, so a pipelined burst
//! costs one write. The header timeout runs from the first byte of a head to its end
//! (slow-header clients are cut off); the idle timeout runs between requests; a drain
//! wakes idle connections so they close at once.

use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::time::{Instant, SystemTime};

use crate::proto::tls::ClientIo;

use crate::error::Error;
use crate::observe::access_log::{Format, Record, WorkerLog};
use crate::observe::metrics::{Observation, Protocol};
use crate::pipeline::respond::write_error;
use crate::pipeline::{self, Downstream, Rec, Scratch};
use crate::plan::Plan;
use crate::proto::h1::{parse_request, HeadError, RequestHead};
use crate::proto::head::ResponseHead;
use crate::proto::io::{flush, ReadBuf};

use super::drain::{race, Either};
use super::state::WorkerState;

/// Past this much buffered output, flush even if more pipelined requests wait.
const MAX_PENDING_OUTPUT: usize = 64 << 10;

/// Counts an open client connection (for the drain and the metrics) until dropped.
pub(super) struct ActiveGuard<'a> {
    st: &'a WorkerState,
    protocol: std::cell::Cell<Protocol>,
}

/// Counts a connection of `protocol` while the guard lives.
pub(super) fn active(st: &WorkerState, protocol: Protocol) -> ActiveGuard<'_> {
    st.active.set(st.active.get() + 1);
    st.metrics.connections(st.id).opened(protocol);
    ActiveGuard {
        st,
        protocol: std::cell::Cell::new(protocol),
    }
}

impl ActiveGuard<'_> {
    fn switch(&self, to: Protocol) {
        let from = self.protocol.replace(to);
        self.st.metrics.connections(self.st.id).switched(from, to);
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.st.active.set(self.st.active.get() - 1);
        self.st
            .metrics
            .connections(self.st.id)
            .closed(self.protocol.get());
    }
}

/// Serves one client connection; `scheme` is `http` or `https` (a TLS listener's).
/// `client` is the subject of a verified client certificate (mutual TLS).
pub async fn serve(
    io: ClientIo,
    peer: SocketAddr,
    scheme: &'static str,
    client: Option<Rc<str>>,
    st: Rc<WorkerState>,
) {
    let guard = active(
        &st,
        if scheme == "https" {
            Protocol::Http1Tls
        } else {
            Protocol::Http1
        },
    );
    let mut c = Conn {
        // the first bytes of a plain connection may be HTTP/2's preface
        first: matches!(io, ClientIo::Plain(_)),
        io,
        // Small to start: an idle keep-alive connection pins its read buffer in the
        // kernel (a pending io_uring read), and thousands of them add up. Both grow
        // on demand; see `flush` for how a large response's buffer is given back.
        rbuf: ReadBuf::with_capacity(4 << 10),
        wbuf: Vec::new(),
        head: RequestHead::default(),
        scratch: Scratch::default(),
        peer_ip: peer.ip().to_string(),
        rec: Rec {
            client,
            ..Rec::default()
        },
        woke: false,
    };
    loop {
        // Boxed: the requests' state (the pipeline's is kilobytes) is on the heap
        // while the connection is busy, and gone while it waits idle below.
        match Box::pin(busy(&mut c, scheme, &st)).await {
            Busy::Closed => return,
            Busy::H2 => {
                // HTTP/2 with prior knowledge: hand the socket, and what was read
                // of it, to the HTTP/2 driver
                guard.switch(Protocol::H2c);
                if let ClientIo::Plain(tcp) = c.io {
                    if let Ok(poll) = tcp.try_into_poll_io() {
                        let prefix = c.rbuf.data().to_vec();
                        Box::pin(super::h2::serve(
                            poll,
                            prefix,
                            peer,
                            scheme,
                            None,
                            st.clone(),
                        ))
                        .await;
                    }
                }
                return;
            }
            Busy::Idle => {
                // Many connections: wait for readiness holding no buffer (a pending
                // read would pin one). Never by cancelling a read: one completing as
                // it is cancelled would lose the client's bytes.
                let Some(sock) = c.io.plain() else { return };
                let idle = st.plan.current().gateway.idle_timeout;
                let ready = monoio::time::timeout(idle, sock.readable(false));
                match race(pin!(ready), pin!(st.drain.wait())).await {
                    Either::Left(Ok(Ok(()))) => c.woke = true,
                    _ => return,
                }
            }
        }
    }
}

/// A connection's state across its requests and idle waits.
struct Conn {
    io: ClientIo,
    rbuf: ReadBuf,
    wbuf: Vec<u8>,
    head: RequestHead,
    scratch: Scratch,
    peer_ip: String,
    rec: Rec,
    /// Nothing read yet (a plain connection's first bytes may be HTTP/2's preface).
    first: bool,
    /// Readable after an idle wait: the next read is a head's first bytes.
    woke: bool,
}

/// Why [`busy`] returned.
enum Busy {
    Closed,
    /// Waiting for the next request with many connections open: buffers released,
    /// the caller waits for readiness.
    Idle,
    /// The client speaks HTTP/2 with prior knowledge.
    H2,
}

/// Serves requests until the connection closes, turns out to be HTTP/2, or goes idle
/// while many connections are open.
async fn busy(c: &mut Conn, scheme: &'static str, st: &Rc<WorkerState>) -> Busy {
    let Conn {
        io,
        rbuf,
        wbuf,
        head,
        scratch,
        peer_ip,
        rec,
        first,
        woke,
    } = c;
    loop {
        let plan = st.plan.current();
        let g = &plan.gateway;
        let mut deadline: Option<Instant> = None;
        // 1. a complete request head
        loop {
            if *first && rbuf.data().len() >= super::h2::PREFACE.len().min(14) {
                *first = false;
                if rbuf.data().starts_with(&super::h2::PREFACE[..14]) {
                    return Busy::H2;
                }
            }
            if !rbuf.is_empty() {
                match parse_request(rbuf.data(), g.max_header_size, head) {
                    Ok(Some(n)) => {
                        rbuf.consume(n);
                        break;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let err = match e {
                            HeadError::Malformed => Error::BadRequest,
                            HeadError::TooLarge => Error::HeadersTooLarge,
                        };
                        let mut rid = [0u8; 36];
                        st.ctx.ids.write(&mut rid);
                        write_error(
                            ResponseHead::text(wbuf, err.status()),
                            false,
                            err,
                            &rid,
                            true,
                        );
                        // no route and no usable head, but the count and the log show it
                        st.metrics.unrouted.worker(st.id).observe(&Observation {
                            status: err.status(),
                            ..Observation::default()
                        });
                        if let (Some(sink), Some((_, format))) = (&st.log, &plan.access_log) {
                            log_refused(format, sink, err, &rid, peer_ip);
                        }
                        let _ = flush(io, wbuf).await;
                        return Busy::Closed;
                    }
                }
            }
            if flush(io, wbuf).await.is_err() {
                return Busy::Closed;
            }
            let read = if std::mem::take(woke) {
                // readable after an idle wait (see `serve`)
                monoio::time::timeout(g.header_timeout, rbuf.fill(io)).await
            } else if rbuf.is_empty() {
                if st.drain.is_draining() {
                    return Busy::Closed;
                }
                let many = st.active.get() > st.low_memory_above;
                if many && io.plain().is_some() {
                    // Many connections: give the buffers back and let `serve` wait
                    // for readiness, this state freed with them.
                    rbuf.release();
                    *wbuf = Vec::new();
                    *scratch = Scratch::default();
                    *head = RequestHead::default();
                    return Busy::Idle;
                }
                let idle = monoio::time::timeout(g.idle_timeout, rbuf.fill(io));
                match race(pin!(idle), pin!(st.drain.wait())).await {
                    Either::Left(r) => r,
                    Either::Right(()) => return Busy::Closed,
                }
            } else {
                let d = *deadline.get_or_insert_with(|| Instant::now() + g.header_timeout);
                monoio::time::timeout_at(d.into(), rbuf.fill(io)).await
            };
            match read {
                Ok(Ok(n)) if n > 0 => {}
                // end of stream, reset, idle or header timeout: close quietly
                _ => return Busy::Closed,
            }
        }

        // 2. the pipeline, on the newest plan (the wait for this head may have spanned
        // a reload)
        let plan = st.plan.current();
        let logging = st.log.is_some() && plan.access_log.is_some();
        let t0 = Instant::now();
        let wall = logging.then(SystemTime::now);
        rec.route = None;
        rec.key = None;
        rec.status = 0;
        rec.bytes = 0;
        rec.error = "";
        rec.integration_status = None;
        rec.integration_latency = None;
        rec.throttled = None;
        rec.quota_exceeded = false;
        rec.cache = None;
        rec.canary = None;
        rec.claims = None;
        rec.authorizer = None;
        rec.iam_user = None;
        rec.iam_refusal = None;
        rec.auth_error = "";
        rec.auth = None;
        if rec.validation.is_some() {
            rec.validation = None;
        }
        let mut ds = Downstream {
            io,
            scheme,
            rbuf,
            wbuf,
            peer_ip,
            scratch,
            draining: st.drain.is_draining(),
            rec,
        };
        let outcome = pipeline::handle(&mut ds, head, &plan, &st.ctx).await;
        record(st, &plan, head, rec, peer_ip, t0, wall, None);
        if !outcome.keep_alive {
            let _ = flush(io, wbuf).await;
            return Busy::Closed;
        }
        if wbuf.len() >= MAX_PENDING_OUTPUT && flush(io, wbuf).await.is_err() {
            return Busy::Closed;
        }
    }
}

/// What a finished request adds to the metrics and the access log. `protocol`
/// overrides the head's version (HTTP/2 streams arrive as HTTP/1.1 heads).
#[allow(clippy::too_many_arguments)]
pub(super) fn record(
    st: &WorkerState,
    plan: &Plan,
    head: &RequestHead,
    rec: &Rec,
    peer_ip: &str,
    t0: Instant,
    wall: Option<SystemTime>,
    protocol: Option<&'static str>,
) {
    let series = rec.route.and_then(|r| plan.route(r).series.as_deref());
    series
        .unwrap_or(&st.metrics.unrouted)
        .worker(st.id)
        .observe(&Observation {
            status: rec.status,
            latency: t0.elapsed(),
            integration_latency: rec.integration_latency,
            throttled: rec.throttled,
            quota_exceeded: rec.quota_exceeded,
            cache: rec.cache,
            canary: rec.canary == Some(true),
            auth: rec.auth,
        });
    if let (Some(wall), Some(sink), Some((_, format))) = (wall, &st.log, &plan.access_log) {
        log_line(format, sink, plan, head, rec, peer_ip, t0, wall, protocol);
    }
}

/// The access-log line of a request refused before its head parsed (400, 431): what
/// is known is the client, the status and the error.
fn log_refused(format: &Format, log: &WorkerLog, err: Error, rid: &[u8], peer_ip: &str) {
    let none = |_: &[u8]| None;
    let r = Record {
        request_id: rid,
        source_ip: peer_ip,
        method: b"-",
        path: "-",
        route_key: "",
        stage: "",
        status: err.status(),
        protocol: "HTTP/1.1",
        response_length: (err.message().len() + 14) as u64,
        request_time: SystemTime::now(),
        latency: std::time::Duration::ZERO,
        integration_latency: None,
        integration_status: None,
        error_message: err.message(),
        api_key_id: "",
        user_arn: "",
        access_key: "",
        client_subject: "",
        cache_status: "",
        canary: None,
        principal: None,
        context: None,
        claims: None,
        authorizer_error: "",
        header: &none,
    };
    log.line(format, &r);
}

#[allow(clippy::too_many_arguments)]
fn log_line(
    format: &Format,
    log: &WorkerLog,
    plan: &Plan,
    head: &RequestHead,
    rec: &Rec,
    peer_ip: &str,
    t0: Instant,
    wall: SystemTime,
    protocol: Option<&'static str>,
) {
    let route = rec.route.map(|r| plan.route(r));
    let header = |name: &[u8]| head.header(name);
    let r = Record {
        request_id: &rec.request_id,
        source_ip: peer_ip,
        method: head.method(),
        path: head.path(),
        route_key: route.map_or("", |r| &r.key),
        stage: route.map_or("", |r| &plan.stages[r.stage as usize].name),
        status: rec.status,
        protocol: protocol.unwrap_or(if head.version == 1 {
            "HTTP/1.1"
        } else {
            "HTTP/1.0"
        }),
        response_length: rec.bytes,
        request_time: wall,
        latency: t0.elapsed(),
        integration_latency: rec.integration_latency,
        integration_status: rec.integration_status,
        error_message: rec.error,
        api_key_id: rec.key.map_or("", |k| &plan.key_info[k as usize].name),
        user_arn: rec.iam_user.map_or("", |u| &plan.iam_users[u as usize].arn),
        access_key: rec
            .iam_user
            .map_or("", |u| &plan.iam_users[u as usize].access_key),
        client_subject: rec.client.as_deref().unwrap_or(""),
        cache_status: rec.cache.map_or("", |c| c.as_str()),
        canary: rec.canary,
        principal: match &rec.authorizer {
            Some(a) => a.principal.as_deref(),
            None => rec
                .claims
                .as_ref()
                .and_then(|c| c.get("sub"))
                .and_then(|v| v.as_str()),
        },
        claims: rec.claims.as_deref(),
        context: rec.authorizer.as_ref().map(|a| &*a.context),
        authorizer_error: rec.auth_error,
        header: &header,
    };
    log.line(format, &r);
}
