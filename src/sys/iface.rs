//! Interface lookups and the built-in `link` heal step's ioctls (netdevice(7)); the step
//! itself runs in a child of its own (process.rs).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{self, AddressFamily, SockFlag, SockType};

use super::cvt;

/// A socket kept open for interface ioctls, so that looking an interface up every round is
/// one system call rather than three (socket, ioctl, close, as if_nametoindex(3) does).
#[derive(Debug)]
pub struct Control {
    sock: OwnedFd,
}

impl Control {
    pub fn open() -> io::Result<Control> {
        let sock = socket::socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        Ok(Control { sock })
    }

    /// The interface's index, or None while it does not exist.
    pub fn index(&self, name: &str) -> Option<u32> {
        let mut ifr = ifreq(name).ok()?;
        // SAFETY: the fd is an open socket; ifr is a valid, NUL-terminated ifreq that outlives
        // the call; SIOCGIFINDEX writes only ifr_ifindex inside it.
        cvt(unsafe { libc::ioctl(self.sock.as_raw_fd(), libc::SIOCGIFINDEX as _, &mut ifr) })
            .ok()?;
        // SAFETY: SIOCGIFINDEX just filled the ifru_ifindex member of the union.
        let index = unsafe { ifr.ifr_ifru.ifru_ifindex };
        u32::try_from(index).ok().filter(|&i| i != 0)
    }

    /// Sets IFF_UP on the interface (`ip link set IFACE up`): SIOCGIFFLAGS, then
    /// SIOCSIFFLAGS with the flag added (netdevice(7)).
    pub fn set_up(&self, name: &str) -> io::Result<()> {
        let mut ifr = ifreq(name)?;
        let fd = self.sock.as_raw_fd();
        // SAFETY: fd is an open socket; ifr is a valid, NUL-terminated ifreq that outlives
        // the call; SIOCGIFFLAGS writes only ifr_flags inside it.
        cvt(unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut ifr) })
            .map_err(|e| io::Error::new(e.kind(), format!("SIOCGIFFLAGS: {e}")))?;
        // SAFETY: SIOCGIFFLAGS just filled the ifru_flags member of the union.
        let flags = unsafe { ifr.ifr_ifru.ifru_flags };
        ifr.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
        // SAFETY: as above; SIOCSIFFLAGS reads the name and flags.
        cvt(unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &ifr) })
            .map_err(|e| io::Error::new(e.kind(), format!("SIOCSIFFLAGS: {e}")))?;
        Ok(())
    }
}

/// An ifreq naming `name`, everything else zero.
pub(super) fn ifreq(name: &str) -> io::Result<libc::ifreq> {
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
    Ok(ifr)
}

/// The built-in `link` step, in the forked child of `process::spawn_link`: IFF_UP off, then
/// on, as `ip link set IFACE down; ip link set IFACE up` does. Returns 0, or the errno of the
/// call that failed. Async-signal-safe (signal-safety(7)): raw system calls on `ifr`, nothing
/// else (no allocation, no `io::Error`).
pub(super) fn bounce_in_child(ifr: &libc::ifreq) -> libc::c_int {
    let errno = || {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    };
    // SAFETY: plain socket(2); the fd is closed by _exit.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return errno();
    }
    let mut ifr = *ifr;
    for up in [false, true] {
        // SAFETY: fd is an open socket; ifr is a valid, NUL-terminated ifreq that outlives
        // the call; SIOCGIFFLAGS writes only ifr_flags inside it.
        if unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut ifr) } != 0 {
            return errno();
        }
        // SAFETY: SIOCGIFFLAGS just filled the ifru_flags member of the union.
        let flags = unsafe { ifr.ifr_ifru.ifru_flags };
        let iff_up = libc::IFF_UP as libc::c_short;
        ifr.ifr_ifru.ifru_flags = if up { flags | iff_up } else { flags & !iff_up };
        // SAFETY: as above; SIOCSIFFLAGS reads the name and flags.
        if unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &ifr) } != 0 {
            return errno();
        }
    }
    0
}

/// Whether `name` has carrier now, from /sys/class/net/NAME/carrier (netif_carrier_ok(),
/// which the kernel sets at once, while its netlink report waits for the link-watch batch of
/// up to a second); None when it cannot be read (an interface that is down says EINVAL).
pub fn carrier(name: &str) -> Option<bool> {
    if name.contains('/') || name.starts_with('.') {
        return None;
    }
    let mut buf = [0u8; 4];
    let mut f = std::fs::File::open(format!("/sys/class/net/{name}/carrier")).ok()?;
    let n = std::io::Read::read(&mut f, &mut buf).ok()?;
    match buf[..n].first() {
        Some(b'0') => Some(false),
        Some(b'1') => Some(true),
        _ => None,
    }
}

/// Reads a whole /proc file into `buf` (cleared first) with plain reads into its spare room:
/// no stat, no doubling reads, no allocation once `buf` has grown to fit.
pub fn read_proc(path: &str, buf: &mut Vec<u8>) -> io::Result<()> {
    use std::io::Read;
    buf.clear();
    let mut f = std::fs::File::open(path)?;
    loop {
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(4096);
        }
        let len = buf.len();
        buf.resize(buf.capacity(), 0);
        match f.read(&mut buf[len..]) {
            Ok(0) => {
                buf.truncate(len);
                return Ok(());
            }
            Ok(n) => buf.truncate(len + n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => buf.truncate(len),
            Err(e) => {
                buf.truncate(len);
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_an_index_and_nonsense_has_none() {
        let c = Control::open().unwrap();
        assert!(c.index("lo").is_some());
        assert_eq!(c.index("nh-no-such-if"), None);
        assert_eq!(c.index(""), None);
    }

    #[test]
    fn proc_files_read_whole() {
        let mut buf = Vec::new();
        read_proc("/proc/self/status", &mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf);
        assert!(text.starts_with("Name:") && text.ends_with('\n'), "{text}");
        assert!(read_proc("/proc/nonexistent", &mut buf).is_err());
    }
}
