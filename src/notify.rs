//! The systemd notification protocol (sd_notify(3)), spoken natively: one datagram of
//! newline-separated `KEY=VALUE` assignments to the socket named by $NOTIFY_SOCKET (a path,
//! or `@name` for the abstract namespace). No libsystemd. Without $NOTIFY_SOCKET every call
//! is a no-op, so this costs nothing under other init systems.
#![forbid(unsafe_code)]

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

pub struct Notifier {
    sock: UnixDatagram,
    addr: SocketAddr,
    /// From $WATCHDOG_USEC (when $WATCHDOG_PID, if set, is us): how often systemd wants
    /// WATCHDOG=1.
    pub watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads the environment. Returns None when not started by systemd with Type=notify.
    pub fn from_env() -> io::Result<Option<Notifier>> {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(None);
        };
        let path = path.to_string_lossy().into_owned();
        let addr = match path.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name.as_bytes())?
            }
            None if path.starts_with('/') => SocketAddr::from_pathname(&path)?,
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("NOTIFY_SOCKET={path}: not a path or @name"),
                ))
            }
        };
        let pid_ok = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|p| p == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|&u| u > 0 && pid_ok)
            .map(Duration::from_micros);
        let sock = UnixDatagram::unbound()?;
        // A stalled service manager must not stall the loop: a notification it does not take
        // at once fails (EAGAIN), and the caller logs that, rate-limited.
        sock.set_nonblocking(true)?;
        Ok(Some(Notifier {
            sock,
            addr,
            watchdog,
        }))
    }

    /// Sends `KEY=VALUE` lines as one datagram.
    pub fn send(&self, state: &str) -> io::Result<()> {
        self.sock
            .send_to_addr(state.as_bytes(), &self.addr)
            .map(|_| ())
    }
}

/// The CLOCK_MONOTONIC reading systemd wants with RELOADING=1 (MONOTONIC_USEC=), from the
/// one clock source that std exposes only as `Instant`: /proc/uptime is not the same clock,
/// so use nix's clock_gettime.
pub fn monotonic_usec() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("netheal-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            sock: UnixDatagram::unbound().unwrap(),
            addr: SocketAddr::from_pathname(&path).unwrap(),
            watchdog: None,
        };
        n.send("READY=1\nSTATUS=eth0 up").unwrap();
        let mut buf = [0u8; 64];
        let len = server.recv(&mut buf).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=eth0 up");
    }

    #[test]
    fn monotonic_usec_is_clock_monotonic() {
        let direct = || {
            let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
            t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000
        };
        let (before, at, after) = (direct(), monotonic_usec(), direct());
        assert!(before <= at && at <= after, "{before} <= {at} <= {after}");
        // And it advances with Instant (CLOCK_MONOTONIC on Linux), in microseconds: a wrong
        // unit or a wall clock stepped meanwhile would show here.
        let (i0, m0) = (std::time::Instant::now(), monotonic_usec());
        std::thread::sleep(Duration::from_millis(30));
        let (m1, i1) = (monotonic_usec(), std::time::Instant::now());
        let (m, i) = (m1 - m0, (i1 - i0).as_micros() as u64);
        assert!(
            m >= 30_000 && m <= i + 1_000,
            "{m} us by monotonic_usec, {i} us by Instant"
        );
    }
}
