//! The thin layer over the kernel: ICMP sockets, the ARP/NDP sockets of the layer-2 probe,
//! the TCP and UDP sockets of `tcp:` and `dns:` targets, host addresses, interface flags,
//! rtnetlink, signals, child processes, lock files, the monotonic clock, and boot id, uptime and reboot(2). This is the only
//! module allowed `unsafe`, and only where nix has no safe call; every block says why it is
//! sound. Everything here returns `io::Error`s for the caller to name.
pub mod addrs;
#[cfg(test)]
pub mod alloc_count;
pub mod boot;
pub mod clock;
pub mod daemonize;
pub mod filewatch;
pub mod icmp;
pub mod iface;
pub mod l2;
pub mod lock;
pub mod netlink;
pub mod poll;
pub mod process;
pub mod signals;
pub mod stream;

use std::io;

/// `-1` + errno into `io::Error`, anything else into Ok.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
