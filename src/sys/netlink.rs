//! The daemon's one rtnetlink socket (netlink(7), rtnetlink(7)): non-blocking, close-on-exec,
//! subscribed to link, IPv4/IPv6 address, IPv4/IPv6 route and neighbour notifications, with a
//! receive buffer big enough for a burst of route changes. It sends the dump requests the
//! cache asks for and hands it what arrives, a bounded number of datagrams per call, from one
//! fixed buffer. Lost notifications (ENOBUFS) and truncated datagrams tell the cache to
//! resync; datagrams that do not come from the kernel are dropped.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    self, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};

use crate::kernel::Kernel;
use crate::mono::Instant;
use crate::wire::netlink::{Change, Dump, Messages};

/// RTMGRP_* (rtnetlink.h): the multicast groups of the facts the cache keeps.
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_NEIGH: u32 = 0x4;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;
const RTMGRP_IPV6_ROUTE: u32 = 0x400;
const GROUPS: u32 = RTMGRP_LINK
    | RTMGRP_NEIGH
    | RTMGRP_IPV4_IFADDR
    | RTMGRP_IPV4_ROUTE
    | RTMGRP_IPV6_IFADDR
    | RTMGRP_IPV6_ROUTE;

/// Socket receive buffer asked for. Adding or removing one address makes ~4 messages of
/// ~100 bytes (plus ~700 bytes of kernel overhead each); 2 MiB absorbs a few thousand changes
/// between two turns of the loop before the kernel drops notifications (ENOBUFS -> resync).
/// SO_RCVBUFFORCE (root) goes past net.core.rmem_max; without the privilege we take what
/// SO_RCVBUF gives.
pub const RCVBUF: usize = 2 << 20;
/// The receive buffer: one dump datagram is at most 32 KiB (the kernel's dump skb is
/// capped there), notifications are single messages.
pub const BUF_LEN: usize = 64 << 10;
/// Datagrams handled per `pump`: a flood (a routing daemon loading a full table) is spread
/// over turns of the loop, so echo replies and timers are not starved.
pub const BUDGET: usize = 64;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub datagrams: u64,
    /// ENOBUFS: the kernel dropped notifications for us.
    pub overflows: u64,
    pub truncated: u64,
    /// Datagrams from another process than the kernel.
    pub foreign: u64,
}

pub struct Netlink {
    fd: OwnedFd,
    buf: Box<[u8]>,
    pub counters: Counters,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink")
            .field("fd", &self.fd)
            .field("counters", &self.counters)
            .finish()
    }
}

/// One read from the socket.
enum Recv {
    Datagram(usize),
    Empty,
    Overflow,
    Truncated,
    Foreign,
}

