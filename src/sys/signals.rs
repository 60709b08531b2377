//! Signals as a file descriptor (signalfd(2)): the poll loop reads them like any other input,
//! so nothing runs in signal context. SIGPIPE is ignored (a closed log pipe must not kill the
//! watchdog); child processes get a clean mask and default dispositions from std's spawn.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::sys::signal::{self, SigHandler, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

pub use nix::sys::signal::Signal as Sig;

#[derive(Debug)]
pub struct Signals {
    fd: SignalFd,
}

impl Signals {
    /// Blocks the signals we handle and opens a signalfd for them. Call before any child is
    /// started; the process must stay single-threaded for the mask to cover it.
    pub fn install() -> io::Result<Self> {
        let mut set = SigSet::empty();
        for s in [
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGUSR1,
            Signal::SIGCHLD,
        ] {
            set.add(s);
        }
        set.thread_block()?;
        // SAFETY: SIG_IGN installs no handler code, so no async-signal-safety concerns.
        unsafe { signal::signal(Signal::SIGPIPE, SigHandler::SigIgn) }?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Signals { fd })
    }

    /// The next pending signal, or None.
    pub fn read(&mut self) -> io::Result<Option<Signal>> {
        loop {
            match self.fd.read_signal() {
                Ok(Some(info)) => match Signal::try_from(info.ssi_signo as i32) {
                    Ok(s) => return Ok(Some(s)),
                    Err(_) => continue,
                },
                Ok(None) => return Ok(None),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
