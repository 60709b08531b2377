//! Change notification for files that may not exist yet (the inhibit file), with inotify(7)
//! on their directories: a file written with rename(2) over it (as `netheal --inhibit` and
//! editors do), written in place, removed, or created along with its directory is seen the
//! moment it happens, at no cost while nothing changes: the inotify fd sits in the loop's
//! poll set, so a healthy round makes no system call for it. While a directory is missing,
//! its nearest existing ancestor is watched instead, and the watch moves down as the
//! directories appear. Events are only a hint to read the file again; the reader decides
//! from the file itself, so a spurious one costs a stat.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

/// Everything that can change what a path in the directory is, and the directory going away.
fn mask() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_ONLYDIR
}

#[derive(Debug)]
struct Watched {
    path: PathBuf,
    name: OsString,
    /// The watch on the file's directory (`direct`) or, while it is missing, on the nearest
    /// ancestor that exists.
    wd: Option<WatchDescriptor>,
    direct: bool,
}

#[derive(Debug)]
pub struct FileWatch {
    ino: Inotify,
    files: Vec<Watched>,
}

impl FileWatch {
    /// Watches `paths` (absolute or relative to the working directory at start).
    pub fn open<'a>(paths: impl IntoIterator<Item = &'a Path>) -> io::Result<FileWatch> {
        let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        let mut fw = FileWatch {
            ino,
            files: Vec::new(),
        };
        for p in paths {
            let Some(name) = p.file_name() else { continue };
            if fw.files.iter().any(|w| w.path == p) {
                continue;
            }
            fw.files.push(Watched {
                path: p.to_path_buf(),
                name: name.to_os_string(),
                wd: None,
                direct: false,
            });
        }
        for i in 0..fw.files.len() {
            fw.arm(i)?;
        }
        Ok(fw)
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.ino.as_fd()
    }

    /// (Re)places file `i`'s watch on its directory, or on the nearest ancestor that exists.
    /// Only running out of watches (ENOSPC, fs.inotify.max_user_watches) or memory is an error.
    fn arm(&mut self, i: usize) -> io::Result<()> {
        self.arm_with(i, |_| {})
    }

    /// `arm`, calling `missed(d)` for each directory `d` found missing (the tests make one
    /// there, as a `mkdir -p` racing us would). A directory made below an ancestor after it
    /// was found missing and before the ancestor is watched sends no event: the watch would
    /// stay on the ancestor while the file changes below it. So once an ancestor is watched,
    /// the directory below it is looked at again, and the watch moved down if it exists.
    fn arm_with(&mut self, i: usize, mut missed: impl FnMut(&Path)) -> io::Result<()> {
        const TRIES: usize = 8; // directories that keep appearing: the next event moves it
        let w = &mut self.files[i];
        let dir = w
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        'again: for attempt in 1..=TRIES {
            let mut at = Some(dir.as_path());
            let mut below: Option<&Path> = None;
            while let Some(d) = at {
                match self.ino.add_watch(d, mask()) {
                    Ok(wd) => {
                        w.wd = Some(wd);
                        w.direct = below.is_none();
                        if attempt < TRIES && below.is_some_and(Path::exists) {
                            continue 'again;
                        }
                        return Ok(());
                    }
                    Err(Errno::ENOENT | Errno::ENOTDIR | Errno::EACCES) => missed(d),
                    Err(e) => {
                        w.wd = None;
                        return Err(e.into());
                    }
                }
                below = Some(d);
                at = d.parent().filter(|p| !p.as_os_str().is_empty());
            }
            break;
        }
        w.wd = None; // not even / can be watched: `changed` never fires; the caller re-checks
        Ok(())
    }

    /// Whether every file has its watch (on its directory or an ancestor).
    pub fn armed(&self) -> bool {
        self.files.iter().all(|w| w.wd.is_some())
    }

    /// Reads every queued event. True when one may concern a watched file: its name in its
    /// directory, the directory itself moved or removed, a missing directory appearing, or
    /// lost events (the queue overflowed). Watches are moved as directories come and go.
    pub fn changed(&mut self) -> io::Result<bool> {
        let mut changed = false;
        let mut rearm = Vec::new();
        loop {
            let events = match self.ino.read_events() {
                Ok(ev) => ev,
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            if events.is_empty() {
                break;
            }
            for ev in events {
                if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    changed = true;
                    rearm.extend(0..self.files.len());
                    continue;
                }
                let gone = ev.mask.intersects(
                    AddWatchFlags::IN_IGNORED
                        | AddWatchFlags::IN_DELETE_SELF
                        | AddWatchFlags::IN_MOVE_SELF,
                );
                for (i, w) in self.files.iter().enumerate() {
                    if w.wd != Some(ev.wd) {
                        continue;
                    }
                    if !w.direct || gone {
                        // An ancestor changed (the directory may exist now), or the
                        // directory went away: watch again from where it stands.
                        changed = true;
                        rearm.push(i);
                    } else if ev.name.as_deref() == Some(w.name.as_os_str()) {
                        changed = true;
                    }
                }
            }
        }
        rearm.sort_unstable();
        rearm.dedup();
        for i in rearm {
            self.arm(i)?;
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("netheal-fw-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn sees_the_file_written_renamed_over_and_removed_but_not_its_neighbours() {
        let d = scratch("a");
        let file = d.join("inhibit");
        let mut fw = FileWatch::open([file.as_path()]).unwrap();
        assert!(fw.armed());
        assert!(!fw.changed().unwrap(), "nothing happened yet");
        std::fs::write(d.join("status"), "x").unwrap();
        std::fs::rename(d.join("status"), d.join("status2")).unwrap();
        assert!(!fw.changed().unwrap(), "another file in the directory");
        std::fs::write(d.join("tmp"), "y").unwrap();
        std::fs::rename(d.join("tmp"), &file).unwrap();
        assert!(fw.changed().unwrap(), "renamed over");
        assert!(!fw.changed().unwrap(), "read once");
        std::fs::write(&file, "z").unwrap();
        assert!(fw.changed().unwrap(), "written in place");
        std::fs::remove_file(&file).unwrap();
        assert!(fw.changed().unwrap(), "removed");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_directory_made_while_its_ancestor_is_being_watched_is_not_missed() {
        // A watch on another directory, so that nothing of this one is watched yet.
        let elsewhere = scratch("c2").join("x");
        let mut fw = FileWatch::open([elsewhere.as_path()]).unwrap();
        let d = scratch("c");
        let file = d.join("run/netheal/inhibit");
        fw.files.push(Watched {
            path: file.clone(),
            name: "inhibit".into(),
            wd: None,
            direct: false,
        });
        // `run` found missing, then made (with netheal in it) before `d` is watched: no
        // event will ever tell.
        let run = d.join("run");
        fw.arm_with(1, |missing| {
            if missing == run {
                std::fs::create_dir_all(run.join("netheal")).unwrap();
            }
        })
        .unwrap();
        assert!(fw.files[1].direct, "{fw:?}");
        std::fs::write(&file, "x").unwrap();
        assert!(
            fw.changed().unwrap(),
            "the file in the directory made meanwhile"
        );
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_dir_all(elsewhere.parent().unwrap());
    }

    #[test]
    fn a_missing_directory_is_waited_for_and_then_watched() {
        let d = scratch("b");
        let file = d.join("run/netheal/inhibit");
        let mut fw = FileWatch::open([file.as_path()]).unwrap();
        assert!(fw.armed(), "the nearest existing ancestor is watched");
        std::fs::create_dir(d.join("run")).unwrap();
        // Not the file yet, but the watch moves down; the caller just finds no file.
        fw.changed().unwrap();
        std::fs::create_dir(d.join("run/netheal")).unwrap();
        fw.changed().unwrap();
        assert!(!fw.changed().unwrap());
        std::fs::write(&file, "x").unwrap();
        assert!(
            fw.changed().unwrap(),
            "the file in the directory made after start"
        );
        // The directory removed and made again: still watched.
        std::fs::remove_dir_all(d.join("run")).unwrap();
        assert!(fw.changed().unwrap(), "the file went with it");
        std::fs::create_dir_all(d.join("run/netheal")).unwrap();
        fw.changed().unwrap();
        fw.changed().unwrap();
        std::fs::write(&file, "y").unwrap();
        assert!(fw.changed().unwrap(), "{fw:?}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
