//! Connections to upstream targets: per-worker keep-alive pools (`pool`), target choice,
//! outlier detection and retry budgets (`balance`, per worker: no locks), node-wide
//! active health checks (`health`, one thread), and connecting with a timeout.
//! Tested end to end by the proxy tests (`tests/proxy.rs`) and by unit tests here.

pub mod balance;
pub mod health;
pub mod pool;

use std::net::SocketAddr;
use std::time::Duration;

use monoio::net::TcpStream;

use crate::error::Error;

pub use pool::{Pools, UpConn};

/// Connects to `addr`, giving up after `timeout`. A refusal is a 502, a timeout a 504.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, Error> {
    match monoio::time::timeout(timeout, TcpStream::connect_addr(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(_)) => Err(Error::UpstreamConnect),
        Err(_) => Err(Error::UpstreamConnectTimeout),
    }
}
