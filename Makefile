# netheal — build, test, demo. `make help` lists the targets.
CARGO   ?= cargo
PREFIX  ?= /usr/local

.PHONY: all build release test lint unit demo clean help ci

all: build

help:
	@echo "make build      debug build"
	@echo "make release    optimised host build (target/release/netheal)"
	@echo "make test       everything CI runs: rustfmt, clippy -D warnings, unit and namespace tests"
	@echo "make demo       (root) a throw-away namespace lab: break the link, watch netheal heal it"
	@echo "make bench      (root) netheal vs the bash loop and ping in a namespace lab; bench/results.md"
	@echo "make cross      static musl release binaries for every target in cross/targets"
	@echo "make cross-test every target's unit tests and smoke checks under qemu-user"
	@echo "               (some targets only: CROSS_TARGETS=\"armv7 mips\")"
	@echo "make cross-ci   what CI runs: x86_64 static+size check and smoke, aarch64 unit tests under qemu"
	@echo "make dist       release archives netheal-VERSION-TRIPLE.tar.gz + SHA256SUMS in dist/release"
	@echo "               (signed with SIGNIFY_KEY=... or MINISIGN_KEY=...)"
	@echo "make deb / rpm / ipk  Debian, RPM and OpenWrt packages from the static binaries"
	@echo "make package-test     every packaging and fleet-kit check (lintian, rpmlint, promtool, ...)"
	@echo "make install    install binary, man pages, example config; INIT=systemd|openrc|sysv|busybox|runit|s6 adds service files"
	@echo "make uninstall  remove what install put there (same variables)"
	@echo "make fuzz       (nightly, cargo-fuzz) every fuzz target for FUZZ_SECONDS (60) each"
	@echo "make fuzz-smoke every fuzz target for 20 s, failing on any crash (CI runs it)"

build:
	$(CARGO) build

release:
	$(CARGO) build --release

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# Namespace tests need root; with CI=true they refuse to skip.
test: lint
	$(CARGO) test --all-targets --no-fail-fast
	$(MAKE) check-init test-install test-init

demo: release
	sh tests/demo.sh target/release/netheal

clean:
	$(CARGO) clean
	rm -rf dist

-include cross/cross.mk
-include bench/bench.mk
-include mk/install.mk
-include mk/fuzz.mk
-include mk/package.mk
