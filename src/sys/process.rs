//! Child processes: starting a command (argv, its own process group, a clean signal mask,
//! stdout and stderr into one non-blocking pipe), the built-in `link` step in a forked child,
//! signals to a child and its group, and reaping without ever blocking (waitpid(2) with
//! WNOHANG). Nothing here decides when to signal or what an exit means: heal.rs does.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::{pipe2, Pid};

use super::{cvt, iface, signals};

/// A pipe whose read end (first) is non-blocking; both ends close on exec.
fn output_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
    let flags = OFlag::from_bits_truncate(fcntl(&read, FcntlArg::F_GETFL)?);
    fcntl(&read, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok((read, write))
}

/// Starts `argv` with stdin from /dev/null, stdout and stderr into a pipe (whose read end is
/// returned), in `/`, in a new process group of its own, with `env` set and `unset` removed.
pub fn spawn(
    argv: &[String],
    env: &[(&str, String)],
    unset: &[&str],
    default_path: &str,
) -> io::Result<(Pid, OwnedFd)> {
    let Some(prog) = argv.first() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
    };
    let (read, write) = output_pipe()?;
    let mut cmd = Command::new(prog);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::from(write.try_clone()?))
        .stderr(Stdio::from(write))
        .current_dir("/")
        .process_group(0);
    signals::reset_in_child(&mut cmd);
    for var in unset {
        cmd.env_remove(var);
    }
    if std::env::var_os("PATH").is_none() {
        cmd.env("PATH", default_path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    // The Child handle is dropped: that neither waits nor kills; we reap by pid (reap()).
    let child = cmd.spawn()?;
    Ok((Pid::from_raw(child.id() as i32), read))
}

/// The built-in `link` step (IFF_UP off, then on) in a forked child, so that a driver that
/// holds rtnl for seconds stalls only that child, under the same deadline, signals and
/// reaping as any other step. The child exits 0, or with the errno of the call that failed.
/// `hold` delays the ioctls (tests only: a step that overruns its deadline).
///
/// Why fork rather than exec netheal again with a hidden argument: no /proc/self/exe needed
/// (initramfs, a binary replaced by an upgrade), no extra argv surface to parse, and it works
/// from the unit tests, whose executable is not netheal.
pub fn spawn_link(name: &str, hold: Duration) -> io::Result<(Pid, OwnedFd)> {
    let ifr = iface::ifreq(name)?;
    let (read, write) = output_pipe()?;
    // SAFETY: all-zero is a valid sigset_t, and sigemptyset initialises it.
    let mut empty: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `empty` is a valid sigset_t owned by this frame.
    unsafe { libc::sigemptyset(&mut empty) };
    let hold = libc::timespec {
        tv_sec: hold.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: hold.subsec_nanos() as libc::c_long,
    };
    let keep = write.as_raw_fd();
    // SAFETY: the unit tests call this from a multi-threaded process, so the child may only
    // make async-signal-safe calls (signal-safety(7)) until it exits: it does, using only raw
    // system calls on values prepared before the fork (dup2, close_range/close, setpgid,
    // sigprocmask, signal, nanosleep, socket, ioctl, _exit). It allocates nothing, takes no
    // lock, never returns into Rust code of the parent's and never unwinds.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: see above; every call here is async-signal-safe and only uses stack values.
        unsafe {
            // stdout and stderr into the pipe, as for any step; every other fd of ours closed
            // (a wedged child must not hold a socket, lock or another step's pipe open).
            libc::dup2(keep, 1);
            libc::dup2(keep, 2);
            if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
                for fd in 3..1024 {
                    libc::close(fd);
                }
            }
            libc::setpgid(0, 0);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            if hold.tv_sec != 0 || hold.tv_nsec != 0 {
                let mut hold = hold;
                while libc::nanosleep(&hold, &mut hold) != 0 {}
            }
            libc::_exit(iface::bounce_in_child(&ifr));
        }
    }
    cvt(pid)?;
    let pid = Pid::from_raw(pid);
    // Both sides set the group, as shells do: whichever runs first, a signal sent to the
    // group right after fork returns finds the child in it.
    let _ = nix::unistd::setpgid(pid, pid); // not fatal: EACCES once the child has run
    drop(write);
    Ok((pid, read))
}

