//! Issue 11 end to end with the real binary: the opt-in `reboot` heal step and its budget
//! that survives reboots, boot grace, heals held until a first good round, the maintenance
//! inhibit, and --dry-run.
//!
//! Reboot rule: every netheal that can reach the reboot step runs as a child of the init of
//! a PID namespace of its own (`unshare --pid --fork --mount --mount-proc`, inside the test's
//! network namespace). The wrapper that is that init first checks that its PID namespace is
//! not the test's own (and exits 99 if it is, before anything starts), then bind-mounts a
//! trap script over the machine's reboot, shutdown and systemctl in its private mount
//! namespace, so a default `/sbin/reboot` could never reach the machine's init either. The
//! graceful command is a script of the test's own; reboot(2) there ends only the namespace's
//! init, with SIGHUP (pid_namespaces(7)). /proc/sysrq-trigger is never touched.
//!
//! "Boots" are played with `NETHEAL_TEST_BOOT_ID_FILE` and `NETHEAL_TEST_UPTIME_FILE`, files of
//! the test's own that netheal reads instead of /proc; a wrong wall clock comes from Debian's
//! libfaketime. Packets stay inside the test's namespaces (198.51.100.0/24).

mod lab;

use lab::{bin, kill, wait_until, Lab, Netheal, PEER4};
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn s(x: f64) -> Duration {
    Duration::from_secs_f64(x)
}

const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// A lab for reboot tests: the standard pair, plus the boot-id and uptime files, the state
/// dir, the PID-namespace wrapper and its trap.
struct Rig {
    lab: Lab,
    boot_id: String,
    uptime: String,
    state: String,
    wrapper: String,
    trap_log: String,
}

impl Rig {
    fn new(tag: &str) -> Option<Rig> {
        let lab = Lab::pair(
            tag,
            0xb0 + tag.len() as u16,
            &["unshare", "mount", "readlink"],
        )?;
        let boot_id = lab.path("boot_id");
        let uptime = lab.path("uptime");
        let state = lab.path("state");
        let trap_log = lab.path("trap.log");
        let trap = lab.script(
            "trap.sh",
            &format!("#!/bin/sh\necho \"TRAPPED $0 $*\" >> {trap_log}\nexit 0\n"),
        );
        let outer = fs::read_link("/proc/self/ns/pid").expect("readlink /proc/self/ns/pid");
        let wrapper = lab.script(
            "pid1.sh",
            &format!(
                "#!/bin/sh\n\
                 # init of a fresh PID namespace, in a private mount namespace\n\
                 if [ \"$(readlink /proc/self/ns/pid)\" = \"{outer}\" ]; then\n\
                 \techo 'WRAPPER: in the initial PID namespace: refusing to start' >&2; exit 99\n\
                 fi\n\
                 echo \"WRAPPER: pid $$ in $(readlink /proc/self/ns/pid)\"\n\
                 for f in /sbin/reboot /usr/sbin/reboot /sbin/shutdown /usr/sbin/shutdown /sbin/halt /usr/sbin/halt /sbin/poweroff /usr/sbin/poweroff /bin/systemctl /usr/bin/systemctl; do\n\
                 \t[ -e \"$f\" ] && mount --bind {trap} \"$f\"\n\
                 done\n\
                 \"$@\"\n\
                 echo \"WRAPPER: netheal exited $?\"\n",
                outer = outer.display(),
                trap = trap.display(),
            ),
        );
        let b = Rig {
            boot_id,
            uptime,
            state,
            wrapper: wrapper.to_str().unwrap().to_owned(),
            trap_log,
            lab,
        };
        b.boot("boot-1", 5000.0);
        Some(b)
    }

    /// The "boot" netheal sees next: its id and uptime.
    fn boot(&self, id: &str, uptime: f64) {
        fs::write(&self.boot_id, format!("{id}\n")).unwrap();
        self.set_uptime(uptime);
    }

    fn set_uptime(&self, uptime: f64) {
        fs::write(&self.uptime, format!("{uptime:.2} 0.00\n")).unwrap();
    }

