//! Network helpers: host addresses for advertising client URLs, listening with the
//! reference's errors, and the accept loop every listener runs.

use std::net::IpAddr;

/// The machine's non-loopback interface addresses, IPv4 first.
pub fn non_loopback_ips() -> Vec<String> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    // SAFETY: getifaddrs allocates a list we walk read-only and free with freeifaddrs.
    unsafe {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut head) != 0 {
            return Vec::new();
        }
        let mut cur = head;
        while !cur.is_null() {
            let ifa = &*cur;
            if !ifa.ifa_addr.is_null() {
                let family = (*ifa.ifa_addr).sa_family as i32;
                if family == libc::AF_INET {
                    let sa = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    let ip = IpAddr::from(u32::from_be(sa.sin_addr.s_addr).to_be_bytes());
                    if !ip.is_loopback() {
                        v4.push(ip.to_string());
                    }
                } else if family == libc::AF_INET6 {
                    let sa = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    let ip = IpAddr::from(sa.sin6_addr.s6_addr);
                    let link_local =
                        matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
                    if !ip.is_loopback() && !link_local {
                        v6.push(ip.to_string());
                    }
                }
            }
            cur = ifa.ifa_next;
        }
        libc::freeifaddrs(head);
    }
    v4.dedup();
    v6.dedup();
    v4.extend(v6);
    v4
}

/// Pending-connection queue for listeners. The standard library asks for 128, which drops
/// connection attempts when thousands of clients (re)connect at once; the reference asks
/// the kernel for its maximum (commonly 4096).
const LISTEN_BACKLOG: u32 = 4096;

/// Binds a TCP listener on `addr` (`host:port`) with a deep accept backlog.
pub async fn listen(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    let mut last = None;
    for sa in tokio::net::lookup_host(addr).await? {
        let socket = if sa.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        // As Go does, so a restarted server can rebind while old connections linger.
        socket.set_reuseaddr(true)?;
        match socket.bind(sa).and_then(|_| socket.listen(LISTEN_BACKLOG)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no address to bind")
    }))
}

/// A listen failure in Go's words (`bind: address already in use`), as the reference
/// prints them after `listen tcp host:port: `.
pub fn go_listen_error(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EADDRINUSE | libc::EADDRNOTAVAIL | libc::EACCES) => {
            format!("bind: {}", crate::syslog::errno_text(e))
        }
        Some(_) => crate::syslog::errno_text(e),
        None => e.to_string(),
    }
}

/// Accepts connections on `listener` until the server shuts down, handing each to `handle` in
/// a task of its own. An accept error (out of descriptors, say) is logged as the reference
/// logs it (`Temporary <kind> Accept Error`) and retried after 10 ms instead of spinning.
pub async fn accept_loop<F, Fut>(
    server: std::sync::Arc<crate::server::Server>,
    listener: tokio::net::TcpListener,
    kind: &str,
    handle: F,
) where
    F: Fn(
        std::sync::Arc<crate::server::Server>,
        tokio::net::TcpStream,
        std::net::SocketAddr,
    ) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                if server.is_shutting_down() {
                    return;
                }
                tokio::spawn(handle(server.clone(), stream, addr));
            }
            Err(e) => {
                tracing::error!("Temporary {kind} Accept Error({e}), sleeping 10ms");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}
