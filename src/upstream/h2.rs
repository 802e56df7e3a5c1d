//! HTTP/2 to upstreams (`protocol = "h2"`): h2c with prior knowledge, or h2 over TLS
//! with ALPN, so that gRPC services can sit behind the gateway.
//!
//! A worker keeps one [`Session`] per target and runs one stream per request on it.
//! Each stream is an [`H2Stream`]: the mirror of the server side's `proto::h2::H2Io`,
//! it takes the HTTP/1.1 request the pipeline writes (the head becomes a HEADERS
//! frame, the body DATA frames) and reads back the response as HTTP/1.1 bytes: a
//! head from the response's HEADERS, then the DATA frames chunked, then the
//! trailers (gRPC's `grpc-status`) as the chunked trailer section, which the
//! pipeline passes on to the client. So retries, timeouts, balancing, the cache and
//! the access log work for HTTP/2 upstreams without a second code path (ADR 0008).
//! Flow control holds both ways: request data waits for the stream's send window,
//! response data is acknowledged as the pipeline reads it.
//!
//! Tested end to end in `tests/grpc.rs`.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::client::{ResponseFuture, SendRequest};
use h2::{RecvStream, SendStream};
use monoio::net::TcpStream;

use crate::error::Error;
use crate::proto::h1::{encode, parse_request, BodyFraming, RequestHead};
use crate::proto::h2::{send_data, Batched, BodyOut, PollTls, StreamBytes};

use super::TlsPeer;

/// Largest request head taken from the pipeline (it writes its own heads).
const MAX_HEAD: usize = 64 << 10;
/// Stream and connection receive windows: room for a few large responses in flight
/// without waiting for window updates on a local network.
const STREAM_WINDOW: u32 = 1 << 20;
const CONN_WINDOW: u32 = 8 << 20;

/// One HTTP/2 connection to a target, shared by the worker's requests to it.
#[derive(Debug, Clone)]
pub struct Session {
    send: SendRequest<Bytes>,
    alive: Rc<Cell<bool>>,
    /// Streams opened on it (for `max_requests_per_connection`).
    pub streams: Rc<Cell<u32>>,
    last_used: Rc<Cell<Instant>>,
}

impl Session {
    /// Whether it can take another stream: the connection is up, it has not been
    /// idle past `max_idle`, and it has not carried `max_streams` yet.
    pub fn usable(&self, max_idle: Duration, max_streams: Option<u32>) -> bool {
        self.alive.get()
            && self.last_used.get().elapsed() < max_idle
            && max_streams.is_none_or(|m| self.streams.get() < m)
            && !self.refuses()
    }

    /// Whether nothing has used it for `max_idle` (or its connection ended): the
    /// pools let such sessions go, which closes their connections.
    pub fn stale(&self, max_idle: Duration) -> bool {
        !self.alive.get() || self.last_used.get().elapsed() >= max_idle
    }

    /// Whether the session takes no new streams (a GOAWAY was read, or it closed)
    /// though its connection task has not ended yet.
    fn refuses(&self) -> bool {
        let mut send = self.send.clone();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        matches!(send.poll_ready(&mut cx), std::task::Poll::Ready(Err(_)))
    }

    /// A new stream on this session, as an upstream connection's IO.
    pub fn stream(&self, tls: bool) -> H2Stream {
        self.streams.set(self.streams.get() + 1);
        self.last_used.set(Instant::now());
        H2Stream::new(self.send.clone(), tls)
    }
}

/// Connects to `addr`, runs the TLS handshake with ALPN `h2` when `tls` is given,
/// then the HTTP/2 handshake; the connection is driven by a task of its own on this
/// worker until it closes. All within `timeout`.
pub async fn connect(
    addr: SocketAddr,
    timeout: Duration,
    tls: Option<&TlsPeer>,
) -> Result<Session, Error> {
    match monoio::time::timeout(timeout, connect_now(addr, tls)).await {
        Ok(r) => r,
        Err(_) => Err(Error::UpstreamConnectTimeout),
    }
}

