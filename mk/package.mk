# mk/package.mk: included by the top-level Makefile. Release archives and packages, made
# from the static binaries of cross/build.sh, all into dist/release/ with one SHA256SUMS.
#   make dist      netheal-VERSION-TRIPLE.tar.gz for every target (or CROSS_TARGETS), the
#                  source archive netheal-VERSION.tar.gz, SHA256SUMS; signed when
#                  SIGNIFY_KEY=secret.key (signify-openbsd) or MINISIGN_KEY=... is given
#   make deb       netheal_VERSION_ARCH.deb for every target with a Debian architecture
#   make rpm       netheal-VERSION-1.ARCH.rpm likewise (packaging/arches)
#   make ipk       netheal_VERSION-1_ARCH.ipk for OpenWrt's opkg, without the SDK
#   make package-test   every packaging check on the x86_64 build: reproducible archives and
#                  signatures, lintian, a Debian install into a throw-away root, rpmlint and
#                  an RPM install, the APKBUILD, the procd script's UCI translation, the ipk,
#                  promtool, the Grafana dashboard against a real metrics file, ansible-lint
#                  and an Ansible run into a throw-away root (about 1 minute).
# README.md, "Packages and release archives", says what each contains and why.

PKG_TEST_TARGET ?= x86_64-unknown-linux-musl

.PHONY: dist deb rpm ipk package-test

dist: cross
	bash packaging/dist.sh $(CROSS_TARGETS)

deb: cross
	bash packaging/deb/build.sh $(CROSS_TARGETS)

rpm: cross
	bash packaging/rpm/build.sh $(CROSS_TARGETS)

ipk: cross
	bash packaging/openwrt/ipk.sh $(CROSS_TARGETS)

package-test:
	bash cross/setup.sh $(PKG_TEST_TARGET)
	bash cross/build.sh $(PKG_TEST_TARGET)
	bash packaging/tests/run.sh $(PKG_TEST_TARGET)
