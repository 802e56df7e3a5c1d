//! Request heads: httparse into a stack array, then the framing decisions, kept as
//! offsets into one reused per-connection buffer (no allocation per request once warm).

use std::ops::Range;

use super::body::BodyFraming;
use super::has_token;

/// Most header lines a request may have; more → 431.
pub const MAX_HEADERS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// 400, and the connection closes.
    Malformed,
    /// 431.
    TooLarge,
}

type Span = (u32, u32);

fn span(r: Range<usize>) -> Span {
    (r.start as u32, r.end as u32)
}

/// A parsed request head. Its bytes live in `buf`; everything else is offsets.
#[derive(Debug, Default)]
pub struct RequestHead {
    pub buf: Vec<u8>,
    method: Span,
    path: Span,
    query: Option<Span>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    headers: Vec<(Span, Span)>,
    pub body: BodyFraming,
    pub keep_alive: bool,
    pub expect_continue: bool,
    host: Option<Span>,
}

impl RequestHead {
    fn slice(&self, s: Span) -> &[u8] {
        &self.buf[s.0 as usize..s.1 as usize]
    }

    pub fn method(&self) -> &[u8] {
        self.slice(self.method)
    }

    /// The path without the query, always starting with `/` (origin-form).
    pub fn path(&self) -> &str {
        let bytes = self.slice(self.path);
        debug_assert!(bytes.is_ascii());
        // SAFETY: `parse_request` accepts only targets whose every byte is visible
        // ASCII (`is_ascii_graphic`), and `path` is a sub-range of that target that
        // starts and ends on byte boundaries of it, so these bytes are valid UTF-8.
        // A default (never parsed) head has an empty range, also valid.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    /// The query string without `?`, if any.
    pub fn query(&self) -> Option<&[u8]> {
        self.query.map(|q| self.slice(q))
    }

    /// The Host header's host part, without port (not lower-cased).
    pub fn host(&self) -> &[u8] {
        let Some(h) = self.host else { return b"" };
        let h = self.slice(h);
        if h.first() == Some(&b'[') {
            // [v6]:port
            return match memchr::memchr(b']', h) {
                Some(i) => &h[..=i],
                None => h,
            };
        }
        match memchr::memrchr(b':', h) {
            Some(i) => &h[..i],
            None => h,
        }
    }

    /// The Host header as sent (with port).
    pub fn host_header(&self) -> &[u8] {
        self.host.map_or(&[][..], |h| self.slice(h))
    }

    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.headers
            .iter()
            .map(|(n, v)| (self.slice(*n), self.slice(*v)))
    }

    pub fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn is_head(&self) -> bool {
        self.method() == b"HEAD"
    }
}

impl RequestHead {
    /// A head from a request that arrived already parsed (an HTTP/2 HEADERS frame):
    /// its parts are copied into the head's buffer once, never written out as text
    /// and parsed again, with the checks and framing rules of [`parse_request`].
    /// `host` is the `:authority` (or the `host` field); `cookie` fields are joined
    /// into one (RFC 9113 §8.2.3); connection-specific fields are dropped. The body
    /// is `Chunked` when the stream has data and no `content-length` says how much.
    pub fn from_parts<'h>(
        &mut self,
        method: &[u8],
        target: &[u8],
        host: &[u8],
        headers: impl Iterator<Item = (&'h [u8], &'h [u8])>,
        end_of_stream: bool,
    ) -> Result<(), HeadError> {
        if !target.starts_with(b"/")
            || !target.iter().all(|b| b.is_ascii_graphic())
            || host.is_empty()
        {
            return Err(HeadError::Malformed);
        }
        self.buf.clear();
        self.headers.clear();
        let push = |buf: &mut Vec<u8>, bytes: &[u8]| {
            let a = buf.len();
            buf.extend_from_slice(bytes);
            span(a..buf.len())
        };
        self.method = push(&mut self.buf, method);
        let t = push(&mut self.buf, target);
        match memchr::memchr(b'?', target) {
            Some(q) => {
                let q = t.0 + q as u32;
                self.path = (t.0, q);
                self.query = Some((q + 1, t.1));
            }
            None => {
                self.path = t;
                self.query = None;
            }
        }
        let name = push(&mut self.buf, b"host");
        let value = push(&mut self.buf, host);
        self.headers.push((name, value));
        self.host = Some(value);
        self.version = 1;
        self.keep_alive = true;
        self.expect_continue = false;
        let mut content_length: Option<u64> = None;
        // cookie fields, joined into one (allocates only when there are some)
        let mut cookies: Vec<&[u8]> = Vec::new();
        for (n, v) in headers {
            match n {
                b"host" => continue,
                b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding"
                | b"upgrade" => continue,
                b"cookie" => {
                    cookies.push(v);
                    continue;
                }
                b"content-length" => {
                    if content_length.is_some() {
                        return Err(HeadError::Malformed);
                    }
                    content_length = Some(parse_content_length(v).ok_or(HeadError::Malformed)?);
                }
                b"expect" => self.expect_continue = v.eq_ignore_ascii_case(b"100-continue"),
                _ => {}
            }
            let name = push(&mut self.buf, n);
            let value = push(&mut self.buf, v);
            self.headers.push((name, value));
        }
        if let Some((first, rest)) = cookies.split_first() {
            let name = push(&mut self.buf, b"cookie");
            let start = self.buf.len();
            self.buf.extend_from_slice(first);
            for c in rest {
                self.buf.extend_from_slice(b"; ");
                self.buf.extend_from_slice(c);
            }
            self.headers.push((name, span(start..self.buf.len())));
        }
        self.body = match content_length {
            _ if end_of_stream => BodyFraming::Empty,
            Some(0) => BodyFraming::Empty,
            Some(n) => BodyFraming::Length(n),
            None => BodyFraming::Chunked,
        };
        Ok(())
    }
}

