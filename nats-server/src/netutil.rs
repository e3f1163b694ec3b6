//! Host addresses, for advertising client URLs when listening on all interfaces.

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
