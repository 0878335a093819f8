# iplock: make | make test | make run | make bench | make fuzz | make SANITIZE=1
SHELL    := /bin/bash
CC       ?= cc
BUILD    ?= build
PY       := /usr/bin/python3
LLHTTP_SRC_DIR := /usr/share/llhttp
LLHTTP_INC_DIR := /usr/share/include/llhttp

ifdef SANITIZE
BUILD    := build/asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
DEBUGFLAGS := -DIPLOCK_DEBUG
OPT      := -O1
else
OPT      := -O2
endif

CPPFLAGS := -D_GNU_SOURCE -Isrc -I/usr/include/postgresql -I$(LLHTTP_INC_DIR) $(DEBUGFLAGS)
CFLAGS   := -std=c17 $(OPT) -g -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers $(SANFLAGS)
LDLIBS   := -lcares -lssl -lcrypto -linih -lsqlite3 -lpq -ljansson -larchive -lsystemd -lpthread -lm
LDFLAGS  := $(SANFLAGS)

SRC      := $(shell find src -name '*.c' ! -path src/main.c | sort)
OBJ      := $(SRC:%.c=$(BUILD)/obj/%.o)
LLHTTP_OBJ := $(BUILD)/obj/llhttp/api.o $(BUILD)/obj/llhttp/http.o $(BUILD)/obj/llhttp/llhttp.o
LIBOBJ   := $(OBJ) $(LLHTTP_OBJ)
# The console's UI: every file under src/console/ui/ embedded in the binary (tools/gen-assets.sh
# writes an assembler file with one .incbin per file; the list is picked up by wildcard and a
# changed list regenerates it).
CONSOLE_UI := $(shell find src/console/ui -type f ! -name '.*' 2>/dev/null | LC_ALL=C sort)
CONSOLE_UI_LIST := $(BUILD)/gen/console_ui.list
$(shell mkdir -p $(BUILD)/gen && (echo '$(CONSOLE_UI)' | cmp -s - $(CONSOLE_UI_LIST) || echo '$(CONSOLE_UI)' > $(CONSOLE_UI_LIST)))
LIBOBJ   += $(BUILD)/obj/gen/console_assets.o
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

# Debian packages the build, the tests and the benchmark need (installed when missing, as root).
DEB_BUILD := gcc make clang node-llhttp libc-ares-dev libssl-dev libinih-dev libsqlite3-dev \
             libjansson-dev libsystemd-dev libcmocka-dev libarchive-dev libpq-dev
DEB_TEST  := curl python3-pytest python3-requests python3-stripe python3-socks python3-socksio python3-httpx \
             git nginx-light sqlite3 postgresql
# the balancer of the two-node example (etc/fleet, tests/e2e/test_fleet_ha.py)
DEB_TEST  += haproxy
DEB_BENCH := tinyproxy squid haproxy wrk ripgrep microsocks dante-server linux-perf
# The console's browser tests (tests/e2e/test_console_browser.py): headless chromium via selenium;
# faketime moves the console's wall clock past a session's timeout.
DEB_TEST  += chromium chromium-driver python3-selenium faketime
# How missing packages get installed; tests/e2e/test_makefile.py swaps in a stand-in.
DEPS_CMD  ?= sh tools/deps.sh

.SECONDARY:
.PHONY: check-layers all deps deps-test deps-bench test unit e2e asan fuzz fuzz-bins fuzz-run bench bench-tools run clean check-style bench-gate bench-proxy bench-scan

# Packages are installed first, then a second make reads the tree: a make that started before
# node-llhttp was installed has already cached /usr/share/llhttp as missing.
all: deps
	@$(MAKE) --no-print-directory $(BUILD)/iplock

deps:
	@$(DEPS_CMD) $(DEB_BUILD)
deps-test: deps
	@$(DEPS_CMD) $(DEB_TEST)
	@command -v npm >/dev/null || sh tools/deps.sh nodejs npm
	@test -d tests/e2e/js/node_modules || (cd tests/e2e/js && npm ci --no-audit --no-fund --loglevel=error)
deps-bench: deps-test
	@$(DEPS_CMD) $(DEB_BENCH)

$(BUILD)/iplock: $(BUILD)/obj/src/main.o $(LIBOBJ)
	@echo "  LD $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

# llhttp comes from Debian's node-llhttp as C sources; its generated code is not -Wextra clean.
$(BUILD)/obj/llhttp/%.o: $(LLHTTP_SRC_DIR)/%.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) -I$(LLHTTP_INC_DIR) -std=c17 $(OPT) -g $(SANFLAGS) -w -c -o $@ $<

