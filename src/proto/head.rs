//! The response head seam: the pipeline says a status and fields, and the client's
//! protocol decides what they become: HTTP/1.1 text in the connection's write
//! buffer, or fields handed to the HTTP/2 stream (`H2Io::set_head`), never text
//! parsed again. The body bytes follow in the write buffer either way (HTTP/1.1
//! framing, which the HTTP/2 stream turns into DATA frames).
//!
//! Every response the gateway writes goes through here: errors, mocks, cache hits,
//! proxied answers. Tested by the pipeline's unit tests (text) and end to end over
//! both protocols (`tests/h2.rs`, `tests/grpc.rs`).

use super::h1::{encode, BodyFraming};
use super::tls::ClientIo;

/// A response head being written. Built with [`ResponseHead::start`], ended with
/// [`ResponseHead::end`].
pub struct ResponseHead<'a> {
    out: Out<'a>,
    /// Header lines every response of this request carries (CORS), added at `end`.
    extra: &'a [u8],
}

enum Out<'a> {
    Text(&'a mut Vec<u8>),
    /// HTTP/2: the fields gathered in one buffer (`spans`: name and value ranges).
    Fields {
        h2: &'a mut super::h2::H2Io,
        wbuf: &'a mut Vec<u8>,
        status: u16,
        buf: Vec<u8>,
        spans: Vec<[u32; 4]>,
    },
}

impl<'a> ResponseHead<'a> {
    /// Starts a response with `status` to the client behind `io`; `extra` (header
    /// lines) is added to it when it ends.
    pub fn start(
        io: &'a mut ClientIo,
        wbuf: &'a mut Vec<u8>,
        status: u16,
        extra: &'a [u8],
    ) -> Self {
        let mut h = Self::start_plain(io, wbuf, status);
        h.extra = extra;
        h
    }

    fn start_plain(io: &'a mut ClientIo, wbuf: &'a mut Vec<u8>, status: u16) -> Self {
        match io.h2() {
            Some(h2) => ResponseHead {
                out: Out::Fields {
                    h2,
                    wbuf,
                    status,
                    buf: Vec::with_capacity(256),
                    spans: Vec::with_capacity(8),
                },
                extra: b"",
            },
            None => {
                encode::status_line(wbuf, status);
                ResponseHead {
                    out: Out::Text(wbuf),
                    extra: b"",
                }
            }
        }
    }

    /// HTTP/1.1 text into `wbuf` whatever the client (for a connection that is
    /// known to be HTTP/1.1, and for tests).
    pub fn text(wbuf: &'a mut Vec<u8>, status: u16) -> Self {
        encode::status_line(wbuf, status);
        ResponseHead {
            out: Out::Text(wbuf),
            extra: b"",
        }
    }

    pub fn field(&mut self, name: &[u8], value: &[u8]) {
        match &mut self.out {
            Out::Text(w) => encode::header(w, name, value),
            Out::Fields { buf, spans, .. } => {
                let a = buf.len() as u32;
                buf.extend_from_slice(name);
                let b = buf.len() as u32;
                buf.extend_from_slice(value);
                spans.push([a, b, b, buf.len() as u32]);
            }
        }
    }

    /// A field whose value is `n` in decimal.
    pub fn field_decimal(&mut self, name: &[u8], n: u64) {
        let mut v = Vec::with_capacity(20);
        encode::decimal(&mut v, n);
        self.field(name, &v);
    }

    /// Fields the caller writes as HTTP/1.1 header lines (`f` appends them to the
    /// buffer it is given): straight into the text, or split into fields.
    pub fn with_lines(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        match &mut self.out {
            Out::Text(w) => f(w),
            Out::Fields { .. } => {
                let mut text = Vec::new();
                f(&mut text);
                self.lines(&text);
            }
        }
    }

    /// Fields kept as HTTP/1.1 header lines (`name: value\r\n` each, as the plan
    /// keeps a mock's and the cache a stored response's).
    pub fn lines(&mut self, text: &[u8]) {
        match &mut self.out {
            Out::Text(w) => w.extend_from_slice(text),
            Out::Fields { .. } => {
                for (n, v) in header_lines(text) {
                    self.field(n, v);
                }
            }
        }
    }