    fn budget_file(&self) -> String {
        format!("{}/reboots", self.state)
    }

    fn records(&self) -> Vec<String> {
        fs::read_to_string(self.budget_file())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("reboot "))
            .map(str::to_owned)
            .collect()
    }

    /// A graceful reboot command that logs its call with the budget file as it is at that
    /// moment, then stops netheal (its parent) as a shutting-down init would.
    fn graceful(&self) -> (String, String) {
        let calls = self.lab.path("graceful.calls");
        let script = self.lab.script(
            "graceful.sh",
            &format!(
                "#!/bin/sh\n\
                 {{ echo \"CALLED $*\"; cat {} 2>&1; }} >> {calls}\n\
                 kill -TERM $PPID\n",
                self.budget_file()
            ),
        );
        (script.to_str().unwrap().to_owned(), calls)
    }

    /// netheal under the wrapper: `ip netns exec HOST unshare ... pid1.sh netheal ARGS`,
    /// with the boot-id and uptime files and `env`.
    fn netheal(&self, args: &[&str], env: &[(&str, &str)]) -> Netheal {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.lab.host])
            .args([
                "unshare",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount",
                "--mount-proc",
            ])
            .args([
                &self.wrapper,
                bin(),
                "--log",
                "stderr",
                "--state-dir",
                &self.state,
            ])
            .args([
                // break_link takes the peer's end down: the heal comes after fail-after
                // rounds, as these tests expect, not after the default 30 s carrier wait.
                "--carrier-wait",
                "0",
                "--inhibit-file",
                "none",
                "-i",
                "200ms",
                "-W",
                "200ms",
                "-n",
                "2",
            ])
            .args(["--count", "2", "-t", PEER4])
            .args(lab::LADDER)
            .args(args)
            .arg(&self.lab.ifc)
            .env("NETHEAL_TEST_BOOT_ID_FILE", &self.boot_id)
            .env("NETHEAL_TEST_UPTIME_FILE", &self.uptime);
        for var in [
            "NOTIFY_SOCKET",
            "WATCHDOG_USEC",
            "WATCHDOG_PID",
            "LD_PRELOAD",
        ] {
            cmd.env_remove(var);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let nh = Netheal::spawn(cmd, args.join(" "));
        let line = nh.expect(nh.started, "WRAPPER: pid 1 in pid:[", s(5.0)).1;
        let inner = line.rsplit(" in ").next().unwrap().to_owned();
        let outer = fs::read_link("/proc/self/ns/pid").unwrap();
        assert_ne!(
            inner,
            outer.display().to_string(),
            "not in the initial PID namespace"
        );
        nh
    }

    /// Total silent loss towards the peer.
    fn break_link(&self) {
        self.lab
            .ip(&self.lab.peer, &["link", "set", &self.lab.pifc, "down"]);
    }

    fn trapped(&self) -> String {
        fs::read_to_string(&self.trap_log).unwrap_or_default()
    }
}

/// Netheal's exit: waits for the wrapper (and so the namespace) to end.
fn ended(nh: &mut Netheal, within: Duration) -> std::process::ExitStatus {
    nh.wait_exit(within)
        .unwrap_or_else(|| panic!("the namespace did not end within {within:?}"))
}

