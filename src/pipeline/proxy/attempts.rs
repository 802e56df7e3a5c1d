//! Where a proxied request goes, and how often: circuit breaking before anything is
//! sent, the balancer's pick, and retries on another target when the failure left
//! the request unprocessed (connect refused or timed out, reset before any response
//! byte) and the request is idempotent and fully buffered, within `retries` and the
//! upstream's retry budget. Every attempt's outcome feeds passive outlier detection.

use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::time::{Duration, Instant};

use crate::error::{Error, Side};
use crate::plan::{Balance, HashOn, Plan, Proxy, Target};
use crate::proto::h1::{RequestHead, ResponseHead};
use crate::upstream::balance::{Attempt, Balancers, Slot};
use crate::upstream::UpConn;
use crate::warn;

use super::super::body::BodyReader;
use super::super::{Downstream, WorkerCtx};
use super::send::{send_and_receive, Peer};
use super::Fail;

/// Pooled connections to a literal `host:port` integration are kept this long idle.
pub const LITERAL_IDLE: Duration = Duration::from_secs(30);
const LITERAL_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Connects at once per worker to a literal address, and requests queued behind them
/// (an `[upstreams]` table sets its own).
const LITERAL_MAX_CONNECTING: u32 = 8;
const LITERAL_MAX_QUEUED: u32 = 1024;
/// How often a request waiting for a free connection slot looks again.
const SLOT_POLL: Duration = Duration::from_millis(1);

/// Circuit breaking: waits (within `wait`) for a slot when the upstream is at
/// `max_connections`; refuses at once when `max_pending` requests already wait.
pub(super) async fn admit(plan: &Plan, u: u32, b: &Balancers, wait: Duration) -> Result<(), Error> {
    match b.slot(plan, u) {
        Slot::Free => return Ok(()),
        Slot::Full => return Err(Error::CircuitOpen),
        Slot::Queue => {}
    }
    struct Waiting<'a>(&'a Balancers, &'a Plan, u32);
    impl Drop for Waiting<'_> {
        fn drop(&mut self) {
            self.0.queued(self.1, self.2, false);
        }
    }
    b.queued(plan, u, true);
    let _waiting = Waiting(b, plan, u);
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        monoio::time::sleep(SLOT_POLL).await;
        if b.slot(plan, u) == Slot::Free {
            return Ok(());
        }
    }
    Err(Error::CircuitOpen)
}

/// The request's value for `hash(...)` balancing, if the upstream hashes and the
/// request has it.
pub(super) fn hash_key<'r>(
    plan: &Plan,
    p: &Proxy,
    head: &'r RequestHead,
    peer_ip: &'r str,
) -> Option<&'r [u8]> {
    let Target::Upstream(u) = p.target else {
        return None;
    };
    let Balance::Hash(on) = &plan.upstreams[u as usize].balance else {
        return None;
    };
    match on {
        HashOn::Header(name) => head.header(name),
        HashOn::Ip => Some(peer_ip.as_bytes()),
        HashOn::Query(name) => head.query()?.split(|&b| b == b'&').find_map(|pair| {
            let (n, v) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            (n == &name[..]).then_some(v)
        }),
    }
}

