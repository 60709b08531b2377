//! Embeds version facts into `--version` and netheal_build_info: the git commit (from
//! NETHEAL_COMMIT, else git when the source is a checkout), the target triple and the build
//! date. Never fails the build: every fact that cannot be had becomes "unknown".
use std::process::Command;

fn main() {
    // NETHEAL_COMMIT names the commit where there is no .git: a build from a source archive
    // (Alpine's APKBUILD sets it).
    let commit = std::env::var("NETHEAL_COMMIT")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().to_string())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".into());
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    // SOURCE_DATE_EPOCH makes the date reproducible (https://reproducible-builds.org/specs/).
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(civil::unix_now);
    let date = civil_date(secs);
    println!("cargo:rustc-env=NETHEAL_COMMIT={commit}");
    println!("cargo:rustc-env=NETHEAL_TARGET={target}");
    println!("cargo:rustc-env=NETHEAL_BUILD_DATE={date}");
    // The reboot budget distrusts a wall clock before the build (src/watch/gate.rs).
    println!("cargo:rustc-env=NETHEAL_BUILD_EPOCH={secs}");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=NETHEAL_COMMIT");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
    println!("cargo:rerun-if-changed=src/civil.rs");
}

fn git_commit() -> Option<String> {
    Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

#[path = "src/civil.rs"]
#[allow(dead_code)]
mod civil;

fn civil_date(secs: i64) -> String {
    let (y, m, d, ..) = civil::civil(secs);
    format!("{y:04}-{m:02}-{d:02}")
}
