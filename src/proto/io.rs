//! The owned-buffer read buffer every connection (client or upstream) reads into.

use std::io;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};

/// Read at least this much per syscall when there is room to.
const MIN_READ: usize = 4096;

/// Bytes read from a socket and not yet consumed: `buf[start..]`.
#[derive(Debug, Default)]
pub struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
}

impl ReadBuf {
    pub fn with_capacity(n: usize) -> Self {
        ReadBuf {
            buf: Vec::with_capacity(n),
            start: 0,
        }
    }

    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.buf.len()
    }

    /// Frees the buffer when nothing is unconsumed; the next `fill` allocates again.
    pub fn release(&mut self) {
        if self.is_empty() {
            self.buf = Vec::new();
            self.start = 0;
        }
    }

    /// Appends bytes that did not come from a socket (an HTTP/2 response's fields).
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Reads once from `io`, appending. `Ok(0)` is end of stream. The buffer grows
    /// only while unconsumed data fills it; callers bound that (head size limits).
    pub async fn fill<S: AsyncReadRent>(&mut self, io: &mut S) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < MIN_READ {
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            if self.buf.capacity() - self.buf.len() < MIN_READ {
                self.buf.reserve(MIN_READ.max(self.buf.len()));
            }
        }
        let buf = std::mem::take(&mut self.buf);
        let len = buf.len();
        let (res, slice) = io.read(buf.slice_mut(len..)).await;
        self.buf = slice.into_inner();
        res
    }
}

/// Write buffers above this are released after a flush instead of kept.
const KEEP_WRITE_CAPACITY: usize = 64 << 10;

/// Writes all of `buf` and clears it, keeping its allocation unless it is large.
pub async fn flush<S: AsyncWriteRent>(io: &mut S, buf: &mut Vec<u8>) -> io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let owned = std::mem::take(buf);
    let (res, mut owned) = io.write_all(owned).await;
    owned.clear();
    // A large response grew this buffer; do not keep that much per connection.
    if owned.capacity() <= KEEP_WRITE_CAPACITY {
        *buf = owned;
    }
    res.map(|_| ())
}
