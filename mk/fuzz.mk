# mk/fuzz.mk: make fuzz, make fuzz-smoke, make fuzz-build (fuzz/README.md says what each
# target asserts). Included from the top-level Makefile; also works alone (make -f mk/fuzz.mk).
# Needs a nightly toolchain and cargo-fuzz; `make fuzz-tools` installs both if missing.
#
#   make fuzz                        every target for FUZZ_SECONDS (60) each, one at a time
#   make fuzz FUZZ_TARGETS=echo_v4 FUZZ_SECONDS=600
#   make fuzz-smoke                  every target for 20 s, two at a time (what CI runs)
#
# Each run starts from the checked-in seeds (fuzz/seeds/T, read only) and fuzz/corpus/T (not
# checked in: what earlier local runs found), uses fuzz/dict/T.dict where there is one, and
# prints executions per target. Any crash, assertion or timeout fails the make; the input
# is saved under fuzz/artifacts/T/.
#   FUZZ_SECONDS  time per target (60)      FUZZ_JOBS  targets at once (1)
#   FUZZ_NICE     prefix for each run, e.g. "nice -n 19"
#   FUZZ_BUILD    cargo fuzz build flags: release with debug assertions and overflow checks,
#                 no sanitizer: every function a target reaches is safe Rust (`unsafe` lives
#                 only in src/sys, which no target calls), so bounds and overflow checks are
#                 the detectors, and ASan would only slow the runs and the build

CARGO_FUZZ   ?= cargo +nightly fuzz
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 1
FUZZ_NICE    ?=
FUZZ_BUILD   ?= -O -a -s none
FUZZ_TARGETS ?= ipv4_strip echo_v4 echo_v6 echo_roundtrip icmp_error probe_receive \
                netlink netlink_change config_file config_values cli route status \
                reboot_state arp ndp l2_probe netifd_dump netifd_uci \
                backend_state dns_response

.PHONY: fuzz fuzz-smoke fuzz-build fuzz-tools

fuzz-tools:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

fuzz-build:
	cd fuzz && $(CARGO_FUZZ) build $(FUZZ_BUILD)

fuzz: fuzz-build
	FUZZ_NICE="$(FUZZ_NICE)" sh fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_JOBS) $(FUZZ_TARGETS)

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=20 FUZZ_JOBS=2

# The pure modules' unit tests under Miri (undefined behaviour, leaks, out-of-bounds in
# the code and in what it calls from std). Isolation is off because config tests stat files.
MIRI_FILTERS ?= wire:: probe:: watchdog:: config:: report:: route:: civil::
.PHONY: miri
miri:
	rustup +nightly component list --installed | grep -q '^miri' || rustup +nightly component add miri rust-src
	MIRIFLAGS="-Zmiri-disable-isolation" cargo +nightly miri test --lib -- $(MIRI_FILTERS)
