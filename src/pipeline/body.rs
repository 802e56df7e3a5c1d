//! Reading a request body from the client, whatever its framing, within `max_body`.

use std::time::Duration;

use crate::proto::h1::{BodyFraming, ChunkedDecoder, RequestHead};

use super::Downstream;

/// Largest piece handed out per `read`, so memory stays bounded whatever the body size.
pub const PIECE: usize = 64 << 10;
/// How long a client may pause in the middle of a body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// The client closed, reset, or stalled: nothing more can be said to it.
    Gone,
    /// Bad chunked framing: 400 and close.
    Malformed,
    /// Over `max_body`: 413 and close.
    TooLarge,
}

#[derive(Debug)]
pub struct BodyReader {
    framing: BodyFraming,
    remaining: u64,
    decoder: ChunkedDecoder,
    total: u64,
    max: u64,
    done: bool,
    send_continue: bool,
}

impl BodyReader {
    pub fn new(head: &RequestHead, max: u64) -> Result<Self, BodyError> {
        let (remaining, done) = match head.body {
            BodyFraming::Length(n) if n > max => return Err(BodyError::TooLarge),
            BodyFraming::Length(n) => (n, false),
            BodyFraming::Chunked => (0, false),
            BodyFraming::Empty | BodyFraming::UntilClose => (0, true),
        };
        Ok(BodyReader {
            framing: head.body,
            remaining,
            decoder: ChunkedDecoder::default(),
            total: 0,
            max,
            done,
            send_continue: head.expect_continue && head.version == 1,
        })
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn framing(&self) -> BodyFraming {
        self.framing
    }

    /// Body bytes handed out so far (decoded).
    pub fn taken(&self) -> u64 {
        self.total
    }

    /// True when the whole body is already in the connection's buffer (so it can be
    /// sent, or resent, in one piece without reading the socket).
    pub fn fully_buffered(&self, ds: &Downstream<'_>) -> bool {
        match self.framing {
            BodyFraming::Length(n) => ds.rbuf.data().len() as u64 >= n,
            _ => self.done,
        }
    }

    /// Appends the next piece of body (≤ [`PIECE`] bytes) to `out`. Returns with
    /// nothing appended only when the body is complete.
    pub async fn read(
        &mut self,
        ds: &mut Downstream<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), BodyError> {
        let start = out.len();
        if let Some(h2) = ds.io.h2() {
            return self.read_h2(h2, out).await;
        }
        while !self.done {
            let data = ds.rbuf.data();
            if !data.is_empty() {
                let avail = &data[..data.len().min(PIECE)];
                match self.framing {
                    BodyFraming::Length(_) => {
                        let take = (self.remaining.min(avail.len() as u64)) as usize;
                        out.extend_from_slice(&avail[..take]);
                        ds.rbuf.consume(take);
                        self.total += take as u64;
                        self.remaining -= take as u64;
                        self.done = self.remaining == 0;
                    }
                    _ => {
                        let used = self
                            .decoder
                            .decode(avail, out)
                            .map_err(|_| BodyError::Malformed)?;
                        ds.rbuf.consume(used);
                        self.total += (out.len() - start) as u64;
                        if self.total > self.max {
                            return Err(BodyError::TooLarge);
                        }
                        self.done = self.decoder.is_done();
                    }
                }
                if out.len() > start || self.done {
                    return Ok(());
                }
                continue;
            }
            if self.send_continue {
                self.send_continue = false;
                crate::proto::sink::send_continue(ds.io, ds.wbuf)
                    .await
                    .map_err(|_| BodyError::Gone)?;
            }
            match monoio::time::timeout(BODY_READ_TIMEOUT, ds.rbuf.fill(ds.io)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return Err(BodyError::Gone),
            }
        }
        Ok(())
    }

    /// The next DATA frame of an HTTP/2 request (its framing is the stream's; a
    /// `content-length` it declared must match what arrives).
    async fn read_h2(
        &mut self,
        h2: &mut crate::proto::h2::H2Io,
        out: &mut Vec<u8>,
    ) -> Result<(), BodyError> {
        let start = out.len();
        while !self.done {
            let read = monoio::time::timeout(BODY_READ_TIMEOUT, h2.recv_data(out)).await;
            if !matches!(read, Ok(Ok(()))) {
                return Err(BodyError::Gone);
            }
            let n = (out.len() - start) as u64;
            self.total += n;
            if self.total > self.max {
                return Err(BodyError::TooLarge);
            }
            if let BodyFraming::Length(_) = self.framing {
                if n > self.remaining {
                    return Err(BodyError::Malformed);
                }
                self.remaining -= n;
                if h2.request_done() && self.remaining > 0 {
                    return Err(BodyError::Malformed);
                }
                self.done = self.remaining == 0;
            } else {
                self.done = h2.request_done();
            }
            if n > 0 {
                break;
            }
        }
        Ok(())
    }

    /// Request buffering: reads the body into `out` while it fits in `limit` bytes,
    /// so its framing is known good before anything goes upstream. `Ok(true)`: all of
    /// it is in `out`. `Ok(false)`: it is larger; `out` holds what was read (nothing,
    /// when a `Content-Length` already said so) and the rest is still to stream.
    /// Every feature that needs the whole body (DESIGN §10) reads it through here.
    pub async fn buffer(
        &mut self,
        ds: &mut Downstream<'_>,
        out: &mut Vec<u8>,
        limit: u64,
    ) -> Result<bool, BodyError> {
        if let BodyFraming::Length(n) = self.framing {
            if n > limit {
                return Ok(false);
            }
        }
        let start = out.len();
        while !self.done {
            if (out.len() - start) as u64 > limit {
                return Ok(false);
            }
            self.read(ds, out).await?;
        }
        Ok(true)
    }

    /// Reads and drops the rest of the body, so the connection can serve the next request.
    pub async fn discard(&mut self, ds: &mut Downstream<'_>) -> Result<(), BodyError> {
        let mut sink = Vec::new();
        while !self.done {
            sink.clear();
            self.read(ds, &mut sink).await?;
        }
        Ok(())
    }
}
