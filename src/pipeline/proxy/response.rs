//! The upstream's response on its way to the client: the head rewritten with our
//! framing, then the body copied, re-chunked or de-chunked as the client needs.

use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::AsyncReadRent;

use crate::pipeline::body::PIECE;
use crate::pipeline::Downstream;
use crate::proto::h1::{is_hop_by_hop, BodyFraming, ChunkedDecoder, RequestHead, ResponseHead};
use crate::proto::sink::Trailers;
use crate::upstream::UpConn;

/// How the response body is framed towards the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Out {
    None,
    Length(u64),
    /// Upstream chunked → client chunked (re-framed).
    Rechunk,
    /// Upstream until-close → client chunked.
    ChunkFromClose,
    /// Upstream chunked → HTTP/1.0 client, close-delimited.
    DechunkToClose,
    /// Upstream until-close → HTTP/1.0 client, close-delimited.
    CloseToClose,
    /// The head could not be given to the client's protocol: answer 502 instead.
    Refused,
}

/// Writes the response head for the client, in its protocol (`proto::head`: HTTP/1.1
/// text, or fields handed to its HTTP/2 stream). Returns how the body will be framed
/// towards the client.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_response_head(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    conn: &UpConn,
    resp: &ResponseHead,
    rid: &[u8],
    keep: &mut bool,
    extra: &[u8],
    changes: Option<&crate::transform::params::ResponseChanges>,
) -> Out {
    let buf = conn.rbuf.data();
    let s = |r: (usize, usize)| &buf[r.0..r.1];
    let pass_length = head.is_head() || resp.status == 304;
    let conn_tokens = resp
        .headers
        .iter()
        .find(|(n, _)| s(*n).eq_ignore_ascii_case(b"connection"))
        .map_or(&b""[..], |(_, v)| s(*v));
    let http11 = head.version == 1;
    let framing = match resp.body {
        BodyFraming::Empty => Out::None,
        BodyFraming::Length(n) => Out::Length(n),
        BodyFraming::Chunked if http11 => Out::Rechunk,
        BodyFraming::UntilClose if http11 => Out::ChunkFromClose,
        BodyFraming::Chunked => Out::DechunkToClose,
        BodyFraming::UntilClose => Out::CloseToClose,
    };
    let body = match framing {
        Out::None if pass_length || resp.status == 204 || resp.status < 200 => BodyFraming::Empty,
        Out::None => BodyFraming::Length(0),
        Out::Length(n) => BodyFraming::Length(n),
        Out::Rechunk | Out::ChunkFromClose => BodyFraming::Chunked,
        Out::DechunkToClose | Out::CloseToClose | Out::Refused => {
            *keep = false;
            BodyFraming::UntilClose
        }
    };
    // the API's CORS policy alone speaks (AWS drops the backend's CORS headers)
    let cors_on = ds.scratch.cors_on;
    let status = changes.and_then(|c| c.status).unwrap_or(resp.status);
    let mut h = ds.head(status);
    let mut has_rid = false;
    for (n, v) in &resp.headers {
        let name = s(*n);
        if changes.is_some_and(|c| c.drops(name)) {
            continue;
        }
        if is_hop_by_hop(name)
            || (name.eq_ignore_ascii_case(b"content-length") && !pass_length)
            || crate::proto::h1::has_token(conn_tokens, name)
            || (cors_on && crate::auth::cors::is_cors_field(name))
        {
            continue;
        }
        has_rid |= name.eq_ignore_ascii_case(b"x-request-id");
        h.field(name, s(*v));
    }
    if let Some(c) = changes {
        for (n, v) in &c.add {
            h.field(n.as_bytes(), v.as_bytes());
        }
    }
    if !has_rid {
        h.field(b"x-request-id", rid);
    }
    h.lines(extra);
    match h.end(body, !*keep) {
        (_, true) => framing,
        // an answer the client's protocol cannot carry (a field HTTP/2 refuses)
        (_, false) => Out::Refused,
    }
}

/// Where a response body that broke off was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cut {
    /// Nothing of this response has left our write buffer: it can still be replaced
    /// by an error response.
    Unsent,
    /// Part of it reached the client: the connection must close.
    Sent,
}

/// Copies the response body from the upstream to the client.
pub(super) async fn stream_response(
    ds: &mut Downstream<'_>,
    conn: &mut UpConn,
    framing: Out,
    idle: Duration,
) -> Result<(), Cut> {
    match framing {
        Out::None => Ok(()),
        Out::Refused => Err(Cut::Unsent),
        Out::Length(n) => copy_length(ds, conn, n, idle).await,
        Out::Rechunk | Out::DechunkToClose => {
            // trailers (gRPC's status among them) go on to chunked clients
            let dec = ChunkedDecoder::keeping_trailers();
            copy_chunked(ds, conn, framing == Out::Rechunk, idle, dec)
                .await
                .map_err(|()| Cut::Sent)
        }
        Out::ChunkFromClose | Out::CloseToClose => {
            copy_until_close(ds, conn, framing == Out::ChunkFromClose, idle)
                .await
                .map_err(|()| Cut::Sent)
        }
    }
}

