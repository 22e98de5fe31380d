# echod - build, run, test, benchmark, install.
#
#   make                 build/echod, build/echoc, build/echobench
#   make run             build, then run echod in the foreground with config/echod.conf
#   make test            build, then every test; ends with "N passed, N failed"
#   make test SAN=address,undefined   (or SAN=thread) the same under sanitizers
#   make fuzz            libFuzzer targets (clang); FUZZ_SECONDS=60 per target
#   make bench           the benchmark matrix (tests/bench/run.sh)
#   make install         PREFIX=/usr/local DESTDIR=
#
# Missing build dependencies are installed with apt-get when run as root on
# Debian; otherwise the exact apt-get command is printed.

CC      ?= cc
SAN     ?=
PREFIX  ?= /usr/local
DESTDIR ?=
FUZZ_SECONDS ?= 60

DEB_PACKAGES := gcc make pkg-config libconfig-dev libcmocka-dev libsystemd-dev \
                python3 python3-pytest netcat-openbsd clang libclang-rt-14-dev procps \
                iproute2 systemd debootstrap

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
LDLIBS  += $(PKG_LIBS) -lm

COMMON_SRC := $(wildcard common/*.c)
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c))
CLIENT_SRC := $(filter-out client/echoc.c client/echobench.c,$(wildcard client/*.c))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)

objs = $(patsubst %.c,$(OBJ)/%.o,$(1))
UNIT_BIN := $(patsubst tests/unit/%.c,build/tests/%,$(UNIT_SRC))
BINS := build/echod build/echoc build/echobench

.PHONY: all deps run test unit-tests fuzz fuzz-build bench install uninstall clean
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
	        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
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

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin
	install -m 755 build/echod $(DESTDIR)$(PREFIX)/sbin/echod
	install -m 755 build/echoc build/echobench $(DESTDIR)$(PREFIX)/bin/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/echod $(DESTDIR)$(PREFIX)/bin/echoc $(DESTDIR)$(PREFIX)/bin/echobench

clean:
	rm -rf build
