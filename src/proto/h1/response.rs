//! Response heads read from upstreams.

use super::body::BodyFraming;
use super::request::parse_content_length;

/// Most header lines an upstream response may have.
pub const MAX_HEADERS: usize = 100;

/// A parsed upstream response head; header lines are kept as offsets into the input.
#[derive(Debug, Default)]
pub struct ResponseHead {
    pub status: u16,
    pub version: u8,
    pub body: BodyFraming,
    pub keep_alive: bool,
    /// (name, value) byte ranges into the buffer the head was parsed from.
    pub headers: Vec<((usize, usize), (usize, usize))>,
    /// Offset of the reason phrase.
    pub reason: (usize, usize),
    /// Length of the head in bytes (the body starts after it).
    pub head_len: usize,
}

/// `Ok(None)`: need more bytes. `Err(())`: malformed (→ 502).
/// `request_was_head`: a HEAD response has no body whatever its headers say.
#[allow(clippy::result_unit_err)]
pub fn parse_response(
    input: &[u8],
    max_size: usize,
    request_was_head: bool,
    out: &mut ResponseHead,
) -> Result<Option<usize>, ()> {
    // Uninitialised: zeroing 100 headers (3.2 KB) cost more than parsing a small head.
    let mut raw = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    let n = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut res, input, &mut raw)
    {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if input.len() > max_size {
                Err(())
            } else {
                Ok(None)
            }
        }
        Err(_) => return Err(()),
    };
    let base = input.as_ptr() as usize;
    let off = |s: &[u8]| {
        let a = s.as_ptr() as usize - base;
        (a, a + s.len())
    };
    out.status = res.code.ok_or(())?;
    out.version = res.version.ok_or(())?;
    out.reason = off(res.reason.unwrap_or("").as_bytes());
    out.headers.clear();
    let mut cl = None;
    let mut chunked = false;
    let mut close = out.version == 0;
    for h in res.headers.iter() {
        let name = h.name.as_bytes();
        out.headers.push((off(name), off(h.value)));
        if name.eq_ignore_ascii_case(b"content-length") {
            let v = parse_content_length(h.value).ok_or(())?;
            if cl.is_some_and(|c| c != v) {
                return Err(());
            }
            cl = Some(v);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Only `chunked` is understood; anything else cannot be framed safely.
            if !h.value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(());
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            if super::has_token(h.value, b"close") {
                close = true;
            } else if super::has_token(h.value, b"keep-alive") {
                close = false;
            }
        }
    }
    let no_body = request_was_head || out.status < 200 || out.status == 204 || out.status == 304;
    out.body = if no_body {
        BodyFraming::Empty
    } else if chunked {
        BodyFraming::Chunked
    } else {
        match cl {
            Some(0) => BodyFraming::Empty,
            Some(n) => BodyFraming::Length(n),
            None => {
                close = true;
                BodyFraming::UntilClose
            }
        }
    };
    if chunked && cl.is_some() {
        // RFC 9112 §6.3: TE wins, but the connection cannot be trusted afterwards.
        close = true;
    }
    out.keep_alive = !close;
    out.head_len = n;
    Ok(Some(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_responses() {
        let mut h = ResponseHead::default();
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(parse_response(raw, 8192, false, &mut h), Ok(Some(38)));
        assert_eq!(h.body, BodyFraming::Length(5));
        assert!(h.keep_alive);
        let raw = b"HTTP/1.0 200 OK\r\n\r\n";
        parse_response(raw, 8192, false, &mut h).unwrap();
        assert_eq!(h.body, BodyFraming::UntilClose);
        assert!(!h.keep_alive);
        let raw = b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n";
        parse_response(raw, 8192, false, &mut h).unwrap();
        assert_eq!(h.body, BodyFraming::Empty);
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n";
        assert!(parse_response(raw, 8192, false, &mut h).is_err());
        assert!(parse_response(b"garbage\r\n\r\n", 8192, false, &mut h).is_err());
    }
}
