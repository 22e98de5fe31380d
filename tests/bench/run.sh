#!/usr/bin/env bash
# run.sh - `make bench`: echod's standard benchmark matrix beside a floor.
#
# Builds tests/bench/bare_echo.c (the least an epoll echo server can do) into
# build/, starts build/echod (one worker) and bare_echo on loopback, pinned to
# CPU 0 with echobench on CPU 1 when there are two CPUs, and runs the matrix:
#   64 B ECHO on 50 connections at pipeline 1 and 16, --oneshot connections/s,
#   1 MiB ECHO throughput, RSS holding 10,000 idle connections, and p50/p99 at
#   a fixed rate of half echod's pipeline-1 peak.
# echod is driven framed, bare_echo with --proto raw. Beside each figure is the
# server's CPU time per request (utime+stime from /proc/PID/stat), and each
# row ends with echod's ratio to the floor, which moves less with the machine
# than the absolute numbers do. The floor column is also echobench's own
# ceiling on this machine. Prints one markdown table (also written to
# build/bench.md) with the machine description.
#
# Each figure is the best of BENCH_REPEAT runs (default 2; highest rate, or
# lowest p99 for the fixed-rate row), taken alternately on the two servers, so
# a burst of unrelated load on a shared machine spoils one run, not the row.
# Environment: BENCH_SECONDS (measured seconds per run, default 4),
# BENCH_WARMUP (default 1), BENCH_REPEAT (default 2). About 2-3 minutes.
# Everything is on 127.0.0.1 with free ports; both servers are stopped by PID.
# Everything written goes under build/ (a scratch directory removed at exit, and
# build/bench.md).
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_PER_RUN=${BENCH_SECONDS:-4}
WARMUP=${BENCH_WARMUP:-1}
REPEAT=${BENCH_REPEAT:-2}
PY=/usr/bin/python3
BUILD=build
ECHOD=$BUILD/echod
ECHOBENCH=$BUILD/echobench
BARE=$BUILD/bare_echo
# Connections for the idle RSS row.
IDLE_CONNS=10000
OUT=$BUILD/bench.md

for b in "$ECHOD" "$ECHOBENCH"; do
    [ -x "$b" ] || { echo "run.sh: $b is not built (run make)" >&2; exit 1; }
done
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o "$BARE" tests/bench/bare_echo.c

# Descriptors for 10,000 connections on each side (inherited by the servers).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    SERVER_PIN=(taskset -c 0)
    CLIENT_PIN=(taskset -c 1)
    PINNING="server on CPU 0, echobench on CPU 1"
else
    SERVER_PIN=()
    CLIENT_PIN=()
    PINNING="not pinned (fewer than 2 CPUs)"
fi

