//! Writing HTTP/1.1 we send: status lines, framing headers, chunk framing.

use std::io::Write;

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

pub fn status_line(out: &mut Vec<u8>, status: u16) {
    out.extend_from_slice(b"HTTP/1.1 ");
    let mut b = itoa_buf::Buffer::new();
    out.extend_from_slice(b.format(status));
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\n");
}

pub fn header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

pub fn content_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"content-length: ");
    let mut b = itoa_buf::Buffer::new();
    out.extend_from_slice(b.format(n));
    out.extend_from_slice(b"\r\n");
}

/// `n` in decimal.
pub fn decimal(out: &mut Vec<u8>, n: u64) {
    let mut b = itoa_buf::Buffer::new();
    out.extend_from_slice(b.format(n));
}

/// The chunk-size line of a chunk of `n` bytes.
pub fn chunk_head(out: &mut Vec<u8>, n: usize) {
    let _ = write!(out, "{n:x}\r\n");
}

/// Small integer formatting without going through `fmt` on the hot path.
mod itoa_buf {
    pub struct Buffer {
        bytes: [u8; 20],
    }

    impl Buffer {
        pub fn new() -> Self {
            Buffer { bytes: [0; 20] }
        }

        pub fn format(&mut self, n: impl Into<u64>) -> &[u8] {
            let mut n: u64 = n.into();
            let mut i = self.bytes.len();
            loop {
                i -= 1;
                self.bytes[i] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            &self.bytes[i..]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes() {
        let mut out = Vec::new();
        status_line(&mut out, 404);
        content_length(&mut out, 1234567);
        chunk_head(&mut out, 255);
        assert_eq!(
            out,
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 1234567\r\nff\r\n"
        );
    }
}
