//! HTTP/2 to upstreams (`protocol = "h2"`): h2c with prior knowledge, or h2 over TLS
//! with ALPN, so that gRPC services can sit behind the gateway.
//!
//! A worker keeps one [`Session`] per target and runs one stream per request on it.
//! Each stream is an [`H2Stream`], the HTTP/2 side of `upstream::exchange`: the
//! request head arrives as the items `proto::head::RequestOut` wrote and becomes a
//! HEADERS frame, body pieces become DATA frames; the response's fields are copied
//! into the connection's read buffer as a `ResponseHead`'s offsets, its DATA is read
//! as plain body bytes, and its trailer block (gRPC's `grpc-status`) is kept for the
//! client's sink. So retries, timeouts, balancing, the cache and the access log work
//! for HTTP/2 upstreams without a second code path, and nothing is formatted as
//! HTTP/1.1 text (ADR 0011). Flow control holds both ways: request data waits for
//! the stream's send window, response data is acknowledged as the pipeline reads it.
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
use crate::proto::h1::{BodyFraming, ResponseHead};
use crate::proto::h2::{send_data, Batched, PollTls};
use crate::proto::head::{request_items, RequestOut};
use crate::proto::io::ReadBuf;

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

/// One request on an HTTP/2 session: the upstream side of the session for HTTP/2
/// upstreams (`upstream::exchange`).
pub struct H2Stream {
    requester: Option<SendRequest<Bytes>>,
    tls: bool,
    send: RefCell<Option<SendStream<Bytes>>>,
    response: Option<ResponseFuture>,
    recv: Option<RecvStream>,
    /// Response body bytes received and not read yet.
    data: Bytes,
    /// The response body has ended (END_STREAM, or its trailer block, read).
    recv_done: bool,
    trailers: Option<http::HeaderMap>,
    /// The upstream did not process the request: the session refused the stream
    /// before it was sent, or the upstream reset it with REFUSED_STREAM (RFC 9113
    /// §8.7). Such a request may be sent again whatever its method.
    unprocessed: bool,
}

impl std::fmt::Debug for H2Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Stream")
            .field("recv_done", &self.recv_done)
            .field("unprocessed", &self.unprocessed)
            .finish()
    }
}