/// The ladder reaches `reboot` only after its earlier step; the budget record is on disk
/// before the graceful command runs; the command gets no arguments of ours.
#[test]
fn reboot_is_the_last_rung_and_is_recorded_before_the_command() {
    let Some(b) = Rig::new("lr") else { return };
    let (graceful, calls) = b.graceful();
    let step = b.lab.script(
        "step1.sh",
        &format!(
            "#!/bin/sh\necho \"STEP1 $*\" >> {}\n",
            b.lab.path("step1.calls")
        ),
    );
    let mut nh = b.netheal(
        &[
            "--heal",
            step.to_str().unwrap(),
            "--heal",
            "reboot",
            "--backoff",
            "300ms:300ms",
            "--reboot-command",
            &graceful,
            "--reboot-timeout",
            "20s",
            "--boot-grace",
            "0",
        ],
        &[],
    );
    nh.expect(nh.started, "state starting -> up", s(10.0));
    let t = Instant::now();
    b.break_link();
    let first = nh.expect(t, "heal attempt 1: running", s(10.0));
    assert!(first.1.contains("step1.sh"), "{}", first.1);
    let reboot = nh.expect(t, "heal attempt 2: rebooting", s(10.0));
    assert!(first.0 < reboot.0);
    assert!(
        reboot.1.contains("reboot 1 of 3 in 24h recorded in"),
        "{}",
        reboot.1
    );
    let status = ended(&mut nh, s(15.0));
    assert_eq!(
        status.code(),
        Some(0),
        "stopped by the graceful script's SIGTERM"
    );
    let calls = fs::read_to_string(&calls).unwrap();
    assert!(calls.starts_with("CALLED \n"), "no arguments: {calls}");
    assert!(
        calls.contains("netheal-reboots 1\nreboot boot=boot-1 wall=")
            && calls.contains(" uptime=5000.000\n"),
        "the record was on disk when the command ran: {calls}"
    );
    assert_eq!(b.records().len(), 1);
    assert_eq!(
        fs::read_to_string(b.lab.path("step1.calls"))
            .unwrap()
            .lines()
            .count(),
        1
    );
    assert_eq!(
        b.trapped(),
        "",
        "the machine's own reboot commands were never run"
    );
}

/// A graceful command that does nothing: after reboot-timeout netheal calls sync(2) and
/// reboot(2), which in a child PID namespace ends its init with SIGHUP.
#[test]
fn still_up_after_the_timeout_reboot2_ends_the_namespace_init_with_sighup() {
    let Some(b) = Rig::new("fb") else { return };
    let nothing = b.lab.script("nothing.sh", "#!/bin/sh\nexit 0\n");
    let mut nh = b.netheal(
        &[
            "--heal",
            "reboot",
            "--heal-before-up",
            "--boot-grace",
            "0",
            "--reboot-command",
            nothing.to_str().unwrap(),
            "--reboot-timeout",
            "1s",
        ],
        &[],
    );
    b.break_link();
    let start = nh.expect(nh.started, "heal attempt 1: rebooting", s(10.0));
    nh.expect(start.0, "reboot: waiting up to", s(5.0));
    let fall = nh.expect(
        start.0,
        "the system is still up: sync(2) and reboot(2)",
        s(5.0),
    );
    let waited = fall.0.duration_since(start.0);
    assert!(
        waited >= s(0.9),
        "the fallback waited the reboot-timeout: {waited:?}"
    );
    let status = ended(&mut nh, s(10.0));
    assert_eq!(
        status.signal(),
        Some(1),
        "the namespace's init died of SIGHUP: {status:?}"
    );
    assert!(!nh
        .lines()
        .iter()
        .any(|l| l.1.contains("WRAPPER: netheal exited")));
    assert_eq!(b.records().len(), 1);
    assert_eq!(b.trapped(), "");
}

