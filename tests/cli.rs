//! The binary's command line, without privileges or namespaces: usage errors exit 2 with one
//! line on stderr, help and version exit 0 (the exit statuses in --help, README and netheal(8)).

use std::process::{Command, Output};

/// The binary under test, started the way cargo starts this harness: through the target's
/// runner when CARGO_TARGET_<TRIPLE>_RUNNER names one (cross/test.sh: qemu-user with the
/// oldest CPU), since a foreign binary cannot be exec'd directly.
fn netheal_command() -> Command {
    let bin = env!("CARGO_BIN_EXE_netheal");
    let var = format!(
        "CARGO_TARGET_{}_RUNNER",
        env!("NETHEAL_TARGET")
            .to_uppercase()
            .replace(['-', '.'], "_")
    );
    let runner = std::env::var(var).unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(prog) => {
            let mut cmd = Command::new(prog);
            cmd.args(words).arg(bin);
            cmd
        }
        None => Command::new(bin),
    }
}

fn netheal(args: &[&str]) -> Output {
    netheal_command()
        .args(args)
        .env_remove("NOTIFY_SOCKET")
        .output()
        .expect("run netheal")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A usage error: exit 2, exactly one line on stderr, starting `netheal: `.
fn usage_error(args: &[&str]) -> String {
    let out = netheal(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "netheal {args:?}: {err}");
    assert_eq!(
        err.lines().count(),
        1,
        "netheal {args:?}: want one line, got {err:?}"
    );
    assert!(err.starts_with("netheal: "), "netheal {args:?}: {err:?}");
    err
}

#[test]
fn help_and_version_exit_0() {
    for flag in ["-h", "--help"] {
        let out = netheal(&[flag]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{flag}: {}", stderr(&out));
        assert!(
            text.contains("--target") && text.contains("--heal"),
            "{flag}: {text}"
        );
    }
    for flag in ["-V", "--version"] {
        let out = netheal(&[flag]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{flag}: {}", stderr(&out));
        assert!(
            text.contains("netheal") && text.contains(env!("CARGO_PKG_VERSION")),
            "{text}"
        );
    }
}

#[test]
fn bad_duration_names_option_and_value() {
    let err = usage_error(&["--interval", "10x", "eth0"]);
    assert!(
        err.starts_with("netheal: --interval: '10x': expected"),
        "{err:?}"
    );
    let err = usage_error(&["-W", "soon", "eth0"]);
    assert!(err.contains("'soon'"), "{err:?}");
}

#[test]
fn hostnames_are_refused() {
    let err = usage_error(&["-t", "example.com", "eth0"]);
    assert!(err.contains("example.com"), "{err:?}");
}

#[test]
fn other_usage_errors_exit_2() {
    usage_error(&[]); // no IFACE
    usage_error(&["--no-such-option", "eth0"]);
    usage_error(&["--heal", "relative/path", "eth0"]);
    usage_error(&["--backoff", "10s:1s", "eth0"]); // MAX below MIN
    usage_error(&["--count", "0", "eth0"]);
    usage_error(&["--log", "nowhere", "eth0"]);
}

/// Issue 8, defects 3 and 20: a loopback target always answers, dead link or not, so it is
/// refused; counts take digits only, as durations do; a duration finer than 1 ms is refused,
/// not rounded. The landed code accepted each of these. `--check` keeps a regression from
/// starting a watch on the machine's own eth0.
#[test]
fn loopback_targets_signed_counts_and_sub_millisecond_durations_are_refused() {
    for (args, want) in [
        (
            &["-t", "127.0.0.1", "--check", "eth0"][..],
            "netheal: --target: '127.0.0.1': refused: a loopback address",
        ),
        (
            &["-t", "::1", "--check", "eth0"],
            "netheal: --target: '::1': refused: a loopback address",
        ),
        (
            &["-t", "::ffff:127.0.0.1", "--check", "eth0"],
            "netheal: --target: '::ffff:127.0.0.1': refused: a loopback address",
        ),
        (
            &["--count", "+3", "--check", "eth0"],
            "netheal: --count: '+3': expected a whole number from 1 to 20",
        ),
        (
            &["-n", "+3", "--check", "eth0"],
            "netheal: --fail-after: '+3': expected a whole number",
        ),
        (
            &["-i", "1.0000000001h", "--check", "eth0"],
            "netheal: --interval: '1.0000000001h': expected a duration",
        ),
    ] {
        let err = usage_error(args);
        assert!(err.starts_with(want), "{args:?}: {err:?}");
    }
}
