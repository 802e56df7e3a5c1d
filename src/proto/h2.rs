//! HTTP/2 streams as HTTP/1.1 byte streams: the one adapter between the `h2` crate
//! (tokio-style, poll-based) and the rest of the gateway, which never sees either.
//!
//! An [`H2Io`] is one stream. Reading from it yields the request as HTTP/1.1 bytes: a
//! head built from the HEADERS frame (`:authority` → `Host`, cookies joined), then
//! the DATA frames, as they arrive, framed by the request's `content-length` or
//! chunked. Writing to it takes the HTTP/1.1 response the pipeline writes, parses its
//! head into a HEADERS frame and turns its body (length-framed or chunked) into DATA
//! frames. Flow control holds end to end: request data is acknowledged (window
//! released) only once the pipeline has read it, and response data waits for send
//! capacity, so a slow client slows the upstream read, never memory.
//!
//! Beside it: `body_out` (response bodies to DATA frames), `grpc` (gateway answers as
//! gRPC statuses, trailer blocks), `poll_tls` (TLS and write batching on poll-style
//! sockets for the `h2` crate).
//!
//! Tested end to end in `tests/h2.rs`.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::Poll;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use monoio::buf::{IoBuf, IoBufMut};
use monoio::BufResult;

use super::h1::{encode, parse_response, BodyFraming, RequestHead, ResponseHead};

mod body_out;
mod grpc;
mod poll_tls;

use body_out::Out;
pub use body_out::{BodyOut, Piece};
pub use grpc::trailer_map;
use grpc::{grpc_message, grpc_status};
pub use poll_tls::{Batched, PollTls};

/// Largest response head accepted from the pipeline (it writes its own heads).
const MAX_HEAD: usize = 64 << 10;

/// One HTTP/2 stream, seen as an HTTP/1.1 connection carrying one exchange.
pub struct H2Io {
    /// Request bytes not yet read by the pipeline.
    pending: Vec<u8>,
    pos: usize,
    recv: RecvStream,
    recv_done: bool,
    chunked: bool,
    /// The sending side, shared with the stream's reset watch.
    half: Rc<RefCell<SendHalf>>,
    /// Response bytes written but not yet translated: `out[skip..]`.
    out: Vec<u8>,
    skip: usize,
    state: Out,
    /// A response head handed over as fields ([`H2Io::set_head`]), sent with the
    /// next write or [`H2Io::send_pending`].
    ready: Option<ReadyHead>,
    head_request: bool,
    /// A gRPC request (`content-type: application/grpc…`): errors the gateway (or
    /// anything not speaking gRPC) answers are turned into gRPC statuses.
    grpc: bool,
}

impl std::fmt::Debug for H2Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Io").field("state", &self.state).finish()
    }
}

/// A response head ready to go, with how its body will be forwarded (`None`: it has
/// none, or none that goes out).
struct ReadyHead {
    response: http::Response<()>,
    body: Option<BodyOut>,
}

/// The response side of a stream: before the head is sent, after it.
struct SendHalf {
    respond: Option<SendResponse<Bytes>>,
    send: Option<SendStream<Bytes>>,
}

/// Resolves when the client resets the stream (RST_STREAM), so the work for it can
/// stop at once.
pub struct ResetWatch(Rc<RefCell<SendHalf>>);

