//! Byte streams for the `h2` crate on monoio's poll-style sockets: TLS carried on
//! from the completion-style handshake (or run here, for upstreams), and write
//! batching so many streams' frames leave in one `send`.

use std::future::poll_fn;
use std::io;
use std::task::Poll;

/// TLS over monoio's poll-style socket, for HTTP/2. Server side: the handshake ran
/// on the completion-style socket (`proto::tls`), ALPN chose `h2`, and the session
/// (with any records it already read) carries on here. Client side (HTTP/2
/// upstreams): the handshake runs here ([`PollTls::handshake`]).
pub struct PollTls<T> {
    io: T,
    tls: rustls::Connection,
}

impl<T> PollTls<T> {
    pub fn new(io: T, tls: impl Into<rustls::Connection>) -> Self {
        PollTls {
            io,
            tls: tls.into(),
        }
    }

    /// The protocol ALPN agreed on, once the handshake is done.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.tls.alpn_protocol()
    }
}

/// `std::io` views of a poll-style socket for rustls's `read_tls`/`write_tls`:
/// `Pending` becomes `WouldBlock`.
struct Sync<'a, 'b, T> {
    io: &'a mut T,
    cx: &'a mut std::task::Context<'b>,
}

impl<T: tokio::io::AsyncRead + Unpin> io::Read for Sync<'_, '_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut rb = tokio::io::ReadBuf::new(buf);
        match std::pin::Pin::new(&mut *self.io).poll_read(self.cx, &mut rb) {
            Poll::Ready(Ok(())) => Ok(rb.filled().len()),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> io::Write for Sync<'_, '_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::pin::Pin::new(&mut *self.io).poll_write(self.cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> PollTls<T> {
    /// Runs the handshake to its end (the caller bounds it in time).
    pub async fn handshake(&mut self) -> io::Result<()> {
        poll_fn(|cx| loop {
            match self.poll_write_tls(cx) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
            if !self.tls.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            let mut s = Sync {
                io: &mut self.io,
                cx,
            };
            match self.tls.read_tls(&mut s) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
                Ok(_) => {
                    if let Err(e) = self.tls.process_new_packets() {
                        // send the alert saying why
                        let _ = self.poll_write_tls(cx);
                        return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
        })
        .await
    }

    /// Writes pending TLS records to the socket; `Pending` while it is full.
    fn poll_write_tls(&mut self, cx: &mut std::task::Context<'_>) -> Poll<io::Result<()>> {
        while self.tls.wants_write() {
            let mut s = Sync {
                io: &mut self.io,
                cx,
            };
            match self.tls.write_tls(&mut s) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> tokio::io::AsyncRead for PollTls<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match io::Read::read(&mut this.tls.reader(), buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            let mut s = Sync {
                io: &mut this.io,
                cx,
            };
            match this.tls.read_tls(&mut s) {
                Ok(0) => return Poll::Ready(Ok(())),
                Ok(_) => {
                    if let Err(e) = this.tls.process_new_packets() {
                        // tell the peer why before giving up
                        let _ = this.poll_write_tls(cx);
                        return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
                    }
                    // key updates and the like
                    if let Poll::Ready(Err(e)) = this.poll_write_tls(cx) {
                        return Poll::Ready(Err(e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for PollTls<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            let n = io::Write::write(&mut this.tls.writer(), buf)?;
            // send what can be sent; records left over go with the next write or flush
            match this.poll_write_tls(cx) {
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending if n == 0 => return Poll::Pending,
                _ => {}
            }
            if n > 0 || buf.is_empty() {
                return Poll::Ready(Ok(n));
            }
        }
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.poll_write_tls(cx) {
            Poll::Ready(Ok(())) => std::pin::Pin::new(&mut this.io).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.tls.send_close_notify();
        match this.poll_write_tls(cx) {
            Poll::Ready(Ok(())) => std::pin::Pin::new(&mut this.io).poll_shutdown(cx),
            other => other,
        }
    }
}

/// Coalesces the HTTP/2 connection's writes: frames are gathered in a buffer, and a
/// flush first yields once to the worker's other tasks (streams finishing their
/// responses), so that many responses leave in one `send` instead of one each.
pub struct Batched<T> {
    inner: T,
    buf: Vec<u8>,
    yielded: bool,
}

/// Gathered output is written out at this size even without a flush.
const BATCH: usize = 64 << 10;

impl<T> Batched<T> {
    pub fn new(inner: T) -> Self {
        Batched {
            inner,
            buf: Vec::with_capacity(16 << 10),
            yielded: false,
        }
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> Batched<T> {
    /// Writes the gathered bytes; `Pending` while the socket is full.
    fn poll_drain(&mut self, cx: &mut std::task::Context<'_>) -> Poll<io::Result<()>> {
        while !self.buf.is_empty() {
            match std::pin::Pin::new(&mut self.inner).poll_write(cx, &self.buf) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.buf.drain(..n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Batched<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Batched<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.buf.len() + data.len() > BATCH {
            match self.poll_drain(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending if self.buf.len() >= BATCH => return Poll::Pending,
                Poll::Pending => {}
            }
        }
        self.buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<io::Result<()>> {
        if self.buf.is_empty() {
            return std::pin::Pin::new(&mut self.inner).poll_flush(cx);
        }
        if !self.yielded {
            // let the streams that are about to answer add their frames first
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.yielded = false;
        match self.poll_drain(cx) {
            Poll::Ready(Ok(())) => std::pin::Pin::new(&mut self.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<io::Result<()>> {
        match self.poll_drain(cx) {
            Poll::Ready(Ok(())) => std::pin::Pin::new(&mut self.inner).poll_shutdown(cx),
            other => other,
        }
    }
}
