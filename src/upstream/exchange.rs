//! The upstream half of the session: one exchange on an [`UpConn`], whatever the
//! upstream speaks. The pipeline hands over a request head written by
//! `proto::head::RequestOut` in the connection's protocol and body pieces, and gets
//! back a response head (status, fields as offsets into the connection's read
//! buffer, the body's framing), body bytes to read, and trailers. HTTP/1.1 is text
//! on the socket; HTTP/2 is a stream on the worker's session (`upstream::h2`): a
//! HEADERS frame built from the head's items, DATA frames, the response's fields
//! copied into the read buffer (never formatted as text and parsed again), DATA
//! read as plain body bytes and the trailer block kept for the end.
//!
//! Tested end to end through the proxy (`tests/proxy.rs`, `tests/grpc.rs`).

use std::io;

use monoio::io::AsyncWriteRentExt;

use super::{UpConn, UpIo};
use crate::error::Error;
use crate::proto::h1::{parse_response, ResponseHead};
use crate::proto::head::LAST_CHUNK;
use crate::proto::sink::Trailers;

/// Largest upstream response head accepted.
const MAX_RESPONSE_HEAD: usize = 64 << 10;

impl UpConn {
    /// Sends a request: the head (`req[..head_len]`) and the body bytes written
    /// after it; `end`: those are the whole body. The buffer comes back.
    pub async fn send_request(
        &mut self,
        req: Vec<u8>,
        head_len: usize,
        end: bool,
    ) -> (io::Result<()>, Vec<u8>) {
        match &mut self.io {
            UpIo::H2(s) => {
                let res = Box::pin(s.send_request(&req[..head_len], &req[head_len..], end)).await;
                (res, req)
            }
            io => {
                let (res, req) = io.write_all(req).await;
                (res.map(|_| ()), req)
            }
        }
    }

    /// Sends a piece of request body (`proto::head::request_chunk` framed it for a
    /// chunked HTTP/1.1 request); `end`: it is the last (a chunked request gets its
    /// last chunk, an HTTP/2 stream ends). The buffer comes back cleared.
    pub async fn send_body(
        &mut self,
        mut piece: Vec<u8>,
        chunked: bool,
        end: bool,
    ) -> (io::Result<()>, Vec<u8>) {
        match &mut self.io {
            UpIo::H2(s) => {
                let data = bytes::Bytes::copy_from_slice(&piece);
                piece.clear();
                (Box::pin(s.send_data(data, end)).await, piece)
            }
            io => {
                if end && chunked {
                    piece.extend_from_slice(LAST_CHUNK);
                }
                if piece.is_empty() {
                    return (Ok(()), piece);
                }
                let (res, mut piece) = io.write_all(piece).await;
                piece.clear();
                (res.map(|_| ()), piece)
            }
        }
    }

    /// Reads the response head (interim 1xx answers skipped) into `resp`, its fields
    /// as offsets into `self.rbuf`; the body follows at `resp.head_len`.
    pub async fn read_head(&mut self, is_head: bool, resp: &mut ResponseHead) -> Result<(), Error> {
        if let UpIo::H2(s) = &mut self.io {
            return Box::pin(s.read_head(&mut self.rbuf, is_head, resp)).await;
        }
        let mut received = false;
        loop {
            if !self.rbuf.is_empty() {
                match parse_response(self.rbuf.data(), MAX_RESPONSE_HEAD, is_head, resp) {
                    Ok(Some(n)) if (100..200).contains(&resp.status) && resp.status != 101 => {
                        // interim response (100 Continue, 103 Early Hints): skip it
                        self.rbuf.consume(n);
                        continue;
                    }
                    Ok(Some(n)) => {
                        if resp.status == 101 {
                            // Protocol upgrades are not proxied (yet): the bytes after
                            // this head would not be HTTP.
                            return Err(Error::UpstreamMalformed);
                        }
                        debug_assert_eq!(resp.head_len, n);
                        return Ok(());
                    }
                    Ok(None) => {}
                    Err(()) => return Err(Error::UpstreamMalformed),
                }
            }
            match self.rbuf.fill(&mut self.io).await {
                Ok(0) | Err(_) if !received => return Err(Error::UpstreamReset),
                Ok(0) | Err(_) => return Err(Error::UpstreamMalformed),
                Ok(_) => received = true,
            }
        }
    }

    /// The trailers that ended a body read to its end without chunked framing (an
    /// HTTP/2 stream's trailer block; none for an HTTP/1.1 body read until close).
    pub fn take_trailers(&mut self) -> Trailers {
        match &mut self.io {
            UpIo::H2(s) => s.take_trailers().map_or(Trailers::None, Trailers::Fields),
            _ => Trailers::None,
        }
    }
}
