//! Connections to upstream targets: per-worker keep-alive pools (`pool`), target choice,
//! outlier detection and retry budgets (`balance`, per worker: no locks), node-wide
//! active health checks (`health`, one thread), and connecting with a timeout.
//! Tested end to end by the proxy tests (`tests/proxy.rs`) and by unit tests here.

pub mod balance;
pub mod call;
pub mod exchange;
pub mod gate;
pub mod h2;
pub mod health;
pub mod pool;
pub mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use monoio::net::TcpStream;

use crate::error::Error;

pub use pool::{Pools, UpConn};
pub use tls::{TlsPeer, UpIo};

/// Connects to `addr` (and runs the TLS handshake when `tls` says so), giving up
/// after `timeout` for both. A refusal is a 502, a timeout a 504, a failed handshake
/// a 502.
pub async fn connect(
    addr: SocketAddr,
    timeout: Duration,
    tls: Option<&TlsPeer>,
) -> Result<UpIo, Error> {
    let attempt = async {
        let s = TcpStream::connect_addr(addr)
            .await
            .map_err(|_| Error::UpstreamConnect)?;
        let _ = s.set_nodelay(true);
        match tls {
            None => Ok(UpIo::Plain(s)),
            Some(peer) => tls::handshake(s, peer)
                .await
                .map_err(|_| Error::UpstreamTls),
        }
    };
    match monoio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(Error::UpstreamConnectTimeout),
    }
}