$(BUILD)/gen/console_assets.S: $(CONSOLE_UI) $(CONSOLE_UI_LIST) tools/gen-assets.sh
	@mkdir -p $(dir $@)
	@sh tools/gen-assets.sh src/console/ui $(CONSOLE_UI) > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/gen/console_assets.o: $(BUILD)/gen/console_assets.S
	@mkdir -p $(dir $@)
	@echo "  AS $<"
	@$(CC) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIBOBJ)
	@mkdir -p $(dir $@)
	@echo "  LD $@"
	@$(CC) $(CPPFLAGS) $(CFLAGS) -Itests/unit -o $@ $< $(LIBOBJ) $(LDFLAGS) $(LDLIBS) -lcmocka

# The store suite runs twice: on SQLite, then on a throwaway PostgreSQL cluster.
unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done
	@echo "== $(BUILD)/tests/test_store (PostgreSQL)"; sh tools/with-pg.sh $(BUILD)/tests/test_store
	@echo "== $(BUILD)/tests/test_store_users (PostgreSQL)"; sh tools/with-pg.sh $(BUILD)/tests/test_store_users

# E2E: the test files (tools/e2e-both.sh runs each pass as two shards of them)
E2E ?= tests/e2e
e2e: $(BUILD)/iplock
	IPLOCK_BIN=$(abspath $(BUILD)/iplock) $(PY) -m pytest -q -p no:cacheprovider --durations=10 $(E2E)

# The whole suite: plain build, then again under ASan+UBSan, then each fuzzer briefly.
# Builds use both cores; unit tests run one at a time; the black-box suite runs against the plain
# and the ASan+UBSan binaries side by side (tools/e2e-both.sh); then each fuzzer briefly.
test: deps-test check-layers
	$(MAKE) -j2 $(BUILD)/iplock $(UNIT_BIN)
	$(MAKE) -j2 SANITIZE=1 build/asan/iplock $(UNIT_BIN:$(BUILD)/%=build/asan/%)
	$(MAKE) unit
	$(MAKE) SANITIZE=1 unit
	@# beside the black-box runs: the fuzz build, then the Debian package (build, install,
	@# check, purge: docs/install.md)
	sh tools/e2e-both.sh "$(MAKE)" "$(MAKE) fuzz-bins && sh tools/test-package.sh"
	$(MAKE) fuzz-run

check-layers:
	@sh tools/check-layers.sh

FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=build/fuzz/%)
FUZZ_FLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
FUZZ_LIBOBJ := $(SRC:%.c=build/fuzz/obj/%.o) build/fuzz/obj/llhttp/api.o build/fuzz/obj/llhttp/http.o build/fuzz/obj/llhttp/llhttp.o build/obj/gen/console_assets.o

build/fuzz/obj/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	@echo "  CC(fuzz) $<"
	@clang $(CPPFLAGS) -std=c17 -O1 -g -Wall -Wextra -Werror -Wno-missing-field-initializers -Wno-for-loop-analysis $(FUZZ_FLAGS) -DFUZZING -DIPLOCK_DEBUG -MMD -MP -c -o $@ $<
build/fuzz/obj/llhttp/%.o: $(LLHTTP_SRC_DIR)/%.c
	@mkdir -p $(dir $@)
	@echo "  CC(fuzz) $<"
	@clang -I$(LLHTTP_INC_DIR) -std=c17 -O1 -g -w $(FUZZ_FLAGS) -c -o $@ $<
build/fuzz/%: fuzz/%.c $(FUZZ_LIBOBJ)
	@mkdir -p $(dir $@)
	@echo "  LD(fuzz) $@"
	@clang $(CPPFLAGS) -std=c17 -O1 -g -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS)

fuzz: deps
	@$(MAKE) --no-print-directory -j2 fuzz-bins
fuzz-bins: $(FUZZ_BIN)

# Each target for a few seconds on its seed corpus (copied, so the tree stays clean).
FUZZ_SECONDS ?= 5
fuzz-run: fuzz
	@printf '%s\n' $(FUZZ_BIN) | xargs -P2 -I{} sh tools/fuzz-one.sh {} $(FUZZ_SECONDS)

run: deps
	@$(MAKE) --no-print-directory $(BUILD)/iplock
	@sh tools/run-demo.sh $(BUILD)/iplock

# Benchmark tools: standalone programs (no library objects), always built optimised.
BENCH_TOOLS := build/bench/loadgen build/bench/origin
build/bench/%: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE -std=c17 -O2 -g -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers -o $@ $< -lpthread $(BENCH_LIBS)
# The loadgen's --tls speaks OpenSSL to the proxy's TLS listener.
build/bench/loadgen: BENCH_LIBS := -lssl -lcrypto