/// Three reboots in three "boots", the spacing doubling; the fourth boot is degraded: no
/// reboot, the other step runs instead, and the log, status file, metrics and hook say so.
/// Then the records age out (by uptime) and the budget is back.
#[test]
fn the_fourth_reboot_is_refused_across_boots_spacing_grows_and_the_budget_recovers() {
    let Some(b) = Rig::new("bu") else { return };
    let (graceful, calls) = b.graceful();
    let step = b.lab.script(
        "other.sh",
        &format!("#!/bin/sh\necho OTHER >> {}\n", b.lab.path("other.calls")),
    );
    let hook_log = b.lab.path("hook.log");
    let hook = b.lab.script(
        "hook.sh",
        &format!(
            "#!/bin/sh\necho \"$NETHEAL_STATE|$NETHEAL_REASON|$NETHEAL_DEGRADED\" >> {hook_log}\n"
        ),
    );
    let (status, metrics) = (b.lab.path("status"), b.lab.path("metrics"));
    let args = [
        "--heal",
        "reboot",
        "--heal",
        step.to_str().unwrap(),
        "--heal",
        "reboot",
        "--heal-before-up",
        "--boot-grace",
        "0",
        "--backoff",
        "300ms:300ms",
        "--reboot-command",
        &graceful,
        "--reboot-spacing",
        "60s",
        "--on-change",
        hook.to_str().unwrap(),
        "--status-file",
        &status,
        "--metrics-file",
        &metrics,
    ];
    b.break_link();
    // Boots 1 and 2: uptime 100 s each, more than the 60 s spacing before the second.
    for (n, id) in ["boot-1", "boot-2"].iter().enumerate() {
        b.boot(id, 100.0);
        let mut nh = b.netheal(&args, &[]);
        let line = nh.expect(nh.started, "heal attempt 1: rebooting", s(10.0));
        assert!(
            line.1.contains(&format!("reboot {} of 3", n + 1)),
            "{}",
            line.1
        );
        ended(&mut nh, s(10.0));
    }
    // Boot 3 after 100 s of uptime: the third needs 120 s since the last; uptime proves only
    // 100 (the wall clock says seconds): refused, the other step runs, then allowed at 130.
    b.boot("boot-3", 100.0);
    let mut nh = b.netheal(&args, &[]);
    let refused = nh.expect(nh.started, "heal attempt 1: reboot refused", s(10.0));
    assert!(
        refused
            .1
            .contains("too recent (growing spacing: 2 reboots in 24h); allowed in 20s; running"),
        "{}",
        refused.1
    );
    b.set_uptime(130.0);
    nh.expect(refused.0, "heal attempt 2: running", s(5.0));
    let line = nh.expect(refused.0, "rebooting", s(10.0));
    assert!(line.1.contains("reboot 3 of 3"), "{}", line.1);
    ended(&mut nh, s(10.0));
    assert_eq!(b.records().len(), 3);
    assert_eq!(
        fs::read_to_string(&calls)
            .unwrap()
            .matches("CALLED")
            .count(),
        3
    );
    // Boot 4: spent. Degraded, reported everywhere; the other step still runs.
    b.boot("boot-4", 100.0);
    let mut nh = b.netheal(&args, &[]);
    nh.expect(
        nh.started,
        "degraded: reboot budget spent (3 in 24h); probing and the other heal steps go on",
        s(10.0),
    );
    let refused = nh.expect(
        nh.started,
        "heal attempt 1: reboot refused: reboot budget spent (3 in 24h); running",
        s(10.0),
    );
    nh.expect(
        refused.0,
        "heal attempt 3: reboot refused: reboot budget spent",
        s(10.0),
    );
    assert!(wait_until(s(5.0), || fs::read_to_string(&status)
        .unwrap_or_default()
        .contains("degraded=reboot_budget_spent_(3_in_24h)")));
    assert!(wait_until(s(5.0), || {
        let m = fs::read_to_string(&metrics).unwrap_or_default();
        m.contains(&format!("netheal_degraded{{iface=\"{}\"}} 1", b.lab.ifc))
            && m.contains(&format!(
                "netheal_reboot_budget_remaining{{iface=\"{}\"}} 0",
                b.lab.ifc
            ))
    }));
    let pretty = Command::new(bin())
        .args(["--status", "--status-file", &status])
        .output()
        .unwrap();
    let pretty = String::from_utf8_lossy(&pretty.stdout);
    assert!(
        pretty.contains("degraded: reboot budget spent (3 in 24h)"),
        "{pretty}"
    );
    assert!(wait_until(s(5.0), || fs::read_to_string(&hook_log)
        .unwrap_or_default()
        .contains(
            "|reboot budget spent (3 in 24h)|reboot budget spent (3 in 24h)"
        )));
    assert_eq!(b.records().len(), 3, "no record for a refused reboot");
    assert!(
        fs::read_to_string(b.lab.path("other.calls"))
            .unwrap()
            .lines()
            .count()
            >= 3
    );
    // A day of uptime later every record is proven older than the window.
    let t = Instant::now();
    b.set_uptime(86_500.0);
    nh.expect(t, "no longer degraded: reboot budget has 3 left", s(10.0));
    let line = nh.expect(t, "rebooting", s(10.0));
    assert!(line.1.contains("reboot 1 of 3"), "{}", line.1);
    ended(&mut nh, s(10.0));
    assert_eq!(
        b.records().len(),
        1,
        "aged-out records are pruned: {:?}",
        b.records()
    );
    assert_eq!(b.trapped(), "");
}

