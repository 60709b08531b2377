//! Signals as a file descriptor (signalfd(2)): the poll loop reads them like any other input,
//! so nothing runs in signal context. SIGPIPE is ignored (a closed log pipe must not kill the
//! watchdog). Child processes inherit the blocked mask across exec (std's spawn does not reset
//! it), so `reset_in_child` gives them a clean one: otherwise a heal step could never be
//! stopped by SIGTERM.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::sys::signal::{self, SigHandler, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

pub use nix::sys::signal::Signal as Sig;

/// Makes `cmd`'s child start with no blocked signals and SIGPIPE at its default, as a
/// program started from a shell would.
pub fn reset_in_child(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: sigemptyset, sigprocmask and signal are (signal-
    // safety(7)). It touches no memory of the parent's and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            Ok(())
        });
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_start_with_an_empty_mask_even_when_we_block() {
        let mut set = SigSet::empty();
        set.add(Signal::SIGUSR2);
        set.thread_block().unwrap();
        let status = |reset: bool| {
            let mut cmd = std::process::Command::new("grep");
            cmd.args(["^SigBlk", "/proc/self/status"]);
            if reset {
                reset_in_child(&mut cmd);
            }
            String::from_utf8(cmd.output().unwrap().stdout).unwrap()
        };
        let (inherited, reset) = (status(false), status(true));
        set.thread_unblock().unwrap();
        assert!(
            !inherited.trim().ends_with("0000000000000000"),
            "the mask is inherited: {inherited}"
        );
        assert!(reset.trim().ends_with("0000000000000000"), "{reset}");
    }
}
