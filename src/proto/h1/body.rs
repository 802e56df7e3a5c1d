//! Body framing: how long a message body is, and a strict chunked decoder.

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyFraming {
    #[default]
    Empty,
    Length(u64),
    Chunked,
    /// Until the peer closes (responses from HTTP/1.0-style upstreams only).
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadChunk;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size { digits: u8 },
    Ext { len: u16 },
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

/// Longest chunk extension we tolerate before calling it an attack.
const MAX_EXT: u16 = 1024;
/// Most trailer bytes we read (dropped, or kept for forwarding).
const MAX_TRAILERS: u32 = 16 << 10;

/// Decodes `chunked` framing incrementally. Rejects: non-hex or over-long sizes,
/// bare LF or CR, control bytes in extensions, over-long extensions and trailers.
/// Trailer fields are dropped unless the decoder was made to keep them
/// ([`ChunkedDecoder::keeping_trailers`]).
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    remaining: u64,
    trailer_bytes: u32,
    /// Whether to keep the trailer section.
    keep_trailers: bool,
    /// The trailer section's lines (`name: value\r\n` each), when kept and there are
    /// some. Boxed: the decoder lives in every request's future, which must stay small.
    #[allow(clippy::box_collection)]
    trailers: Option<Box<Vec<u8>>>,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::Size { digits: 0 },
            remaining: 0,
            trailer_bytes: 0,
            keep_trailers: false,
            trailers: None,
        }
    }
}

impl ChunkedDecoder {
    /// A decoder that keeps the trailer section for [`ChunkedDecoder::take_trailers`].
    pub fn keeping_trailers() -> Self {
        ChunkedDecoder {
            keep_trailers: true,
            ..ChunkedDecoder::default()
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The trailer lines read so far (each ending in CRLF; empty when there were none
    /// or they are not kept). Only complete once the decoder is done.
    pub fn take_trailers(&mut self) -> Vec<u8> {
        self.trailers
            .as_mut()
            .map(|t| std::mem::take(&mut **t))
            .unwrap_or_default()
    }

    /// Consumes framing from `input` and appends body data to `out`.
    /// Returns how many input bytes were consumed (all of them unless done).
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, BadChunk> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Size { digits } => {
                    let v = match b {
                        b'0'..=b'9' => b - b'0',
                        b'a'..=b'f' => b - b'a' + 10,
                        b'A'..=b'F' => b - b'A' + 10,
                        b';' if digits > 0 => {
                            self.state = State::Ext { len: 0 };
                            i += 1;
                            continue;
                        }
                        b'\r' if digits > 0 => {
                            self.state = State::SizeLf;
                            i += 1;
                            continue;
                        }
                        _ => return Err(BadChunk),
                    };
                    if digits >= 15 {
                        return Err(BadChunk);
                    }
                    self.remaining = self.remaining * 16 + u64::from(v);
                    self.state = State::Size { digits: digits + 1 };
                    i += 1;
                }
                State::Ext { len } => {
                    match b {
                        b'\r' => self.state = State::SizeLf,
                        b'\t' | 0x20..=0x7e if len < MAX_EXT => {
                            self.state = State::Ext { len: len + 1 }
                        }
                        _ => return Err(BadChunk),
                    }
                    i += 1;
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(BadChunk);
                    }
                    i += 1;
                    self.state = if self.remaining == 0 {
                        State::TrailerStart
                    } else {
                        State::Data
                    };
                }
                State::Data => {
                    let take = (self.remaining).min((input.len() - i) as u64) as usize;
                    out.extend_from_slice(&input[i..i + take]);
                    i += take;
                    self.remaining -= take as u64;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(BadChunk);
                    }
                    self.state = State::DataLf;
                    i += 1;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(BadChunk);
                    }
                    self.state = State::Size { digits: 0 };
                    i += 1;
                }
                State::TrailerStart => {
                    self.state = if b == b'\r' {
                        State::EndLf
                    } else {
                        State::TrailerLine
                    };
                    if b == b'\n' {
                        return Err(BadChunk);
                    }
                    self.count_trailer()?;
                    if b != b'\r' {
                        self.keep(b);
                    }
                    i += 1;
                }
                State::TrailerLine => {
                    match b {
                        b'\r' => self.state = State::TrailerLf,
                        b'\n' => return Err(BadChunk),
                        _ => {}
                    }
                    self.count_trailer()?;
                    self.keep(b);
                    i += 1;
                }
                State::TrailerLf => {
                    if b != b'\n' {
                        return Err(BadChunk);
                    }
                    self.keep(b);
                    self.state = State::TrailerStart;
                    i += 1;
                }
                State::EndLf => {
                    if b != b'\n' {
                        return Err(BadChunk);
                    }
                    self.state = State::Done;
                    return Ok(i + 1);
                }
                State::Done => return Ok(i),
            }
        }
        Ok(i)
    }

    fn keep(&mut self, b: u8) {
        if self.keep_trailers {
            self.trailers.get_or_insert_with(Box::default).push(b);
        }
    }

    fn count_trailer(&mut self) -> Result<(), BadChunk> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > MAX_TRAILERS {
            Err(BadChunk)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, usize, bool), BadChunk> {
        let mut d = ChunkedDecoder::default();
        let mut out = Vec::new();
        let n = d.decode(input, &mut out)?;
        Ok((out, n, d.is_done()))
    }

    #[test]
    fn decodes_chunks_with_extensions_and_trailers() {
        let (out, n, done) =
            decode_all(b"5;a=b\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT").unwrap();
        assert_eq!(out, b"hello world");
        assert!(done);
        assert_eq!(n, 38);
    }

    #[test]
    fn trailers_are_kept_when_asked() {
        let input = b"2\r\nhi\r\n0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n\r\n";
        let mut d = ChunkedDecoder::keeping_trailers();
        let mut out = Vec::new();
        for b in input.iter() {
            d.decode(std::slice::from_ref(b), &mut out).unwrap();
        }
        assert!(d.is_done());
        assert_eq!(out, b"hi");
        assert_eq!(d.take_trailers(), b"grpc-status: 0\r\ngrpc-message: ok\r\n");
        let mut plain = ChunkedDecoder::default();
        plain.decode(input, &mut out).unwrap();
        assert!(plain.take_trailers().is_empty());
        let mut none = ChunkedDecoder::keeping_trailers();
        none.decode(b"0\r\n\r\n", &mut out).unwrap();
        assert!(none.is_done() && none.take_trailers().is_empty());
    }

    #[test]
    fn byte_at_a_time_is_the_same() {
        let input = b"3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n";
        let mut d = ChunkedDecoder::default();
        let mut out = Vec::new();
        for b in input.iter() {
            assert_eq!(d.decode(std::slice::from_ref(b), &mut out).unwrap(), 1);
        }
        assert!(d.is_done());
        assert_eq!(out, b"abc0123456789");
    }

    #[test]
    fn rejects_smuggling_shapes() {
        for bad in [
            &b"x\r\n"[..],
            b"-1\r\n",
            b"5\nhello\r\n",
            b"5\r\nhelloX\r\n",
            b"\r\n",
            b"ffffffffffffffff1\r\n",
            b"5 \r\nhello\r\n",
            b"0x5\r\n",
            b"5;\x01\r\n",
            b"0\r\n\n",
        ] {
            assert!(
                decode_all(bad).is_err(),
                "{:?} should be rejected",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
