//! poll(2) over a set of descriptors that the loop keeps from one turn to the next (rebuilt,
//! in the same buffer, only when what it holds changed): a turn allocates nothing (nix's
//! `poll` wants a fresh `Vec<PollFd>` borrowed from the owners every time).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::cvt;

#[derive(Debug, Default)]
pub struct PollSet {
    fds: Vec<libc::pollfd>,
}

impl PollSet {
    /// Empties the set, keeping its buffer.
    pub fn clear(&mut self) {
        self.fds.clear();
    }

    /// Adds `fd` (waited for until readable); returns its index for `readable`.
    #[inline(always)]
    pub fn push(&mut self, fd: BorrowedFd<'_>) -> usize {
        self.add(fd, libc::POLLIN)
    }

    /// Adds `fd` waited for until writable (a connecting TCP socket: connect(2)).
    #[inline(always)]
    pub fn push_writable(&mut self, fd: BorrowedFd<'_>) -> usize {
        self.add(fd, libc::POLLOUT)
    }

    #[inline(always)]
    fn add(&mut self, fd: BorrowedFd<'_>, events: libc::c_short) -> usize {
        self.fds.push(libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        });
        self.fds.len() - 1
    }

    /// Waits until one of the descriptors is ready or `timeout_ms` has passed (-1: no
    /// timeout); returns how many entries have something to report (`readable`). EINTR is not
    /// an error: nothing is ready (0).
    ///
    /// No pass clearing `revents` first: on success poll(2) writes every entry's `revents`,
    /// zero for those with nothing to report (POSIX; Linux's do_sys_poll copies them all
    /// back). Only after EINTR are they cleared here, so that `readable` never reports a
    /// stale event.
    pub fn wait(&mut self, timeout_ms: i32) -> io::Result<usize> {
        // SAFETY: the pointer and length describe `self.fds`, an initialised slice of pollfd
        // that lives across the call and is not otherwise borrowed meanwhile; poll(2) writes
        // only the revents fields inside it. An fd number that was closed since `push` is
        // memory-safe too: the kernel reports POLLNVAL for it.
        let r = unsafe {
            libc::poll(
                self.fds.as_mut_ptr(),
                self.fds.len() as libc::nfds_t,
                timeout_ms,
            )
        };
        match cvt(r) {
            Ok(n) => Ok(n as usize),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {
                for p in &mut self.fds {
                    p.revents = 0;
                }
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether poll(2) reported anything (readable or writable as asked, hung up, an error)
    /// for entry `k`.
    /// Entry `k`'s fd and the events it waits for ((-1, 0) for none).
    pub fn entry(&self, k: usize) -> (i32, i16) {
        self.fds.get(k).map_or((-1, 0), |p| (p.fd, p.events))
    }

    pub fn readable(&self, k: usize) -> bool {
        self.fds.get(k).is_some_and(|p| p.revents != 0)
    }

    /// `readable` of every entry, in order.
    pub fn events(&self) -> impl DoubleEndedIterator<Item = bool> + ExactSizeIterator + '_ {
        self.fds.iter().map(|p| p.revents != 0)
    }

    pub fn len(&self) -> usize {
        self.fds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn reports_the_readable_entry_only_and_keeps_its_buffer() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let (c, _d) = UnixStream::pair().unwrap();
        let mut set = PollSet::default();
        set.push(a.as_fd());
        set.push(c.as_fd());
        assert_eq!(set.wait(0).unwrap(), 0);
        assert!(!set.readable(0) && !set.readable(1));
        b.write_all(b"x").unwrap();
        assert_eq!(
            set.wait(1000).unwrap(),
            1,
            "the count of entries to look at"
        );
        assert!(set.readable(0), "data waits on a");
        assert!(!set.readable(1));
        assert!(!set.readable(2), "no such entry");
        assert_eq!(set.events().collect::<Vec<_>>(), [true, false]);
        let cap = set.fds.capacity();
        set.clear();
        assert!(set.is_empty());
        set.push(c.as_fd());
        set.push(a.as_fd());
        assert_eq!(set.fds.capacity(), cap, "the buffer is kept");
        assert_eq!(set.wait(0).unwrap(), 1);
        assert!(!set.readable(0) && set.readable(1));
        // Writable when asked for: c's send buffer has room, nothing waits to be read on it.
        set.clear();
        set.push(c.as_fd());
        set.push_writable(c.as_fd());
        assert_eq!(set.wait(0).unwrap(), 1);
        assert!(!set.readable(0) && set.readable(1));
        // Nothing ready after something was: every entry's event is written anew, none is
        // left over from the last wait.
        set.clear();
        set.push(a.as_fd());
        set.push(c.as_fd());
        let mut byte = [0u8; 1];
        std::io::Read::read_exact(&mut &a, &mut byte).unwrap();
        assert_eq!(set.wait(0).unwrap(), 0);
        assert!(!set.readable(0) && !set.readable(1));
    }
}
