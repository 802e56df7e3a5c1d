//! One HTTP/2 stream as the session's two ends (issue 14, ADR 0011): the `h2` crate
//! (tokio-style, poll-based) on one side, the pipeline on the other, which sees the
//! request as a head ([`RequestHead::from_parts`], from the HEADERS frame's fields)
//! and a body source, and answers through the response sink (`proto::head`,
//! `proto::sink`): a head as fields, body bytes as DATA frames, trailers as a
//! trailer block. Nothing crosses as HTTP/1.1 text.
//!
//! Flow control holds end to end: request data is acknowledged (window released)
//! only once the pipeline has taken it, and response data waits for send capacity,
//! so a slow client slows the upstream read, never memory.
//!
//! Beside it: `grpc` (gateway answers as gRPC statuses), `poll_tls` (TLS and write
//! batching on poll-style sockets for the `h2` crate).
//!
//! Tested end to end in `tests/h2.rs` and `tests/grpc.rs`.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::Poll;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};

use super::h1::{encode, BodyFraming, RequestHead};

mod grpc;
mod poll_tls;

pub use grpc::trailer_map;
use grpc::{grpc_message, grpc_status};
pub use poll_tls::{Batched, PollTls};

/// One HTTP/2 stream: the request's DATA frames to read, the response to send.
pub struct H2Io {
    recv: RecvStream,
    recv_done: bool,
    /// The sending side, shared with the stream's reset watch.
    half: Rc<RefCell<SendHalf>>,
    /// A response head handed over as fields ([`H2Io::set_head`]), sent with the
    /// first body bytes or at [`H2Io::finish`].
    ready: Option<ReadyHead>,
    /// Whether body bytes go out after the head sent (not for a HEAD request, an
    /// empty body, or a gRPC status made from an error).
    body_out: bool,
    /// The trailer block to end the response with.
    trailers: Option<http::HeaderMap>,
    /// END_STREAM is sent: the whole response went out.
    ended: bool,
    head_request: bool,
    /// A gRPC request (`content-type: application/grpc…`): errors the gateway (or
    /// anything not speaking gRPC) answers are turned into gRPC statuses.
    grpc: bool,
}

impl std::fmt::Debug for H2Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Io")
            .field("recv_done", &self.recv_done)
            .field("ended", &self.ended)
            .finish()
    }
}

/// A response head ready to go, and whether body bytes follow it.
struct ReadyHead {
    response: http::Response<()>,
    body: bool,
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

/// Why a request could not become a request head.
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
        Ok(H2Io {
            recv,
            recv_done,
            half: Rc::new(RefCell::new(SendHalf {
                respond: Some(respond),
                send: None,
            })),
            ready: None,
            body_out: false,
            trailers: None,
            ended: false,
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
        self.ended
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

    /// Whether the request body has ended (END_STREAM received).
    pub fn request_done(&self) -> bool {
        self.recv_done
    }

    /// Appends the request's next DATA frame to `out` (nothing once it has ended),
    /// giving its bytes back to the client's send window.
    pub async fn recv_data(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        if self.recv_done {
            return Ok(());
        }
        match self.recv.data().await {
            Some(Ok(data)) => {
                let _ = self.recv.flow_control().release_capacity(data.len());
                out.extend_from_slice(&data);
                self.recv_done = self.recv.is_end_stream();
                Ok(())
            }
            Some(Err(e)) => Err(io::Error::other(e)),
            None => {
                self.recv_done = true;
                Ok(())
            }
        }
    }

    /// The response head as the pipeline gives it, as fields: kept until the body's
    /// first bytes are sent or [`H2Io::finish`], so that until then it can still be
    /// replaced by an error ([`H2Io::drop_head`]). `body` is the framing the
    /// pipeline chose for the body (whether there is one).
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

    /// Sends response body bytes as DATA frames as the send window allows (the
    /// head first, when it is still waiting).
    pub async fn send_body(&mut self, data: Bytes) -> io::Result<()> {
        self.send_ready()?;
        if !self.body_out || self.ended || data.is_empty() {
            return Ok(());
        }
        send_data(&*self.half, data, false).await
    }

    /// The trailer block the response ends with (`grpc-status` and friends).
    pub fn set_trailers(&mut self, trailers: http::HeaderMap) {
        self.trailers = Some(trailers);
    }

    /// Ends the response with the last body bytes `data` (may be empty): the
    /// waiting head (END_STREAM on it when there is no body), `data` in a last DATA
    /// frame, or before the trailer block.
    pub async fn finish(&mut self, data: Bytes) -> io::Result<()> {
        self.send_ready()?;
        if self.ended {
            return Ok(());
        }
        let trailers = self.trailers.take().filter(|_| self.body_out);
        if !data.is_empty() || trailers.is_none() {
            send_data(&*self.half, data, trailers.is_none()).await?;
            if trailers.is_none() {
                self.ended = true;
                return Ok(());
            }
        }
        let mut h = self.half.borrow_mut();
        let send = h
            .send
            .as_mut()
            .ok_or_else(|| io::Error::other("no response was given"))?;
        if let Some(t) = trailers {
            send.send_trailers(t).map_err(io::Error::other)?;
        }
        self.ended = true;
        Ok(())
    }

    /// Sends the head waiting in `ready`, if any.
    fn send_ready(&mut self) -> io::Result<()> {
        let Some(ready) = self.ready.take() else {
            return Ok(());
        };
        let mut h = self.half.borrow_mut();
        let mut respond = h
            .respond
            .take()
            .ok_or_else(|| io::Error::other("response already sent"))?;
        // a body of nothing but trailers still needs a stream open after the head
        let end = !ready.body;
        let send = respond
            .send_response(ready.response, end)
            .map_err(io::Error::other)?;
        h.send = Some(send);
        self.body_out = ready.body;
        self.ended = end;
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
        // Straight into a HeaderMap (the builder would move the whole head through a
        // closure per field); `HeaderName::from_bytes` lower-cases the name.
        let mut map = http::HeaderMap::with_capacity(8);
        let invalid = || io::Error::other("a response field HTTP/2 cannot carry");
        let mut code = status;
        if as_grpc {
            code = 200;
            let g = grpc_status(status).to_string();
            let m = grpc_message(status, reason);
            map.append(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/grpc"),
            );
            map.append(
                "grpc-status",
                http::HeaderValue::try_from(g).map_err(|_| invalid())?,
            );
            map.append(
                "grpc-message",
                http::HeaderValue::try_from(m).map_err(|_| invalid())?,
            );
        }
        for (name, value) in fields {
            let name = http::HeaderName::from_bytes(name).map_err(|_| invalid())?;
            if as_grpc
                && (name == http::header::CONTENT_TYPE || name == http::header::CONTENT_LENGTH)
            {
                continue;
            }
            if name == http::header::CONNECTION
                || name == http::header::TRANSFER_ENCODING
                || name == http::header::UPGRADE
                || name.as_str() == "keep-alive"
                || name.as_str() == "proxy-connection"
            {
                continue;
            }
            let value = http::HeaderValue::from_bytes(value).map_err(|_| invalid())?;
            map.append(name, value);
        }
        let mut response = http::Response::new(());
        *response.status_mut() = http::StatusCode::from_u16(code).map_err(|_| invalid())?;
        *response.headers_mut() = map;
        // (a gRPC status replaces the body: what the pipeline writes of it is dropped)
        let empty = matches!(body, BodyFraming::Empty | BodyFraming::Length(0))
            || self.head_request
            || as_grpc;
        Ok(ReadyHead {
            response,
            body: !empty,
        })
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
