//! HTTP/2 connections: cleartext with prior knowledge (h2c, detected by the client
//! preface on a plain listener). The `h2` crate drives the connection over monoio's
//! poll-style socket; every stream runs the same pipeline as an HTTP/1.1 request,
//! through `proto::h2::H2Io`, in its own task.
//!
//! Defences (all from the `h2` builder, per connection): at most `MAX_STREAMS`
//! concurrent streams; a header list at most `max_header_size` (the same bound as
//! HTTP/1.1 heads; an endless CONTINUATION sequence hits it); rapid reset
//! (CVE-2023-44487): at most `MAX_PENDING_RESETS` streams reset before the gateway
//! accepted them, then GOAWAY `ENHANCE_YOUR_CALM`; streams the gateway had to reset
//! for a client's errors, bounded likewise; a send buffer bound per stream; the
//! preface and SETTINGS within `header_timeout`; an idle connection (no open stream)
//! closed with GOAWAY after `idle_timeout`; PING and SETTINGS floods cost bounded
//! memory (answers that the client does not read stop the connection's reading), and
//! past `MAX_CONTROL_FRAMES` in `FLOOD_WINDOW` (counted by `FrameWatch` under the h2
//! crate) get GOAWAY `ENHANCE_YOUR_CALM`; a connection told GOAWAY for abuse has
//! `ABUSE_GRACE` to go. A drain sends GOAWAY and lets open streams finish. Tested by name in `tests/h2.rs`.

use std::cell::Cell;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf as TokioReadBuf};

use crate::pipeline::{self, Downstream, Rec, Scratch};
use crate::proto::h1::RequestHead;
use crate::proto::h2::H2Io;
use crate::proto::io::ReadBuf;
use crate::proto::tls::ClientIo;

use super::conn::record;
use super::drain::{race, Either};
use super::state::WorkerState;

/// The client preface every HTTP/2 connection starts with (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Concurrent streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS).
const MAX_STREAMS: u32 = 128;
/// Streams a client may reset before the gateway accepts them (rapid reset).
const MAX_PENDING_RESETS: usize = 20;
/// Streams the client may cancel (RST_STREAM after the gateway started on them) per
/// `RESET_WINDOW` before the connection gets GOAWAY `ENHANCE_YOUR_CALM`: the rapid
/// reset attack (CVE-2023-44487) makes a server start work it never finishes.
const MAX_CLIENT_RESETS: u32 = 200;
const RESET_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);
/// Streams the gateway may reset because of the client's errors before GOAWAY.
const MAX_ERROR_RESETS: usize = 256;
/// Response data buffered per stream while the client's window is closed.
const MAX_SEND_BUFFER: usize = 256 << 10;
/// PING and SETTINGS frames (not acknowledgements) a client may send per
/// `FLOOD_WINDOW` before the connection gets GOAWAY `ENHANCE_YOUR_CALM`
/// (CVE-2019-9512, CVE-2019-9515): far above what any client needs.
const MAX_CONTROL_FRAMES: u32 = 5_000;
const FLOOD_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a connection told GOAWAY for abuse may take to go before it is dropped.
const ABUSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);
/// Flow-control windows: 1 MiB per stream, 4 MiB per connection.
const STREAM_WINDOW: u32 = 1 << 20;
const CONN_WINDOW: u32 = 4 << 20;

/// Raised by [`FrameWatch`] when a client floods the connection with control frames.
#[derive(Default)]
struct Flood {
    hit: Cell<bool>,
    waker: Cell<Option<std::task::Waker>>,
}