impl Netlink {
    /// Opens and subscribes the socket with a receive buffer of `rcvbuf` bytes (`RCVBUF`
    /// unless a test wants overflows).
    pub fn open(rcvbuf: usize) -> io::Result<Netlink> {
        let fd = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(|e| tag("socket(NETLINK_ROUTE)", e))?;
        if socket::setsockopt(&fd, sockopt::RcvBufForce, &rcvbuf).is_err() {
            // not fatal: unprivileged, the buffer is capped at net.core.rmem_max
            let _ = socket::setsockopt(&fd, sockopt::RcvBuf, &rcvbuf);
        }
        socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, GROUPS))
            .map_err(|e| tag("bind(RTMGRP_*)", e))?;
        Ok(Netlink {
            fd,
            buf: vec![0; BUF_LEN].into_boxed_slice(),
            counters: Counters::default(),
        })
    }

    /// Sends one dump request. EAGAIN/ENOBUFS (the kernel is short of memory) are errors for
    /// the caller to retry with the cache's deadline.
    pub fn request(&self, dump: Dump, seq: u32) -> io::Result<()> {
        let mut req = [0u8; Dump::MAX_LEN];
        let len = dump.emit(seq, &mut req).unwrap_or(0);
        socket::sendto(
            self.fd.as_raw_fd(),
            &req[..len],
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )
        .map_err(|e| tag("netlink dump request", e))?;
        Ok(())
    }

    /// Sends one change request (its ACK or error comes back like any message; the caller
    /// checks the result in the cache instead).
    pub fn change(&self, change: &Change, seq: u32) -> io::Result<()> {
        let mut req = [0u8; Change::MAX_LEN];
        let len = change.emit(seq, &mut req).unwrap_or(0);
        socket::sendto(
            self.fd.as_raw_fd(),
            &req[..len],
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )
        .map_err(|e| tag("netlink change request", e))?;
        Ok(())
    }

    fn recv(&mut self) -> io::Result<Recv> {
        // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value.
        let mut from: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        let mut from_len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        loop {
            // SAFETY: the fd is an open netlink socket; buf is a live, writable buffer of the
            // length passed; from/from_len describe a live sockaddr_nl of the size passed.
            // MSG_TRUNC makes the return value the datagram's real length.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_TRUNC | libc::MSG_DONTWAIT,
                    (&mut from as *mut libc::sockaddr_nl).cast(),
                    &mut from_len,
                )
            };
            if n >= 0 {
                let n = n as usize;
                return Ok(if n > self.buf.len() {
                    Recv::Truncated
                } else if from.nl_pid != 0 {
                    Recv::Foreign
                } else {
                    Recv::Datagram(n)
                });
            }
            match Errno::last() {
                Errno::EINTR => continue,
                Errno::EAGAIN => return Ok(Recv::Empty),
                Errno::ENOBUFS => return Ok(Recv::Overflow),
                e => return Err(tag("netlink recv", e)),
            }
        }
    }

    /// Sends the requests the cache wants, then reads up to `BUDGET` datagrams into it.
    /// Returns whether more may be waiting (the budget ran out).
    pub fn pump(&mut self, kernel: &mut Kernel, now: Instant) -> io::Result<bool> {
        for _ in 0..BUDGET {
            self.send_requests(kernel, now)?;
            match self.recv()? {
                Recv::Empty => return Ok(false),
                Recv::Datagram(n) => {
                    self.counters.datagrams += 1;
                    for msg in Messages::new(&self.buf[..n]) {
                        match msg {
                            Ok(m) => kernel.handle_message(&m),
                            Err(_) => kernel.dropped += 1,
                        }
                    }
                }
                Recv::Overflow => {
                    self.counters.overflows += 1;
                    kernel.overflowed();
                }
                Recv::Truncated => {
                    self.counters.truncated += 1;
                    kernel.overflowed();
                }
                Recv::Foreign => self.counters.foreign += 1,
            }
        }
        self.send_requests(kernel, now)?;
        Ok(true)
    }

    fn send_requests(&mut self, kernel: &mut Kernel, now: Instant) -> io::Result<()> {
        while let Some((dump, seq)) = kernel.poll_request(now) {
            if let Err(e) = self.request(dump, seq) {
                // The cache's deadline asks again; report it once.
                kernel.handle_timeout(now + crate::kernel::DUMP_DEADLINE);
                return Err(e);
            }
        }
        Ok(())
    }
}

impl AsFd for Netlink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn tag(what: &str, e: Errno) -> io::Error {
    let e = io::Error::from(e);
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::time::Duration;

    /// Runs the start-up dumps against this machine's kernel (read-only) until the cache is
    /// synced: loopback is there, up, and has 127.0.0.1.
    #[test]
    fn dumps_this_kernel() {
        let mut nl = Netlink::open(RCVBUF).unwrap();
        let mut k = Kernel::new([("lo", None), ("nh-none", None)]);
        let start = Instant::now();
        while !k.synced() {
            assert!(start.elapsed() < Duration::from_secs(10), "no sync");
            nl.pump(&mut k, Instant::now()).unwrap();
            let mut fds = [PollFd::new(nl.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(100u16));
        }
        let lo = k.iface(0);
        assert!(lo.present() && lo.admin_up, "{lo:?}");
        assert!(lo
            .addresses()
            .any(|a| a.addr == std::net::IpAddr::from([127, 0, 0, 1])));
        assert!(!k.iface(1).present());
        assert_eq!(nl.counters.foreign + nl.counters.truncated, 0);
        assert!(nl.counters.datagrams >= 5);
    }
}
