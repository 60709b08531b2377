# mk/install.mk: make install, make uninstall, make test-install, make check-init,
# make test-init.
# Included at the end of the top-level Makefile; also works alone (make -f mk/install.mk).
#
#   make release && sudo make install [INIT=systemd|openrc|sysv|busybox|runit|s6]
#
# Variables (all can be set on the command line; DESTDIR is prepended to every path):
#   PREFIX      /usr/local
#   SBINDIR     $(PREFIX)/sbin            the binary; installed service files are rewritten
#                                         from /usr/sbin/netheal to $(SBINDIR)/netheal
#   MANDIR      $(PREFIX)/share/man
#   SYSCONFDIR  /etc, whatever PREFIX is: netheal reads /etc/netheal.conf (compiled in) and
#               init systems look in /etc. Only the example netheal.conf.example, the init
#               scripts and service directories go there; netheal.conf itself is never
#               written. Set it (with DESTDIR or not) only to stage files elsewhere.
#   BIN         target/release/netheal (built with `cargo build --release` if missing);
#               point it at a cross build, e.g. BIN=dist/netheal-0.1.0-aarch64-unknown-linux-musl
#   INIT        service files to install, one or more of: systemd openrc sysv busybox runit
#               s6 (openrc and sysv both install /etc/init.d/netheal: pick one). Default none.
#   MANGZ       yes: install the man pages gzipped (gzip -9n). Default no.
#   SYSTEMDUNITDIR $(PREFIX)/lib/systemd/system  (systemd searches /usr/local/lib too)
#   INITDDIR    $(SYSCONFDIR)/init.d    CONFDDIR $(SYSCONFDIR)/conf.d (OpenRC)
#   RUNITDIR    $(SYSCONFDIR)/sv        S6DIR    $(SYSCONFDIR)/s6/sv (s6-rc source dirs)
#   DATADIR     $(PREFIX)/share         (the busybox inittab line: $(DATADIR)/netheal/inittab)
# `make uninstall` with the same variables removes exactly what `make install` put there.
# Paths with blanks are not supported.

PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
DATADIR    ?= $(PREFIX)/share
SYSCONFDIR ?= /etc
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
INITDDIR   ?= $(SYSCONFDIR)/init.d
CONFDDIR   ?= $(SYSCONFDIR)/conf.d
RUNITDIR   ?= $(SYSCONFDIR)/sv
S6DIR      ?= $(SYSCONFDIR)/s6/sv
BIN        ?= target/release/netheal
INIT       ?=
MANGZ      ?= no
CARGO      ?= cargo
INSTALL    ?= install

# What each INIT value installs: source|destination|mode|kind, one word each. kind `conf` is
# a file the admin edits: a changed copy is kept on install and on uninstall.
NH_INIT_systemd = init/systemd/netheal.service|$(SYSTEMDUNITDIR)/netheal.service|644|file
NH_INIT_openrc  = init/openrc/netheal|$(INITDDIR)/netheal|755|file \
                  init/openrc/netheal.confd|$(CONFDDIR)/netheal|644|conf
NH_INIT_sysv    = init/sysv/netheal|$(INITDDIR)/netheal|755|file
NH_INIT_busybox = init/busybox/inittab|$(DATADIR)/netheal/inittab|644|file
NH_INIT_runit   = init/runit/netheal/run|$(RUNITDIR)/netheal/run|755|file \
                  init/runit/netheal/log/run|$(RUNITDIR)/netheal/log/run|755|file
NH_INIT_s6      = init/s6/netheal/type|$(S6DIR)/netheal/type|644|file \
                  init/s6/netheal/producer-for|$(S6DIR)/netheal/producer-for|644|file \
                  init/s6/netheal/run|$(S6DIR)/netheal/run|755|file \
                  init/s6/netheal-log/type|$(S6DIR)/netheal-log/type|644|file \
                  init/s6/netheal-log/consumer-for|$(S6DIR)/netheal-log/consumer-for|644|file \
                  init/s6/netheal-log/pipeline-name|$(S6DIR)/netheal-log/pipeline-name|644|file \
                  init/s6/netheal-log/run|$(S6DIR)/netheal-log/run|755|file
# Directories that belong to netheal alone, deepest first: uninstall removes them when empty
# (runsv's supervise/ directory, say, is left alone, and so is its parent).
NH_DIRS_busybox = $(DATADIR)/netheal
NH_DIRS_runit   = $(RUNITDIR)/netheal/log $(RUNITDIR)/netheal
NH_DIRS_s6      = $(S6DIR)/netheal $(S6DIR)/netheal-log

NH_INITS  = systemd openrc sysv busybox runit s6
NH_BAD    = $(filter-out $(NH_INITS),$(INIT))
NH_MANEXT = $(if $(filter yes,$(MANGZ)),.gz)
NH_FILES  = $(BIN)|$(SBINDIR)/netheal|755|bin \
            man/netheal.8|$(MANDIR)/man8/netheal.8$(NH_MANEXT)|644|man \
            man/netheal.conf.5|$(MANDIR)/man5/netheal.conf.5$(NH_MANEXT)|644|man \
            etc/netheal.conf.example|$(SYSCONFDIR)/netheal.conf.example|644|file \
            $(foreach i,$(INIT),$(NH_INIT_$(i)))
