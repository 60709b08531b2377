//! What the reboot step needs from the kernel: the boot id and uptime, a durable file write,
//! whether a directory is on a RAM file system, and sync(2) + reboot(2).
//!
//! For netheal's own tests only: `NETHEAL_TEST_BOOT_ID_FILE` and `NETHEAL_TEST_UPTIME_FILE`
//! name files read instead of /proc/sys/kernel/random/boot_id and /proc/uptime, so a test can
//! play several boots and any uptime (like `NETHEAL_TEST_STALL_AFTER` in src/daemon.rs). A
//! reboot(2) reached under them still reboots: tests run netheal in a child PID namespace,
//! where reboot(2) ends that namespace's init only (pid_namespaces(7)).
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::budget::parse_secs;

pub const BOOT_ID_ENV: &str = "NETHEAL_TEST_BOOT_ID_FILE";
pub const UPTIME_ENV: &str = "NETHEAL_TEST_UPTIME_FILE";
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
const UPTIME: &str = "/proc/uptime";
/// statfs(2) f_type of ramfs (linux/magic.h); nix names TMPFS_MAGIC only.
const RAMFS_MAGIC: i64 = 0x8584_58f6;

fn source(env: &str, default: &str) -> PathBuf {
    std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// The kernel's random id of this boot.
pub fn boot_id() -> io::Result<String> {
    let path = source(BOOT_ID_ENV, BOOT_ID);
    let id = fs::read_to_string(&path)?.trim().to_string();
    if id.is_empty() || id.contains(char::is_whitespace) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a boot id", path.display()),
        ));
    }
    Ok(id)
}

/// Time since boot, suspend included (the first field of /proc/uptime).
pub fn uptime() -> io::Result<Duration> {
    let path = source(UPTIME_ENV, UPTIME);
    let text = fs::read_to_string(&path)?;
    text.split_whitespace()
        .next()
        .and_then(parse_secs)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: no uptime in it", path.display()),
            )
        })
}

/// Whether `dir` (or its nearest existing ancestor) is on tmpfs or ramfs: a file there does
/// not survive a reboot.
pub fn on_ram_fs(dir: &Path) -> io::Result<bool> {
    let mut p = dir;
    loop {
        match nix::sys::statfs::statfs(p) {
            Ok(st) => {
                let t = st.filesystem_type();
                // f_type is i64 here, u32 or i32 on other targets
                #[allow(clippy::unnecessary_cast)]
                return Ok(t == nix::sys::statfs::TMPFS_MAGIC || t.0 as i64 == RAMFS_MAGIC);
            }
            Err(nix::errno::Errno::ENOENT) => match p.parent() {
                Some(up) => p = up,
                None => return Ok(false),
            },
            Err(e) => return Err(e.into()),
        }
    }
}

/// Replaces `path` with `content` so that after a crash or power cut the old or the new
/// content is there, never a mix and never nothing: a new temporary file (O_EXCL, O_NOFOLLOW,
/// mode 0600) beside it, fsync, rename over, fsync of the directory. Creates the directory
/// (0700) if needed.
pub fn write_durable(path: &Path, content: &str) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.new", std::process::id()));
    let open = || {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
    };
    let mut f = match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // A leftover of a crash with our pid: ours to remove. not fatal if it is gone
            let _ = fs::remove_file(&tmp);
            open()?
        }
        other => other?,
    };
    let result = f
        .write_all(content.as_bytes())
        .and_then(|()| f.sync_all())
        .and_then(|()| fs::rename(&tmp, path))
        .and_then(|()| fs::File::open(dir)?.sync_all());
    if result.is_err() {
        let _ = fs::remove_file(&tmp); // not fatal: best effort clean-up of our own temp file
    }
    result
}

/// sync(2), then reboot(2) with RB_AUTOBOOT. Returns only if the kernel refused (EPERM
/// without CAP_SYS_BOOT). In a child PID namespace this ends the namespace's init with
/// SIGHUP instead of rebooting the machine (pid_namespaces(7)).
pub fn sync_and_reboot() -> io::Error {
    nix::unistd::sync();
    match nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT) {
        Ok(never) => match never {},
        Err(e) => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durable_write_replaces_and_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("netheal-boot-{}", std::process::id()));
        let path = dir.join("state/reboots");
        write_durable(&path, "one\n").unwrap();
        write_durable(&path, "two\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two\n");
        let n = fs::read_dir(dir.join("state")).unwrap().count();
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!((n, mode), (1, 0o600));
    }

    #[test]
    fn ram_fs_is_recognised() {
        // /proc is neither tmpfs nor ramfs; /dev/shm is tmpfs where it exists.
        assert!(!on_ram_fs(Path::new("/proc")).unwrap());
        if Path::new("/dev/shm").is_dir() {
            assert!(on_ram_fs(Path::new("/dev/shm/netheal/not/yet")).unwrap());
        }
    }

    #[test]
    fn this_boot_has_an_id_and_an_uptime() {
        if std::env::var_os(BOOT_ID_ENV).is_none() {
            assert_eq!(boot_id().unwrap().len(), 36);
        }
        if std::env::var_os(UPTIME_ENV).is_none() {
            assert!(uptime().unwrap() > Duration::ZERO);
        }
    }
}
