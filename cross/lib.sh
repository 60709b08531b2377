# shellcheck shell=bash
# cross/lib.sh: sourced by the cross/ scripts. Reads cross/targets and turns one row into the
# cargo command, RUSTFLAGS and qemu runner for that target. Defines functions only; it runs
# nothing and installs nothing.

CROSS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$CROSS_DIR")
TABLE=$CROSS_DIR/targets
DIST=$ROOT/dist
# Our own target dir, so a cross build never waits on the build lock of a plain `cargo build`.
export CARGO_TARGET_DIR=${CROSS_TARGET_DIR:-$ROOT/target/cross}
# -Zbuild-std is unstable; the machine's one toolchain is stable, and this is the documented
# way to use it there (https://doc.rust-lang.org/cargo/reference/unstable.html).
export RUSTC_BOOTSTRAP=1

die() {
    printf '%s: %s\n' "${0##*/}" "$*" >&2
    exit 1
}

# rows: the table without comments and blank lines.
rows() {
    sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$TABLE"
}

# select_targets [NAME...]: the triples to work on, one a line. A NAME is a whole triple or
# its architecture field (mips, armv7, ...); none means every row, in table order.
select_targets() {
    if [ $# -eq 0 ]; then
        rows | awk '{ print $1 }'
        return
    fi
    local name triple
    for name in "$@"; do
        triple=$(rows | awk -v n="$name" '$1 == n || substr($1, 1, length(n) + 1) == n "-" { print $1 }')
        [ -n "$triple" ] || die "$name: not in $TABLE"
        [ "$(printf '%s\n' "$triple" | wc -l)" -eq 1 ] || die "$name: names more than one target"
        printf '%s\n' "$triple"
    done
}

# load TRIPLE: set T_TRIPLE T_STD T_LINK T_QEMU T_CPU T_KIB T_FLAGS (and T_ZIG) from its row.
load() {
    local line
    line=$(rows | awk -v t="$1" '$1 == t')
    [ -n "$line" ] || die "$1: not in $TABLE"
    read -r T_TRIPLE T_STD T_LINK T_QEMU T_CPU T_KIB T_FLAGS <<<"$line"
    [ "$T_FLAGS" = - ] && T_FLAGS=
    [ "$T_CPU" = - ] && T_CPU=
    T_ZIG=
    case $T_LINK in zig-cc:?*) T_ZIG=${T_LINK#zig-cc:} T_LINK=zig-cc ;; esac
    # cross/zig-cc.sh reads the zig target from here.
    export NETHEAL_ZIG_TARGET=$T_ZIG
    case $T_STD in prebuilt | build) ;; *) die "$1: std column must be prebuilt or build" ;; esac
    case $T_LINK in rust-lld | zig | zig-cc) ;; *) die "$1: link column must be rust-lld, zig or zig-cc:TARGET" ;; esac
    case $T_KIB in '' | *[!0-9]*) die "$1: kib column must be a number" ;; esac
}

# rustflags release|test: RUSTFLAGS for the loaded target.
rustflags() {
    # Static on purpose: some musl targets (mips, riscv64gc, s390x, loongarch64) default to
    # dynamic linking and would need a musl loader on the device.
    local f="-C target-feature=+crt-static"
    case $T_LINK in
    rust-lld) f="$f -C linker=rust-lld" ;;
    # zig brings its own crt objects; rustc's would be missing (no rust-std) or doubled.
    zig) f="$f -C link-self-contained=no" ;;
    zig-cc) f="$f -C link-self-contained=no -C linker=$CROSS_DIR/zig-cc.sh" ;;
    esac
    # With panic = "abort" and std built without backtrace nothing reads the unwind tables
    # (x86_64: 52 KiB of .eh_frame). Tests keep them: the harness unwinds each failed test.
    # Release builds also drop this machine's paths (remap_paths).
    [ "$1" = release ] && f="$f -C force-unwind-tables=no $(remap_paths)"
    printf '%s\n' "$f${T_FLAGS:+ $T_FLAGS}"
}

# remap_paths: rustc flags that cut this machine's directories out of the source paths that
# panic messages carry: `nix-0.31.3/src/fcntl.rs`, `library/std/src/...`. Builds on other
# machines then give the same bytes, and no /root/... ships in the binary. The checkout's own
# paths are relative already (`src/daemon.rs`); leaving its directory out of RUSTFLAGS lets
# every checkout share one std build.
remap_paths() {
    local d
    for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/ "$(rustc --print sysroot)/lib/rustlib/src/rust/"; do
        # RUSTFLAGS splits on blanks, so a directory with one in its name is left alone.
        case $d in *[[:space:]]*) continue ;; esac
        if [ -d "$d" ]; then printf -- '--remap-path-prefix=%s= ' "$d"; fi
    done
}

# cargo_cmd build|test: the cargo command line, minus its arguments, for the loaded target.
cargo_cmd() {
    case $T_LINK/$1 in
    zig/build) echo cargo-zigbuild zigbuild ;;
    zig/test) echo cargo-zigbuild test ;;
    *) echo cargo "$1" ;;
    esac
}

# runner: how to run a program of the loaded target here (empty when it runs natively).
runner() {
    [ "$T_QEMU" = native ] && return
    printf '%s\n' "$T_QEMU${T_CPU:+ -cpu $T_CPU}"
}

# runner_var: cargo's environment variable for the loaded target's runner.
runner_var() {
    printf 'CARGO_TARGET_%s_RUNNER\n' "$(printf '%s' "$T_TRIPLE" | tr 'a-z.-' 'A-Z__')"
}

# version: the package version, as cargo reads it from Cargo.toml.
version() {
    local id
    id=$(cd "$ROOT" && cargo pkgid) || die "cargo pkgid failed"
    printf '%s\n' "${id##*[#@]}"
}

# artifact TRIPLE: where build.sh puts that target's release binary; needs VERSION set.
artifact() {
    printf '%s/netheal-%s-%s\n' "$DIST" "${VERSION:?}" "$1"
}