async fn connect_now(addr: SocketAddr, tls: Option<&TlsPeer>) -> Result<Session, Error> {
    let tcp = TcpStream::connect_addr(addr)
        .await
        .map_err(|_| Error::UpstreamConnect)?;
    let _ = tcp.set_nodelay(true);
    let poll = tcp.try_into_poll_io().map_err(|_| Error::UpstreamConnect)?;
    let Some(peer) = tls else {
        return handshake(Batched::new(poll)).await;
    };
    let client = rustls::ClientConnection::new(peer.config.clone(), peer.name.clone())
        .map_err(|_| Error::UpstreamTls)?;
    let mut io = PollTls::new(poll, client);
    if let Err(e) = io.handshake().await {
        super::tls::log_handshake_failure(&format!(
            "TLS handshake with {:?} failed: {e}",
            peer.name
        ));
        return Err(Error::UpstreamTls);
    }
    if io.alpn_protocol() != Some(&b"h2"[..]) {
        super::tls::log_handshake_failure(&format!(
            "{:?} ({addr}) did not agree to HTTP/2 in the TLS handshake (ALPN); protocol = \"h2\" needs an upstream that speaks it",
            peer.name
        ));
        return Err(Error::UpstreamTls);
    }
    handshake(Batched::new(io)).await
}

async fn handshake<IO>(io: IO) -> Result<Session, Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
{
    let (send, conn) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONN_WINDOW)
        .max_header_list_size(MAX_HEAD as u32)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(|_| Error::UpstreamReset)?;
    let alive = Rc::new(Cell::new(true));
    let flag = alive.clone();
    monoio::spawn(async move {
        let _ = conn.await;
        flag.set(false);
    });
    Ok(Session {
        send,
        alive,
        streams: Rc::new(Cell::new(0)),
        last_used: Rc::new(Cell::new(Instant::now())),
    })
}

/// How the request is being forwarded.
#[derive(Debug)]
enum Req {
    Head,
    Body(BodyOut),
    Done,
}

/// How far the response has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resp {
    Waiting,
    /// Body as-is (the upstream gave a length).
    Raw,
    /// Body chunked, trailers at its end.
    Chunked,
    Done,
}

/// One request on an HTTP/2 session, seen as an HTTP/1.1 connection carrying one
/// exchange.
pub struct H2Stream {
    requester: Option<SendRequest<Bytes>>,
    tls: bool,
    /// Request bytes written but not yet translated: `out[skip..]`.
    out: Vec<u8>,
    skip: usize,
    req: Req,
    send: RefCell<Option<SendStream<Bytes>>>,
    response: Option<ResponseFuture>,
    head_request: bool,
    /// Response bytes not yet read by the pipeline: `pending[pos..]`.
    pending: Vec<u8>,
    pos: usize,
    recv: Option<RecvStream>,
    resp: Resp,
    /// The upstream did not process the request: the session refused the stream
    /// before it was sent, or the upstream reset it with REFUSED_STREAM (RFC 9113
    /// §8.7). Such a request may be sent again whatever its method.
    unprocessed: bool,
}

impl std::fmt::Debug for H2Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Stream")
            .field("req", &self.req)
            .field("resp", &self.resp)
            .finish()
    }
}

impl H2Stream {
    fn new(requester: SendRequest<Bytes>, tls: bool) -> H2Stream {
        H2Stream {
            requester: Some(requester),
            tls,
            out: Vec::new(),
            skip: 0,
            req: Req::Head,
            send: RefCell::new(None),
            response: None,
            head_request: false,
            pending: Vec::new(),
            pos: 0,
            recv: None,
            resp: Resp::Waiting,
            unprocessed: false,
        }
    }

    /// See the field of that name.
    pub fn unprocessed(&self) -> bool {
        self.unprocessed
    }