bench-tools: $(BENCH_TOOLS)

# Every side-by-side benchmark, each printing its table with ratios (bench/README.md).
bench: deps-bench
	@$(MAKE) --no-print-directory bench-tools $(BUILD)/iplock
	@sh bench/run.sh
	@sh bench/fwd.sh
	@sh bench/gate.sh
	@bash bench/scan.sh

bench-proxy: deps-bench
	@$(MAKE) --no-print-directory bench-tools $(BUILD)/iplock
	@sh bench/run.sh
bench-scan: deps-bench
	@$(MAKE) --no-print-directory $(BUILD)/iplock
	@bash bench/scan.sh

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
# the fuzz objects follow their headers too (a struct that grew must not meet stale objects)
-include $(shell find build/fuzz/obj -name '*.d' 2>/dev/null)

# The gate benchmark of issue 4 (gate vs nginx reverse proxy, forward-auth decisions, 10,000 keys).
bench-gate: deps-bench
	@$(MAKE) --no-print-directory bench-tools $(BUILD)/iplock
	@sh bench/gate.sh

# ---- Installing (issue 15; docs/install.md): make install, make uninstall, make man, make deb.
# `iplock --version` names the commit it was built from: git when the tree is a checkout of its
# own (not a tarball unpacked inside another repository), else "unknown" (or IPLOCK_COMMIT=...).
ifndef IPLOCK_COMMIT
IPLOCK_COMMIT := $(shell test "$$(git rev-parse --show-toplevel 2>/dev/null)" = "$(CURDIR)" && \
	git rev-parse --short=12 HEAD 2>/dev/null | sed "s/$$/$$(git diff --quiet HEAD -- 2>/dev/null || echo -dirty)/" || echo unknown)
endif
$(BUILD)/obj/src/main.o: CPPFLAGS += -DIPLOCK_COMMIT='"$(IPLOCK_COMMIT)"'
$(BUILD)/obj/src/main.o: $(BUILD)/commit.txt
# rewritten only when the commit changes, so main.o is rebuilt then and only then
$(BUILD)/commit.txt: FORCE
	@mkdir -p $(BUILD); echo '$(IPLOCK_COMMIT)' | cmp -s - $@ 2>/dev/null || echo '$(IPLOCK_COMMIT)' > $@
