#!/bin/sh
# zig-cc.sh: the linker for the `zig-cc:ZIGTARGET` rows of cross/targets: zig cc for the zig
# target that cross/lib.sh's load() exported as NETHEAL_ZIG_TARGET (zig from PyPI, pinned by
# cross/setup.sh). zig brings that target's musl crt objects and libc.a.
set -eu
: "${NETHEAL_ZIG_TARGET:?zig-cc.sh: NETHEAL_ZIG_TARGET is not set (cross/lib.sh load)}"
exec python3 -m ziglang cc -target "$NETHEAL_ZIG_TARGET" "$@"