# Every file a run writes (configs, logs, JSON) lives under build/.
mkdir -p "$BUILD"
WORK=$(mktemp -d "$BUILD/bench-run.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- servers ----------------------------------------------------------------
ECHOD_PORT=$(free_port)
cat >"$WORK/echod.conf" <<EOF
listen = [ "127.0.0.1:$ECHOD_PORT" ];
workers = 1;
backlog = 4096;
max_connections = 20000;
idle_timeout = 0;
log_level = "warn";
EOF
"${SERVER_PIN[@]}" "$ECHOD" -c "$WORK/echod.conf" 2>"$WORK/echod.log" &
ECHOD_PID=$!
PIDS+=("$ECHOD_PID")

"${SERVER_PIN[@]}" "$BARE" 0 >"$WORK/bare.out" 2>&1 &
BARE_PID=$!
PIDS+=("$BARE_PID")

for _ in $(seq 100); do
    grep -q '^port ' "$WORK/bare.out" 2>/dev/null && "$BUILD/echoc" -p "$ECHOD_PORT" -t 1 ping >/dev/null 2>&1 && break
    sleep 0.1
done
BARE_PORT=$(awk '/^port /{print $2}' "$WORK/bare.out")
[ -n "$BARE_PORT" ] || { echo "run.sh: bare_echo did not start" >&2; cat "$WORK/bare.out" >&2; exit 1; }
"$BUILD/echoc" -p "$ECHOD_PORT" -t 1 ping >/dev/null || { echo "run.sh: echod did not start" >&2; cat "$WORK/echod.log" >&2; exit 1; }

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
# jget FILE EXPR: a value from echobench's JSON, EXPR in Python over `r`.
jget() { $PY -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"; }

# run NAME SERVER_PID ARGS...: one echobench run; leaves $WORK/NAME.json and
# the server's CPU microseconds per completed request in $WORK/NAME.cpu.
run() {
    local name=$1 pid=$2
    shift 2
    local t0 t1
    t0=$(cpu_ticks "$pid")
    "${CLIENT_PIN[@]}" "$ECHOBENCH" --json --no-progress "$@" >"$WORK/$name.json" \
        2>"$WORK/$name.err" || true
    t1=$(cpu_ticks "$pid")
    if ! jget "$WORK/$name.json" 'r["requests"]' >/dev/null 2>&1; then
        echo "run.sh: echobench failed for $name:" >&2
        cat "$WORK/$name.err" >&2
        exit 1
    fi
    $PY -c "import json,sys
r=json.load(open(sys.argv[1])); ok=r['totals']['ok']
print('%.2f' % ((int(sys.argv[2]) - int(sys.argv[3])) * 1e6 / int(sys.argv[4]) / ok) if ok else 'n/a')" \
        "$WORK/$name.json" "$t1" "$t0" "$CLK_TCK" >"$WORK/$name.cpu"
    local errs
    errs=$(jget "$WORK/$name.json" 'r["errors"]["total"]')
    [ "$errs" = 0 ] || echo "run.sh: warning: $name had $errs errors: $(jget "$WORK/$name.json" 'r["errors"]')" >&2
}

# keep_best NAME KEY: of NAME.1 .. NAME.$REPEAT keep the run with the highest
# KEY (a Python expression over `r`) as NAME.json / NAME.cpu.
keep_best() {
    local best
    best=$($PY -c '
import json, os, sys
work, name, n, key = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
score = lambda i: eval(key, {}, {"r": json.load(open(os.path.join(work, f"{name}.{i}.json")))})
print(max(range(1, n + 1), key=score))' "$WORK" "$1" "$REPEAT" "$2")
    cp "$WORK/$1.$best.json" "$WORK/$1.json"
    cp "$WORK/$1.$best.cpu" "$WORK/$1.cpu"
}

# both NAME ARGS...: the same load on echod (framed) and on the floor (raw),
# REPEAT times each, alternating; keeps the best of each.
both() {
    local name=$1 key='r["requests_per_s"]'
    shift
    case " $* " in *" -R "*) key='-r["latency_us"]["p99"]' ;; esac
    echo "running $name ..." >&2
    for i in $(seq "$REPEAT"); do
        run "$name.echod.$i" "$ECHOD_PID" -p "$ECHOD_PORT" "$@"
        run "$name.bare.$i" "$BARE_PID" -p "$BARE_PORT" --proto raw "$@"
    done
    keep_best "$name.echod" "$key"
    keep_best "$name.bare" "$key"
}

LOAD=(-d "$SECONDS_PER_RUN" -w "$WARMUP")
both p1 -c 50 -P 1 -s 64 "${LOAD[@]}"
both p16 -c 50 -P 16 -s 64 "${LOAD[@]}"
both oneshot --oneshot -c 32 -s 64 "${LOAD[@]}"
both mib -c 4 -P 1 -s 1M "${LOAD[@]}"

# Idle connections: sample the server's RSS while echobench holds them.
idle_rss() {
    local name=$1 pid=$2 port=$3
    shift 3
    echo "running idle.$name ..." >&2
    local base peak=0 r
    base=$(rss_kib "$pid")
    "${CLIENT_PIN[@]}" "$ECHOBENCH" --json --no-progress --idle -c "$IDLE_CONNS" \
        -d "$SECONDS_PER_RUN" -p "$port" "$@" >"$WORK/idle.$name.json" 2>"$WORK/idle.$name.err" &
    local bpid=$!
    while kill -0 "$bpid" 2>/dev/null; do
        r=$(rss_kib "$pid")
        [ "$r" -gt "$peak" ] && peak=$r
        sleep 0.1
    done
    wait "$bpid" || true
    echo "$base $peak" >"$WORK/idle.$name.rss"
}
idle_rss echod "$ECHOD_PID" "$ECHOD_PORT"
idle_rss bare "$BARE_PID" "$BARE_PORT" --proto raw

# Latency at half of echod's pipeline-1 peak, the same rate for both.
HALF=$(jget "$WORK/p1.echod.json" 'int(r["requests_per_s"] / 2)')
both half -c 50 -P 1 -s 64 -R "$HALF" "${LOAD[@]}"

# ---- the table ------------------------------------------------------------------
$PY - "$WORK" "$PINNING" "$SECONDS_PER_RUN" "$WARMUP" "$IDLE_CONNS" "$HALF" "$REPEAT" >"$OUT" <<'EOF'
import json, os, platform, subprocess, sys, datetime
work, pinning, secs, warm, idle_conns, half, repeat = sys.argv[1:8]

def j(name):
    return json.load(open(os.path.join(work, name + ".json")))

def cpu(name):
    return open(os.path.join(work, name + ".cpu")).read().strip()

def model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"

def mem_gib():
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0

def ratio(a, b):
    return f"{a / b:.2f}" if b else "n/a"

ver = subprocess.run(["build/echod", "-V"], capture_output=True, text=True).stdout.strip()
print(f"### echod benchmark ({datetime.date.today().isoformat()})")
print()
print(f"- machine: {model()}, {os.cpu_count()} CPUs, {mem_gib():.1f} GiB RAM, "
      f"Linux {platform.release()}")
print(f"- {ver or 'echod'}, 1 worker; floor: tests/bench/bare_echo.c (one epoll loop, "
      f"plain echo) driven with --proto raw")
print(f"- loopback, {pinning}; {secs} s measured after {warm} s warm-up per run, best of {repeat}; "
      f"CPU = server CPU time per request (per connection for oneshot, per MiB for 1 MiB)")
print()
print("| benchmark | echod | echod CPU | floor | floor CPU | echod / floor | echod CPU / floor CPU |")
print("|---|---:|---:|---:|---:|---:|---:|")

def rate_row(label, name, key, unit, scale=1.0):
    e, b = j(name + ".echod"), j(name + ".bare")
    ev, bv = e[key] * scale, b[key] * scale
    ec, bc = cpu(name + ".echod"), cpu(name + ".bare")
    cr = ratio(float(ec), float(bc)) if ec != "n/a" and bc != "n/a" else "n/a"
    print(f"| {label} | {ev:,.0f} {unit} | {ec} us | {bv:,.0f} {unit} | {bc} us | "
          f"{ratio(ev, bv)} | {cr} |")

rate_row("64 B ECHO, 50 conns, pipeline 1", "p1", "requests_per_s", "req/s")
rate_row("64 B ECHO, 50 conns, pipeline 16", "p16", "requests_per_s", "req/s")
rate_row("--oneshot, 32 at a time", "oneshot", "connections_per_s", "conn/s")

e, b = j("mib.echod"), j("mib.bare")
def per_mib(name, r):
    c = cpu(name)
    return f"{float(c):.0f} us/MiB" if c != "n/a" else "n/a"
print(f"| 1 MiB ECHO, 4 conns | {e['mb_per_s']:,.0f} MB/s | {per_mib('mib.echod', e)} | "
      f"{b['mb_per_s']:,.0f} MB/s | {per_mib('mib.bare', b)} | {ratio(e['mb_per_s'], b['mb_per_s'])} | "
      f"{ratio(float(cpu('mib.echod')), float(cpu('mib.bare')))} |")

def rss(name):
    base, peak = (int(x) for x in open(os.path.join(work, f"idle.{name}.rss")).read().split())
    held = j(f"idle.{name}")["totals"]["connections_max_open"]
    return base, peak, held
eb, ep, eh = rss("echod")
bb, bp, bh = rss("bare")
print(f"| RSS holding {int(idle_conns):,} idle conns | {ep / 1024:.1f} MiB ({eh:,} held) | "
      f"{(ep - eb) * 1024 / max(eh, 1):,.0f} B/conn | {bp / 1024:.1f} MiB ({bh:,} held) | "
      f"{(bp - bb) * 1024 / max(bh, 1):,.0f} B/conn | {ratio(ep, bp)} | |")

e, b = j("half.echod"), j("half.bare")
el, bl = e["latency_us"], b["latency_us"]
print(f"| p50 / p99 at {int(half):,} req/s (half the p1 peak) | {el['p50']:.0f} / {el['p99']:.0f} us | "
      f"{cpu('half.echod')} us | {bl['p50']:.0f} / {bl['p99']:.0f} us | {cpu('half.bare')} us | "
      f"{ratio(el['p99'], bl['p99'])} (p99) | {ratio(float(cpu('half.echod')), float(cpu('half.bare')))} |")
print()
cl = j("p16.bare")
print(f"echobench's own ceiling here (the floor column, one client thread): "
      f"{j('p1.bare')['requests_per_s']:,.0f} req/s at pipeline 1, "
      f"{cl['requests_per_s']:,.0f} req/s at pipeline 16 using "
      f"{100 * cl['client_cpu_s'] / cl['client_wall_s']:.0f}% of its CPU; "
      f"{j('oneshot.bare')['connections_per_s']:,.0f} conn/s oneshot.")
EOF
cat "$OUT"