impl Flood {
    fn raise(&self) {
        self.hit.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    async fn wait(&self) {
        std::future::poll_fn(|cx| {
            if self.hit.get() {
                Poll::Ready(())
            } else {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }
}

/// The client's side of the socket on its way to the `h2` crate: first the bytes
/// already read (while looking for the h2c preface), then the socket. Reads the frame
/// headers (the `h2` crate answers PING and SETTINGS itself and does not count them)
/// and raises [`Flood`] past `MAX_CONTROL_FRAMES` per `FLOOD_WINDOW`.
struct FrameWatch<T> {
    inner: T,
    prefix: Vec<u8>,
    pos: usize,
    /// Bytes to pass before the next frame header: the preface, then each payload.
    skip: usize,
    header: [u8; 9],
    have: usize,
    count: u32,
    window: Instant,
    flood: Rc<Flood>,
}

impl<T> FrameWatch<T> {
    fn new(inner: T, prefix: Vec<u8>, flood: Rc<Flood>) -> Self {
        FrameWatch {
            inner,
            prefix,
            pos: 0,
            skip: PREFACE.len(),
            header: [0; 9],
            have: 0,
            count: 0,
            window: Instant::now(),
            flood,
        }
    }

    fn scan(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (9 - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have < 9 {
                return;
            }
            self.have = 0;
            let h = &self.header;
            self.skip = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
            // PING (6) or SETTINGS (4) without the ACK flag
            if matches!(h[3], 4 | 6) && h[4] & 1 == 0 {
                if self.window.elapsed() > FLOOD_WINDOW {
                    self.window = Instant::now();
                    self.count = 0;
                }
                self.count += 1;
                if self.count == MAX_CONTROL_FRAMES {
                    self.flood.raise();
                }
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for FrameWatch<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut TokioReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        if this.pos < this.prefix.len() {
            let n = (this.prefix.len() - this.pos).min(buf.remaining());
            buf.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            this.scan(&buf.filled()[before..]);
            return Poll::Ready(Ok(()));
        }
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let this = &mut *self;
            this.scan(&buf.filled()[before..]);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for FrameWatch<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serves one HTTP/2 connection until the client or the gateway ends it; `prefix`:
/// its first bytes, already read from `io`.
pub async fn serve<IO>(
    io: IO,
    prefix: Vec<u8>,
    peer: SocketAddr,
    scheme: &'static str,
    client: Option<Rc<str>>,
    st: Rc<WorkerState>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let plan = st.plan.current();
    let g = plan.gateway.clone();
    drop(plan);
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(g.max_header_size as u32)
        .max_pending_accept_reset_streams(MAX_PENDING_RESETS)
        .max_local_error_reset_streams(Some(MAX_ERROR_RESETS))
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONN_WINDOW);
    let flood = Rc::new(Flood::default());
    let watched = FrameWatch::new(io, prefix, flood.clone());
    let handshake = builder.handshake::<_, Bytes>(crate::proto::h2::Batched::new(watched));
    let mut conn = match monoio::time::timeout(g.header_timeout, handshake).await {
        Ok(Ok(c)) => c,
        _ => return,
    };
    let peer_ip: Rc<str> = peer.ip().to_string().into();
    let open = Rc::new(Cell::new(0usize));
    let resets = Rc::new(Cell::new(0u32));
    let mut window = Instant::now();
    let mut closing = false;
    // Set when the connection was told GOAWAY for abuse: the time it must be gone by.
    let mut abused: Option<Instant> = None;
    loop {
        // accept is cancel-safe: the timeout only lets the loop look at the clock
        let next = if let Some(until) = abused {
            // told GOAWAY for abuse: a short grace to send it, then the socket goes
            match monoio::time::timeout_at(until.into(), conn.accept()).await {
                Ok(r) => Either::Left(Ok(r)),
                Err(_) => break,
            }
        } else if closing {
            Either::Left(Ok(conn.accept().await))
        } else {
            let drained = pin!(st.drain.wait());
            let flooded = pin!(flood.wait());
            let stop = pin!(race(drained, flooded));
            let outcome = {
                let accept = pin!(monoio::time::timeout(g.idle_timeout, conn.accept()));
                race(accept, stop).await
            };
            match outcome {
                Either::Left(r) => Either::Left(r),
                Either::Right(Either::Left(())) => Either::Right(()),
                Either::Right(Either::Right(())) => {
                    crate::warn!("HTTP/2 client {peer}: over {MAX_CONTROL_FRAMES} PING/SETTINGS frames within {FLOOD_WINDOW:?}; GOAWAY (control frame flood)");
                    conn.abrupt_shutdown(h2::Reason::ENHANCE_YOUR_CALM);
                    closing = true;
                    abused = Some(Instant::now() + ABUSE_GRACE);
                    continue;
                }
            }
        };
        if window.elapsed() > RESET_WINDOW {
            window = Instant::now();
            resets.set(0);
        }
        if !closing && resets.get() > MAX_CLIENT_RESETS {
            crate::warn!("HTTP/2 client {peer}: {} streams cancelled within {RESET_WINDOW:?}; GOAWAY (rapid reset)", resets.get());
            conn.abrupt_shutdown(h2::Reason::ENHANCE_YOUR_CALM);
            closing = true;
            abused = Some(Instant::now() + ABUSE_GRACE);
            continue;
        }
        match next {
            Either::Left(Ok(Some(Ok((req, respond))))) => {
                open.set(open.get() + 1);
                let guard = Open(open.clone());
                let resets = resets.clone();
                let who = (peer_ip.clone(), scheme, client.clone());
                let st = st.clone();
                // The task holds a small future that boxes the stream's (~6 KiB) on
                // its first poll: spawning moves a task's future more than once,
                // and moving the stream's cost ~2,000 instructions per request.
                monoio::spawn(async move {
                    Box::pin(stream(req, respond, who, st, guard, resets)).await
                });
            }
            // the client went away or broke the protocol (h2 has sent GOAWAY)
            Either::Left(Ok(Some(Err(_)) | None)) => break,
            // no new stream for a while: only an idle connection is closed
            Either::Left(Err(_)) if open.get() > 0 => {}
            Either::Left(Err(_)) | Either::Right(()) => {
                // idle too long, or draining: GOAWAY, let open streams finish
                conn.graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// Counts a stream as open until it is dropped.
struct Open(Rc<Cell<usize>>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// One stream: its request through the pipeline, its response back as frames.
async fn stream(
    req: http::Request<h2::RecvStream>,
    respond: h2::server::SendResponse<Bytes>,
    (peer_ip, scheme, client): (Rc<str>, &'static str, Option<Rc<str>>),
    st: Rc<WorkerState>,
    _open: Open,
    resets: Rc<Cell<u32>>,
) {
    let mut head = RequestHead::default();
    let h2io = match H2Io::new(req, respond, &mut head) {
        Ok(io) => io,
        Err((_, respond)) => {
            H2Io::refuse(respond, 400, r#"{"message":"Bad Request"}"#);
            return;
        }
    };
    let watch = h2io.reset_watch();
    let mut io = ClientIo::H2(Box::new(h2io));
    let plan = st.plan.current();
    let mut rbuf = ReadBuf::with_capacity(4 << 10);
    let mut wbuf = Vec::new();
    let mut scratch = Scratch::default();
    let mut rec = Rec {
        client,
        ..Rec::default()
    };
    let t0 = Instant::now();
    let wall = (st.log.is_some() && plan.access_log.is_some()).then(SystemTime::now);
    let exchange = async {
        let mut ds = Downstream {
            io: &mut io,
            scheme,
            rbuf: &mut rbuf,
            wbuf: &mut wbuf,
            peer_ip: &peer_ip,
            scratch: &mut scratch,
            draining: false,
            rec: &mut rec,
        };
        pipeline::handle(&mut ds, &head, &plan, &st.ctx).await;
        // what is written goes, the waiting head (if nothing followed it), and
        // the end of the stream
        crate::proto::sink::finish(&mut io, &mut wbuf).await.is_ok()
    };
    // the client may cancel the stream: stop the work for it at once
    // (the pinned futures, and their borrows, end with this statement)
    let outcome = race(pin!(exchange), pin!(watch.reset())).await;
    match outcome {
        Either::Left(sent) => {
            if let ClientIo::H2(h) = &mut io {
                if !sent || !h.finished() {
                    h.abort();
                }
            }
        }
        Either::Right(()) => {
            resets.set(resets.get() + 1);
            rec.error = "client cancelled the stream";
        }
    }
    record(
        &st,
        &plan,
        &head,
        &rec,
        &peer_ip,
        t0,
        wall,
        Some("HTTP/2.0"),
    );
}