/// A corrupt state file refuses the reboot (and says how to reset it); netheal keeps running
/// the other step and never calls the graceful command.
#[test]
fn a_corrupt_state_file_refuses_the_reboot_and_never_crashes() {
    let Some(b) = Rig::new("cs") else { return };
    let (graceful, calls) = b.graceful();
    fs::create_dir_all(&b.state).unwrap();
    fs::write(b.budget_file(), b"\x00\x01garbage\xff\n").unwrap();
    let step = b.lab.script("other.sh", "#!/bin/sh\nexit 0\n");
    let mut nh = b.netheal(
        &[
            "--heal",
            step.to_str().unwrap(),
            "--heal",
            "reboot",
            "--heal-before-up",
            "--boot-grace",
            "0",
            "--backoff",
            "300ms:300ms",
            "--reboot-command",
            &graceful,
        ],
        &[],
    );
    nh.expect(
        nh.started,
        "reboot budget unreadable, the reboot step is refused",
        s(10.0),
    );
    b.break_link();
    nh.expect(nh.started, "heal attempt 1: running", s(10.0));
    let r = nh.expect(
        nh.started,
        "heal attempt 2: reboot refused: the reboot budget cannot be read",
        s(10.0),
    );
    assert!(
        r.1.contains("remove the file to reset the reboot budget; running"),
        "{}",
        r.1
    );
    nh.expect(r.0, "heal attempt 3: reboot refused", s(5.0));
    assert!(nh.try_exit().is_none(), "still running");
    assert!(
        !Path::new(&calls).exists(),
        "the graceful command never ran"
    );
    kill("TERM", -i64::from(nh.pid));
    ended(&mut nh, s(5.0));
}

