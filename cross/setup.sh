#!/usr/bin/env bash
# setup.sh [TARGET...]: install what building and testing those targets needs (default: every
# row of cross/targets), and nothing more, so CI pays only for its two targets. Idempotent:
# each step first checks whether it is done, so a second run takes about a second.
# Needs root for apt-get; everything comes from the package registries by name.
set -euo pipefail
# shellcheck source=cross/lib.sh
. "$(dirname "$0")/lib.sh"

# Pinned, so every machine builds with the same linker; bump both together after a test run.
ZIG_VERSION=0.17.1
ZIGBUILD_VERSION=0.24.1
# Debian 12's qemu 7.2 lacks LoongArch's LSX vector unit (rustc enables +lsx) and dies with
# SIGILL; 8.1 added it, and the major version alone is compared. Backports carry 10.x.
QEMU_MIN_MAJOR=9

mapfile -t targets < <(select_targets "$@")
need_zig=0 need_qemu=0
rust_targets=()
for t in "${targets[@]}"; do
    load "$t"
    case $T_LINK in zig | zig-cc) need_zig=1 ;; esac
    [ "$T_QEMU" = native ] || need_qemu=1
    # rust-lld links with the crt objects and libc.a of the rust-std package.
    [ "$T_STD" = prebuilt ] && rust_targets+=("$t")
done

say() { printf 'setup: %s\n' "$*"; }

# qemu_ok: Debian's qemu-user-static is there and new enough (any one binary tells).
qemu_ok() {
    local v
    v=$(qemu-aarch64-static --version 2>/dev/null | sed -n '1s/.*version \([0-9]*\)\..*/\1/p')
    [ -n "$v" ] && [ "$v" -ge "$QEMU_MIN_MAJOR" ]
}

# debian_mirror CODENAME: the archive URI this machine already uses for CODENAME, so the
# backports line goes to the same mirror (deb822 .sources stanzas or one-line sources.list).
debian_mirror() {
    local uri
    uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk -v c="$1" '
        function flush() { if (hit && uri != "") { print uri; hit = 0; exit } hit = 0; uri = "" }
        /^[[:space:]]*$/ { flush(); next }
        $1 == "URIs:" { uri = $2 }
        $1 == "Suites:" { for (i = 2; i <= NF; i++) if ($i == c) hit = 1 }
        END { flush() }')
    [ -n "$uri" ] || uri=$(awk -v c="$1" '
        $1 == "deb" { sub(/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?/, ""); if ($2 == c) { print $1; exit } }' \
        /etc/apt/sources.list 2>/dev/null)
    printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

apt_pkgs=()
command -v readelf >/dev/null || apt_pkgs+=(binutils)
if [ $need_qemu = 1 ] && ! qemu_ok; then
    apt_pkgs+=(qemu-user-static)
fi
if [ ${#apt_pkgs[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    release=()
    if [[ " ${apt_pkgs[*]} " == *" qemu-user-static "* ]]; then
        # shellcheck source=/dev/null
        codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
        if [ "$codename" = bookworm ]; then
            if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
                mirror=$(debian_mirror bookworm)
                say "adding bookworm-backports from $mirror (for qemu >= $QEMU_MIN_MAJOR)"
                printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
                    "$mirror" >/etc/apt/sources.list.d/netheal-backports.sources
            fi
            # Only the packages named here come from backports; nothing else is upgraded.
            release=(-t bookworm-backports)
        fi
    fi
    say "apt-get install ${apt_pkgs[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${release[@]}" "${apt_pkgs[@]}" >/dev/null
    [ $need_qemu = 0 ] || qemu_ok || die "qemu-user-static is older than $QEMU_MIN_MAJOR.x"
fi

# Every release build rebuilds std (cross/build.sh says why), so rust-src is always needed.
sysroot=$(rustc --print sysroot)
if [ ! -d "$sysroot/lib/rustlib/src/rust/library/std" ]; then
    say "rustup component add rust-src"
    rustup component add rust-src
fi
missing=()
installed=$(rustup target list --installed)
for t in "${rust_targets[@]}"; do
    grep -qx "$t" <<<"$installed" || missing+=("$t")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "rustup target add ${missing[*]}"
    rustup target add "${missing[@]}"
fi

if [ $need_zig = 1 ]; then
    # cargo-zigbuild finds zig on PATH or, failing that, runs `python3 -m ziglang`.
    if [ "$(python3 -m ziglang version 2>/dev/null)" != "$ZIG_VERSION" ]; then
        say "pip install ziglang==$ZIG_VERSION"
        python3 -m pip install -q --root-user-action=ignore --disable-pip-version-check \
            "ziglang==$ZIG_VERSION"
    fi
    if [ "$(cargo-zigbuild --version 2>/dev/null)" != "cargo-zigbuild $ZIGBUILD_VERSION" ]; then
        say "cargo install cargo-zigbuild $ZIGBUILD_VERSION (about 2 minutes)"
        # Not into our target dir, and not with RUSTC_BOOTSTRAP (its deps may probe for nightly).
        env -u CARGO_TARGET_DIR -u RUSTC_BOOTSTRAP \
            cargo install -q --locked cargo-zigbuild --version "$ZIGBUILD_VERSION"
    fi
fi
say "ready for ${targets[*]}"