impl H2Stream {
    fn new(requester: SendRequest<Bytes>, tls: bool) -> H2Stream {
        H2Stream {
            requester: Some(requester),
            tls,
            send: RefCell::new(None),
            response: None,
            recv: None,
            data: Bytes::new(),
            recv_done: false,
            trailers: None,
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

    /// Sends the request: a HEADERS frame from the head's items
    /// (`proto::head::RequestOut`), then `body` as DATA; `end`: that is all of it.
    pub async fn send_request(&mut self, items: &[u8], body: &[u8], end: bool) -> io::Result<()> {
        let request = to_h2_request(items, self.tls)?;
        let mut requester = self
            .requester
            .take()
            .ok_or_else(|| io::Error::other("request already sent"))?;
        self.unprocessed = true;
        poll_fn(|cx| requester.poll_ready(cx))
            .await
            .map_err(io::Error::other)?;
        let headers_end = end && body.is_empty();
        let (response, send) = requester
            .send_request(request, headers_end)
            .map_err(io::Error::other)?;
        self.unprocessed = false;
        self.response = Some(response);
        *self.send.borrow_mut() = Some(send);
        if !headers_end {
            self.send_data(Bytes::copy_from_slice(body), end).await?;
        }
        Ok(())
    }

    /// Sends request body bytes as the stream's window allows; `end` ends it.
    pub async fn send_data(&mut self, data: Bytes, end: bool) -> io::Result<()> {
        send_data(&self.send, data, end)
            .await
            .map_err(|e| self.note_refusal(e))
    }

    /// Waits for the response's HEADERS and copies its fields into `rbuf` as
    /// `resp`'s offsets: the same response head an HTTP/1.1 upstream gives, with no
    /// text in between. Without a `content-length` the body is read until the stream
    /// ends (its trailers then kept for [`H2Stream::take_trailers`]).
    pub async fn read_head(
        &mut self,
        rbuf: &mut ReadBuf,
        is_head: bool,
        resp: &mut ResponseHead,
    ) -> Result<(), Error> {
        let response = self.response.take().ok_or(Error::UpstreamReset)?;
        let response = match response.await {
            Ok(r) => r,
            Err(e) => {
                self.unprocessed = e.reason() == Some(h2::Reason::REFUSED_STREAM);
                return Err(Error::UpstreamReset);
            }
        };
        let (parts, recv) = response.into_parts();
        let ended = recv.is_end_stream();
        self.recv_done = ended;
        self.recv = Some(recv);
        let status = parts.status.as_u16();
        resp.status = status;
        resp.version = 1;
        resp.keep_alive = false;
        resp.headers.clear();
        let start = rbuf.data().len();
        let mut length = None;
        let mut fields = Vec::with_capacity(parts.headers.len() * 32);
        for (name, value) in &parts.headers {
            let n = name.as_str().as_bytes();
            if name == http::header::CONTENT_LENGTH {
                let v = std::str::from_utf8(value.as_bytes()).ok();
                length = Some(
                    v.and_then(|v| v.trim().parse::<u64>().ok())
                        .ok_or(Error::UpstreamMalformed)?,
                );
            }
            let a = start + fields.len();
            fields.extend_from_slice(n);
            let b = start + fields.len();
            fields.extend_from_slice(value.as_bytes());
            resp.headers.push(((a, b), (b, start + fields.len())));
        }
        rbuf.extend(&fields);
        resp.reason = (0, 0);
        resp.head_len = start + fields.len();
        let bodiless = is_head || status == 204 || status == 304 || status < 200;
        resp.body = match length {
            _ if bodiless => BodyFraming::Empty,
            // trailers-only (a gRPC error) or an empty body
            _ if ended => BodyFraming::Length(0),
            Some(n) => BodyFraming::Length(n),
            None => BodyFraming::UntilClose,
        };
        Ok(())
    }

    /// The response's trailer block, once its body was read to the end.
    pub fn take_trailers(&mut self) -> Option<http::HeaderMap> {
        self.trailers.take()
    }

    /// Reads response body bytes into `buf`: `Ok(0)` once the stream has ended.
    async fn read_data(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.data.is_empty() {
            if self.recv_done {
                return Ok(0);
            }
            let recv = self
                .recv
                .as_mut()
                .ok_or_else(|| io::Error::other("no response"))?;
            match recv.data().await {
                Some(Ok(data)) => {
                    // the window is given back as the pipeline takes the data
                    let _ = recv.flow_control().release_capacity(data.len());
                    self.data = data;
                }
                Some(Err(e)) => return Err(io::Error::other(e)),
                None => {
                    self.trailers = recv.trailers().await.map_err(io::Error::other)?;
                    self.recv_done = true;
                }
            }
        }
        let n = self.data.len().min(buf.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        let _ = self.data.split_to(n);
        Ok(n)
    }
}

impl monoio::io::AsyncReadRent for H2Stream {
    async fn read<T: monoio::buf::IoBufMut>(&mut self, mut buf: T) -> monoio::BufResult<usize, T> {
        // SAFETY: `write_ptr` has room for `bytes_total` bytes; the slice is only
        // written, and `n` of them are marked initialised after.
        let room = unsafe { std::slice::from_raw_parts_mut(buf.write_ptr(), buf.bytes_total()) };
        match self.read_data(room).await {
            Ok(n) => {
                unsafe { buf.set_init(n) };
                (Ok(n), buf)
            }
            Err(e) => (Err(e), buf),
        }
    }

    async fn readv<T: monoio::buf::IoVecBufMut>(&mut self, buf: T) -> monoio::BufResult<usize, T> {
        (
            Err(io::Error::other("readv is not used on HTTP/2 streams")),
            buf,
        )
    }
}

/// The HTTP/2 request for the items of a head `proto::head::RequestOut` wrote.
fn to_h2_request(items: &[u8], tls: bool) -> io::Result<http::Request<()>> {
    let bad = |what: &str| io::Error::other(format!("request not expressible in HTTP/2: {what}"));
    let mut it = request_items(items);
    let method = it.next().ok_or_else(|| bad("method"))?;
    let target = it.next().ok_or_else(|| bad("target"))?;
    let mut builder = http::Request::builder()
        .method(http::Method::from_bytes(method).map_err(|_| bad("method"))?)
        .version(http::Version::HTTP_2);
    let mut authority = None;
    while let (Some(name), Some(value)) = (it.next(), it.next()) {
        let lower = name.to_ascii_lowercase();
        match &lower[..] {
            b"host" => {
                authority = Some(value);
                continue;
            }
            // connection-specific (not valid in HTTP/2)
            b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding"
            | b"upgrade" => continue,
            b"te" if value != b"trailers" => continue,
            _ => {}
        }
        builder = builder.header(&lower[..], value);
    }
    let host = std::str::from_utf8(authority.unwrap_or(b"")).map_err(|_| bad("host"))?;
    let uri = http::Uri::builder()
        .scheme(if tls { "https" } else { "http" })
        .authority(host)
        .path_and_query(target)
        .build()
        .map_err(|_| bad("target"))?;
    builder.uri(uri).body(()).map_err(|_| bad("header"))
}

impl Session {
    /// A health check's `GET path` on this session: the response's status.
    pub async fn probe(&self, path: &str, authority: &str, tls: bool) -> io::Result<u16> {
        let mut out = Vec::new();
        let mut r = RequestOut::start(&mut out, true, b"GET");
        r.target(|t| t.extend_from_slice(path.as_bytes()));
        r.field(b"host", authority.as_bytes());
        r.field(b"user-agent", b"turnpike-health");
        r.end(BodyFraming::Empty);
        let mut s = self.stream(tls);
        s.send_request(&out, &[], true).await?;
        let response = s
            .response
            .take()
            .ok_or_else(|| io::Error::other("no request sent"))?;
        let response = response.await.map_err(io::Error::other)?;
        Ok(response.status().as_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(
        method: &[u8],
        target: &[u8],
        fields: &[(&[u8], &[u8])],
        body: BodyFraming,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut r = RequestOut::start(&mut out, true, method);
        r.target(|t| t.extend_from_slice(target));
        for (n, v) in fields {
            r.field(n, v);
        }
        r.end(body);
        out
    }

    #[test]
    fn requests_become_http2_heads() {
        let head = items(
            b"POST",
            b"/echo.Echo/Say?x=1",
            &[
                (b"host", b"up.example"),
                (b"te", b"trailers"),
                (b"connection", b"keep-alive"),
                (b"content-type", b"application/grpc"),
            ],
            BodyFraming::Length(5),
        );
        let req = to_h2_request(&head, false).unwrap();
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.uri().to_string(), "http://up.example/echo.Echo/Say?x=1");
        assert_eq!(req.headers()["te"], "trailers");
        assert_eq!(req.headers()["content-type"], "application/grpc");
        assert_eq!(req.headers()["content-length"], "5");
        assert!(req.headers().get("connection").is_none());
        assert!(req.headers().get("host").is_none());
        let get = items(
            b"GET",
            b"/",
            &[(b"Host", b"a:8"), (b"te", b"gzip")],
            BodyFraming::Empty,
        );
        let req = to_h2_request(&get, true).unwrap();
        assert_eq!(req.uri().to_string(), "https://a:8/");
        assert!(req.headers().get("te").is_none());
        assert!(
            to_h2_request(&items(b"GET", b"no slash", &[], BodyFraming::Empty), false).is_err()
        );
    }
}
