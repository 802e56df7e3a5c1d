//! The HTTP/1.1 response body the pipeline writes, turned into DATA frames: by its
//! `content-length`, or chunk by chunk with the trailer section kept for a trailer block.

use std::io;

use bytes::Bytes;

use super::trailer_map;
use crate::proto::h1::{BodyFraming, ChunkedDecoder};

/// How the response body is being forwarded.
#[derive(Debug)]
pub(super) enum Out {
    Head,
    Body(BodyOut),
    Done,
}

/// An HTTP/1.1 body written to one of the adapters, on its way out as DATA frames
/// (and a trailer block): length-framed, or chunked with its trailer section kept.
/// Shared by the response side here and the request side of `upstream::h2`.
#[derive(Debug)]
pub enum BodyOut {
    Length(u64),
    Chunked(ChunkedDecoder),
}

/// What [`BodyOut::next`] translated.
pub struct Piece {
    pub data: Bytes,
    /// The last DATA frame (no trailers follow).
    pub end: bool,
    /// The trailer block that ends the body instead.
    pub trailers: Option<http::HeaderMap>,
}

impl Piece {
    /// Whether the body is complete after this piece.
    pub fn last(&self) -> bool {
        self.end || self.trailers.is_some()
    }
}

impl BodyOut {
    pub fn new(framing: BodyFraming) -> Option<BodyOut> {
        match framing {
            BodyFraming::Length(n) => Some(BodyOut::Length(n)),
            BodyFraming::Chunked => Some(BodyOut::Chunked(ChunkedDecoder::keeping_trailers())),
            BodyFraming::Empty | BodyFraming::UntilClose => None,
        }
    }

    /// Translates what it can of `out[*skip..]`; `None` until more bytes come.
    pub fn next(&mut self, out: &mut Vec<u8>, skip: &mut usize) -> io::Result<Option<Piece>> {
        match self {
            BodyOut::Length(left) => {
                let avail = out.len() - *skip;
                if avail == 0 {
                    return Ok(None);
                }
                let take = (*left).min(avail as u64) as usize;
                *left -= take as u64;
                Ok(Some(Piece {
                    data: take_front(out, skip, take),
                    end: *left == 0,
                    trailers: None,
                }))
            }
            BodyOut::Chunked(dec) => {
                if *skip == out.len() {
                    return Ok(None);
                }
                let mut data = Vec::new();
                let used = dec
                    .decode(&out[*skip..], &mut data)
                    .map_err(|_| io::Error::other("bad chunked body"))?;
                *skip += used;
                let done = dec.is_done();
                if data.is_empty() && !done {
                    // (decode takes all it is given until the body ends)
                    return Ok(None);
                }
                let trailers = if done {
                    trailer_map(&dec.take_trailers())
                } else {
                    None
                };
                Ok(Some(Piece {
                    data: Bytes::from(data),
                    end: done && trailers.is_none(),
                    trailers,
                }))
            }
        }
    }
}

/// The next `n` bytes of `out[*skip..]`; without a copy when they are all that is left.
pub(super) fn take_front(out: &mut Vec<u8>, skip: &mut usize, n: usize) -> Bytes {
    if *skip + n == out.len() {
        let all = Bytes::from(std::mem::take(out));
        let b = Bytes::slice(&all, *skip..);
        *skip = 0;
        b
    } else {
        let b = Bytes::copy_from_slice(&out[*skip..*skip + n]);
        *skip += n;
        b
    }
}
