//! The sockets of `tcp:` and `dns:` targets: one per attempt, non-blocking, close-on-exec,
//! bound to the watched interface with SO_BINDTODEVICE (socket(7)) before anything is sent,
//! so the attempt leaves through that interface or not at all.
//!
//! TCP: a non-blocking connect(2); its end is POLLOUT (or POLLERR/POLLHUP), and SO_ERROR
//! says how it ended (connect(2), "EINPROGRESS"). SO_LINGER with a zero timeout is set
//! first, so closing the socket at any point aborts the connection (an RST, no FIN and no
//! TIME_WAIT; tcp(7)): no data is ever sent. UDP: the socket is connected to the resolver,
//! so the kernel hands it only datagrams from that address and port, and an ICMP port
//! unreachable comes back as ECONNREFUSED on the next receive (udp(7)).
//!
//! nix has safe calls for all of it: this file has no `unsafe`.

use std::ffi::OsString;
use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    self, sockopt, AddressFamily, MsgFlags, SockFlag, SockType, SockaddrIn, SockaddrIn6,
};

/// How a connect ended.
#[derive(Debug)]
pub enum Connected {
    /// SYN-ACK: the port is open.
    Open,
    /// RST: the port is closed, but the host answered (ECONNREFUSED).
    Refused,
    /// Anything else (EHOSTUNREACH, ENETUNREACH, ETIMEDOUT...): no answer from the host.
    Failed(io::Error),
}

/// What connect(2) said at once.
#[derive(Debug)]
pub enum Start {
    /// EINPROGRESS: wait for POLLOUT, then `TcpProbe::finish`.
    Pending(TcpProbe),
    /// Decided already (a local target can connect or be refused at once).
    Done(Connected),
}

/// The interface name as SO_BINDTODEVICE takes it, made once: a round allocates nothing.
#[derive(Debug, Clone)]
pub struct Device(OsString);

impl Device {
    pub fn new(iface: &str) -> Device {
        Device(OsString::from(iface))
    }
}