/// A wall clock in 1970 (libfaketime) or before the newest record cannot age records out:
/// only uptime can. A correct clock can.
#[test]
fn a_wrong_wall_clock_does_not_reset_the_budget() {
    let Some(b) = Rig::new("wc") else { return };
    assert!(
        Path::new(FAKETIME).exists(),
        "libfaketime is needed (apt-get install libfaketime)"
    );
    let (graceful, _calls) = b.graceful();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Three reboots 30 hours ago (true time), in three earlier boots.
    fs::create_dir_all(&b.state).unwrap();
    let records = |walls: [i64; 3]| {
        let mut text = String::from("netheal-reboots 1\n");
        for (i, w) in walls.iter().enumerate() {
            text += &format!("reboot boot=old-{i} wall={w} uptime=600.000\n");
        }
        fs::write(b.budget_file(), &text).unwrap();
        text
    };
    let old = now - 30 * 3600;
    records([old, old + 600, old + 1200]);
    let args = [
        "--heal",
        "reboot",
        "--heal-before-up",
        "--boot-grace",
        "0",
        "--dry-run",
        "--reboot-command",
        &graceful,
        "--backoff",
        "300ms:300ms",
    ];
    b.break_link();
    b.boot("new", 300.0);
    let spent = "heal attempt 1: dry run: would not reboot: reboot budget spent (3 in 24h)";
    // A clock in 1970 (before the build): not believed.
    let env = [
        ("LD_PRELOAD", FAKETIME),
        ("FAKETIME", "@1970-01-02 00:00:00"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ];
    let mut nh = b.netheal(&args, &env);
    nh.expect(nh.started, spent, s(10.0));
    kill("TERM", -i64::from(nh.pid));
    ended(&mut nh, s(5.0));
    // The true clock, but a record from a boot whose clock was an hour fast: the clock now
    // reads before the newest record, so it is not believed for the old ones either.
    records([old, old + 600, now + 3600]);
    let mut nh = b.netheal(&args, &[]);
    nh.expect(nh.started, spent, s(10.0));
    kill("TERM", -i64::from(nh.pid));
    ended(&mut nh, s(5.0));
    // The true clock proves them 30 hours old.
    let text = records([old, old + 600, old + 1200]);
    let mut nh = b.netheal(&args, &[]);
    nh.expect(
        nh.started,
        "heal attempt 1: dry run: would reboot (reboot budget: 3 of 3 in 24h left)",
        s(10.0),
    );
    kill("TERM", -i64::from(nh.pid));
    ended(&mut nh, s(5.0));
    assert_eq!(
        fs::read_to_string(b.budget_file()).unwrap(),
        text,
        "a dry run writes nothing"
    );
}

/// --dry-run logs `would reboot` and touches neither the budget nor the machine.
#[test]
fn dry_run_would_reboot_and_touches_nothing() {
    let Some(b) = Rig::new("dr") else { return };
    let (graceful, calls) = b.graceful();
    let mut nh = b.netheal(
        &[
            "--heal",
            "reboot",
            "--heal-before-up",
            "--boot-grace",
            "0",
            "--dry-run",
            "--reboot-command",
            &graceful,
            "--backoff",
            "300ms:300ms",
            "--reboot-timeout",
            "1s",
        ],
        &[],
    );
    b.break_link();
    let l = nh.expect(nh.started, "heal attempt 1: dry run: would reboot", s(10.0));
    nh.expect(l.0, "heal attempt 2: dry run: would reboot", s(5.0));
    std::thread::sleep(s(1.5)); // past the reboot-timeout: no fallback either
    assert!(nh.try_exit().is_none(), "still running");
    assert!(!Path::new(&b.state).exists(), "no state dir, no record");
    assert!(!Path::new(&calls).exists(), "no graceful command");
    kill("TERM", -i64::from(nh.pid));
    ended(&mut nh, s(5.0));
}

/// A state dir on tmpfs cannot keep the budget over a reboot: netheal says so at start (and
/// creates nothing there until it reboots).
#[test]
fn a_state_dir_on_tmpfs_gets_a_warning() {
    let Some(b) = Rig::new("tf") else { return };
    assert!(
        Path::new("/dev/shm").is_dir(),
        "/dev/shm (a tmpfs) is needed"
    );
    let (graceful, _calls) = b.graceful();
    let dir = format!("/dev/shm/{}-budget", b.lab.prefix);
    let mut nh = b.netheal(
        &[
            "--heal",
            "reboot",
            "--state-dir",
            &dir,
            "--reboot-command",
            &graceful,
        ],
        &[],
    );
    nh.expect(
        nh.started,
        &format!("state-dir {dir} is on a RAM file system (tmpfs): the reboot budget will not survive a reboot"),
        s(5.0),
    );
    assert!(!Path::new(&dir).exists());
    kill("TERM", -i64::from(nh.pid));
    ended(&mut nh, s(5.0));
    // The lab's own directory (under /tmp, on disk here) gets no such warning.
    if !fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("/tmp") && l.contains("tmpfs"))
    {
        let mut nh = b.netheal(&["--heal", "reboot", "--reboot-command", &graceful], &[]);
        nh.expect(nh.started, "watching targets", s(5.0));
        std::thread::sleep(s(0.3));
        assert_eq!(nh.count_lines("RAM file system"), 0);
        kill("TERM", -i64::from(nh.pid));
        ended(&mut nh, s(5.0));
    }
}

