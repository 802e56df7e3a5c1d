//! The response body sink: what the pipeline writes after a head it ended with
//! `proto::head::ResponseHead::end`, whatever the client speaks. Whole bodies are
//! plain bytes in the write buffer; a streamed body goes piece by piece
//! ([`chunk`]) and ends with its trailers ([`end_chunks`]). For an HTTP/1.1 client
//! that is chunked framing in the write buffer, flushed to the socket; for an
//! HTTP/2 stream, DATA frames and a trailer block (`proto::h2::H2Io`), no framing at all.
//!
//! Tested by the unit tests below (HTTP/1.1 framing) and end to end over both
//! protocols (`tests/h2.rs`, `tests/grpc.rs`, `tests/proxy.rs`).

use std::io;

use bytes::Bytes;
use monoio::io::AsyncWriteRentExt;

use super::h1::{encode, forwardable_trailers, trailer_forbidden};
use super::tls::ClientIo;

/// The trailer fields that end a streamed body.
#[derive(Debug, Default)]
pub enum Trailers {
    #[default]
    None,
    /// A chunked body's trailer section as read (lines ending in CRLF).
    Text(Vec<u8>),
    /// An HTTP/2 trailer block.
    Fields(http::HeaderMap),
}

impl Trailers {
    /// Calls `each` for every field that may be forwarded in a trailer section.
    pub fn each(&self, mut each: impl FnMut(&[u8], &[u8])) {
        match self {
            Trailers::None => {}
            Trailers::Text(raw) => {
                forwardable_trailers(raw, each);
            }
            Trailers::Fields(map) => {
                for (n, v) in map {
                    if !trailer_forbidden(n.as_str().as_bytes()) {
                        each(n.as_str().as_bytes(), v.as_bytes());
                    }
                }
            }
        }
    }
}

/// Appends one piece of a streamed body: a chunk for HTTP/1.1, bytes of the next
/// DATA frame for HTTP/2.
pub fn chunk(io: &mut ClientIo, wbuf: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    if io.h2().is_some() {
        wbuf.extend_from_slice(data);
        return;
    }
    encode::chunk_head(wbuf, data.len());
    wbuf.extend_from_slice(data);
    wbuf.extend_from_slice(b"\r\n");
}

/// Ends a streamed body with its trailers: the last chunk and the trailer section
/// for HTTP/1.1, a trailer block for HTTP/2 (sent when the response ends).
pub fn end_chunks(io: &mut ClientIo, wbuf: &mut Vec<u8>, trailers: &Trailers) {
    match io.h2() {
        Some(h2) => {
            let mut map = http::HeaderMap::new();
            trailers.each(|n, v| {
                let name = http::HeaderName::from_bytes(&n.to_ascii_lowercase());
                let value = http::HeaderValue::from_bytes(v);
                if let (Ok(n), Ok(v)) = (name, value) {
                    map.append(n, v);
                }
            });
            if !map.is_empty() {
                h2.set_trailers(map);
            }
        }
        None => {
            wbuf.extend_from_slice(b"0\r\n");
            trailers.each(|n, v| encode::header(wbuf, n, v));
            wbuf.extend_from_slice(b"\r\n");
        }
    }
}

/// `100 Continue` to an HTTP/1.1 client that asked for it before sending its body
/// (HTTP/2 clients do not wait for it: nothing is sent).
pub async fn send_continue(io: &mut ClientIo, wbuf: &mut Vec<u8>) -> io::Result<()> {
    if io.h2().is_some() {
        return Ok(());
    }
    wbuf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
    super::io::flush(io, wbuf).await
}

/// Write buffers above this are released after a flush instead of kept.
const KEEP_WRITE_CAPACITY: usize = 64 << 10;

/// Sends what the write buffer holds: to the socket, or as DATA frames (waiting for
/// the stream's send window).
pub async fn flush(io: &mut ClientIo, wbuf: &mut Vec<u8>) -> io::Result<()> {
    match io.h2() {
        Some(h2) => {
            let data = take_bytes(wbuf);
            h2.send_body(data).await
        }
        None => super::io::flush(io, wbuf).await,
    }
}

/// Sends a piece of body straight from `buf` (after what the write buffer holds has
/// gone), giving the buffer back empty for the next piece.
pub async fn write_body(io: &mut ClientIo, mut buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
    match io.h2() {
        Some(h2) => {
            let data = Bytes::from(std::mem::take(&mut buf));
            // (the allocation went with the frame: the next piece gets a new one)
            (h2.send_body(data).await, buf)
        }
        None => {
            let (res, mut b) = io.write_all(buf).await;
            b.clear();
            (res.map(|_| ()), b)
        }
    }
}

/// Ends the response: flushes, and for HTTP/2 ends the stream (the waiting head,
/// the trailer block or a last empty DATA frame).
pub async fn finish(io: &mut ClientIo, wbuf: &mut Vec<u8>) -> io::Result<()> {
    match io.h2() {
        // what is left goes in the last DATA frame (END_STREAM on it)
        Some(h2) => {
            let data = take_bytes(wbuf);
            h2.finish(data).await
        }
        None => super::io::flush(io, wbuf).await,
    }
}

/// The write buffer's bytes as one frame's worth: copied when small (the buffer is
/// kept for the next response), handed over whole when large.
fn take_bytes(wbuf: &mut Vec<u8>) -> Bytes {
    if wbuf.len() > KEEP_WRITE_CAPACITY / 4 {
        Bytes::from(std::mem::take(wbuf))
    } else {
        let b = Bytes::copy_from_slice(wbuf);
        wbuf.clear();
        b
    }
}
