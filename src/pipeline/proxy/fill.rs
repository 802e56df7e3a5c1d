//! A cache miss whose response may be stored. The body is gathered first (within the
//! stage's `max_entry`), so the head can say `Cache-Status: …; stored` truthfully
//! and the client gets head and body in one write; then the entry is stored.
//!
//! A chunked or close-delimited body that outgrows `max_entry` is not stored: what
//! was gathered goes to the client and the rest streams as usual. A body cut short
//! before anything was sent becomes a 502, as any other broken upstream response.

use std::time::Duration;

use bytes::Bytes;

use crate::cache::policy::{stores_header, Outcome as CacheOutcome};
use crate::cache::Fill;
use crate::error::Error;
use crate::pipeline::cache::{write_entry_head, Forward};
use crate::pipeline::{Downstream, Outcome, WorkerCtx};
use crate::proto::h1::{has_token, BodyFraming, ChunkedDecoder, RequestHead, ResponseHead};
use crate::upstream::UpConn;

use super::response::{copy_chunked, copy_until_close};
use super::{fail, Fail};

/// The response's headers as stored: no framing, hop-by-hop or per-exchange fields.
pub(super) fn stored_headers(conn: &UpConn, resp: &ResponseHead, drop_cors: bool) -> Vec<u8> {
    let buf = conn.rbuf.data();
    let s = |r: (usize, usize)| &buf[r.0..r.1];
    let tokens = resp
        .headers
        .iter()
        .find(|(n, _)| s(*n).eq_ignore_ascii_case(b"connection"))
        .map_or(&b""[..], |(_, v)| s(*v));
    let mut out = Vec::with_capacity(256);
    for (n, v) in &resp.headers {
        let name = s(*n);
        if stores_header(name)
            && !has_token(tokens, name)
            && !(drop_cors && crate::auth::cors::is_cors_field(name))
        {
            crate::proto::head::push_line(&mut out, name, s(*v));
        }
    }
    out
}

enum Collected {
    Whole(Vec<u8>),
    /// Over the limit: the data so far and, for chunked bodies, the decoder's state.
    TooBig(Vec<u8>, Option<ChunkedDecoder>),
}

/// Reads the response body (head already consumed) up to `limit` bytes.
async fn collect(
    conn: &mut UpConn,
    framing: BodyFraming,
    limit: usize,
    idle: Duration,
) -> Result<Collected, ()> {
    let mut body = Vec::new();
    // kept for a body too big to store, streamed on with its trailers
    let mut dec = ChunkedDecoder::keeping_trailers();
    loop {
        match framing {
            BodyFraming::Empty => return Ok(Collected::Whole(body)),
            BodyFraming::Length(n) => {
                let want = n as usize - body.len();
                let take = want.min(conn.rbuf.data().len());
                body.extend_from_slice(&conn.rbuf.data()[..take]);
                conn.rbuf.consume(take);
                if body.len() == n as usize {
                    return Ok(Collected::Whole(body));
                }
            }
            BodyFraming::Chunked => {
                let used = dec.decode(conn.rbuf.data(), &mut body).map_err(|_| ())?;
                conn.rbuf.consume(used);
                if dec.is_done() {
                    return Ok(Collected::Whole(body));
                }
                if body.len() > limit {
                    return Ok(Collected::TooBig(body, Some(dec)));
                }
            }
            BodyFraming::UntilClose => {
                body.extend_from_slice(conn.rbuf.data());
                let n = conn.rbuf.data().len();
                conn.rbuf.consume(n);
                if body.len() > limit {
                    return Ok(Collected::TooBig(body, None));
                }
            }
        }
        match monoio::time::timeout(idle, conn.rbuf.fill(&mut conn.io)).await {
            Ok(Ok(n)) if n > 0 => {}
            Ok(Ok(_)) if framing == BodyFraming::UntilClose => {
                return Ok(Collected::Whole(body));
            }
            _ => return Err(()),
        }
    }
}