    /// Ends the head: the body that follows is framed as `body` (`Length`,
    /// `Chunked`, or none); `close` says the HTTP/1.1 connection ends after it.
    /// Gives back the write buffer for the body, and `false` when an HTTP/2 stream
    /// would not take the head (a field HTTP/2 refuses): nothing was handed over.
    pub fn end(mut self, body: BodyFraming, close: bool) -> (&'a mut Vec<u8>, bool) {
        if !self.extra.is_empty() {
            let extra = self.extra;
            self.lines(extra);
        }
        match self.out {
            Out::Text(w) => {
                match body {
                    BodyFraming::Length(n) => encode::content_length(w, n),
                    BodyFraming::Chunked => w.extend_from_slice(b"transfer-encoding: chunked\r\n"),
                    BodyFraming::Empty | BodyFraming::UntilClose => {}
                }
                if close {
                    w.extend_from_slice(b"connection: close\r\n");
                }
                w.extend_from_slice(b"\r\n");
                (w, true)
            }
            Out::Fields {
                h2,
                wbuf,
                status,
                buf,
                spans,
            } => {
                let fields = spans.iter().map(|s| {
                    (
                        &buf[s[0] as usize..s[1] as usize],
                        &buf[s[2] as usize..s[3] as usize],
                    )
                });
                let taken = h2.set_head(status, fields, body).is_ok();
                (wbuf, taken)
            }
        }
    }
}

/// A request head being written for an upstream, in the upstream's protocol:
/// HTTP/1.1 text, or (for an HTTP/2 upstream) the method, target and fields as
/// length-prefixed items that `upstream::h2` turns into a HEADERS frame
/// ([`request_items`]), never text. Either way into one buffer, which body bytes may
/// follow (HTTP/1.1: in the same write; HTTP/2: as DATA frames).
pub struct RequestOut<'a> {
    out: &'a mut Vec<u8>,
    items: bool,
}

impl<'a> RequestOut<'a> {
    /// Starts a request with `method`; the target follows ([`RequestOut::target`]).
    #[inline]
    pub fn start(out: &'a mut Vec<u8>, h2: bool, method: &[u8]) -> Self {
        let mut r = RequestOut { out, items: h2 };
        if h2 {
            r.item(|o| o.extend_from_slice(method));
        } else {
            r.out.extend_from_slice(method);
            r.out.push(b' ');
        }
        r
    }

    /// The request target (path and query), written by `f`.
    #[inline]
    pub fn target(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        if self.items {
            self.item(f);
        } else {
            f(self.out);
            self.out.extend_from_slice(b" HTTP/1.1\r\n");
        }
    }

    #[inline]
    pub fn field(&mut self, name: &[u8], value: &[u8]) {
        if self.items {
            self.item(|o| o.extend_from_slice(name));
            self.item(|o| o.extend_from_slice(value));
        } else {
            encode::header(self.out, name, value);
        }
    }

    /// A field whose value `f` writes.
    #[inline]
    pub fn field_with(&mut self, name: &[u8], f: impl FnOnce(&mut Vec<u8>)) {
        if self.items {
            self.item(|o| o.extend_from_slice(name));
            self.item(f);
        } else {
            self.out.extend_from_slice(name);
            self.out.extend_from_slice(b": ");
            f(self.out);
            self.out.extend_from_slice(b"\r\n");
        }
    }

    /// Ends the head with the body's framing (HTTP/2 has no chunked framing: a
    /// body without a length simply ends with the stream). Returns the head's length.
    #[inline]
    pub fn end(self, body: BodyFraming) -> usize {
        if self.items {
            if let BodyFraming::Length(n) = body {
                let mut r = self;
                r.field_with(b"content-length", |v| encode::decimal(v, n));
                return r.out.len();
            }
            return self.out.len();
        }
        match body {
            BodyFraming::Length(n) => encode::content_length(self.out, n),
            BodyFraming::Chunked => self
                .out
                .extend_from_slice(b"transfer-encoding: chunked\r\n"),
            BodyFraming::Empty | BodyFraming::UntilClose => {}
        }
        self.out.extend_from_slice(b"\r\n");
        self.out.len()
    }

