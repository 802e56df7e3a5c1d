//! Who holds a listening address: the kernel's socket tables (`/proc/net/tcp{,6}`)
//! give the listening sockets' inodes, and `/proc/PID/fd` says which live process has
//! one open. A socket in the table that no process has open belongs to a process
//! that is gone (the kernel is still tearing it down). Where `/proc` cannot be read,
//! nothing is known and the caller waits its bounded time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// TCP state LISTEN in `/proc/net/tcp`.
const LISTEN: &str = "0A";

/// The live process (pid, command name) that has a socket listening on `addr` open.
pub fn live_owner(addr: SocketAddr) -> Option<(u32, String)> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            inodes.extend(listening_inodes(&text, addr));
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for proc in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(proc.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if wanted.iter().any(|w| link.as_os_str() == w.as_str()) {
                let name = std::fs::read_to_string(proc.path().join("comm"))
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default();
                return Some((pid, name));
            }
        }
    }
    None
}

/// Inodes of the sockets in a `/proc/net/tcp{,6}` table that listen where a bind to
/// `addr` would collide: the same port on the same address or on the wildcard one.
fn listening_inodes(table: &str, addr: SocketAddr) -> Vec<u64> {
    let mut out = Vec::new();
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 10 || cols[3] != LISTEN {
            continue;
        }
        let Some((ip, port)) = parse_local(cols[1]) else {
            continue;
        };
        if port != addr.port() || !(ip.is_unspecified() || ip == addr.ip()) {
            continue;
        }
        if let Ok(inode) = cols[9].parse::<u64>() {
            if inode != 0 {
                out.push(inode);
            }
        }
    }
    out
}

/// `0100007F:1F90` (IPv4) or 32 hex digits `:PORT` (IPv6): each 32-bit word of the
/// address printed as a native-endian number.
fn parse_local(s: &str) -> Option<(IpAddr, u16)> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_ne_bytes())
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            let v6 = Ipv6Addr::from(b);
            // a v4-mapped listener collides with the IPv4 address
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some((ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kernels_socket_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n\
   1: 00000000:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 100 0 0 10 0\n\
   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 4444 1 0000000000000000 100 0 0 10 0\n";
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(listening_inodes(table, at("127.0.0.1:8080")), vec![4242]);
        // the wildcard listener on 8081 collides with any address on that port
        assert_eq!(listening_inodes(table, at("127.0.0.5:8081")), vec![4343]);
        assert!(listening_inodes(table, at("127.0.0.2:8080")).is_empty());
    }

    #[test]
    fn finds_the_live_owner_of_a_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        // where /proc is readable (Linux), the test process itself is found
        if std::path::Path::new("/proc/net/tcp").exists() {
            let (pid, _) = live_owner(addr).expect("owner");
            assert_eq!(pid, std::process::id());
        }
        drop(l);
        assert!(live_owner(addr).is_none());
    }
}