/// Sends `sig` to child `pid` and to its process group: a step that moved to another group
/// is still hit, and so is everything it left in its own. Only for a child not yet reaped
/// (a zombie keeps its pid, so it cannot have been reused).
pub fn signal(pid: Pid, sig: Signal) {
    // not fatal: ESRCH means the group (or the process) is already gone
    let _ = killpg(pid, sig);
    let _ = kill(pid, sig);
}

/// Sends `sig` to what is left of the process group that `pgid` led (its leader reaped).
pub fn signal_group(pgid: Pid, sig: Signal) {
    let _ = killpg(pgid, sig); // not fatal: ESRCH means nothing of it is left
}

/// `waitpid(pid, WNOHANG)`: Some(status) once the child ended (and is reaped now).
fn try_wait(pid: libc::pid_t) -> io::Result<Option<(Pid, ExitStatus)>> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer for the duration of the call.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        match r {
            0 => return Ok(None),
            -1 => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            p => return Ok(Some((Pid::from_raw(p), ExitStatus::from_raw(status)))),
        }
    }
}

/// Whether we are some PID namespace's init (a container's or an initramfs' PID 1): then
/// every orphan of the namespace becomes our child, and ours to reap.
pub fn is_init() -> bool {
    std::process::id() == 1
}

/// Reaps every child of `pids` that has ended, without blocking. With `any` (we are PID 1)
/// it reaps every ended child instead, orphans included, so that the caller can dispatch our
/// own by pid and none of their statuses is lost to a second waitpid. An error (ECHILD: not
/// our child any more) is reported for that pid.
pub fn reap(pids: &[Pid], any: bool) -> Vec<(Pid, io::Result<ExitStatus>)> {
    let mut out = Vec::new();
    if any {
        // Bounded: each success removes one zombie; none left ends the loop.
        while let Ok(Some((pid, status))) = try_wait(-1) {
            out.push((pid, Ok(status)));
        }
        return out;
    }
    for &pid in pids {
        match try_wait(pid.as_raw()) {
            Ok(Some((pid, status))) => out.push((pid, Ok(status))),
            Ok(None) => {}
            Err(e) => out.push((pid, Err(e))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mono::Instant;
    use std::os::unix::process::ExitStatusExt;

    fn wait_for(pid: Pid) -> ExitStatus {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some((_, st)) = reap(&[pid], false).pop() {
                return st.unwrap();
            }
            assert!(Instant::now() < until, "child {pid} did not end");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn link_child_on_a_missing_interface_exits_with_enodev() {
        let (pid, _out) = spawn_link("nh-nosuch0", Duration::ZERO).unwrap();
        assert_eq!(wait_for(pid).code(), Some(libc::ENODEV));
    }

    #[test]
    fn link_child_is_killable_and_leads_its_group() {
        let (pid, _out) = spawn_link("nh-nosuch1", Duration::from_secs(30)).unwrap();
        assert_eq!(nix::unistd::getpgid(Some(pid)).unwrap(), pid);
        signal(pid, Signal::SIGTERM);
        assert_eq!(wait_for(pid).signal(), Some(libc::SIGTERM));
    }

    #[test]
    fn reap_does_not_block_and_reports_a_stranger_once() {
        let (pid, _out) = spawn(
            &["/bin/sh".into(), "-c".into(), "sleep 0.2".into()],
            &[],
            &[],
            "/bin",
        )
        .unwrap();
        let t0 = Instant::now();
        assert!(reap(&[pid], false).is_empty());
        assert!(t0.elapsed() < Duration::from_millis(100));
        assert_eq!(wait_for(pid).code(), Some(0));
        // Reaped: asking again is ECHILD, not a hang and not a second status.
        let again = reap(&[pid], false);
        assert!(
            matches!(&again[..], [(p, Err(_))] if *p == pid),
            "{again:?}"
        );
    }
}
