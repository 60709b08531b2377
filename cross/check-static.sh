#!/bin/sh
# check-static.sh FILE...: refuse any FILE that is not a static, stripped ELF executable.
# A PT_INTERP program header means the kernel must start a dynamic loader first, and a
# DT_NEEDED entry names a shared library; either one makes the file useless on a box without
# that loader or library. A static PIE (type DYN, no PT_INTERP, no DT_NEEDED) is fine.
# A .symtab means the file was not stripped, so its size would not be the size we report.
# readelf (binutils) reads the ELF of every architecture, whatever the host is.
set -eu

[ $# -gt 0 ] || { echo "usage: $0 FILE..." >&2; exit 64; }
command -v readelf >/dev/null || { echo "$0: readelf missing: apt-get install binutils" >&2; exit 1; }

bad=0
for f in "$@"; do
    if ! readelf -h "$f" >/dev/null 2>&1; then
        echo "$f: not an ELF file" >&2
        bad=1
        continue
    fi
    interp=$(readelf -lW "$f" | awk '$1 == "INTERP" { i = "?" } /program interpreter:/ { i = $NF } END { print i }')
    needed=$(readelf -dW "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
    if [ -n "$interp" ]; then
        echo "$f: dynamically linked: needs the loader ${interp%]} (PT_INTERP)" >&2
        bad=1
    fi
    if [ -n "$needed" ]; then
        echo "$f: dynamically linked: needs the libraries ${needed% } (DT_NEEDED)" >&2
        bad=1
    fi
    if readelf -SW "$f" | grep -q ' \.symtab '; then
        echo "$f: not stripped (has .symtab)" >&2
        bad=1
    fi
done
exit $bad