impl ResetWatch {
    pub async fn reset(&self) {
        poll_fn(|cx| {
            let mut guard = self.0.borrow_mut();
            let h = &mut *guard;
            let polled = match (&mut h.send, &mut h.respond) {
                (Some(s), _) => s.poll_reset(cx),
                (None, Some(r)) => r.poll_reset(cx),
                (None, None) => return Poll::Pending,
            };
            match polled {
                Poll::Ready(_) => Poll::Ready(()),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

/// Why a request could not become an HTTP/1.1 head.
#[derive(Debug)]
pub struct BadRequest;

impl H2Io {
    /// Takes a received request: its head into `head` (built from the HEADERS
    /// frame's fields, never parsed from text), its body as what this stream reads.
    pub fn new(
        req: http::Request<RecvStream>,
        respond: SendResponse<Bytes>,
        head: &mut RequestHead,
    ) -> Result<H2Io, (BadRequest, SendResponse<Bytes>)> {
        let (parts, recv) = req.into_parts();
        let target = parts
            .uri
            .path_and_query()
            .map_or(&b"/"[..], |p| p.as_str().as_bytes());
        let host = match parts.uri.authority() {
            Some(a) => a.as_str().as_bytes(),
            None => parts
                .headers
                .get(http::header::HOST)
                .map_or(&b""[..], |h| h.as_bytes()),
        };
        let recv_done = recv.is_end_stream();
        let fields = parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()));
        if head
            .from_parts(
                parts.method.as_str().as_bytes(),
                target,
                host,
                fields,
                recv_done,
            )
            .is_err()
        {
            return Err((BadRequest, respond));
        }
        let chunked = head.body == BodyFraming::Chunked;
        Ok(H2Io {
            pending: Vec::new(),
            pos: 0,
            recv,
            recv_done,
            chunked,
            half: Rc::new(RefCell::new(SendHalf {
                respond: Some(respond),
                send: None,
            })),
            out: Vec::new(),
            skip: 0,
            state: Out::Head,
            ready: None,
            head_request: parts.method == http::Method::HEAD,
            grpc: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc")),
        })
    }

    /// Answers a request that never reached the pipeline.
    pub fn refuse(mut respond: SendResponse<Bytes>, status: u16, body: &'static str) {
        let resp = http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(())
            .unwrap_or_default();
        if let Ok(mut s) = respond.send_response(resp, false) {
            let _ = s.send_data(Bytes::from_static(body.as_bytes()), true);
        }
    }

    /// A watch on the client resetting this stream.
    pub fn reset_watch(&self) -> ResetWatch {
        ResetWatch(self.half.clone())
    }

    /// Whether the whole response went out.
    pub fn finished(&self) -> bool {
        matches!(self.state, Out::Done)
    }

    /// Ends the stream if the pipeline stopped mid-response (reset, not a clean end).
    pub fn abort(&mut self) {
        let mut h = self.half.borrow_mut();
        if let Some(s) = &mut h.send {
            s.send_reset(h2::Reason::INTERNAL_ERROR);
        } else if let Some(r) = &mut h.respond {
            r.send_reset(h2::Reason::INTERNAL_ERROR);
        }
    }

    /// Refills `pending` from the stream's DATA frames.
    async fn fill(&mut self) -> io::Result<()> {
        self.pending.clear();
        self.pos = 0;
        match self.recv.data().await {
            Some(Ok(data)) => {
                // the window is given back as the pipeline takes the data
                let _ = self.recv.flow_control().release_capacity(data.len());
                if self.chunked && !data.is_empty() {
                    encode::chunk_head(&mut self.pending, data.len());
                    self.pending.extend_from_slice(&data);
                    self.pending.extend_from_slice(b"\r\n");
                } else {
                    self.pending.extend_from_slice(&data);
                }
                if self.recv.is_end_stream() {
                    self.end_request();
                }
                Ok(())
            }
            Some(Err(e)) => Err(io::Error::other(e)),
            None => {
                self.end_request();
                Ok(())
            }
        }
    }

    fn end_request(&mut self) {
        if !self.recv_done && self.chunked {
            self.pending.extend_from_slice(b"0\r\n\r\n");
        }
        self.recv_done = true;
    }

    /// Translates what can be translated of `out` into frames.
    async fn translate(&mut self) -> io::Result<()> {
        loop {
            if self.skip == self.out.len() {
                self.out.clear();
                self.skip = 0;
            }
            match &mut self.state {
                Out::Done => {
                    self.out.clear();
                    self.skip = 0;
                    return Ok(());
                }
                Out::Head => {
                    if let Some(ready) = self.ready.take() {
                        self.send_head(ready)?;
                        continue;
                    }
                    let mut resp = ResponseHead::default();
                    let text = &self.out[self.skip..];
                    let n = match parse_response(text, MAX_HEAD, self.head_request, &mut resp) {
                        Ok(Some(n)) => n,
                        Ok(None) => return Ok(()),
                        Err(()) => return Err(io::Error::other("unparsable response head")),
                    };
                    let fields = resp
                        .headers
                        .iter()
                        .map(|(n, v)| (&text[n.0..n.1], &text[v.0..v.1]));
                    let reason = &text[resp.reason.0..resp.reason.1];
                    let ready = self.build_head(resp.status, reason, fields, resp.body)?;
                    self.skip += n;
                    self.send_head(ready)?;
                }
                Out::Body(body) => {
                    let Some(piece) = body.next(&mut self.out, &mut self.skip)? else {
                        return Ok(());
                    };
                    let last = piece.last();
                    if !piece.data.is_empty() || piece.end {
                        self.send_data(piece.data, piece.end).await?;
                    }
                    if let Some(t) = piece.trailers {
                        let mut h = self.half.borrow_mut();
                        h.send
                            .as_mut()
                            .ok_or_else(|| io::Error::other("no stream"))?
                            .send_trailers(t)
                            .map_err(io::Error::other)?;
                    }
                    if last {
                        self.state = Out::Done;
                    }
                }
            }
        }
    }

    /// The response head as the pipeline gives it, as fields (never as text): kept
    /// until the body's first bytes are written or [`H2Io::send_pending`], so that
    /// until then it can still be replaced by an error ([`H2Io::drop_head`]). `body`
    /// is the framing of the body bytes the pipeline will write after it.
    pub fn set_head<'f>(
        &mut self,
        status: u16,
        fields: impl Iterator<Item = (&'f [u8], &'f [u8])> + Clone,
        body: BodyFraming,
    ) -> io::Result<()> {
        // the reason phrase (for a gRPC status's message) is the standard one, as
        // the pipeline's HTTP/1.1 status lines have it
        let reason = encode::reason(status).as_bytes();
        let ready = self.build_head(status, reason, fields, body)?;
        self.ready = Some(ready);
        Ok(())
    }

    /// Forgets a head given to [`H2Io::set_head`] and not sent yet.
    pub fn drop_head(&mut self) {
        self.ready = None;
    }

    /// Sends a head given to [`H2Io::set_head`] that no write has sent yet (a
    /// response with no body bytes to write).
    pub async fn send_pending(&mut self) -> io::Result<()> {
        if self.ready.is_some() {
            self.translate().await?;
        }
        Ok(())
    }

    /// The HEADERS of a response: connection-specific fields dropped, names
    /// lower-cased; a gRPC request's non-gRPC error becomes a trailers-only gRPC
    /// answer (HTTP 200, the status mapped as gRPC's own HTTP-to-gRPC table says, the
    /// reason as the message: what Envoy does for its own replies).
    fn build_head<'f>(
        &self,
        status: u16,
        reason: &[u8],
        fields: impl Iterator<Item = (&'f [u8], &'f [u8])> + Clone,
        body: BodyFraming,
    ) -> io::Result<ReadyHead> {
        let as_grpc = self.grpc
            && status != 200
            && !fields
                .clone()
                .any(|(n, _)| n.eq_ignore_ascii_case(b"grpc-status"));
        let mut builder = http::Response::builder().status(status);
        if as_grpc {
            builder = http::Response::builder()
                .status(200)
                .header("content-type", "application/grpc")
                .header("grpc-status", grpc_status(status).to_string())
                .header("grpc-message", grpc_message(status, reason));
        }
        for (name, value) in fields {
            let lower = name.to_ascii_lowercase();
            if as_grpc && matches!(&lower[..], b"content-type" | b"content-length") {
                continue;
            }
            if matches!(
                &lower[..],
                b"connection"
                    | b"keep-alive"
                    | b"proxy-connection"
                    | b"transfer-encoding"
                    | b"upgrade"
            ) {
                continue;
            }
            builder = builder.header(&lower[..], value);
        }
        let response = builder
            .body(())
            .map_err(|e| io::Error::other(e.to_string()))?;
        // (a gRPC status replaces the body: what the pipeline writes of it is dropped
        // in `Out::Done`)
        let empty = matches!(body, BodyFraming::Empty | BodyFraming::Length(0))
            || self.head_request
            || as_grpc;
        let body = match BodyOut::new(body) {
            _ if empty => None,
            Some(b) => Some(b),
            // the pipeline frames every response it writes
            None => return Err(io::Error::other("unframed response")),
        };
        Ok(ReadyHead { response, body })
    }

    /// Sends a built head: the body (if any) follows as DATA frames.
    fn send_head(&mut self, ready: ReadyHead) -> io::Result<()> {
        let mut h = self.half.borrow_mut();
        let mut respond = h
            .respond
            .take()
            .ok_or_else(|| io::Error::other("response already sent"))?;
        let send = respond
            .send_response(ready.response, ready.body.is_none())
            .map_err(io::Error::other)?;
        h.send = Some(send);
        drop(h);
        self.state = match ready.body {
            None => Out::Done,
            Some(body) => Out::Body(body),
        };
        Ok(())
    }

    /// Sends `data` as the stream's send window allows, waiting for capacity.
    async fn send_data(&mut self, data: Bytes, end: bool) -> io::Result<()> {
        send_data(&*self.half, data, end).await
    }
}

/// Where a sending stream is kept: the server's response half (shared with the
/// reset watch), or a client stream (`upstream::h2`).
pub trait StreamSlot {
    /// Runs `f` on the stream, if there is one.
    fn with<R>(&self, f: impl FnOnce(&mut SendStream<Bytes>) -> R) -> Option<R>;
}

impl StreamSlot for RefCell<SendHalf> {
    fn with<R>(&self, f: impl FnOnce(&mut SendStream<Bytes>) -> R) -> Option<R> {
        self.borrow_mut().send.as_mut().map(f)
    }
}

impl StreamSlot for RefCell<Option<SendStream<Bytes>>> {
    fn with<R>(&self, f: impl FnOnce(&mut SendStream<Bytes>) -> R) -> Option<R> {
        self.borrow_mut().as_mut().map(f)
    }
}

/// Sends `data` on a stream as its send window allows, waiting for capacity (so a
/// slow peer slows the sender, never grows memory); `end` ends the stream.
pub async fn send_data(slot: &impl StreamSlot, mut data: Bytes, end: bool) -> io::Result<()> {
    let no_stream = || io::Error::other("stream closed");
    let mut ended = false;
    while !data.is_empty() {
        let want = data.len();
        let cap = poll_fn(|cx| {
            slot.with(|send| {
                send.reserve_capacity(want);
                send.poll_capacity(cx)
            })
            .unwrap_or(Poll::Ready(None))
        })
        .await;
        let cap = match cap {
            Some(Ok(c)) => c,
            Some(Err(e)) => return Err(io::Error::other(e)),
            None => return Err(no_stream()),
        };
        if cap == 0 {
            continue;
        }
        let piece = data.split_to(cap.min(data.len()));
        let last = end && data.is_empty();
        slot.with(|send| send.send_data(piece, last))
            .ok_or_else(no_stream)?
            .map_err(io::Error::other)?;
        ended |= last;
    }
    if end && !ended {
        slot.with(|send| send.send_data(Bytes::new(), true))
            .ok_or_else(no_stream)?
            .map_err(io::Error::other)?;
    }
    Ok(())
}

/// What the byte-stream views of HTTP/2 streams have in common (`H2Io` here,
/// `upstream::h2::H2Stream`): bytes to read that a frame refills, and written bytes
/// that become frames. `stream_bytes_io!` makes them monoio IO. (Futures here are
/// never `Send`: a stream lives on one worker.)
#[allow(async_fn_in_trait)]
pub trait StreamBytes {
    /// Bytes translated and not read yet.
    fn unread(&self) -> &[u8];
    fn consume(&mut self, n: usize);
    /// Nothing more will come to read.
    fn at_end(&self) -> bool;
    /// Translates the next frame (or the end) into bytes to read.
    async fn refill(&mut self) -> io::Result<()>;
    /// Takes written bytes and translates what it can of them into frames.
    async fn take(&mut self, bytes: &[u8]) -> io::Result<()>;
}

/// Reads from a [`StreamBytes`] into a monoio buffer.
pub async fn read_stream_bytes<S: StreamBytes, T: IoBufMut>(
    s: &mut S,
    mut buf: T,
) -> BufResult<usize, T> {
    // (a frame may translate into nothing, e.g. an empty DATA frame: refill again)
    while s.unread().is_empty() {
        if s.at_end() {
            return (Ok(0), buf);
        }
        if let Err(e) = s.refill().await {
            return (Err(e), buf);
        }
    }
    let avail = s.unread();
    let n = avail.len().min(buf.bytes_total());
    // SAFETY: as monoio's own `impl AsyncReadRent for &[u8]`: `write_ptr` has room
    // for `bytes_total` bytes; `n` of them are written before being marked
    // initialised.
    unsafe {
        buf.write_ptr().copy_from_nonoverlapping(avail.as_ptr(), n);
        buf.set_init(n);
    }
    s.consume(n);
    (Ok(n), buf)
}

/// Writes a monoio buffer into a [`StreamBytes`].
pub async fn write_stream_bytes<S: StreamBytes, T: IoBuf>(
    s: &mut S,
    buf: T,
) -> BufResult<usize, T> {
    // SAFETY: an IoBuf's first `bytes_init` bytes are initialised and live.
    let bytes = unsafe { std::slice::from_raw_parts(buf.read_ptr(), buf.bytes_init()) };
    match s.take(bytes).await {
        Ok(()) => (Ok(bytes.len()), buf),
        Err(e) => (Err(e), buf),
    }
}

/// `AsyncReadRent` and `AsyncWriteRent` for a [`StreamBytes`] type (vectored IO is
/// never used on these).
macro_rules! stream_bytes_io {
    ($t:ty) => {
        impl monoio::io::AsyncReadRent for $t {
            async fn read<T: monoio::buf::IoBufMut>(
                &mut self,
                buf: T,
            ) -> monoio::BufResult<usize, T> {
                $crate::proto::h2::read_stream_bytes(self, buf).await
            }

            async fn readv<T: monoio::buf::IoVecBufMut>(
                &mut self,
                buf: T,
            ) -> monoio::BufResult<usize, T> {
                (
                    Err(std::io::Error::other("readv is not used on HTTP/2 streams")),
                    buf,
                )
            }
        }

        impl monoio::io::AsyncWriteRent for $t {
            async fn write<T: monoio::buf::IoBuf>(
                &mut self,
                buf: T,
            ) -> monoio::BufResult<usize, T> {
                $crate::proto::h2::write_stream_bytes(self, buf).await
            }

            async fn writev<T: monoio::buf::IoVecBuf>(
                &mut self,
                buf: T,
            ) -> monoio::BufResult<usize, T> {
                (
                    Err(std::io::Error::other(
                        "writev is not used on HTTP/2 streams",
                    )),
                    buf,
                )
            }

            async fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }

            async fn shutdown(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}

impl StreamBytes for H2Io {
    fn unread(&self) -> &[u8] {
        &self.pending[self.pos..]
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
    }

    fn at_end(&self) -> bool {
        self.recv_done
    }

    async fn refill(&mut self) -> io::Result<()> {
        self.fill().await
    }

    async fn take(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.extend_from_slice(bytes);
        self.translate().await
    }
}

pub(crate) use stream_bytes_io;

stream_bytes_io!(H2Io);