NH_DIRS   = $(foreach i,$(INIT),$(NH_DIRS_$(i)))
# Installed service files name the real binary.
NH_SED    = sed -e 's|/usr/sbin/netheal|$(SBINDIR)/netheal|g'

# Shell: produce $$src's installed content on stdout, by kind.
NH_CONTENT = case $$kind in \
	man) if [ "$(MANGZ)" = yes ]; then gzip -9n <"$$src"; else cat "$$src"; fi ;; \
	*) $(NH_SED) "$$src" ;; \
	esac

.PHONY: install uninstall install-check test-install check-init test-init

install-check:
	@if [ -n "$(NH_BAD)" ]; then \
		echo "INIT: unknown '$(NH_BAD)'; expected some of: $(NH_INITS)" >&2; exit 2; fi
	@if [ -n "$(filter openrc,$(INIT))" ] && [ -n "$(filter sysv,$(INIT))" ]; then \
		echo "INIT: openrc and sysv both install $(INITDDIR)/netheal; pick one" >&2; exit 2; fi
	@case "$(SBINDIR)" in /*) ;; *) \
		echo "SBINDIR must be an absolute path: '$(SBINDIR)'" >&2; exit 2 ;; esac

# The default binary is built when missing; a BIN given on the command line must exist.
ifeq ($(BIN),target/release/netheal)
$(BIN):
	$(CARGO) build --release
endif

install: install-check $(BIN)
	@set -e; for spec in $(foreach f,$(NH_FILES),'$(f)'); do \
		IFS='|'; set -- $$spec; unset IFS; \
		src=$$1 dest="$(DESTDIR)$$2" mode=$$3 kind=$$4; \
		$(INSTALL) -d -m 755 "$${dest%/*}"; \
		if [ "$$kind" = bin ]; then \
			$(INSTALL) -m "$$mode" "$$src" "$$dest"; \
		elif [ "$$kind" = conf ] && [ -e "$$dest" ]; then \
			if ! { $(NH_CONTENT); } | cmp -s - "$$dest"; then \
				echo "kept $$dest (changed locally)"; continue; fi; \
		else \
			{ $(NH_CONTENT); } >"$$dest.tmp"; \
			chmod "$$mode" "$$dest.tmp"; mv -f "$$dest.tmp" "$$dest"; \
		fi; \
		echo "installed $$dest"; \
	done
	@for i in $(INIT); do case $$i in \
		systemd) echo "enable: systemctl daemon-reload && systemctl enable --now netheal" ;; \
		openrc)  echo "enable: rc-update add netheal default && rc-service netheal start" ;; \
		sysv)    echo "enable: update-rc.d netheal defaults (or your distribution's tool)" ;; \
		busybox) echo "enable: append $(DATADIR)/netheal/inittab to /etc/inittab, kill -HUP 1" ;; \
		runit)   echo "enable: ln -s $(RUNITDIR)/netheal /etc/service/ (or /var/service/)" ;; \
		s6)      echo "enable: add netheal-pipeline to your s6-rc source tree and compile it" ;; \
		esac; done
	@[ -e "$(DESTDIR)$(SYSCONFDIR)/netheal.conf" ] || \
		echo "next: write $(SYSCONFDIR)/netheal.conf (see $(SYSCONFDIR)/netheal.conf.example)"

uninstall: install-check
	@set -e; for spec in $(foreach f,$(NH_FILES),'$(f)'); do \
		IFS='|'; set -- $$spec; unset IFS; \
		src=$$1 dest="$(DESTDIR)$$2" mode=$$3 kind=$$4; \
		[ -e "$$dest" ] || continue; \
		if [ "$$kind" = conf ] && ! { $(NH_CONTENT); } | cmp -s - "$$dest"; then \
			echo "kept $$dest (changed locally)"; continue; fi; \
		rm -f "$$dest"; echo "removed $$dest"; \
	done
	@for d in $(NH_DIRS); do \
		[ ! -d "$(DESTDIR)$$d" ] || rmdir "$(DESTDIR)$$d" 2>/dev/null || \
			echo "kept $(DESTDIR)$$d (not empty)"; done

# Installs into a temporary DESTDIR for every INIT value and checks the files, their modes
# and contents, then uninstalls and checks nothing is left. Needs no root and no build.
test-install:
	sh mk/test-install.sh

# shellcheck, mandoc -T lint, man --warnings, systemd-analyze verify, netheal --check on the
# example configuration. With CI=true a missing tool is a failure, not a skip.
check-init:
	sh mk/check-init.sh

# The service files at work, as root in namespaces of their own: the SysV script with the
# system's start-stop-daemon, busybox's and none; runit's and s6's run scripts under runsv and
# s6-svscan. Skips without root or the tools, unless CI=true. Needs target/debug/netheal.
test-init:
	sh init/tests/sysv.sh
	sh init/tests/supervised.sh
