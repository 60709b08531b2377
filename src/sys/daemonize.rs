//! Detaching for init systems that want a forking daemon (SysV and busybox init scripts):
//! the classic double fork, with the first parent waiting on a pipe until the daemon says it
//! is ready (or why it failed), so `netheal -d` returns only once the pidfile exists. And the
//! pidfile itself: created with O_EXCL, held under flock for the daemon's lifetime, so a
//! second instance is refused and a stale file left by a crash is recognised and replaced.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{fork, pipe2, setsid, ForkResult};

/// Held by the detached daemon: tells the waiting first parent how start-up went.
#[derive(Debug)]
pub struct Detached {
    report: File,
}

impl Detached {
    pub fn ready(mut self) {
        let _ = self.report.write_all(b"ok"); // not fatal: the parent may have been killed
    }

    pub fn failed(mut self, why: &str) {
        let _ = self.report.write_all(why.as_bytes()); // not fatal: as above
    }
}

/// Forks twice and returns in the grandchild, which has no controlling terminal, `/` as its
/// working directory, umask 022 and stdio on /dev/null. The original process exits: 0 once
/// the daemon calls `ready`, 1 (printing the reason) if it calls `failed` or dies first.
/// Call while single-threaded.
pub fn detach() -> io::Result<Detached> {
    let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
    // SAFETY: netheal is single-threaded here, so the child inherits no lock held by another
    // thread; it goes on running ordinary Rust code, which is sound after fork.
    match unsafe { fork() }? {
        ForkResult::Parent { .. } => {
            drop(write);
            wait_for_report(read)
        }
        ForkResult::Child => {
            drop(read);
            setsid()?;
            // SAFETY: as above; the session leader forks once more so that it can never
            // acquire a controlling terminal again.
            if let ForkResult::Parent { .. } = unsafe { fork() }? {
                // SAFETY: _exit skips atexit handlers and stdio flushing, which belong to
                // the original process.
                unsafe { libc::_exit(0) };
            }
            nix::unistd::chdir("/")?;
            umask(Mode::from_bits_truncate(0o022));
            let null = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")?;
            nix::unistd::dup2_stdin(&null)?;
            nix::unistd::dup2_stdout(&null)?;
            nix::unistd::dup2_stderr(&null)?;
            Ok(Detached {
                report: File::from(write),
            })
        }
    }
}

fn wait_for_report(read: OwnedFd) -> ! {
    let mut msg = String::new();
    let _ = File::from(read).read_to_string(&mut msg); // EOF when the daemon closes or dies
    match msg.as_str() {
        "ok" => std::process::exit(0),
        "" => {
            eprintln!("netheal: the daemon exited during start-up (see the system log)");
            std::process::exit(1)
        }
        why => {
            eprintln!("netheal: {why}");
            std::process::exit(1)
        }
    }
}

/// An exclusively locked pidfile, removed when dropped.
#[derive(Debug)]
pub struct Pidfile {
    path: PathBuf,
    _lock: Flock<File>,
}

impl Pidfile {
    /// Creates `path` holding our pid. Refuses when another live netheal holds it.
    pub fn create(path: &Path) -> Result<Pidfile, String> {
        let at = |e: &dyn std::fmt::Display| format!("pidfile {}: {e}", path.display());
        for _ in 0..3 {
            let created = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .custom_flags(libc::O_CLOEXEC)
                .open(path);
            match created {
                Ok(file) => {
                    let mut lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
                        .map_err(|(_, e)| at(&e))?;
                    writeln!(lock, "{}", std::process::id()).map_err(|e| at(&e))?;
                    return Ok(Pidfile {
                        path: path.to_path_buf(),
                        _lock: lock,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let file = match File::open(path) {
                        Ok(f) => f,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // raced: retry
                        Err(e) => return Err(at(&e)),
                    };
                    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                        Err((mut f, Errno::EWOULDBLOCK)) => {
                            let mut pid = String::new();
                            let _ = f.read_to_string(&mut pid); // not fatal: only for the message
                            return Err(at(&format!(
                                "another netheal is running (pid {})",
                                pid.trim()
                            )));
                        }
                        Err((_, e)) => return Err(at(&e)),
                        // Nobody holds it: left by a netheal that was killed. Replace it.
                        Ok(_stale) => std::fs::remove_file(path).map_err(|e| at(&e))?,
                    }
                }
                Err(e) => return Err(at(&e)),
            }
        }
        Err(at(&"could not be created (it keeps changing)"))
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path); // not fatal: we are exiting anyway
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_instance_is_refused_and_stale_files_replaced() {
        let path = std::env::temp_dir().join(format!("netheal-pid-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let first = Pidfile::create(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            std::process::id().to_string()
        );
        // flock locks belong to the open file description, so a second open in this same
        // process conflicts just like another process would.
        let second = Pidfile::create(&path).unwrap_err();
        assert!(second.contains("another netheal is running"), "{second}");
        drop(first);
        assert!(!path.exists(), "removed on drop");
        std::fs::write(&path, "999999\n").unwrap();
        let again = Pidfile::create(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            std::process::id().to_string()
        );
        drop(again);
    }
}
