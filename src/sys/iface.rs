//! Interface lookups and the built-in `link` heal step (netdevice(7)).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;

use nix::sys::socket::{self, AddressFamily, SockFlag, SockType};

use super::cvt;

/// The interface's index, or None while it does not exist.
pub fn index(name: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(name).ok().filter(|&i| i != 0)
}

/// Sets IFF_UP on or off, as `ip link set IFACE up|down` does.
pub fn set_up(name: &str, up: bool) -> io::Result<()> {
    let sock = socket::socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value (empty name, no flags).
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= ifr.ifr_name.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad interface name",
        ));
    }
    for (dst, src) in ifr.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    let fd = sock.as_raw_fd();
    // SAFETY: fd is an open socket; ifr is a valid, NUL-terminated ifreq that outlives the
    // call; SIOCGIFFLAGS writes only ifr_flags inside it.
    cvt(unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut ifr) })?;
    // SAFETY: SIOCGIFFLAGS just filled the ifru_flags member of the union.
    let flags = unsafe { ifr.ifr_ifru.ifru_flags };
    let iff_up = libc::IFF_UP as libc::c_short;
    let want = if up { flags | iff_up } else { flags & !iff_up };
    ifr.ifr_ifru.ifru_flags = want;
    // SAFETY: as above; SIOCSIFFLAGS reads the name and flags.
    cvt(unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &ifr) })?;
    Ok(())
}