/// Sends the request (to as many targets as retries allow) until a response head
/// arrives or the failure is final. `deadline`: the route's timeout, for all attempts.
#[allow(clippy::too_many_arguments)]
pub(super) async fn exchange(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    body: &mut BodyReader,
    req: &mut Vec<u8>,
    head_len: usize,
    resp: &mut ResponseHead,
    plan: &Plan,
    p: &Proxy,
    key: Option<&[u8]>,
    replayable: bool,
    deadline: Instant,
    w: &WorkerCtx,
) -> Result<UpConn, Fail> {
    let (u, up) = match p.target {
        Target::Addr(addr) => {
            let peer = Peer {
                addr,
                tls: p.tls.as_ref(),
                connect_timeout: LITERAL_CONNECT_TIMEOUT,
                idle: LITERAL_IDLE,
                max_requests: None,
                h2: false,
                max_connecting: LITERAL_MAX_CONNECTING,
                max_queued: LITERAL_MAX_QUEUED,
                queue_timeout: LITERAL_CONNECT_TIMEOUT,
            };
            let attempt = pin!(send_and_receive(
                ds, head, body, req, head_len, resp, peer, replayable, w
            ));
            return timed(attempt, deadline).await;
        }
        Target::Upstream(u) => (u, &plan.upstreams[u as usize]),
    };
    let b = &w.balancers;
    let mut tried = [0u32; 11];
    let mut n = 0;
    let mut last = None;
    // Whether every attempt so far failed to connect.
    let mut refused_all = true;
    loop {
        let mut pick = b.pick(plan, u, key, &tried[..n]);
        if pick.is_none() && last.is_some_and(nothing_sent) {
            // Every target was tried and the last would not take a connection: the
            // same targets again after a short backoff (a listen queue overflowing
            // under a burst drains in milliseconds).
            let wait = backoff(n as u32, w);
            if Instant::now() + wait < deadline {
                monoio::time::sleep(wait).await;
                pick = b.pick(plan, u, key, &[]);
            }
        }
        let Some(t) = pick else {
            // Nothing left to try: if the last target would not even take a
            // connection, no target is healthy as far as this request can tell.
            return Err(Fail::Respond(match last {
                Some(e) if !refused_all => e,
                _ => Error::NoHealthyTarget,
            }));
        };
        let addr: SocketAddr = up.targets[t as usize].addr;
        let peer = Peer {
            addr,
            tls: up.tls.get(t as usize).and_then(Option::as_ref),
            connect_timeout: up.connect_timeout,
            idle: up.idle_timeout,
            max_requests: up.max_requests_per_connection,
            h2: up.h2,
            max_connecting: up.max_connecting,
            max_queued: up.max_queued,
            queue_timeout: up.queue_timeout,
        };
        b.begin(plan, u, t);
        let taken = body.taken();
        let res = {
            let attempt = pin!(send_and_receive(
                ds, head, body, req, head_len, resp, peer, replayable, w
            ));
            timed(attempt, deadline).await
        };
        let verdict = match &res {
            Ok(_) if resp.status >= 500 => Attempt::Failed,
            Ok(_) => Attempt::Ok,
            Err(Fail::Respond(e)) if e.side() == Side::Upstream => Attempt::Failed,
            Err(_) => Attempt::Abandoned,
        };
        let refused = matches!(
            res,
            Err(Fail::Respond(
                Error::UpstreamConnect | Error::UpstreamConnectTimeout
            ))
        );
        if refused {
            b.connect_failed(plan, u, t);
        }
        refused_all &= refused;
        if let Some(d) = b.end(plan, u, t, verdict) {
            warn!(
                "upstream `{}` target {addr} ejected for {d:?} after {} failures in a row (passive outlier detection)",
                up.name,
                up.outlier.consecutive
            );
        }
        // Nothing of the request reached anyone when the connection could not be
        // made, and no body was taken from the client for it: safe for any method.
        let resendable = replayable
            || matches!(res, Err(Fail::Respond(e)) if nothing_sent(e) && body.taken() == taken);
        match res {
            Err(Fail::Respond(e))
                if e.retry_safe()
                    && resendable
                    && (n as u32) < up.retries
                    && Instant::now() < deadline
                    && b.take_retry(plan, u, t) =>
            {
                tried[n] = t;
                n += 1;
                last = Some(e);
            }
            Err(Fail::Respond(_)) if refused_all && n + 1 >= up.targets.len() => {
                // every target refused this request's connections
                return Err(Fail::Respond(Error::NoHealthyTarget));
            }
            other => return other,
        }
    }
}

/// Failures that leave the request unsent: the connection was never made.
fn nothing_sent(e: Error) -> bool {
    matches!(
        e,
        Error::UpstreamConnect | Error::UpstreamConnectTimeout | Error::UpstreamTls
    )
}

/// Before retry `n` (1-based) of targets that refused: 25 ms doubling per retry,
/// at most 400 ms, jittered between half and all of it so that a burst's retries
/// do not arrive together.
fn backoff(n: u32, w: &WorkerCtx) -> Duration {
    let base = Duration::from_millis(25) * (1u32 << n.saturating_sub(1).min(4));
    let half = base / 2;
    half + half.mul_f64(f64::from(w.roll_ppm()) / 1_000_000.0)
}

/// Runs an attempt (pinned where it was made: the future is large, and moving it
/// into the timeout cost a copy per request) until `deadline`.
async fn timed<F: std::future::Future<Output = Result<UpConn, Fail>>>(
    f: Pin<&mut F>,
    deadline: Instant,
) -> Result<UpConn, Fail> {
    match monoio::time::timeout_at(deadline.into(), f).await {
        Ok(r) => r,
        Err(_) => Err(Fail::Respond(Error::UpstreamTimeout)),
    }
}