fn socket_for(dest: IpAddr, ty: SockType, dev: &Device) -> io::Result<OwnedFd> {
    let af = match dest {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket::socket(
        af,
        ty,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| tagged("socket", e))?;
    socket::setsockopt(&fd, sockopt::BindToDevice, &dev.0)
        .map_err(|e| tagged("SO_BINDTODEVICE", e))?;
    Ok(fd)
}

/// `op: errno`, keeping the errno for the caller (walkdir-style tagging).
fn tagged(op: &str, e: Errno) -> io::Error {
    let inner = io::Error::from(e);
    io::Error::new(inner.kind(), format!("{op}: {inner}"))
}

fn connect_to(fd: &OwnedFd, dest: SocketAddr, scope: u32) -> nix::Result<()> {
    match dest {
        SocketAddr::V4(a) => socket::connect(fd.as_raw_fd(), &SockaddrIn::from(a)),
        SocketAddr::V6(a) => {
            // A link-local resolver or port is reached through the watched interface.
            let scope = if a.ip().segments()[0] & 0xffc0 == 0xfe80 {
                scope
            } else {
                0
            };
            let sa = SocketAddrV6::new(*a.ip(), a.port(), 0, scope);
            socket::connect(fd.as_raw_fd(), &SockaddrIn6::from(sa))
        }
    }
}

fn outcome(errno: Errno) -> Connected {
    match errno {
        Errno::ECONNREFUSED => Connected::Refused,
        e => Connected::Failed(io::Error::from(e)),
    }
}

/// A TCP connect in flight.
#[derive(Debug)]
pub struct TcpProbe {
    fd: OwnedFd,
}

impl TcpProbe {
    /// Starts a connect to `dest` from a socket bound to `iface` (index `scope`, for a
    /// link-local address). An error is the kernel refusing to even try: no route, the
    /// interface down (ENETUNREACH), our own output filtered (EPERM), no socket.
    pub fn connect(dest: SocketAddr, dev: &Device, scope: u32) -> io::Result<Start> {
        let fd = socket_for(dest.ip(), SockType::Stream, dev)?;
        let abort = nix::libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        socket::setsockopt(&fd, sockopt::Linger, &abort).map_err(|e| tagged("SO_LINGER", e))?;
        // EINTR on a non-blocking connect: the attempt goes on in the background, as
        // after EINPROGRESS (connect(2)).
        match connect_to(&fd, dest, scope) {
            Ok(()) => Ok(Start::Done(Connected::Open)),
            Err(Errno::EINPROGRESS | Errno::EINTR) => Ok(Start::Pending(TcpProbe { fd })),
            Err(Errno::ECONNREFUSED) => Ok(Start::Done(Connected::Refused)),
            Err(e) => Err(tagged("connect", e)),
        }
    }

    /// After poll(2) reported the socket: how the connect ended, from SO_ERROR (which
    /// also clears it). None: not over yet (a wake-up without news).
    pub fn finish(&self) -> io::Result<Option<Connected>> {
        let err = socket::getsockopt(&self.fd, sockopt::SocketError)
            .map_err(|e| tagged("SO_ERROR", e))?;
        Ok(match err {
            0 => Some(Connected::Open),
            e if e == Errno::EINPROGRESS as i32 || e == Errno::EALREADY as i32 => None,
            e => Some(outcome(Errno::from_raw(e))),
        })
    }
}

impl AsFd for TcpProbe {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A UDP socket connected to one resolver.
#[derive(Debug)]
pub struct UdpProbe {
    fd: OwnedFd,
}

impl UdpProbe {
    /// A socket bound to `iface` and connected to `dest` (no packet is sent yet).
    pub fn open(dest: SocketAddr, dev: &Device, scope: u32) -> io::Result<UdpProbe> {
        let fd = socket_for(dest.ip(), SockType::Datagram, dev)?;
        loop {
            match connect_to(&fd, dest, scope) {
                Ok(()) => return Ok(UdpProbe { fd }),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(tagged("connect", e)),
            }
        }
    }

    /// Sends one datagram to the resolver.
    pub fn send(&self, msg: &[u8]) -> io::Result<()> {
        loop {
            match socket::send(self.fd.as_raw_fd(), msg, MsgFlags::empty()) {
                Ok(n) if n == msg.len() => return Ok(()),
                Ok(_) => return Err(io::Error::new(io::ErrorKind::WriteZero, "short send")),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(tagged("send", e)),
            }
        }
    }

    /// One datagram from the resolver, or None when nothing is waiting. ECONNREFUSED (an
    /// ICMP port unreachable for our query) and other errors are returned as errors.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            match socket::recv(self.fd.as_raw_fd(), buf, MsgFlags::empty()) {
                Ok(n) => return Ok(Some(n)),
                Err(Errno::EAGAIN) => return Ok(None),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(io::Error::from(e)),
            }
        }
    }
}

impl AsFd for UdpProbe {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener, UdpSocket};

    /// On loopback (`lo`, which any user may bind to since Linux 5.7): an open port, a closed
    /// one, and a UDP exchange through a connected socket.
    #[test]
    fn loopback_open_closed_and_udp() {
        let ci = std::env::var("CI").as_deref() == Ok("true");
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let open = l.local_addr().unwrap();
        let start = match TcpProbe::connect(open, &Device::new("lo"), 0) {
            Ok(s) => s,
            Err(e) if !ci && e.kind() == io::ErrorKind::PermissionDenied => {
                eprintln!("skipped: {e}");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let wait = |p: &TcpProbe| {
            let mut fds = [nix::poll::PollFd::new(
                p.as_fd(),
                nix::poll::PollFlags::POLLOUT,
            )];
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).unwrap();
            p.finish().unwrap().expect("decided after POLLOUT")
        };
        let got = match start {
            Start::Pending(p) => wait(&p),
            Start::Done(c) => c,
        };
        assert!(matches!(got, Connected::Open), "{got:?}");
        drop(l);
        let got = match TcpProbe::connect(open, &Device::new("lo"), 0).unwrap() {
            Start::Pending(p) => wait(&p),
            Start::Done(c) => c,
        };
        assert!(matches!(got, Connected::Refused), "{got:?}");

        let server = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let u = UdpProbe::open(server.local_addr().unwrap(), &Device::new("lo"), 0).unwrap();
        u.send(b"q").unwrap();
        let mut buf = [0u8; 8];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        server.send_to(&buf[..n], from).unwrap();
        let mut fds = [nix::poll::PollFd::new(
            u.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).unwrap();
        assert_eq!(u.recv(&mut buf).unwrap(), Some(1));
        assert_eq!(u.recv(&mut buf).unwrap(), None);
    }
}
