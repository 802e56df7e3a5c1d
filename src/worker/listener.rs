//! Listening sockets: one per worker per address, all with SO_REUSEPORT so the kernel
//! spreads connections over cores. Refuses to start when something else already
//! listens on an address, which SO_REUSEPORT would otherwise share silently.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

const BACKLOG: i32 = 4096;

/// Fails with a clear error when another socket already listens on `addr`.
pub fn ensure_free(addr: SocketAddr) -> io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // SO_REUSEADDR lets us bind over TIME_WAIT leftovers, but not over a listener.
    probe.set_reuse_address(true)?;
    match probe.bind(&addr.into()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{addr} is already in use by another process (a stale turnpike?); refusing to share it through SO_REUSEPORT"),
        )),
        Err(e) => Err(io::Error::new(e.kind(), format!("cannot bind {addr}: {e}"))),
    }
}

pub fn bind_one(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.set_nodelay(true)?;
    s.bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind {addr}: {e}")))?;
    s.listen(BACKLOG)?;
    Ok(s.into())
}

/// Binds `workers` listeners per address. Port 0 is resolved once, by the first
/// bind, and the others share that port. Returns per-worker listener lists and the
/// addresses actually bound.
pub fn bind_all(
    addrs: &[SocketAddr],
    workers: usize,
) -> io::Result<(Vec<Vec<std::net::TcpListener>>, Vec<SocketAddr>)> {
    let mut per_worker: Vec<Vec<std::net::TcpListener>> =
        (0..workers).map(|_| Vec::new()).collect();
    let mut bound = Vec::new();
    for &addr in addrs {
        ensure_free(addr)?;
        let first = bind_one(addr)?;
        let actual = first.local_addr()?;
        bound.push(actual);
        per_worker[0].push(first);
        for list in per_worker.iter_mut().skip(1) {
            list.push(bind_one(actual)?);
        }
    }
    Ok((per_worker, bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_refused() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = ensure_free(addr).unwrap_err();
        assert!(err.to_string().contains("already in use"), "{err}");
        drop(taken);
        assert!(ensure_free(addr).is_ok());
    }

    #[test]
    fn port_zero_is_shared_by_all_workers() {
        let (lists, bound) = bind_all(&["127.0.0.1:0".parse().unwrap()], 3).unwrap();
        assert_eq!(lists.len(), 3);
        let port = bound[0].port();
        assert!(lists
            .iter()
            .all(|l| l[0].local_addr().unwrap().port() == port));
    }
}
