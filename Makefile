# echod - build, run, test, benchmark, install.
#
#   make                 build/echod, build/echoc, build/echobench
#   make run             build, then run echod in the foreground with config/echod.conf
#   make test            build, then every test; ends with "N passed, N failed"
#   make test SAN=address,undefined   (or SAN=thread) the same under sanitizers
#   make fuzz            libFuzzer targets (clang); FUZZ_SECONDS=60 per target
#   make bench           the benchmark matrix (tests/bench/run.sh)
#   make install         PREFIX=/usr/local DESTDIR= (binaries, /etc/echod/echod.conf
#                        unless present, systemd units echod and echod@, man pages);
#                        make uninstall
#   make test-systemd    only the end-to-end test under a real systemd (tests/systemd/)
#   make soak            every kind of load at once with reloads (tests/soak/soak.py);
#                        SOAK_SECONDS=600 by default; SAN= as for make test
#
# Missing build dependencies are installed with apt-get when run as root on
# Debian; otherwise the exact apt-get command is printed. While installing, a
# policy-rc.d keeps the packaged services (nginx, haproxy, redis, memcached,
# prometheus) from starting: the tests start their own, on free ports.

CC      ?= cc
SAN     ?=
PREFIX  ?= /usr/local
DESTDIR ?=
# Install locations. The config lives in /etc whatever the PREFIX; systemd
# reads units from $(PREFIX)/lib/systemd/system for /usr and /usr/local.
SBINDIR    ?= $(PREFIX)/sbin
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
FUZZ_SECONDS ?= 60
SOAK_SECONDS ?= 600

DEB_PACKAGES := gcc make pkg-config libconfig-dev libcmocka-dev libsystemd-dev \
                python3 python3-pytest netcat-openbsd clang libclang-rt-14-dev procps \
                iproute2 systemd debootstrap groff-base
# promtool checks the /metrics text (tests/integration/test_metrics_format.py).
DEB_PACKAGES += prometheus
# Real HTTP clients and a real proxy for the http:// tests (tests/integration/test_http_*.py).
DEB_PACKAGES += curl apache2-utils wrk nginx-light
# nft(8) builds the faults of the network-namespace tests (tests/integration/test_netns_*.py).
DEB_PACKAGES += nftables
# The balancers in front of echod (tests/integration/test_balancer_*.py).
DEB_PACKAGES += haproxy nginx libnginx-mod-stream
# echobench's peer-protocol tests and make bench's peers (tests/bench/): Redis 7,
# memcached 1.6 (nginx 1.22 is above).
DEB_PACKAGES += redis-server memcached
# echobench --hdr-log deflates its histograms.
DEB_PACKAGES += zlib1g-dev

VERSION := 1.0.0
comma := ,
ifeq ($(SAN),)
VARIANT := release
OPT     := -O2
else
VARIANT := san-$(subst $(comma),-,$(SAN))
OPT     := -O1 -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

OBJ := build/obj/$(VARIANT)
PKG_CFLAGS := $(shell pkg-config --cflags libconfig libsystemd 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs libconfig libsystemd 2>/dev/null)

CFLAGS  ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE -DECHOD_VERSION='"$(VERSION)"' $(OPT) -g \
           -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -pthread -I. $(PKG_CFLAGS) -MMD -MP
LDFLAGS ?=
LDFLAGS += -pthread $(if $(SAN),-fsanitize=$(SAN))
LDLIBS  += $(PKG_LIBS) -lm -lz