    /// Notes a REFUSED_STREAM behind a send error (the request body was not
    /// taken: the upstream refused the stream).
    fn note_refusal(&mut self, e: io::Error) -> io::Error {
        let refused = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<h2::Error>())
            .is_some_and(|h| h.reason() == Some(h2::Reason::REFUSED_STREAM));
        self.unprocessed |= refused;
        e
    }

    /// Translates what can be translated of `out` into frames.
    async fn translate(&mut self) -> io::Result<()> {
        loop {
            if self.skip == self.out.len() {
                self.out.clear();
                self.skip = 0;
            }
            match &mut self.req {
                Req::Done => {
                    if self.skip < self.out.len() {
                        return Err(io::Error::other("bytes after the request"));
                    }
                    return Ok(());
                }
                Req::Head => {
                    let mut head = RequestHead::default();
                    let n = match parse_request(&self.out[self.skip..], MAX_HEAD, &mut head) {
                        Ok(Some(n)) => n,
                        Ok(None) => return Ok(()),
                        Err(_) => return Err(io::Error::other("unparsable request head")),
                    };
                    self.skip += n;
                    let (request, end) = to_h2_request(&head, self.tls)?;
                    self.head_request = head.is_head();
                    let mut requester = self
                        .requester
                        .take()
                        .ok_or_else(|| io::Error::other("request already sent"))?;
                    self.unprocessed = true;
                    poll_fn(|cx| requester.poll_ready(cx))
                        .await
                        .map_err(io::Error::other)?;
                    let (response, send) = requester
                        .send_request(request, end)
                        .map_err(io::Error::other)?;
                    self.unprocessed = false;
                    self.response = Some(response);
                    self.req = match BodyOut::new(head.body) {
                        Some(body) if !end => Req::Body(body),
                        _ => Req::Done,
                    };
                    *self.send.borrow_mut() = Some(send);
                }
                Req::Body(body) => {
                    let Some(piece) = body.next(&mut self.out, &mut self.skip)? else {
                        return Ok(());
                    };
                    let last = piece.last();
                    if !piece.data.is_empty() || piece.end {
                        send_data(&self.send, piece.data, piece.end)
                            .await
                            .map_err(|e| self.note_refusal(e))?;
                    }
                    if let Some(t) = piece.trailers {
                        let mut send = self.send.borrow_mut();
                        send.as_mut()
                            .ok_or_else(|| io::Error::other("no stream"))?
                            .send_trailers(t)
                            .map_err(io::Error::other)?;
                    }
                    if last {
                        self.req = Req::Done;
                    }
                }
            }
        }
    }

    /// Refills `pending` with the next of the response: its head, a DATA frame, or
    /// the end of the body with its trailers.
    async fn fill(&mut self) -> io::Result<()> {
        self.pending.clear();
        self.pos = 0;
        match self.resp {
            Resp::Done => Ok(()),
            Resp::Waiting => {
                let response = self
                    .response
                    .take()
                    .ok_or_else(|| io::Error::other("no request sent"))?;
                let response = response.await.map_err(|e| {
                    self.unprocessed = e.reason() == Some(h2::Reason::REFUSED_STREAM);
                    io::Error::other(e)
                })?;
                let (parts, recv) = response.into_parts();
                let ended = recv.is_end_stream();
                self.resp = write_head(&mut self.pending, &parts, ended, self.head_request);
                self.recv = Some(recv);
                Ok(())
            }
            Resp::Raw | Resp::Chunked => {
                let recv = self
                    .recv
                    .as_mut()
                    .ok_or_else(|| io::Error::other("no response"))?;
                match recv.data().await {
                    Some(Ok(data)) => {
                        let _ = recv.flow_control().release_capacity(data.len());
                        if self.resp == Resp::Chunked && !data.is_empty() {
                            encode::chunk_head(&mut self.pending, data.len());
                            self.pending.extend_from_slice(&data);
                            self.pending.extend_from_slice(b"\r\n");
                        } else {
                            self.pending.extend_from_slice(&data);
                        }
                        Ok(())
                    }
                    Some(Err(e)) => Err(io::Error::other(e)),
                    None => {
                        let trailers = recv.trailers().await.map_err(io::Error::other)?;
                        if self.resp == Resp::Chunked {
                            self.pending.extend_from_slice(b"0\r\n");
                            for (name, value) in trailers.iter().flatten() {
                                encode::header(
                                    &mut self.pending,
                                    name.as_str().as_bytes(),
                                    value.as_bytes(),
                                );
                            }
                            self.pending.extend_from_slice(b"\r\n");
                        }
                        self.resp = Resp::Done;
                        Ok(())
                    }
                }
            }
        }
    }
}

/// The HTTP/2 form of the request head the pipeline wrote; `true` when it has no
/// body (the HEADERS frame ends the stream).
fn to_h2_request(head: &RequestHead, tls: bool) -> io::Result<(http::Request<()>, bool)> {
    let bad = |what: &str| io::Error::other(format!("request not expressible in HTTP/2: {what}"));
    let scheme = if tls { "https" } else { "http" };
    let host = std::str::from_utf8(head.host_header()).map_err(|_| bad("host"))?;
    let mut target = head.path().to_string();
    if let Some(q) = head.query() {
        target.push('?');
        target.push_str(std::str::from_utf8(q).map_err(|_| bad("query"))?);
    }
    let uri = http::Uri::builder()
        .scheme(scheme)
        .authority(host)
        .path_and_query(target)
        .build()
        .map_err(|_| bad("target"))?;
    let mut builder = http::Request::builder()
        .method(http::Method::from_bytes(head.method()).map_err(|_| bad("method"))?)
        .uri(uri)
        .version(http::Version::HTTP_2);
    for (name, value) in head.headers() {
        let lower = name.to_ascii_lowercase();
        match &lower[..] {
            // carried by :authority, or connection-specific (not valid in HTTP/2)
            b"host" | b"connection" | b"keep-alive" | b"proxy-connection"
            | b"transfer-encoding" | b"upgrade" => continue,
            b"te" if !crate::proto::h1::has_token(value, b"trailers") => continue,
            b"te" => {
                builder = builder.header("te", "trailers");
                continue;
            }
            _ => {}
        }
        builder = builder.header(&lower[..], value);
    }
    let end = matches!(head.body, BodyFraming::Empty | BodyFraming::Length(0));
    let request = builder.body(()).map_err(|_| bad("header"))?;
    Ok((request, end))
}