    /// One length-prefixed item (u32, little-endian) written by `f`.
    fn item(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        let at = self.out.len();
        self.out.extend_from_slice(&[0; 4]);
        f(self.out);
        let len = (self.out.len() - at - 4) as u32;
        self.out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
}

/// The items of a head [`RequestOut`] wrote for HTTP/2: method, target, then names
/// and values in turn.
pub fn request_items(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let item = rest.get(4..4 + len)?;
        rest = &rest[4 + len..];
        Some(item)
    })
}

/// One piece of a request body streamed to an upstream: a chunk for HTTP/1.1
/// (`chunked`), the bytes as they are for HTTP/2 or a length-framed body.
pub fn request_chunk(out: &mut Vec<u8>, chunked: bool, data: &[u8]) {
    if chunked && !data.is_empty() {
        encode::chunk_head(out, data.len());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(data);
    }
}

/// The last chunk of a chunked request body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Appends a field as a header line (`name: value\r\n`): the form in which the plan
/// keeps a mock's fields and the cache a stored response's ([`ResponseHead::lines`]).
pub fn push_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    encode::header(out, name, value);
}

/// A header line whose value is `n` in decimal.
pub fn push_line_decimal(out: &mut Vec<u8>, name: &[u8], n: u64) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    encode::decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// The fields of HTTP/1.1 header lines the gateway wrote or validated itself.
pub fn header_lines(text: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> + Clone {
    text.split(|&b| b == b'\n').filter_map(|line| {
        let line = line.strip_suffix(b"\r")?;
        let colon = line.iter().position(|&b| b == b':')?;
        Some((&line[..colon], line[colon + 1..].trim_ascii()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_head_is_http1() {
        let mut w = Vec::new();
        let mut h = ResponseHead::text(&mut w, 429);
        h.field(b"content-type", b"application/json");
        h.field_decimal(b"retry-after", 3);
        h.lines(b"x-a: 1\r\nx-b: two words\r\n");
        assert!(h.end(BodyFraming::Length(2), true).1);
        assert_eq!(
            String::from_utf8(w).unwrap(),
            "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 3\r\nx-a: 1\r\nx-b: two words\r\ncontent-length: 2\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn request_heads_are_text_or_items() {
        let write = |h2| {
            let mut out = Vec::new();
            let mut r = RequestOut::start(&mut out, h2, b"POST");
            r.target(|t| t.extend_from_slice(b"/a?b=1"));
            r.field(b"host", b"up");
            r.field_with(b"x-forwarded-for", |v| v.extend_from_slice(b"1.2.3.4"));
            let n = r.end(BodyFraming::Length(5));
            assert_eq!(n, out.len());
            out
        };
        assert_eq!(
            write(false),
            b"POST /a?b=1 HTTP/1.1\r\nhost: up\r\nx-forwarded-for: 1.2.3.4\r\ncontent-length: 5\r\n\r\n"
        );
        let items = write(true);
        let got: Vec<&[u8]> = request_items(&items).collect();
        assert_eq!(
            got,
            vec![
                &b"POST"[..],
                b"/a?b=1",
                b"host",
                b"up",
                b"x-forwarded-for",
                b"1.2.3.4",
                b"content-length",
                b"5"
            ]
        );
        let mut chunked = Vec::new();
        request_chunk(&mut chunked, true, b"hello");
        request_chunk(&mut chunked, false, b"!");
        assert_eq!(chunked, b"5\r\nhello\r\n!");
    }

    #[test]
    fn header_lines_split_into_fields() {
        let f: Vec<_> = header_lines(b"a: 1\r\nb:2\r\nbroken\r\nc:  x y \r\n").collect();
        assert_eq!(
            f,
            vec![(&b"a"[..], &b"1"[..]), (b"b", b"2"), (b"c", b"x y")]
        );
    }
}
