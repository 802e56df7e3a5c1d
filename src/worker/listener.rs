//! Listening sockets: one per worker per address, all with SO_REUSEPORT so the kernel
//! spreads connections over cores. Refuses to start when something else already
//! listens on an address, which SO_REUSEPORT would otherwise share silently.
//!
//! A process killed with SIGKILL leaves its listening sockets to the kernel for a
//! moment (io_uring's teardown releases them from a work queue, ~150 ms): a restart
//! in that window (systemd's `Restart=always`) waits for them to go, up to
//! [`DYING_HOLDER_WAIT`], while a socket a live process holds is refused at once.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

const BACKLOG: i32 = 4096;
/// How long a restart waits for the listening sockets of a process that died.
pub const DYING_HOLDER_WAIT: Duration = Duration::from_secs(2);

/// Fails with a clear error when another socket already listens on `addr`. A socket
/// no live process holds (its owner died and the kernel is still releasing it) is
/// waited for, up to [`DYING_HOLDER_WAIT`].
pub fn ensure_free(addr: SocketAddr) -> io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let deadline = Instant::now() + DYING_HOLDER_WAIT;
    loop {
        match probe(addr) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                let owner = holder::live_owner(addr);
                if owner.is_some() || Instant::now() >= deadline {
                    let who = match owner {
                        Some((pid, name)) => format!("process {pid} ({name})"),
                        None => "another process".to_string(),
                    };
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("{addr} is already in use by {who} (a stale turnpike?); refusing to share it through SO_REUSEPORT"),
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(io::Error::new(e.kind(), format!("cannot bind {addr}: {e}"))),
        }
    }
}

/// Binds (and drops) a socket without SO_REUSEPORT: fails while anything listens.
fn probe(addr: SocketAddr) -> io::Result<()> {
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // SO_REUSEADDR lets us bind over TIME_WAIT leftovers, but not over a listener.
    probe.set_reuse_address(true)?;
    probe.bind(&addr.into())
}

mod holder;

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
