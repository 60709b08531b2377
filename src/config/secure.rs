//! Files that decide what runs as root: the configuration file, its drop-ins, heal steps and
//! hooks. Like OpenSSH's `safe_path` and sudo's secure-path checks, a file is trusted only
//! when nobody but root (or the user running netheal) could have changed it or anything on
//! its path: every directory from `/` down is owned by root or that user and is not writable
//! by group or others unless it has the sticky bit (`/tmp`: others may add names there but
//! not rename or remove ours); every symbolic link followed is owned by root or that user;
//! the file itself is a regular file with the same owner rule and no group or other write
//! bit.
//!
//! Symbolic links are allowed (a NixOS or alternatives-style `/etc/netheal.conf`), but they
//! are followed here, one component at a time with `lstat`, so each directory a link leads
//! through is checked too. The configuration is then opened once, with O_NOFOLLOW on the
//! resolved name, checked with `fstat` on that descriptor, and read from it: no check of one
//! file followed by a read of another (issue 8, defect 1).
//!
//! Nothing here runs as a side effect: it only reads metadata and files.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

/// Links followed in one path before giving up (Linux's limit for path resolution, MAXSYMLINKS).
const MAX_LINKS: usize = 40;
const STICKY: u32 = 0o1000;
/// Larger than any sensible configuration; a bound on what a reload reads.
const MAX_FILE: u64 = 16 << 20;

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Root, or the user netheal runs as (a non-root `--check` of one's own file).
fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == euid()
}

fn owners() -> String {
    match euid() {
        0 => "root".to_string(),
        me => format!("root or uid {me}"),
    }
}

/// A directory on the way to a trusted file.
fn check_dir(dir: &Path, m: &Metadata) -> Result<(), String> {
    if !trusted_owner(m.uid()) {
        return Err(format!(
            "refused: directory {} is owned by uid {}, not {}: its owner could replace what it holds",
            dir.display(),
            m.uid(),
            owners()
        ));
    }
    if m.mode() & 0o022 != 0 && m.mode() & STICKY == 0 {
        return Err(format!(
            "refused: directory {} is writable by group or others without the sticky bit (mode {:04o}): anyone who may write it could swap the file: chmod go-w {}",
            dir.display(),
            m.mode() & 0o7777,
            dir.display()
        ));
    }
    Ok(())
}

/// The file itself: regular, owned by root (or us), not writable by group or others.
fn check_file(path: &Path, m: &Metadata, why: &str) -> Result<(), String> {
    if !m.is_file() {
        return Err("refused: not a regular file".to_string());
    }
    if m.mode() & 0o022 != 0 {
        return Err(format!(
            "refused: writable by group or others (mode {:04o}); {why}: chmod go-w {}",
            m.mode() & 0o7777,
            path.display()
        ));
    }
    if !trusted_owner(m.uid()) {
        return Err(format!(
            "refused: owned by uid {}, not {}; {why}: chown root {}",
            m.uid(),
            owners(),
            path.display()
        ));
    }
    Ok(())
}

/// Follows `path` component by component from `/` (or the working directory), checking
/// every directory passed through and every link followed, and returns the name it leads
/// to: absolute, without `.`, `..` or links. The last component is not checked (it may not
/// exist; the caller looks at it).
pub fn resolve(path: &Path) -> Result<PathBuf, String> {
    let start = if path.is_absolute() {
        PathBuf::from(path)
    } else {
        std::env::current_dir()
            .map_err(|e| format!("cannot read the working directory: {e}"))?
            .join(path)
    };
    let mut pending: Vec<OsString> = Vec::new(); // a stack: the next component is last
    push_components(&mut pending, &start);
    let mut at = PathBuf::from("/");
    let root = std::fs::symlink_metadata(&at).map_err(|e| format!("/: {e}"))?;
    check_dir(&at, &root)?;
    let mut links = 0;
    while let Some(name) = pending.pop() {
        match name.as_bytes() {
            b"." => continue,
            b".." => {
                at.pop(); // already checked on the way down
                continue;
            }
            _ => {}
        }
        let next = at.join(&name);
        let m = match std::fs::symlink_metadata(&next) {
            Ok(m) => m,
            // The last component: the caller's open or stat says what is missing.
            Err(_) if pending.is_empty() => return Ok(next),
            Err(e) => return Err(format!("cannot read: {}: {e}", next.display())),
        };
        if m.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(format!("too many symbolic links (more than {MAX_LINKS})"));
            }
            if !trusted_owner(m.uid()) {
                return Err(format!(
                    "refused: symbolic link {} is owned by uid {}, not {}",
                    next.display(),
                    m.uid(),
                    owners()
                ));
            }
            let target =
                std::fs::read_link(&next).map_err(|e| format!("{}: {e}", next.display()))?;
            if target.is_absolute() {
                at = PathBuf::from("/");
            }
            push_components(&mut pending, &target);
            continue;
        }
        if !pending.is_empty() {
            if !m.is_dir() {
                return Err(format!("{}: not a directory", next.display()));
            }
            check_dir(&next, &m)?;
        }
        at = next;
    }
    Ok(at)
}

