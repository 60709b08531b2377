//! The two sockets of the gateway's layer-2 probe (src/l2.rs decides when to use them):
//!
//! - `ArpSocket`: AF_PACKET, SOCK_DGRAM, ETH_P_ARP, bound to the interface index (packet(7)).
//!   The kernel writes and strips the Ethernet header; we send a broadcast "who has" and read
//!   ARP packets arriving on that interface only. The socket is created with protocol 0,
//!   which receives nothing, and gets ETH_P_ARP in `bind`, so no other interface's ARP is
//!   ever queued on it (the window between socket(2) and bind(2) packet(7) warns about).
//! - `NdpSocket`: a raw ICMPv6 socket of its own (not the echo socket: that one's filter,
//!   hop limit and datagram fallback are the echo's), bound to the device, with hop limit
//!   255 on unicast and multicast sends (RFC 4861 7.1.1: a receiver discards NDP with less),
//!   an ICMP6_FILTER that passes type 136 only, and IPV6_RECVHOPLIMIT so an advertisement
//!   that did not arrive with hop limit 255 (forged from off-link, RFC 4861 7.1.2) is dropped.
//!
//! Both are non-blocking and close-on-exec, and both need CAP_NET_RAW: without it the probe
//! is not possible and its result is Unknown, never an error of the watch. `link_address`
//! reads the interface's hardware type and address (SIOCGIFHWADDR, netdevice(7)) on the
//! probe's socket: only Ethernet (ARPHRD_ETHER) is probed.
#![allow(unsafe_code)]

use std::ffi::OsString;
use std::io::{self, IoSliceMut};
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    self, sockopt, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockProtocol, SockType,
    SockaddrIn6,
};

use super::cvt;
use super::iface::ifreq;
use crate::wire::arp::{Mac, HTYPE_ETHER};
use crate::wire::ndp::TYPE_NA;

/// ETH_P_ARP (if_ether.h).
const ETH_P_ARP: u16 = 0x0806;
/// ICMP6_FILTER (RFC 3542 section 3.2), as in icmp.rs.
const ICMP6_FILTER: libc::c_int = 1;
/// RFC 4861 7.1.1 / 7.1.2: NDP is sent and accepted with hop limit 255 only.
const NDP_HOP_LIMIT: libc::c_int = 255;

/// The interface's hardware type (ARPHRD_*) and, for Ethernet, its address, asked on `fd`
/// (any socket answers SIOCGIFHWADDR: the probe's own, so it costs one call, not three).
fn hardware_address(fd: BorrowedFd<'_>, name: &str) -> io::Result<(u16, Mac)> {
    let mut ifr = ifreq(name)?;
    // SAFETY: the fd is an open socket; ifr is a valid, NUL-terminated ifreq that outlives
    // the call; SIOCGIFHWADDR writes only ifr_hwaddr inside it.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR as _, &mut ifr) })
        .map_err(|e| tag("SIOCGIFHWADDR", e))?;
    // SAFETY: SIOCGIFHWADDR just filled the ifru_hwaddr member of the union.
    let sa = unsafe { ifr.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (m, b) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *m = *b as u8;
    }
    Ok((sa.sa_family, Mac(mac)))
}

/// Whether the hardware type is one we probe (Ethernet, and veth, which is Ethernet too).
pub fn is_ethernet(hw_type: u16) -> bool {
    hw_type == HTYPE_ETHER
}

fn sockaddr_ll(index: u32, dest: Option<Mac>) -> io::Result<libc::sockaddr_ll> {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = ETH_P_ARP.to_be();
    sa.sll_ifindex = i32::try_from(index)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index"))?;
    if let Some(m) = dest {
        sa.sll_halen = 6;
        sa.sll_addr[..6].copy_from_slice(&m.0);
    }
    Ok(sa)
}

/// An AF_PACKET socket for ARP on one interface.
#[derive(Debug)]
pub struct ArpSocket {
    fd: OwnedFd,
    index: u32,
}

impl ArpSocket {
    pub fn open(index: u32) -> io::Result<ArpSocket> {
        // SAFETY: plain socket(2); protocol 0 receives nothing until bind names one.
        let raw = cvt(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        })
        .map_err(|e| tag("socket(AF_PACKET)", e))?;
        // SAFETY: raw is a socket we just opened and own from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sa = sockaddr_ll(index, None)?;
        // SAFETY: sa is a valid sockaddr_ll that outlives the call, and its size is passed.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })
        .map_err(|e| tag("bind(AF_PACKET)", e))?;
        Ok(ArpSocket { fd, index })
    }

    /// The interface's hardware type and address (see `hardware_address`).
    pub fn link_address(&self, name: &str) -> io::Result<(u16, Mac)> {
        hardware_address(self.fd.as_fd(), name)
    }

    /// Broadcasts one ARP packet (the 28 bytes of `wire::arp`) on the interface.
    pub fn send_broadcast(&self, pkt: &[u8]) -> io::Result<()> {
        let sa = sockaddr_ll(self.index, Some(Mac::BROADCAST))?;
        // SAFETY: pkt and sa are valid for the call; their sizes are passed.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                pkt.as_ptr().cast(),
                pkt.len(),
                0,
                (&sa as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n as usize != pkt.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short send"));
        }
        Ok(())
    }

    /// Reads one ARP packet that arrived on the interface into `buf`: its length, or None
    /// when nothing is waiting. Our own packets going out (PACKET_OUTGOING) are skipped.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
            let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: buf, sa and len are valid for the call and len holds sa's size.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&mut sa as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => return Ok(None),
                    Some(libc::EINTR) => continue,
                    _ => return Err(e),
                }
            }
            if sa.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            return Ok(Some(n as usize));
        }
    }
}