FORCE:

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/iplock
COMPLDIR   ?= $(PREFIX)/share/bash-completion/completions
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
SYSCONFDIR ?= /etc
INSTALL    ?= install
# the example configs: etc/iplock-NAME.example.ini becomes /etc/iplock/NAME.ini (never replaced)
EXAMPLES   := $(wildcard etc/iplock-*.example.ini)
UNITS      := $(wildcard etc/iplock-*.service)
DOCS       := README.md $(wildcard docs/*.md)

.PHONY: man man-check install uninstall deb deb-deps deb-lint print-commit FORCE

# iplock(1), iplock-COMMAND(1) from the binary's --help texts, iplock.ini(5) from the docs' key
# tables (tools/man.py); man-check fails on a --help out of layout or an undocumented key.
man: $(BUILD)/man/iplock.1
$(BUILD)/man/iplock.1: $(BUILD)/iplock tools/man.py $(DOCS)
	@rm -rf $(BUILD)/man && $(PY) tools/man.py gen $(BUILD)/iplock $(BUILD)/man
	@echo "  MAN $(BUILD)/man"
man-check: $(BUILD)/iplock
	@$(PY) tools/man.py check $(BUILD)/iplock

install: $(BUILD)/iplock $(BUILD)/man/iplock.1
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(COMPLDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(SYSCONFDIR)/iplock $(DESTDIR)$(SYSCONFDIR)/logrotate.d
	$(INSTALL) -m 0755 $(BUILD)/iplock $(DESTDIR)$(BINDIR)/iplock
	$(INSTALL) -m 0644 $(BUILD)/man/*.1 $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 0644 $(BUILD)/man/*.5 $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/
	$(INSTALL) -m 0644 $(EXAMPLES) etc/nginx/*.conf $(DESTDIR)$(DOCDIR)/examples/
	$(INSTALL) -m 0644 etc/iplock.bash-completion $(DESTDIR)$(COMPLDIR)/iplock
	$(INSTALL) -m 0644 etc/iplock.sysusers $(DESTDIR)$(SYSUSERSDIR)/iplock.conf
	@set -e; for u in $(UNITS); do \
		sed -e 's|/usr/local/bin/iplock|$(BINDIR)/iplock|g' -e 's|/usr/share/doc/iplock|$(DOCDIR)|g' \
			-e 's|/etc/iplock|$(SYSCONFDIR)/iplock|g' $$u > $(DESTDIR)$(UNITDIR)/$${u#etc/}; \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$${u#etc/}; done
	@set -e; for f in $(EXAMPLES); do n=$${f#etc/iplock-}; t=$(DESTDIR)$(SYSCONFDIR)/iplock/$${n%.example.ini}.ini; \
		if [ -e $$t ]; then echo "  kept $$t (exists)"; else $(INSTALL) -m 0640 $$f $$t; echo "  new  $$t"; fi; done
	@t=$(DESTDIR)$(SYSCONFDIR)/logrotate.d/iplock; [ -e $$t ] || $(INSTALL) -m 0644 etc/iplock.logrotate $$t
	@# on the real root: create the system user now and let the config directory be its group's
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v systemd-sysusers >/dev/null; then \
		systemd-sysusers $(SYSUSERSDIR)/iplock.conf && chgrp -R iplock $(SYSCONFDIR)/iplock && \
		chmod 0750 $(SYSCONFDIR)/iplock; fi

# Removes what install put there, except /etc/iplock/*.ini (your configuration) and the user.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/iplock $(DESTDIR)$(MANDIR)/man1/iplock.1 $(DESTDIR)$(MANDIR)/man1/iplock-*.1 \
		$(DESTDIR)$(MANDIR)/man5/iplock.ini.5 $(DESTDIR)$(COMPLDIR)/iplock $(DESTDIR)$(SYSUSERSDIR)/iplock.conf \
		$(addprefix $(DESTDIR)$(UNITDIR)/,$(UNITS:etc/%=%))
	rm -rf $(DESTDIR)$(DOCDIR)
	cmp -s etc/iplock.logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/iplock && rm -f $(DESTDIR)$(SYSCONFDIR)/logrotate.d/iplock || true
	@echo "  kept $(DESTDIR)$(SYSCONFDIR)/iplock (your configuration) and the user iplock"

# Debian flags (hardening) when debian/rules passes them; empty otherwise.
CFLAGS   += $(DEB_CFLAGS)
CPPFLAGS += $(DEB_CPPFLAGS)
LDFLAGS  += $(DEB_LDFLAGS)
$(BUILD)/obj/llhttp/%.o: SANFLAGS += $(DEB_CFLAGS) $(DEB_CPPFLAGS)

# make deb: a clean package build (dpkg-buildpackage -us -uc -b, no tests) in a copy of the tree
# under DEBDIR, so nothing of build/ is reused and nothing outside DEBDIR is written; the .deb
# lands in DEBDIR. make deb-lint runs lintian on it.
DEB_PKG  := debhelper devscripts lintian fakeroot dpkg-dev
DEBDIR   ?= build/debian-pkg
DEB_JOBS ?= 2
deb-deps: deps
	@$(DEPS_CMD) $(DEB_PKG)
deb: deb-deps
	@rm -rf $(DEBDIR) && mkdir -p $(DEBDIR)/src
	@tar --exclude=./build --exclude=./.git --exclude=node_modules --exclude='./$(DEBDIR)' -cf - . | tar -C $(DEBDIR)/src -xf -
	cd $(DEBDIR)/src && IPLOCK_COMMIT='$(IPLOCK_COMMIT)' DEB_BUILD_OPTIONS="nocheck parallel=$(DEB_JOBS) $(DEB_OPTS)" \
		dpkg-buildpackage -us -uc -b > ../build.log 2>&1 || { tail -40 ../build.log; exit 1; }
	@ls $(DEBDIR)/*.deb
deb-lint:
	lintian --info --display-info $(DEBDIR)/*.changes
print-commit:
	@echo '$(IPLOCK_COMMIT)'
# The proxy fleet benchmark of issue 13: users from the store (users_db, usage counting) beside
# the INI [user], in one run (bench/RESULTS-fleet.md).
.PHONY: bench-fleet
bench-fleet:
	@$(MAKE) --no-print-directory bench-tools $(BUILD)/iplock
	@sh bench/fleet.sh
# Issue 10: CPU per forwarded GET and per tunnel beside HAProxy's TCP relay, nginx as the origin
# (IPLOCK_BASE_BIN=old/iplock adds an older build beside it).
.PHONY: bench-fwd
bench-fwd: deps-bench
	@$(MAKE) --no-print-directory bench-tools $(BUILD)/iplock
	@sh bench/fwd.sh