/// Pushes `p`'s components so that the first is popped first.
fn push_components(stack: &mut Vec<OsString>, p: &Path) {
    let parts: Vec<OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            Component::CurDir => Some(".".into()),
            Component::RootDir | Component::Prefix(_) => None,
        })
        .collect();
    stack.extend(parts.into_iter().rev());
}

/// Names `path` and, when a link led elsewhere, where it led.
fn named(path: &Path, real: &Path) -> String {
    if real == path {
        String::new()
    } else {
        format!(" (resolved to {})", real.display())
    }
}

/// Reads a configuration file: resolved and checked as above, opened once (O_NOFOLLOW on
/// the resolved name, so a link put in its place after the walk is refused), checked with
/// fstat on the descriptor, and read from that same descriptor.
pub fn read_config(path: &Path) -> Result<Vec<u8>, String> {
    let why = "it decides what runs as root";
    let real = resolve(path)?;
    let mut f = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(&real)
        .map_err(|e| format!("cannot read{}: {e}", named(path, &real)))?;
    let m = f
        .metadata()
        .map_err(|e| format!("cannot read{}: {e}", named(path, &real)))?;
    check_file(&real, &m, why).map_err(|e| format!("{e}{}", named(path, &real)))?;
    if m.len() > MAX_FILE {
        return Err(format!("refused: {} bytes, more than {MAX_FILE}", m.len()));
    }
    let mut bytes = Vec::with_capacity(m.len() as usize);
    f.by_ref()
        .take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read{}: {e}", named(path, &real)))?;
    Ok(bytes)
}

/// A directory of drop-ins: itself checked like the directories above it. None when it
/// does not exist.
pub fn check_dropin_dir(path: &Path) -> Result<Option<PathBuf>, String> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read: {e}")),
        Ok(_) => {}
    }
    let real = resolve(path)?;
    let m = std::fs::symlink_metadata(&real)
        .map_err(|e| format!("cannot read{}: {e}", named(path, &real)))?;
    if !m.is_dir() {
        return Err(format!("not a directory{}", named(path, &real)));
    }
    check_dir(&real, &m)?;
    Ok(Some(real))
}