async fn read_some(
    conn: &mut UpConn,
    buf: Vec<u8>,
    want: usize,
    idle: Duration,
) -> (Result<usize, ()>, Vec<u8>) {
    match monoio::time::timeout(idle, conn.io.read(buf.slice_mut(0..want))).await {
        Ok((Ok(n), b)) => (Ok(n), b.into_inner()),
        Ok((Err(_), b)) => (Err(()), b.into_inner()),
        // The buffer went with the cancelled read; hand back a fresh one.
        Err(_) => (Err(()), Vec::new()),
    }
}

async fn copy_length(
    ds: &mut Downstream<'_>,
    conn: &mut UpConn,
    mut remaining: u64,
    idle: Duration,
) -> Result<(), Cut> {
    // Up to one piece: gather the whole body behind the head, so the client gets
    // head and body in one write (the connection loop flushes, batched with
    // pipelining). Larger: stream in pieces read straight into a reused buffer.
    loop {
        let have = (conn.rbuf.data().len() as u64).min(remaining) as usize;
        ds.wbuf.extend_from_slice(&conn.rbuf.data()[..have]);
        conn.rbuf.consume(have);
        remaining -= have as u64;
        if remaining == 0 {
            return Ok(());
        }
        if remaining > PIECE as u64 {
            break;
        }
        match monoio::time::timeout(idle, conn.rbuf.fill(&mut conn.io)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return Err(Cut::Unsent),
        }
    }
    ds.flush().await.map_err(|_| Cut::Sent)?;
    let mut buf = std::mem::take(&mut ds.scratch.body);
    while remaining > 0 {
        let want = remaining.min(PIECE as u64) as usize;
        if buf.capacity() < want {
            buf.reserve(want);
        }
        let (res, b) = read_some(conn, buf, want, idle).await;
        let n = res.map_err(|()| Cut::Sent)?;
        if n == 0 {
            return Err(Cut::Sent);
        }
        remaining -= n as u64;
        let (res, b) = ds.write_body(b).await;
        res.map_err(|_| Cut::Sent)?;
        buf = b;
    }
    ds.scratch.body = buf;
    Ok(())
}

/// Copies a chunked body, re-chunked (`rechunk`, with the trailer fields `dec`
/// kept) or as raw data; `dec` carries on from data already decoded elsewhere.
pub(super) async fn copy_chunked(
    ds: &mut Downstream<'_>,
    conn: &mut UpConn,
    rechunk: bool,
    idle: Duration,
    mut dec: ChunkedDecoder,
) -> Result<(), ()> {
    let mut data = Vec::with_capacity(PIECE);
    loop {
        if !conn.rbuf.is_empty() {
            data.clear();
            let avail = conn.rbuf.data();
            let avail = &avail[..avail.len().min(PIECE)];
            let used = dec.decode(avail, &mut data).map_err(|_| ())?;
            conn.rbuf.consume(used);
            if !data.is_empty() {
                ds.rec.bytes += data.len() as u64;
                if rechunk {
                    ds.chunk(&data);
                } else {
                    ds.wbuf.extend_from_slice(&data);
                }
            }
            if dec.is_done() {
                if rechunk {
                    ds.end_chunks(&Trailers::Text(dec.take_trailers()));
                }
                return Ok(());
            }
            if ds.wbuf.len() >= PIECE {
                ds.flush().await.map_err(|_| ())?;
            }
            continue;
        }
        ds.flush().await.map_err(|_| ())?;
        match monoio::time::timeout(idle, conn.rbuf.fill(&mut conn.io)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return Err(()),
        }
    }
}

pub(super) async fn copy_until_close(
    ds: &mut Downstream<'_>,
    conn: &mut UpConn,
    chunk: bool,
    idle: Duration,
) -> Result<(), ()> {
    loop {
        let data = conn.rbuf.data();
        if !data.is_empty() {
            if chunk {
                ds.chunk(data);
            } else {
                ds.wbuf.extend_from_slice(data);
            }
            let n = data.len();
            ds.rec.bytes += n as u64;
            conn.rbuf.consume(n);
        }
        ds.flush().await.map_err(|_| ())?;
        match monoio::time::timeout(idle, conn.rbuf.fill(&mut conn.io)).await {
            Ok(Ok(0)) => {
                if chunk {
                    // (an HTTP/2 upstream's trailer block, gRPC's status in it)
                    ds.end_chunks(&conn.take_trailers());
                }
                return Ok(());
            }
            Ok(Ok(_)) => {}
            _ => return Err(()),
        }
    }
}
