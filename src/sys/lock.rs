//! Lock files: who owns a resource (a status file, a metrics file, the right to run heal steps
//! on an interface) for as long as it lives. An exclusive flock(2) on a small file that holds
//! the owner's pid, so the kernel, not `/proc/PID` (pids are reused), says whether the owner
//! is alive: the lock goes when the process dies, however it dies.
//!
//! The lock file is never the file it protects: that one is replaced by rename(2), and a lock
//! on a replaced inode protects nothing. So the lock for `/run/netheal/status` is
//! `/run/netheal/status.lock`, beside it.
//!
//! Opened with O_NOFOLLOW (a planted symlink is refused) and checked with fstat(2) on the fd:
//! a regular file with one link, owned by us, so a planted hard link cannot make root write
//! into someone else's file. The holder removes the file when it lets go; whoever locks a file
//! checks afterwards that the path still names the inode it locked (the previous holder may
//! have removed it in between), and tries again if not.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// An exclusive lock, held until dropped; dropping it removes the file.
#[derive(Debug)]
pub struct LockFile {
    path: PathBuf,
    _lock: Flock<File>,
}

/// What trying to take a lock found.
#[derive(Debug)]
pub enum Claim {
    Held(LockFile),
    /// Another process holds it: the pid it wrote, if it wrote one yet.
    Busy(Option<u32>),
}

/// Where the per-interface heal locks live: one `IFACE.lock` per interface, so two netheals
/// watching the same interface (two configurations, a second instance by mistake) never run
/// heal steps on it at the same time. A directory of its own, so that no interface name can
/// clash with a status file's lock.
pub const HEAL_LOCK_DIR: &str = "/run/netheal/heal";

/// The heal lock of interface `iface`.
pub fn heal_lock(iface: &str) -> PathBuf {
    Path::new(HEAL_LOCK_DIR).join(format!("{iface}.lock"))
}

/// `path` with `.lock` appended: `status` -> `status.lock`.
pub fn beside(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

fn open(path: &Path, create: bool) -> io::Result<File> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY);
    if create {
        o.write(true).create(true).mode(0o644);
    }
    o.open(path)
}

fn refuse(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{}: {why}", path.display()),
    )
}

/// Checks that the fd is a plain file of ours, not a planted device, fifo or hard link.
fn check(path: &Path, f: &File) -> io::Result<()> {
    let m = f.metadata()?;
    if !m.file_type().is_file() {
        return Err(refuse(path, "not a regular file"));
    }
    if m.nlink() != 1 {
        return Err(refuse(path, "has more than one link"));
    }
    if m.uid() != nix::unistd::geteuid().as_raw() {
        return Err(refuse(path, "owned by another user"));
    }
    Ok(())
}

fn same_inode(path: &Path, f: &File) -> io::Result<bool> {
    let fd = f.metadata()?;
    Ok(match std::fs::symlink_metadata(path) {
        Ok(p) => p.dev() == fd.dev() && p.ino() == fd.ino(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    })
}

fn read_pid(f: &mut File) -> Option<u32> {
    let mut s = String::new();
    f.rewind().ok()?;
    f.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

/// Takes the lock at `path` without waiting, creating the file (and its directory) if needed,
/// and writes our pid into it.
pub fn try_lock(path: &Path) -> io::Result<Claim> {
    for _ in 0..4 {
        let file = match open(path, true) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                open(path, true)?
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(refuse(path, "is a symbolic link"))
            }
            other => other?,
        };
        check(path, &file)?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((mut f, Errno::EWOULDBLOCK)) => return Ok(Claim::Busy(read_pid(&mut f))),
            Err((_, e)) => return Err(e.into()),
        };
        if !same_inode(path, &lock)? {
            continue; // its previous holder removed it after we opened it: open the new one
        }
        lock.set_len(0)?;
        lock.rewind()?;
        writeln!(lock, "{}", std::process::id())?;
        return Ok(Claim::Held(LockFile {
            path: path.to_path_buf(),
            _lock: lock,
        }));
    }
    Err(io::Error::other(format!(
        "{}: keeps being replaced",
        path.display()
    )))
}

/// Who holds the lock at `path`, without taking it (for `--status`, which may run as another
/// user): `Ok(None)` when nobody does or there is no lock file.
pub fn holder(path: &Path) -> io::Result<Option<Option<u32>>> {
    let mut f = match open(path, false) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // A shared lock conflicts only with the holder's exclusive one; it is released on return.
    match Flock::lock(f.try_clone()?, FlockArg::LockSharedNonblock) {
        Ok(_free) => Ok(None),
        Err((_, Errno::EWOULDBLOCK)) => Ok(Some(read_pid(&mut f))),
        Err((_, e)) => Err(e.into()),
    }
}

impl LockFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        // Removed while still locked: a process waiting on this inode sees, once it gets the
        // lock, that the path no longer names it, and starts again.
        let _ = std::fs::remove_file(&self.path); // not fatal: a leftover is only a stale lock file
    }
}

/// Says who holds a lock, for messages: `pid 123` or `a process that has not written its pid
/// yet`.
pub fn describe(pid: Option<u32>) -> String {
    pid.map_or("another process (pid not written yet)".into(), |p| {
        format!("pid {p}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("netheal-lock-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn second_claim_is_busy_and_names_the_holder() {
        let d = dir("busy");
        let path = d.join("sub/status.lock");
        let Claim::Held(first) = try_lock(&path).unwrap() else {
            panic!("first claim")
        };
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            std::process::id().to_string()
        );
        // flock belongs to the open file description: a second open conflicts as another
        // process would.
        match try_lock(&path).unwrap() {
            Claim::Busy(pid) => assert_eq!(pid, Some(std::process::id())),
            Claim::Held(_) => panic!("two holders"),
        }
        assert_eq!(holder(&path).unwrap(), Some(Some(std::process::id())));
        drop(first);
        assert!(!path.exists(), "removed on drop");
        assert_eq!(holder(&path).unwrap(), None);
        assert!(matches!(try_lock(&path).unwrap(), Claim::Held(_)));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_dead_holder_holds_nothing() {
        // A lock taken by a child that then exits (and is reaped, so its pid may be reused):
        // the lock is free although the file still names that pid.
        let d = dir("dead");
        std::fs::create_dir_all(&d).unwrap();
        let path = d.join("x.lock");
        let st = Command::new("flock")
            .arg(&path)
            .args(["-c", &format!("echo $$ > {}", path.display())])
            .status();
        let st = match st {
            Ok(st) => st,
            Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("skipped: flock(1): {e}");
                return;
            }
            Err(e) => panic!("flock(1): {e}"),
        };
        assert!(st.success());
        assert!(!std::fs::read_to_string(&path).unwrap().trim().is_empty());
        assert_eq!(
            holder(&path).unwrap(),
            None,
            "the reaped child holds no lock"
        );
        assert!(matches!(try_lock(&path).unwrap(), Claim::Held(_)));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn planted_links_are_refused() {
        let d = dir("links");
        std::fs::create_dir_all(&d).unwrap();
        let victim = d.join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let sym = d.join("sym.lock");
        std::os::unix::fs::symlink(&victim, &sym).unwrap();
        let e = try_lock(&sym).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let hard = d.join("hard.lock");
        std::fs::hard_link(&victim, &hard).unwrap();
        let e = try_lock(&hard).unwrap_err();
        assert!(e.to_string().contains("more than one link"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn beside_appends() {
        assert_eq!(
            beside(Path::new("/run/netheal/status")),
            PathBuf::from("/run/netheal/status.lock")
        );
    }
}