/// Boot grace by (injected) uptime: no heal until the uptime reaches boot-grace; a netheal
/// started well after boot heals at once. And by default no heal before a first good round.
#[test]
fn boot_grace_by_uptime_and_no_heal_before_a_first_good_round() {
    let Some(b) = Rig::new("bg") else { return };
    let step = b.lab.script("step.sh", "#!/bin/sh\nexit 0\n");
    let step = step.to_str().unwrap();
    b.break_link();
    // Uptime 1 s, grace 3 s: held ~2 s.
    b.boot("b", 1.0);
    let mut nh = b.netheal(
        &["--heal", step, "--heal-before-up", "--boot-grace", "3s"],
        &[],
    );
    nh.expect(nh.started, "boot grace: no heal for 2s (uptime 1s)", s(5.0));
    let held = nh.expect(nh.started, "heal held back: boot grace", s(5.0));
    let run = nh.expect(nh.started, "heal attempt 1: running", s(6.0));
    let waited = run.0.duration_since(nh.started);
    assert!(waited >= s(1.9), "held for the grace: {waited:?}");
    assert!(held.0 < run.0);
    kill("TERM", -i64::from(nh.pid));
    ended(&mut nh, s(5.0));
    // Started at uptime 10000 s: not delayed.
    b.set_uptime(10_000.0);
    let mut nh = b.netheal(
        &["--heal", step, "--heal-before-up", "--boot-grace", "3s"],
        &[],
    );
    let run = nh.expect(nh.started, "heal attempt 1: running", s(5.0));
    assert!(run.0.duration_since(nh.started) < s(1.9));
    assert_eq!(nh.count_lines("boot grace"), 0);
    kill("TERM", -i64::from(nh.pid));
    ended(&mut nh, s(5.0));
    // Default heal-before-up = no: never seen up, never healed.
    let mut nh = b.netheal(&["--heal", step, "--boot-grace", "0"], &[]);
    nh.expect(
        nh.started,
        "heal held back: no good round yet since start (heal-before-up = no)",
        s(5.0),
    );
    std::thread::sleep(s(1.5));
    assert_eq!(nh.count_lines("heal attempt"), 0);
    // The link comes back, goes away again: now it heals.
    b.lab.ip(&b.lab.peer, &["link", "set", &b.lab.pifc, "up"]);
    let up = nh.expect(nh.started, "state down -> up", s(10.0));
    b.break_link();
    nh.expect(up.0, "heal attempt 1: running", s(10.0));
    kill("TERM", -i64::from(nh.pid));
    ended(&mut nh, s(5.0));
}