/// Writes the HTTP/1.1 head for an HTTP/2 response and says how its body follows.
fn write_head(out: &mut Vec<u8>, parts: &http::response::Parts, ended: bool, head: bool) -> Resp {
    let status = parts.status.as_u16();
    encode::status_line(out, status);
    let mut has_length = false;
    for (name, value) in &parts.headers {
        has_length |= name == http::header::CONTENT_LENGTH;
        encode::header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    let bodiless = head || status == 204 || status == 304 || status < 200;
    if ended {
        // trailers-only (a gRPC error) or an empty body
        if !has_length && !bodiless {
            encode::content_length(out, 0);
        }
        out.extend_from_slice(b"\r\n");
        return Resp::Done;
    }
    if has_length || bodiless {
        out.extend_from_slice(b"\r\n");
        return Resp::Raw;
    }
    out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
    Resp::Chunked
}

impl StreamBytes for H2Stream {
    fn unread(&self) -> &[u8] {
        &self.pending[self.pos..]
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
    }

    fn at_end(&self) -> bool {
        self.resp == Resp::Done
    }

    async fn refill(&mut self) -> io::Result<()> {
        self.fill().await
    }

    async fn take(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.extend_from_slice(bytes);
        self.translate().await
    }
}

crate::proto::h2::stream_bytes_io!(H2Stream);

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(text: &[u8]) -> RequestHead {
        let mut head = RequestHead::default();
        parse_request(text, MAX_HEAD, &mut head).unwrap().unwrap();
        head
    }

    #[test]
    fn requests_become_http2_heads() {
        let head = head_of(
            b"POST /echo.Echo/Say?x=1 HTTP/1.1\r\nhost: up.example\r\nte: trailers\r\nconnection: keep-alive\r\ncontent-type: application/grpc\r\ncontent-length: 5\r\n\r\n",
        );
        let (req, end) = to_h2_request(&head, false).unwrap();
        assert!(!end);
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.uri().to_string(), "http://up.example/echo.Echo/Say?x=1");
        assert_eq!(req.headers()["te"], "trailers");
        assert_eq!(req.headers()["content-type"], "application/grpc");
        assert!(req.headers().get("connection").is_none());
        assert!(req.headers().get("host").is_none());
        let get = head_of(b"GET / HTTP/1.1\r\nhost: a:8\r\nte: gzip\r\n\r\n");
        let (req, end) = to_h2_request(&get, true).unwrap();
        assert!(end);
        assert_eq!(req.uri().to_string(), "https://a:8/");
        assert!(req.headers().get("te").is_none());
    }

    #[test]
    fn response_heads_frame_their_bodies() {
        let resp = |status: u16, headers: &[(&str, &str)]| {
            let mut b = http::Response::builder().status(status);
            for (n, v) in headers {
                b = b.header(*n, *v);
            }
            b.body(()).unwrap().into_parts().0
        };
        let mut out = Vec::new();
        let grpc = resp(200, &[("content-type", "application/grpc")]);
        assert_eq!(write_head(&mut out, &grpc, false, false), Resp::Chunked);
        assert!(out.ends_with(b"transfer-encoding: chunked\r\n\r\n"));
        out.clear();
        let trailers_only = resp(200, &[("grpc-status", "5")]);
        assert_eq!(
            write_head(&mut out, &trailers_only, true, false),
            Resp::Done
        );
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.contains("grpc-status: 5\r\n") && text.ends_with("content-length: 0\r\n\r\n"));
        out.clear();
        let sized = resp(200, &[("content-length", "3")]);
        assert_eq!(write_head(&mut out, &sized, false, false), Resp::Raw);
        out.clear();
        assert_eq!(
            write_head(&mut out, &resp(304, &[]), true, false),
            Resp::Done
        );
        assert!(out.ends_with(b"Not Modified\r\n\r\n"));
    }
}