impl AsFd for ArpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A raw ICMPv6 socket for neighbour solicitations and advertisements on one interface.
#[derive(Debug)]
pub struct NdpSocket {
    fd: OwnedFd,
    index: u32,
}

impl NdpSocket {
    pub fn open(iface: &str, index: u32) -> io::Result<NdpSocket> {
        let fd = socket::socket(
            AddressFamily::Inet6,
            SockType::Raw,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            SockProtocol::IcmpV6,
        )
        .map_err(|e| tag("socket(ICMPv6)", e.into()))?;
        let raw = fd.as_raw_fd();
        // Filter first, so nothing but advertisements is ever queued.
        let mut mask = [u32::MAX; 8];
        let t = usize::from(TYPE_NA);
        mask[t >> 5] &= !(1 << (t & 31));
        // SAFETY: fd is an open raw ICMPv6 socket; struct icmp6_filter is exactly eight u32
        // words, which live across the call, and their size is passed.
        cvt(unsafe {
            libc::setsockopt(
                raw,
                libc::IPPROTO_ICMPV6,
                ICMP6_FILTER,
                mask.as_ptr().cast(),
                std::mem::size_of_val(&mask) as libc::socklen_t,
            )
        })
        .map_err(|e| tag("ICMP6_FILTER", e))?;
        for (opt, name) in [
            (libc::IPV6_UNICAST_HOPS, "IPV6_UNICAST_HOPS"),
            (libc::IPV6_MULTICAST_HOPS, "IPV6_MULTICAST_HOPS"),
        ] {
            // SAFETY: as above; the value is a c_int that lives across the call.
            cvt(unsafe {
                libc::setsockopt(
                    raw,
                    libc::IPPROTO_IPV6,
                    opt,
                    (&NDP_HOP_LIMIT as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            })
            .map_err(|e| tag(name, e))?;
        }
        socket::setsockopt(&fd, sockopt::Ipv6RecvHopLimit, &true)
            .map_err(|e| tag("IPV6_RECVHOPLIMIT", e.into()))?;
        socket::setsockopt(&fd, sockopt::BindToDevice, &OsString::from(iface))
            .map_err(|e| tag("SO_BINDTODEVICE", e.into()))?;
        Ok(NdpSocket { fd, index })
    }

    /// The interface's hardware type and address (see `hardware_address`).
    pub fn link_address(&self, name: &str) -> io::Result<(u16, Mac)> {
        hardware_address(self.fd.as_fd(), name)
    }

    /// Sends one ICMPv6 message (the kernel fills in the checksum) to `dest`; a link-local
    /// destination gets the interface as its scope.
    pub fn send_to(&self, msg: &[u8], dest: Ipv6Addr) -> io::Result<()> {
        let scope = if dest.segments()[0] & 0xffc0 == 0xfe80 {
            self.index
        } else {
            0
        };
        let sa = SockaddrIn6::from(SocketAddrV6::new(dest, 0, 0, scope));
        let n = socket::sendto(self.fd.as_raw_fd(), msg, &sa, MsgFlags::empty())?;
        if n != msg.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short send"));
        }
        Ok(())
    }

    /// Reads one advertisement into `buf`: its length, or None when nothing is waiting. One
    /// that did not arrive with hop limit 255 is dropped (RFC 4861 7.1.2).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let mut cmsg = nix::cmsg_space!(libc::c_int);
        loop {
            let mut iov = [IoSliceMut::new(buf)];
            let msg = match socket::recvmsg::<SockaddrIn6>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(m) => m,
                Err(Errno::EAGAIN) => return Ok(None),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            let len = msg.bytes;
            let mut hops = None;
            for c in msg.cmsgs().map_err(io::Error::from)? {
                if let ControlMessageOwned::Ipv6HopLimit(h) = c {
                    hops = Some(h);
                }
            }
            if hops != Some(NDP_HOP_LIMIT) {
                continue;
            }
            return Ok(Some(len));
        }
    }
}

impl AsFd for NdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Names the failing operation, keeping the kind and errno (`SO_BINDTODEVICE: EPERM`).
fn tag(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_not_ethernet() {
        let sock = socket::socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        let (hw, _) = hardware_address(sock.as_fd(), "lo").unwrap();
        assert_eq!(hw, libc::ARPHRD_LOOPBACK);
        assert!(!is_ethernet(hw));
        let e = hardware_address(sock.as_fd(), "nh-no-such-if").unwrap_err();
        assert!(e.to_string().starts_with("SIOCGIFHWADDR: "), "{e}");
    }
}
