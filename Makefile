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
# The console's browser tests (tests/e2e/test_console_browser.py): headless chromium via selenium;
# faketime moves the console's wall clock past a session's timeout.
DEB_TEST  += chromium chromium-driver python3-selenium faketime
DEB_BENCH := tinyproxy squid haproxy wrk ripgrep microsocks dante-server
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

e2e: $(BUILD)/iplock
	IPLOCK_BIN=$(abspath $(BUILD)/iplock) $(PY) -m pytest -q -p no:cacheprovider --durations=10 tests/e2e

# The whole suite: plain build, then again under ASan+UBSan, then each fuzzer briefly.
# Builds use both cores; unit tests run one at a time; the black-box suite runs against the plain
# and the ASan+UBSan binaries side by side (tools/e2e-both.sh); then each fuzzer briefly.
test: deps-test check-layers
	$(MAKE) -j2 $(BUILD)/iplock $(UNIT_BIN)
	$(MAKE) -j2 SANITIZE=1 build/asan/iplock $(UNIT_BIN:$(BUILD)/%=build/asan/%)
	$(MAKE) unit
	$(MAKE) SANITIZE=1 unit
	sh tools/e2e-both.sh "$(MAKE)" "$(MAKE) fuzz-bins"
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
	@clang $(CPPFLAGS) -std=c17 -O1 -g -Wall -Wextra -Werror -Wno-missing-field-initializers -Wno-for-loop-analysis $(FUZZ_FLAGS) -DFUZZING -DIPLOCK_DEBUG -c -o $@ $<
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

# The gate benchmark of issue 4 (gate vs nginx reverse proxy, forward-auth decisions, 10,000 keys).
bench-gate: deps-bench
	@$(MAKE) --no-print-directory bench-tools $(BUILD)/iplock
	@sh bench/gate.sh