/// `netheal --inhibit`: set (held, reported in the status file and metrics), surviving a
/// restart, removed with `off`, and expiring by itself.
#[test]
fn inhibit_set_survives_a_restart_is_removed_and_expires() {
    let Some(b) = Rig::new("ih") else { return };
    let step = b.lab.script("step.sh", "#!/bin/sh\nexit 0\n");
    let inhibit = b.lab.path("inhibit");
    let (status, metrics) = (b.lab.path("status"), b.lab.path("metrics"));
    let args = [
        "--heal",
        step.to_str().unwrap(),
        "--heal-before-up",
        "--boot-grace",
        "0",
        "--inhibit-file",
        &inhibit,
        "--backoff",
        "300ms:300ms",
        "--status-file",
        &status,
        "--metrics-file",
        &metrics,
    ];
    // The client and netheal see the same boot and uptime: the real ones, so that it expires.
    let real = |cmd: &mut Command| {
        cmd.env_remove("NETHEAL_TEST_BOOT_ID_FILE")
            .env_remove("NETHEAL_TEST_UPTIME_FILE");
    };
    let client = |dur: &str, iface: Option<&str>| {
        let mut cmd = Command::new(bin());
        cmd.args(["--inhibit", dur, "--inhibit-file", &inhibit])
            .args(iface);
        real(&mut cmd);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let start = |b: &Rig| {
        let real = [
            (
                "NETHEAL_TEST_BOOT_ID_FILE",
                "/proc/sys/kernel/random/boot_id",
            ),
            ("NETHEAL_TEST_UPTIME_FILE", "/proc/uptime"),
        ];
        b.netheal(&args, &real)
    };
    let said = client("1h", Some(&b.lab.ifc));
    assert!(said.contains("until") && said.contains("(1h00m)"), "{said}");
    let mut nh = start(&b);
    nh.expect(nh.started, "inhibited until", s(5.0));
    b.break_link();
    nh.expect(nh.started, "heal held back: inhibited until", s(10.0));
    assert!(wait_until(s(5.0), || fs::read_to_string(&status)
        .unwrap_or_default()
        .contains("held=inhibit inhibited_until=")));
    assert!(wait_until(s(5.0), || fs::read_to_string(&metrics)
        .unwrap_or_default()
        .contains(&format!(
            "netheal_inhibited{{iface=\"{}\"}} 1",
            b.lab.ifc
        ))));
    assert_eq!(nh.count_lines("heal attempt"), 0);
    // A restart keeps it.
    kill("TERM", -i64::from(nh.pid));
    ended(&mut nh, s(5.0));
    let mut nh = start(&b);
    nh.expect(nh.started, "heal held back: inhibited until", s(10.0));
    assert_eq!(nh.count_lines("heal attempt"), 0);
    // Removed.
    let t = Instant::now();
    assert!(client("off", None).contains("ended"));
    nh.expect(t, "inhibit removed: heals allowed again", s(5.0));
    nh.expect(t, "heal attempt 1: running", s(5.0));
    kill("TERM", -i64::from(nh.pid));
    ended(&mut nh, s(5.0));
    assert!(
        !Path::new(&inhibit).exists(),
        "the last inhibit off removes the file"
    );
    // Expires: 2 s for every interface.
    client("2s", None);
    let mut nh = start(&b);
    let held = nh.expect(nh.started, "heal held back: inhibited until", s(10.0));
    let exp = nh.expect(held.0, "inhibit expired: heals allowed again", s(5.0));
    let run = nh.expect(exp.0, "heal attempt 1: running", s(5.0));
    assert!(
        run.0.duration_since(nh.started) >= s(1.5),
        "held until the expiry"
    );
    kill("TERM", -i64::from(nh.pid));
    ended(&mut nh, s(5.0));
}

/// Issue 9: the running netheal learns of `netheal --inhibit` (and of `off`) when the file
/// changes (inotify on its directory), not at its next round, which looked at the file with a
/// statx(2) every round. With `-i 30s` the next round is half a minute away.
#[test]
fn an_inhibit_set_while_running_is_seen_before_the_next_round() {
    let Some(b) = Rig::new("iw") else { return };
    let dir = b.lab.path("run/netheal");
    let inhibit = format!("{dir}/inhibit"); // its directory is made by the client, later
    let args = ["--boot-grace", "0", "--inhibit-file", &inhibit, "-i", "30s"];
    let client = |dur: &str| {
        let out = Command::new(bin())
            .args(["--inhibit", dur, "--inhibit-file", &inhibit])
            .env_remove("NETHEAL_TEST_BOOT_ID_FILE")
            .env_remove("NETHEAL_TEST_UPTIME_FILE")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    let real = [
        (
            "NETHEAL_TEST_BOOT_ID_FILE",
            "/proc/sys/kernel/random/boot_id",
        ),
        ("NETHEAL_TEST_UPTIME_FILE", "/proc/uptime"),
    ];
    let mut nh = b.netheal(&args, &real);
    nh.expect(nh.started, "state starting -> up", s(10.0));
    // Both within 5 s, where the next round comes 30 s after the first.
    let t = Instant::now();
    client("1h");
    nh.expect(t, "inhibited until", s(5.0));
    let t = Instant::now();
    client("off");
    nh.expect(t, "inhibit removed: heals allowed again", s(5.0));
    kill("TERM", -i64::from(nh.pid));
    ended(&mut nh, s(5.0));
}
