# cross/cross.mk: included by the top-level Makefile. Static musl binaries for every row of
# cross/targets, tested under qemu-user. The logic is in the scripts; this only names it.
#   make cross                      every target -> dist/netheal-VERSION-TRIPLE, dist/SHA256SUMS
#   make cross-test                 + every target's unit tests and smoke checks under qemu
#   make cross CROSS_TARGETS="mips armv7"   only those (triple or its first field)
#   make cross-ci                   what CI runs: x86_64 static/size, aarch64 tests under qemu

CROSS_TARGETS ?=
# rustup ships both targets' std prebuilt, so CI compiles std only for the release build.
CROSS_CI_BUILD ?= x86_64-unknown-linux-musl
CROSS_CI_TEST  ?= aarch64-unknown-linux-musl

.PHONY: cross cross-setup cross-test cross-sizes cross-ci

cross-setup:
	bash cross/setup.sh $(CROSS_TARGETS)

cross: cross-setup
	bash cross/build.sh $(CROSS_TARGETS)

cross-test: cross
	bash cross/test.sh $(CROSS_TARGETS)

cross-sizes:
	bash cross/sizes.sh $(CROSS_TARGETS)

# Lean on purpose (CI's budget): setup for two targets only, one release build (its std
# rebuild takes under a minute), its smoke checks natively, one unit-test run under qemu.
# Measured from an empty target dir: 41 s, plus ~30 s of setup on a fresh machine.
cross-ci:
	bash cross/setup.sh $(CROSS_CI_BUILD) $(CROSS_CI_TEST)
	bash cross/build.sh $(CROSS_CI_BUILD)
	bash cross/test.sh --smoke $(CROSS_CI_BUILD)
	bash cross/test.sh --unit $(CROSS_CI_TEST)