/// Parses one request head from the front of `input`. `Ok(None)`: need more bytes.
/// `Ok(Some(n))`: `n` bytes were the head, now held in `head`.
pub fn parse_request(
    input: &[u8],
    max_size: usize,
    head: &mut RequestHead,
) -> Result<Option<usize>, HeadError> {
    // Uninitialised: zeroing 100 headers (3.2 KB) cost more than parsing a small head.
    let mut raw = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let n = match req.parse_with_uninit_headers(input, &mut raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if input.len() > max_size {
                Err(HeadError::TooLarge)
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed),
    };
    if n > max_size {
        return Err(HeadError::TooLarge);
    }
    // A bare CR anywhere in the head is already an httparse error (Token, NewLine,
    // HeaderName or HeaderValue): `rejects_bare_cr` keeps us honest about that.
    let base = input.as_ptr() as usize;
    let off = |s: &[u8]| {
        let a = s.as_ptr() as usize - base;
        a..a + s.len()
    };
    let method = req.method.ok_or(HeadError::Malformed)?;
    let target = req.path.ok_or(HeadError::Malformed)?;
    // origin-form only (no absolute-form or CONNECT authority-form at the edge).
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(HeadError::Malformed);
    }
    let version = req.version.ok_or(HeadError::Malformed)?;

    head.buf.clear();
    head.buf.extend_from_slice(&input[..n]);
    head.headers.clear();
    head.method = span(off(method.as_bytes()));
    let t = off(target.as_bytes());
    match memchr::memchr(b'?', target.as_bytes()) {
        Some(q) => {
            head.path = span(t.start..t.start + q);
            head.query = Some(span(t.start + q + 1..t.end));
        }
        None => {
            head.path = span(t);
            head.query = None;
        }
    }
    head.version = version;
    head.host = None;
    head.expect_continue = false;

    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut saw_te = false;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        let value = h.value;
        head.headers.push((span(off(name)), span(off(value))));
        if name.eq_ignore_ascii_case(b"content-length") {
            if content_length.is_some() {
                return Err(HeadError::Malformed);
            }
            content_length = Some(parse_content_length(value).ok_or(HeadError::Malformed)?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if saw_te || !value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(HeadError::Malformed);
            }
            saw_te = true;
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"host") {
            if head.host.is_some() || value.is_empty() {
                return Err(HeadError::Malformed);
            }
            head.host = Some(span(off(value)));
        } else if name.eq_ignore_ascii_case(b"connection") {
            conn_close |= has_token(value, b"close");
            conn_keep_alive |= has_token(value, b"keep-alive");
        } else if name.eq_ignore_ascii_case(b"expect") {
            head.expect_continue = value.eq_ignore_ascii_case(b"100-continue");
        }
    }
    if chunked && (content_length.is_some() || version == 0) {
        return Err(HeadError::Malformed);
    }
    if version == 1 && head.host.is_none() {
        return Err(HeadError::Malformed);
    }
    head.body = match (chunked, content_length) {
        (true, _) => BodyFraming::Chunked,
        (false, Some(0)) | (false, None) => BodyFraming::Empty,
        (false, Some(n)) => BodyFraming::Length(n),
    };
    head.keep_alive = if version == 1 {
        !conn_close
    } else {
        conn_keep_alive && !conn_close
    };
    Ok(Some(n))
}

/// Content-Length: digits only, no sign, no list, at most 18 digits.
pub fn parse_content_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests;