COMMON_SRC := $(wildcard common/*.c)
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c))
CLIENT_SRC := $(filter-out client/echoc.c client/echobench.c,$(wildcard client/*.c))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)

objs = $(patsubst %.c,$(OBJ)/%.o,$(1))
UNIT_BIN := $(patsubst tests/unit/%.c,build/tests/%,$(UNIT_SRC))
BINS := build/echod build/echoc build/echobench

.PHONY: all deps run test unit-tests fuzz fuzz-build bench install uninstall test-systemd clean
all: $(BINS)

# The binaries depend on the variant stamp, so switching SAN relinks them.
build/variant-$(VARIANT):
	@mkdir -p build && rm -f build/variant-* && touch $@

build/echod: $(call objs,server/main.c $(SERVER_SRC) $(COMMON_SRC)) build/variant-$(VARIANT)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LDLIBS)
build/echoc: $(call objs,client/echoc.c $(CLIENT_SRC) $(COMMON_SRC)) build/variant-$(VARIANT)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LDLIBS)
build/echobench: $(call objs,client/echobench.c $(CLIENT_SRC) $(COMMON_SRC)) build/variant-$(VARIANT)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LDLIBS)

# Unit tests link every module of server/, client/ and common/ but the mains.
build/tests/%: $(OBJ)/tests/unit/%.o $(call objs,$(SERVER_SRC) $(CLIENT_SRC) $(COMMON_SRC)) build/variant-$(VARIANT)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LDLIBS) -lcmocka

$(OBJ)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

-include $(shell find build/obj/$(VARIANT) -name '*.d' 2>/dev/null)

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ]; then \
	        echo "installing:$$missing"; \
	        rcd=/usr/sbin/policy-rc.d; own_rcd=""; \
	        if [ ! -e $$rcd ]; then printf '#!/bin/sh\nexit 101\n' >$$rcd && chmod 755 $$rcd && own_rcd=1; fi; \
	        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	        rc=$$?; [ -z "$$own_rcd" ] || rm -f $$rcd; [ $$rc -eq 0 ] || exit 1; \
	    else \
	        echo "missing packages; run: sudo apt-get install$$missing" >&2; exit 1; \
	    fi; \
	fi

run: deps
	@$(MAKE) --no-print-directory all
	./build/echod -c config/echod.conf

unit-tests: $(UNIT_BIN)

test: deps
	@$(MAKE) --no-print-directory all unit-tests
	@SAN="$(SAN)" bash tests/run.sh

FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -DECHOD_VERSION='"$(VERSION)"' -O1 -g -I. $(PKG_CFLAGS) \
              -fsanitize=fuzzer,address,undefined -Wall -Wextra -Werror -pthread
build/fuzz/%: tests/fuzz/%.c $(SERVER_SRC) $(COMMON_SRC)
	@mkdir -p $(@D)
	clang $(FUZZ_FLAGS) -o $@ $^ $(PKG_LIBS) -lm

fuzz-build: deps
	@$(MAKE) --no-print-directory $(FUZZ_BIN)

fuzz: fuzz-build
	@for f in $(FUZZ_BIN); do \
	    name=$$(basename $$f); corpus=tests/fuzz/corpus/$${name#fuzz_}; mkdir -p $$corpus build/fuzz/new-$$name; \
	    echo "fuzzing $$name for $(FUZZ_SECONDS)s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=build/fuzz/$$name- build/fuzz/new-$$name $$corpus >build/fuzz/$$name.log 2>&1 \
	        || { tail -40 build/fuzz/$$name.log; exit 1; }; \
	    grep -E 'stat::number_of_executed_units|stat::new_units_added' build/fuzz/$$name.log; \
	done

bench: deps
	@$(MAKE) --no-print-directory all
	bash tests/bench/run.sh

# One instance (echod.service/.socket) and one per config file (echod@NAME).
UNITS := echod.service echod.socket echod@.service echod@.socket

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR)
	install -m 755 build/echod $(DESTDIR)$(SBINDIR)/echod
	install -m 755 build/echoc build/echobench $(DESTDIR)$(BINDIR)/
	@# An existing configuration is the operator's: never overwritten.
	install -d $(DESTDIR)$(SYSCONFDIR)/echod
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/echod/echod.conf ]; then \
	    echo "keeping existing $(DESTDIR)$(SYSCONFDIR)/echod/echod.conf"; \
	else \
	    echo "install -m 644 config/echod.conf $(DESTDIR)$(SYSCONFDIR)/echod/echod.conf"; \
	    install -m 644 config/echod.conf $(DESTDIR)$(SYSCONFDIR)/echod/echod.conf; \
	fi
	@# The units name /usr/local/sbin/echod and /etc/echod; point them at this install.
	install -d $(DESTDIR)$(UNITDIR)
	for u in $(UNITS); do \
	    sed -e 's|/usr/local/sbin/echod|$(SBINDIR)/echod|g' -e 's|/etc/echod/|$(SYSCONFDIR)/echod/|g' \
	        systemd/$$u >$(DESTDIR)$(UNITDIR)/$$u && chmod 644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	install -d $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5
	install -m 644 docs/echod.8 $(DESTDIR)$(MANDIR)/man8/echod.8
	install -m 644 docs/echod.conf.5 $(DESTDIR)$(MANDIR)/man5/echod.conf.5
	@[ -n "$(DESTDIR)" ] || echo "now: systemctl daemon-reload && systemctl enable --now echod"

# The configuration is removed only if it is still the shipped one.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/echod $(DESTDIR)$(BINDIR)/echoc $(DESTDIR)$(BINDIR)/echobench
	rm -f $(addprefix $(DESTDIR)$(UNITDIR)/,$(UNITS))
	rm -f $(DESTDIR)$(MANDIR)/man8/echod.8 $(DESTDIR)$(MANDIR)/man5/echod.conf.5
	@c=$(DESTDIR)$(SYSCONFDIR)/echod/echod.conf; \
	if [ -e $$c ] && ! cmp -s $$c config/echod.conf; then \
	    echo "keeping $$c (changed since install)"; \
	else \
	    rm -f $$c; rmdir $(DESTDIR)$(SYSCONFDIR)/echod 2>/dev/null || true; \
	fi

# The soak: not part of `make test` (it runs for minutes). Its own summary
# says what it checked; exit status 0 only if all of it held.
.PHONY: soak
soak: deps
	@$(MAKE) --no-print-directory all
	SAN="$(SAN)" /usr/bin/python3 tests/soak/soak.py --seconds $(SOAK_SECONDS)

# The end-to-end test under a real systemd alone (it also runs within `make test`).
test-systemd: deps
	@$(MAKE) --no-print-directory all
	/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration/test_systemd_end_to_end.py

clean:
	rm -rf build