/// A heal step or hook: an executable regular file that only root (or we) could have
/// changed, anywhere on its path. It runs as root, just as the configuration decides.
pub fn check_executable(path: &Path) -> Result<(), String> {
    let real = resolve(path)?;
    let m = std::fs::symlink_metadata(&real).map_err(|e| format!("{e}{}", named(path, &real)))?;
    if !m.is_file() || m.mode() & 0o111 == 0 {
        return Err(format!(
            "this is not an executable file{}",
            named(path, &real)
        ));
    }
    check_file(&real, &m, "it runs as root").map_err(|e| format!("{e}{}", named(path, &real)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};

    /// A directory under /tmp (root-owned, sticky) with the given mode; removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str, mode: u32) -> Dir {
            let d = std::env::temp_dir().join(format!("nhsec{}{tag}", std::process::id()));
            let _ = fs::remove_dir_all(&d); // not fatal: a leftover of an earlier run
            fs::create_dir(&d).unwrap();
            fs::set_permissions(&d, fs::Permissions::from_mode(mode)).unwrap();
            Dir(d)
        }
        fn file(&self, name: &str, body: &str, mode: u32) -> PathBuf {
            let p = self.0.join(name);
            fs::write(&p, body).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
            p
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0); // not fatal: only a temp dir
        }
    }

    #[test]
    fn reads_a_checked_file() {
        let d = Dir::new("ok", 0o755);
        let p = d.file("a.conf", "[eth0]\n", 0o644);
        assert_eq!(read_config(&p).unwrap(), b"[eth0]\n");
        let e = read_config(&d.0.join("missing.conf")).unwrap_err();
        assert!(e.starts_with("cannot read: "), "{e}");
        let e = read_config(&d.0).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
    }

    /// Whoever may write the file's directory can swap the file between a check and a read
    /// (the old code checked `metadata(path)`, then read the path again): such a directory
    /// is refused, unless it is sticky (/tmp).
    #[test]
    fn a_directory_others_may_write_is_refused_unless_sticky() {
        for mode in [0o777, 0o775, 0o757] {
            let d = Dir::new(&format!("w{mode:o}"), mode);
            let p = d.file("a.conf", "[eth0]\n", 0o644);
            let e = read_config(&p).unwrap_err();
            assert!(
                e.contains(&format!("directory {} is writable by group or others without the sticky bit (mode {:04o})", d.0.display(), mode)),
                "{e}"
            );
            let exe = d.file("step", "#!/bin/sh\n", 0o755);
            let e = check_executable(&exe).unwrap_err();
            assert!(e.contains("without the sticky bit"), "{e}");
        }
        let d = Dir::new("sticky", 0o1777);
        let p = d.file("a.conf", "[eth0]\n", 0o644);
        assert!(read_config(&p).is_ok());
    }

    #[test]
    fn every_directory_up_to_the_root_is_checked() {
        let d = Dir::new("deep", 0o777);
        let inner = d.0.join("etc");
        fs::create_dir(&inner).unwrap();
        fs::set_permissions(&inner, fs::Permissions::from_mode(0o755)).unwrap();
        let p = inner.join("a.conf");
        fs::write(&p, "").unwrap();
        let e = read_config(&p).unwrap_err();
        assert!(
            e.contains(&format!("directory {} is writable", d.0.display())),
            "{e}"
        );
    }

    #[test]
    fn a_link_is_followed_and_its_target_checked() {
        let safe = Dir::new("lsafe", 0o755);
        let open = Dir::new("lopen", 0o777);
        let real = safe.file("real.conf", "x = 1\n", 0o644);
        let link = safe.0.join("link.conf");
        symlink(&real, &link).unwrap();
        assert_eq!(read_config(&link).unwrap(), b"x = 1\n");
        // A link to a file in a directory anyone may write: the target could be swapped.
        let planted = open.file("evil.conf", "y = 2\n", 0o644);
        let bad = safe.0.join("bad.conf");
        symlink(&planted, &bad).unwrap();
        let e = read_config(&bad).unwrap_err();
        assert!(e.contains("without the sticky bit"), "{e}");
        // A link in a writable directory, pointing at a safe file: the link could be swapped.
        let hop = open.0.join("hop.conf");
        symlink(&real, &hop).unwrap();
        let via = safe.0.join("via.conf");
        symlink(&hop, &via).unwrap();
        let e = read_config(&via).unwrap_err();
        assert!(
            e.contains(&format!("directory {} is writable", open.0.display())),
            "{e}"
        );
        // Relative links and `..` resolve as the kernel would.
        let rel = safe.0.join("rel.conf");
        symlink(
            "../".to_string() + safe.0.file_name().unwrap().to_str().unwrap() + "/real.conf",
            &rel,
        )
        .unwrap();
        assert_eq!(read_config(&rel).unwrap(), b"x = 1\n");
        // A loop ends.
        let a = safe.0.join("loop");
        symlink(&a, &a).unwrap();
        assert!(read_config(&a)
            .unwrap_err()
            .contains("too many symbolic links"));
    }

    #[test]
    fn files_others_may_write_are_refused() {
        let d = Dir::new("fmode", 0o755);
        let p = d.file("a.conf", "", 0o666);
        assert!(read_config(&p)
            .unwrap_err()
            .contains("writable by group or others (mode 0666)"));
        let exe = d.file("step", "#!/bin/sh\n", 0o775);
        assert!(check_executable(&exe).unwrap_err().contains("(mode 0775)"));
        let plain = d.file("plain", "#!/bin/sh\n", 0o644);
        assert!(check_executable(&plain)
            .unwrap_err()
            .contains("not an executable"));
        assert!(check_executable(Path::new("/bin/sh")).is_ok());
    }

    /// As root: a file, directory or link owned by another user is refused.
    #[test]
    fn foreign_owners_are_refused_as_root() {
        if euid() != 0 {
            eprintln!("SKIP: needs root to chown");
            return;
        }
        let d = Dir::new("own", 0o755);
        let p = d.file("a.conf", "", 0o644);
        std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
        assert!(read_config(&p)
            .unwrap_err()
            .contains("owned by uid 65534, not root"));
        let exe = d.file("step", "#!/bin/sh\n", 0o755);
        std::os::unix::fs::chown(&exe, Some(65534), None).unwrap();
        assert!(check_executable(&exe)
            .unwrap_err()
            .contains("owned by uid 65534"));
        let sub = d.0.join("sub");
        fs::create_dir(&sub).unwrap();
        std::os::unix::fs::chown(&sub, Some(65534), None).unwrap();
        let q = sub.join("b.conf");
        fs::write(&q, "").unwrap();
        let e = read_config(&q).unwrap_err();
        assert!(
            e.contains(&format!(
                "directory {} is owned by uid 65534",
                sub.display()
            )),
            "{e}"
        );
        let good = d.file("good.conf", "", 0o644);
        let link = d.0.join("link.conf");
        symlink(&good, &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(65534), None).unwrap();
        assert!(read_config(&link).unwrap_err().contains("symbolic link"));
    }
}