/// Whether a response of this framing can fit in an entry at all (known lengths are
/// checked before reading anything).
pub(super) fn may_fit(resp: &ResponseHead, room: usize) -> bool {
    match resp.body {
        BodyFraming::Length(n) => n <= room as u64,
        _ => true,
    }
}

/// Sends the response to the client and stores it. `headers`: from [`stored_headers`],
/// taken before the head was consumed from the connection's buffer.
#[allow(clippy::too_many_arguments)]
pub(super) async fn respond_and_store(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    mut conn: UpConn,
    resp: &ResponseHead,
    headers: Vec<u8>,
    fwd: &Forward<'_>,
    fill: Fill,
    rid: &[u8],
    keep: bool,
    idle: Duration,
    w: &WorkerCtx,
) -> Outcome {
    let room = fill.room(headers.len());
    let collected = match collect(&mut conn, resp.body, room, idle).await {
        Ok(c) => c,
        Err(()) => return fail(ds, head, Fail::Respond(Error::UpstreamMalformed), rid, keep),
    };
    let reusable = resp.keep_alive && resp.body != BodyFraming::UntilClose;
    match collected {
        Collected::Whole(body) => {
            let body = Bytes::from(body);
            let stored = body.len() <= room;
            let out = write_entry_head(
                ds.head(resp.status),
                resp.status,
                &headers,
                body.len(),
                rid,
                keep,
                |out| {
                    fwd.outcome
                        .write_header(out, stored, None, (!stored).then_some("size"))
                },
            );
            out.extend_from_slice(&body);
            ds.rec.bytes = body.len() as u64;
            if stored {
                let p = fwd.policy;
                fill.store(p.tag, resp.status, headers.into(), body, p.ttl);
            }
            if reusable {
                w.pools.put(conn);
            }
            Outcome { keep_alive: keep }
        }
        Collected::TooBig(data, dec) => {
            drop(fill);
            let reusable = resp.keep_alive && dec.is_some();
            let parts = Rest {
                status: resp.status,
                headers: &headers,
                outcome: fwd.outcome,
                data,
                dec,
                reusable,
            };
            stream_rest(ds, head, conn, parts, rid, keep, idle, w).await
        }
    }
}

/// What was gathered of a response too big to store.
struct Rest<'a> {
    status: u16,
    headers: &'a [u8],
    outcome: CacheOutcome,
    data: Vec<u8>,
    /// The chunked decoder's state (`None`: the body runs to the connection's close).
    dec: Option<ChunkedDecoder>,
    /// The upstream connection can be pooled once the body is through.
    reusable: bool,
}

/// Too big to store: send what was gathered, then stream the rest as usual.
#[allow(clippy::too_many_arguments)]
async fn stream_rest(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    mut conn: UpConn,
    rest: Rest<'_>,
    rid: &[u8],
    mut keep: bool,
    idle: Duration,
    w: &WorkerCtx,
) -> Outcome {
    let Rest {
        status,
        headers,
        outcome,
        data,
        dec,
        reusable,
    } = rest;
    let chunked_out = head.version == 1;
    keep &= chunked_out;
    let mut h = ds.head(status);
    h.lines(headers);
    h.field(b"x-request-id", rid);
    h.with_lines(|out| outcome.write_header(out, false, None, Some("size")));
    let framing = if chunked_out {
        BodyFraming::Chunked
    } else {
        BodyFraming::UntilClose
    };
    h.end(framing, !keep);
    if chunked_out {
        ds.chunk(&data);
    } else {
        ds.wbuf.extend_from_slice(&data);
    }
    ds.rec.bytes = data.len() as u64;
    if ds.flush().await.is_err() {
        return Outcome { keep_alive: false };
    }
    let done = match dec {
        Some(dec) => copy_chunked(ds, &mut conn, chunked_out, idle, dec).await,
        None => copy_until_close(ds, &mut conn, chunked_out, idle).await,
    };
    match done {
        Ok(()) => {
            if reusable {
                w.pools.put(conn);
            }
            Outcome { keep_alive: keep }
        }
        Err(()) => Outcome { keep_alive: false },
    }
}
