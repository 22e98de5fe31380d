#!/usr/bin/env bash
# run.sh - `make bench`: echod's benchmark matrix beside a floor and its peers.
#
# Builds tests/bench/bare_echo.c (the least an epoll echo server can do) into
# build/, raises the descriptor limit for the idle-connections row, picks the
# CPUs (servers on CPU 0, echobench on CPU 1 when there are two), then runs
# tests/bench/bench.py, which starts echod (one worker), the floor, and the
# Debian peers redis-server, memcached and nginx on free loopback ports,
# drives them all with echobench, stops them by PID, and prints one markdown
# table (also build/bench.md; every sample in build/bench.json).
#
# Environment: BENCH_SECONDS (measured seconds per run, default 3),
# BENCH_WARMUP (default 0.5), BENCH_REPEAT (runs per cell, default 3; the
# table shows the median and min-max), BENCH_ONLY (comma-separated row keys:
# p1,c1,p16,oneshot,mib,idle,http1,http16,post), BENCH_NICE (niceness of servers
# and client, e.g. -10 on a machine busy with other work), BENCH_SCHED=fifo (run
# them SCHED_FIFO: rates that mean something on a busy machine, at the cost of
# starving its other work while a run lasts), BENCH_ECHOD (another echod binary,
# e.g. an older build to compare), BENCH_KEEP=1 (keep the
# scratch directory build/bench-run.* with configs, logs and raw JSON).
# About 5 minutes at the defaults. Everything written goes under build/.
set -euo pipefail
cd "$(dirname "$0")/../.."

BUILD=build
for b in "$BUILD/echod" "$BUILD/echobench"; do
    [ -x "$b" ] || { echo "run.sh: $b is not built (run make)" >&2; exit 1; }
done
mkdir -p "$BUILD"
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o "$BUILD/bare_echo" tests/bench/bare_echo.c

# Descriptors for 10,000 connections on each side (inherited by the servers).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    export BENCH_SERVER_CPU=${BENCH_SERVER_CPU:-0} BENCH_CLIENT_CPU=${BENCH_CLIENT_CPU:-1}
else
    export BENCH_SERVER_CPU= BENCH_CLIENT_CPU=
fi
exec /usr/bin/python3 tests/bench/bench.py
