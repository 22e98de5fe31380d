#!/usr/bin/env python3
"""bench.py - the `make bench` matrix: echod beside a floor and its peers.

Started by tests/bench/run.sh (which builds the floor and sets the limits).
Every server runs on loopback on a free port, pinned to one CPU (BENCH_SERVER_CPU),
with echobench, the one client for all of them, pinned to another
(BENCH_CLIENT_CPU):

  echod         build/echod, one worker: framed, and raw:// and http:// listeners
                when this build has them (`echod -t` accepts them)
  floor         tests/bench/bare_echo.c: one epoll loop, plain echo (--proto raw)
  redis         redis-server 7 (Debian): ECHO, --proto redis
  memcached     memcached 1.6 (Debian): meta no-op `mn`, --proto memcache
  nginx         nginx 1.22 (Debian): `return 200` on keep-alive, --proto http

A row whose client or server lacks what it needs prints "skipped: ..."
instead of numbers (and lights up by itself once the feature exists).

Each run: echobench for BENCH_WARMUP + BENCH_SECONDS; inside the measured
window the CPU time of the server (all its threads, /proc/PID/task/*/schedstat)
and of echobench is sampled, giving each one's CPU per request and how busy
its core was. A core at >= 90% busy is the row's limit. Every run is repeated
BENCH_REPEAT times (servers alternating, so a burst of unrelated load spoils
one run, not a row); the table shows the median and the spread (min-max).

Writes build/bench.md (the table) and build/bench.json (every sample); the
servers' configs and logs go to a scratch directory under build/, removed at
exit unless BENCH_KEEP=1. Servers are stopped by PID.
"""
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = "build"
ECHOD = os.environ.get("BENCH_ECHOD", os.path.join(BUILD, "echod"))
ECHOBENCH = os.path.join(BUILD, "echobench")
BARE = os.path.join(BUILD, "bare_echo")

SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
WARMUP = float(os.environ.get("BENCH_WARMUP", "0.5"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
KEEP = os.environ.get("BENCH_KEEP", "") not in ("", "0")
SERVER_CPU = os.environ.get("BENCH_SERVER_CPU", "")
CLIENT_CPU = os.environ.get("BENCH_CLIENT_CPU", "")
ONLY = os.environ.get("BENCH_ONLY", "")     # comma-separated row keys, for experiments
# Niceness of servers and client (root may go below 0): on a machine busy with
# other work, a negative value keeps that work from stretching every run.
NICE = os.environ.get("BENCH_NICE", "0")
# BENCH_SCHED=fifo runs servers and client under SCHED_FIFO (chrt -f 1): on a
# machine busy with other work, a ping-pong otherwise waits for the CPU after
# every wake-up and the rates measure the queue, not the servers. It leaves
# the other work only what RT throttling keeps free (5%) while a run lasts.
SCHED = os.environ.get("BENCH_SCHED", "")
# Connections held for the idle-memory row.
IDLE_CONNS = 10000
# A core at least this busy during a run is what limited it.
LIMIT_BUSY = 0.90
# Sampling margins inside echobench's measured window (s): after it starts
# (connections settle) and before it ends (the process must still exist).
SAMPLE_LEAD = 0.15
SAMPLE_TAIL = 0.10
# How long a server may take to start listening, or to exit on SIGTERM (s).
START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cpu, argv):
    if cpu:
        argv = ["taskset", "-c", cpu] + argv
    if SCHED == "fifo":
        argv = ["chrt", "-f", "1"] + argv
    return (["nice", "-n", NICE] + argv) if NICE not in ("", "0") else argv


def task_cpu_ns(pid):
    """(CPU time in ns summed over the threads of PID from schedstat, their
    ids), or None once it is gone. A thread that exits takes its time with
    it, so two samples compare only over the same set of threads."""
    total = 0
    try:
        tasks = frozenset(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return None
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None     # a thread that just exited
    return total, tasks


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Server:
    """One server process: started pinned, waited for, stopped by PID."""

    def __init__(self, name, argv, ports, work, version):
        self.name, self.argv, self.ports, self.work = name, argv, ports, work
        self.version = version
        self.proc = None
        self.log = os.path.join(work, name + ".log")

    def start(self):
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(pinned(SERVER_CPU, self.argv), stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, cwd=os.getcwd())
        deadline = time.monotonic() + START_TIMEOUT
        pending = list(self.ports)
        while pending:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up: {self.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", pending[0]), timeout=1):
                    pending.pop(0)
                    continue
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not listen on {pending[0]}: {self.tail()}")
            time.sleep(0.05)

    def tail(self):
        try:
            with open(self.log) as f:
                return " | ".join(f.read().strip().splitlines()[-5:])
        except OSError:
            return ""

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def tool_version(argv, pick=lambda s: s.split("\n")[0]):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = (r.stdout + r.stderr).strip()
    return pick(out) if out else None


# ---- the servers ----------------------------------------------------------------

def echod_accepts(work, listen):
    """Whether this echod's config check accepts a listener such as http://..."""
    path = os.path.join(work, "probe.conf")
    with open(path, "w") as f:
        f.write(f'listen = [ "{listen}" ];\n')
    r = subprocess.run([ECHOD, "-t", "-c", path], capture_output=True, text=True)
    return r.returncode == 0


def make_echod(work):
    ports = {"framed": free_port()}
    listen = [f"127.0.0.1:{ports['framed']}"]
    for scheme in ("raw", "http"):
        p = free_port()
        if echod_accepts(work, f"{scheme}://127.0.0.1:{p}"):
            ports[scheme] = p
            listen.append(f"{scheme}://127.0.0.1:{p}")
    conf = os.path.join(work, "echod.conf")
    with open(conf, "w") as f:
        f.write("listen = [ %s ];\n" % ", ".join(f'"{a}"' for a in listen))
        f.write("workers = 1;\nbacklog = 4096;\n"
                f"max_connections = {IDLE_CONNS + 1000};\n"
                "idle_timeout = 0;\nlog_level = \"warn\";\n")
    s = Server("echod", [ECHOD, "-c", conf], list(ports.values()), work,
               tool_version([ECHOD, "-V"]))
    s.proto_ports = ports
    return s


def make_floor(work):
    port = free_port()
    s = Server("floor", [BARE, str(port)], [port], work, "tests/bench/bare_echo.c")
    s.proto_ports = {"raw": port}
    return s


def make_redis(work):
    exe = shutil.which("redis-server")
    if exe is None:
        return "redis-server is not installed (make deps)"
    port = free_port()
    conf = os.path.join(work, "redis.conf")
    with open(conf, "w") as f:
        # No persistence, one I/O thread, room for the idle row.
        f.write(f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\n"
                f"save \"\"\nappendonly no\ndir {os.path.abspath(work)}\n"
                f"logfile \"\"\nloglevel warning\nmaxclients {IDLE_CONNS + 1000}\n"
                "io-threads 1\ntcp-backlog 4096\n")
    v = tool_version([exe, "-v"], lambda s: "redis " + s.split("v=")[1].split()[0]
                     if "v=" in s else s)
    s = Server("redis", [exe, conf], [port], work, v)
    s.proto_ports = {"redis": port}
    return s


def make_memcached(work):
    exe = shutil.which("memcached")
    if exe is None:
        return "memcached is not installed (make deps)"
    port = free_port()
    # One worker thread, TCP only; -u: memcached refuses to run as root otherwise.
    argv = [exe, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-t", "1",
            "-c", str(IDLE_CONNS + 1000), "-b", "4096", "-m", "64"]
    if os.getuid() == 0:
        argv += ["-u", "root"]
    s = Server("memcached", argv, [port], work, tool_version([exe, "-V"]))
    s.proto_ports = {"memcache": port}
    return s


def make_nginx(work):
    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if exe is None:
        return "nginx is not installed (make deps)"
    port = free_port()
    prefix = os.path.abspath(os.path.join(work, "nginx"))
    os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
    conf = os.path.join(prefix, "nginx.conf")
    tmp = os.path.join(prefix, "tmp")
    # nginx-light's echo module lets nginx echo a POST body as echod does;
    # without it the POST row has no nginx cell.
    echo_so = "/usr/lib/nginx/modules/ngx_http_echo_module.so"
    has_echo = os.path.exists(echo_so)
    load = f"load_module {echo_so};\n" if has_echo else ""
    echo = ("echo_read_request_body; echo_request_body;" if has_echo else "return 404;")
    with open(conf, "w") as f:
        # One process (no master), no logs per request, keep-alive without
        # limits, request bodies kept in memory, and every temp path inside
        # the scratch directory.
        f.write(load + f"""daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile {4 * IDLE_CONNS};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections {IDLE_CONNS + 1000}; }}
http {{
    access_log off;
    keepalive_timeout 300s;
    keepalive_requests 1000000000;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    client_max_body_size 16m;
    client_body_buffer_size 1m;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ return 200 "ok\\n"; }}
        location /echo {{ {echo} }}
    }}
}}
""")
    s = Server("nginx", [exe, "-p", prefix, "-c", conf], [port], work,
               tool_version([exe, "-v"], lambda s: s.split("\n")[0].replace("nginx version: ", "")))
    s.proto_ports = {"http": port}
    s.missing = {} if has_echo else {"/echo": "nginx has no echo module (Debian's nginx-light)"}
    return s


# ---- one run ------------------------------------------------------------------------

def run_echobench(server, proto, args, work, tag):
    """One echobench run against SERVER over PROTO; returns a sample dict."""
    port = server.proto_ports[proto]
    argv = [ECHOBENCH, "--json", "--no-progress", "-p", str(port)]
    if proto != "framed":
        argv += ["--proto", proto]
    argv += args + ["-d", str(SECONDS), "-w", str(WARMUP)]
    out_path = os.path.join(work, tag + ".json")
    err_path = os.path.join(work, tag + ".err")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        t_launch = time.monotonic()
        proc = subprocess.Popen(pinned(CLIENT_CPU, argv), stdout=out, stderr=err)
        s1 = sample_at(t_launch + WARMUP + SAMPLE_LEAD, server, proc)
        s2 = sample_at(t_launch + WARMUP + SECONDS - SAMPLE_TAIL, server, proc)
        rc = proc.wait()
    try:
        with open(out_path) as f:
            r = json.load(f)
    except (OSError, ValueError):
        with open(err_path) as f:
            raise RuntimeError(f"echobench failed ({tag}, exit {rc}): {f.read().strip()}")
    if r["errors"]["total"]:
        print(f"bench: warning: {tag}: {r['errors']['total']} errors: {r['errors']}",
              file=sys.stderr)
    rate = r["connections_per_s"] if r.get("oneshot") else r["requests_per_s"]
    sample = {"tag": tag, "rate": rate, "mb_per_s": r["mb_per_s"], "ok": r["totals"]["ok"],
              "errors": r["errors"]["total"], "latency_us": r["latency_us"], "exit": rc}
    if s1 and s2 and s2[0] > s1[0] and s1[1][1] == s2[1][1] and s1[2][1] == s2[2][1]:
        dt = s2[0] - s1[0]
        srv = (s2[1][0] - s1[1][0]) / 1e9
        cli = (s2[2][0] - s1[2][0]) / 1e9
        sample["server_busy"] = srv / dt
        sample["client_busy"] = cli / dt
        # CPU per request: the CPU rate over the request rate, both from the
        # measured window.
        sample["server_us"] = srv / dt / rate * 1e6 if rate else None
        sample["client_us"] = cli / dt / rate * 1e6 if rate else None
    return sample


def sample_at(when, server, proc):
    """(time, server CPU ns, client CPU ns) at WHEN, or None if a process is gone."""
    delay = when - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    t = time.monotonic()
    a, b = task_cpu_ns(server.pid), task_cpu_ns(proc.pid)
    if a is None or b is None or proc.poll() is not None:
        return None
    return (t, a, b)


def proto_missing(proto, args):
    """Why echobench cannot run PROTO with ARGS (a usage error), or None."""
    if proto in ("framed", "raw"):
        return None
    port = free_port()      # nothing listens there: only option parsing matters
    argv = [ECHOBENCH, "--json", "--no-progress", "-p", str(port), "--proto", proto] + args + \
           ["-d", "0.2", "-T", "1"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if r.returncode != 2:
        return None
    msg = r.stderr.strip().splitlines()
    if "proto" in r.stderr:
        return f"echobench has no --proto {proto}"
    return "echobench: " + (msg[0] if msg else "usage error")


# ---- the matrix ---------------------------------------------------------------------

def rows():
    """(key, label, unit, args, [(server, proto), ...], reference server) per row."""
    p64 = ["-s", "64"]
    small = [("echod", "framed"), ("floor", "raw"), ("echod", "raw"),
             ("redis", "redis"), ("memcached", "memcache")]
    return [
        ("p1", "64 B ECHO, 50 conns, pipeline 1", "req/s", ["-c", "50", "-P", "1"] + p64,
         small, "floor"),
        ("c1", "64 B ECHO, 1 conn, pipeline 1", "req/s", ["-c", "1", "-P", "1"] + p64,
         [("echod", "framed"), ("floor", "raw")], "floor"),
        ("p16", "64 B ECHO, 50 conns, pipeline 16", "req/s", ["-c", "50", "-P", "16"] + p64,
         small, "floor"),
        ("oneshot", "--oneshot, 32 at a time", "conn/s", ["--oneshot", "-c", "32"] + p64,
         [("echod", "framed"), ("floor", "raw")], "floor"),
        ("mib", "1 MiB ECHO, 4 conns", "MiB/s", ["-c", "4", "-P", "1", "-s", "1M"],
         [("echod", "framed"), ("floor", "raw"), ("redis", "redis")], "floor"),
        ("http1", "HTTP GET keep-alive, 50 conns, pipeline 1", "req/s",
         ["-c", "50", "-P", "1", "-s", "0"], [("nginx", "http"), ("echod", "http")], "nginx"),
        ("http16", "HTTP GET keep-alive, 50 conns, pipeline 16", "req/s",
         ["-c", "50", "-P", "16", "-s", "0"], [("nginx", "http"), ("echod", "http")], "nginx"),
        ("post", "HTTP POST 64 KiB echoed, 50 conns", "MiB/s",
         ["-c", "50", "-P", "1", "-s", "64K", "--path", "/echo"],
         [("nginx", "http"), ("echod", "http")], "nginx"),
    ]


SERVER_LABEL = {("echod", "framed"): "echod", ("echod", "raw"): "echod raw://",
                ("echod", "http"): "echod http://", ("floor", "raw"): "floor",
                ("redis", "redis"): "redis", ("memcached", "memcache"): "memcached",
                ("nginx", "http"): "nginx"}


def why_skipped(servers, name, proto, args):
    s = servers.get(name)
    if isinstance(s, str):
        return s
    if proto not in s.proto_ports:
        return f"echod has no {proto} listener"
    for needed, why in getattr(s, "missing", {}).items():
        if needed in args:
            return why
    return proto_missing(proto, args)


def main():
    if SCHED == "fifo":
        # The sampling must not wait behind other work either (above the
        # runs' priority 1; it sleeps between samples).
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(2))
    os.makedirs(BUILD, exist_ok=True)
    work = tempfile.mkdtemp(prefix="bench-run.", dir=BUILD)
    servers = {}
    try:
        results = bench(work, servers)
    finally:
        for s in servers.values():
            if isinstance(s, Server):
                s.stop()
        if not KEEP:
            shutil.rmtree(work, ignore_errors=True)
    with open(os.path.join(BUILD, "bench.json"), "w") as f:
        json.dump(results, f, indent=1)
    table = render(results)
    with open(os.path.join(BUILD, "bench.md"), "w") as f:
        f.write(table)
    print(table, end="")


def bench(work, servers):
    for make in (make_echod, make_floor, make_redis, make_memcached, make_nginx):
        s = make(work)
        if isinstance(s, Server):
            servers[s.name] = s
            s.start()
        else:
            servers[make.__name__[5:]] = s
    results = {"date": datetime.date.today().isoformat(), "seconds": SECONDS, "warmup": WARMUP,
               "nice": NICE, "sched": SCHED,
               "repeat": REPEAT, "server_cpu": SERVER_CPU, "client_cpu": CLIENT_CPU,
               "versions": {n: (s.version if isinstance(s, Server) else None)
                            for n, s in servers.items()},
               "rows": []}
    wanted = set(ONLY.split(",")) if ONLY else None
    for key, label, unit, args, targets, ref in rows():
        if wanted and key not in wanted:
            continue
        row = {"key": key, "label": label, "unit": unit, "args": args, "ref": ref,
               "cells": []}
        live = []
        for name, proto in targets:
            cell = {"server": SERVER_LABEL[(name, proto)], "name": name, "proto": proto}
            why = why_skipped(servers, name, proto, args)
            if why:
                cell["skipped"] = why
            else:
                cell["samples"] = []
                live.append((cell, servers[name], proto))
            row["cells"].append(cell)
        print(f"running {key} ({len(live)} servers x {REPEAT}) ...", file=sys.stderr)
        for i in range(REPEAT):
            for cell, server, proto in live:
                take_sample(cell, server, proto, args, work, f"{key}.{cell['name']}.{proto}.{i}")
        results["rows"].append(row)
        if key == "mib":
            if not wanted or "idle" in wanted:
                results["rows"].append(idle_row(work, servers))
            p1 = next((r for r in results["rows"] if r["key"] == "p1"), None)
            if p1 is not None:
                results["rows"].append(latency_row(work, servers, p1))
    return results


def take_sample(cell, server, proto, args, work, tag):
    """One more run for CELL; a run that fails marks the cell failed, and the
    rest of the matrix goes on."""
    if "failed" in cell:
        return
    try:
        cell["samples"].append(run_echobench(server, proto, args, work, tag))
    except RuntimeError as e:
        cell["failed"] = str(e).splitlines()[0][:160]
        print(f"bench: {tag}: {cell['failed']}", file=sys.stderr)


def latency_row(work, servers, p1):
    """p50/p99 at half of echod's pipeline-1 peak, the same rate for echod and floor."""
    echod = next(c for c in p1["cells"] if c["server"] == "echod")
    if "failed" in echod:
        return {"key": "half", "label": "p50 / p99 at half echod's pipeline-1 peak",
                "unit": "latency", "ref": "floor", "cells": [
                    {"server": "echod", "name": "echod", "skipped": "the pipeline-1 run failed"}]}
    rate = int(statistics.median(s["rate"] for s in echod["samples"]) / 2)
    args = ["-c", "50", "-P", "1", "-s", "64", "-R", str(rate)]
    row = {"key": "half", "label": f"p50 / p99 at {rate:,} req/s (half echod's pipeline-1 peak)",
           "unit": "latency", "args": args, "ref": "floor", "cells": []}
    print(f"running half ({rate} req/s) ...", file=sys.stderr)
    cells = [({"server": "echod", "name": "echod", "proto": "framed", "samples": []},
              servers["echod"], "framed"),
             ({"server": "floor", "name": "floor", "proto": "raw", "samples": []},
              servers["floor"], "raw")]
    for i in range(REPEAT):
        for cell, server, proto in cells:
            take_sample(cell, server, proto, args, work, f"half.{cell['name']}.{i}")
    row["cells"] = [c for c, _, _ in cells]
    return row


def idle_row(work, servers):
    """Peak RSS of each server while echobench holds IDLE_CONNS idle connections."""
    # The floor's RSS hardly moves (its table of connections is allocated at
    # start), so the peers are compared with echod here.
    row = {"key": "idle", "label": f"RSS holding {IDLE_CONNS:,} idle conns", "unit": "rss",
           "ref": "echod", "cells": []}
    print("running idle ...", file=sys.stderr)
    for name, proto in (("echod", "framed"), ("floor", "raw"), ("redis", "redis"),
                        ("memcached", "memcache"), ("nginx", "http")):
        cell = {"server": SERVER_LABEL[(name, proto)], "name": name, "proto": proto}
        s = servers.get(name)
        if isinstance(s, str):
            cell["skipped"] = s
            row["cells"].append(cell)
            continue
        base = rss_kib(s.pid)
        argv = [ECHOBENCH, "--json", "--no-progress", "--idle", "-c", str(IDLE_CONNS),
                "-d", str(SECONDS), "-p", str(s.proto_ports[proto])]
        if proto == "raw":
            argv += ["--proto", "raw"]
        out = os.path.join(work, f"idle.{name}.json")
        with open(out, "w") as f:
            proc = subprocess.Popen(pinned(CLIENT_CPU, argv), stdout=f,
                                    stderr=subprocess.DEVNULL)
            peak = base
            while proc.poll() is None:
                peak = max(peak, rss_kib(s.pid))
                time.sleep(0.1)
        try:
            with open(out) as f:
                held = json.load(f)["totals"]["connections_max_open"]
        except (OSError, ValueError, KeyError):
            held = 0
        cell.update(base_kib=base, peak_kib=peak, held=held)
        row["cells"].append(cell)
    return row


# ---- the table ----------------------------------------------------------------------

def model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def mem_gib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return 0


def med(values):
    values = [v for v in values if v is not None]
    return (statistics.median(values), min(values), max(values)) if values else None


def fmt_rate(m, unit):
    if m is None:
        return "n/a"
    if unit == "MiB/s":
        return f"{m[0]:,.0f} {unit} ({m[1]:,.0f}-{m[2]:,.0f})"
    return f"{m[0]:,.0f} {unit} ({m[1]:,.0f}-{m[2]:,.0f})"


def fmt_us(m, per):
    if m is None:
        return "n/a"
    digits = 0 if m[0] >= 100 else 2
    return f"{m[0]:.{digits}f} ({m[1]:.{digits}f}-{m[2]:.{digits}f}) us{per}"


def limit(samples):
    """Which core ran out first, by the median busy fraction."""
    sb = med([s.get("server_busy") for s in samples])
    cb = med([s.get("client_busy") for s in samples])
    if sb is None or cb is None:
        return "n/a", ""
    busy = f"{100 * sb[0]:.0f}% / {100 * cb[0]:.0f}%"
    s_out, c_out = sb[0] >= LIMIT_BUSY, cb[0] >= LIMIT_BUSY
    who = {(True, True): "both", (True, False): "server", (False, True): "client",
           (False, False): "neither"}[(s_out, c_out)]
    return who, busy


def row_values(cell, unit):
    """(rate median triple, server CPU/unit triple, client CPU/unit triple)."""
    ss = cell["samples"]
    if unit == "MiB/s":
        # One request is one 64 KiB or 1 MiB payload: show MiB/s and CPU per MiB.
        size = cell["mib_per_request"]
        rate = med([s["rate"] * size for s in ss])
        srv = med([s["server_us"] / size if s.get("server_us") else None for s in ss])
        cli = med([s["client_us"] / size if s.get("client_us") else None for s in ss])
    else:
        rate = med([s["rate"] for s in ss])
        srv = med([s.get("server_us") for s in ss])
        cli = med([s.get("client_us") for s in ss])
    return rate, srv, cli


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "n/a"


def render(results):
    out = []
    v = results["versions"]
    out.append(f"### echod benchmark ({results['date']})\n")
    out.append(f"- machine: {model()}, {os.cpu_count()} CPUs, {mem_gib():.1f} GiB RAM, "
               f"Linux {platform.release()}")
    peers = ", ".join(x for x in (v.get("redis"), v.get("memcached"), v.get("nginx")) if x)
    out.append(f"- {v.get('echod') or 'echod'}, 1 worker; floor: tests/bench/bare_echo.c (one epoll "
               f"loop, plain echo); peers: {peers or 'none installed'}; one client for all: echobench")
    pin = (f"servers on CPU {results['server_cpu']}, echobench on CPU {results['client_cpu']}"
           if results["server_cpu"] else "not pinned (fewer than 2 CPUs)")
    if results.get("nice", "0") not in ("", "0"):
        pin += f", all at nice {results['nice']}"
    if results.get("sched") == "fifo":
        pin += ", all SCHED_FIFO (chrt -f 1)"
    out.append(f"- loopback, {pin}; {results['seconds']:g} s measured after {results['warmup']:g} s "
               f"warm-up per run, {results['repeat']} runs per cell: median (min-max)")
    out.append("- CPU = CPU time per request (per connection for oneshot, per MiB for the MiB/s "
               "rows) of the server (all threads, /proc/PID/task/*/schedstat) and of echobench, "
               "over the measured window; busy = share of its core each used; limit = the core "
               f"at >= {100 * LIMIT_BUSY:.0f}% busy (both: server and client); ratios against the floor "
               "(HTTP rows: nginx; idle row: echod)")
    out.append("")
    out.append("| benchmark | server | rate | p50 latency | server CPU | client CPU "
               "| busy server / client | limit | rate ratio | CPU ratio |")
    out.append("|---|---|---:|---:|---:|---:|---:|---|---:|---:|")
    for row in results["rows"]:
        if row["unit"] == "rss":
            render_idle(out, row)
            continue
        if row["unit"] == "latency":
            render_latency(out, row)
            continue
        ref = None
        for cell in row["cells"]:
            if "failed" in cell and "skipped" not in cell:
                cell["skipped"] = "failed: " + cell["failed"]
            if cell["name"] == row["ref"] and "samples" in cell and "skipped" not in cell:
                cell["mib_per_request"] = mib_per_request(row["args"])
                rate, srv, _ = row_values(cell, row["unit"])
                ref = (rate, srv)
        for cell in row["cells"]:
            label = row["label"]
            if "skipped" in cell:
                out.append(f"| {label} | {cell['server']} | skipped: {cell['skipped']} "
                           "| | | | | | | |")
                continue
            cell["mib_per_request"] = mib_per_request(row["args"])
            rate, srv, cli = row_values(cell, row["unit"])
            per = {"conn/s": "/conn", "MiB/s": "/MiB"}.get(row["unit"], "/req")
            who, busy = limit(cell["samples"])
            rr = cr = "n/a"
            if ref is not None:
                rr = ratio(rate[0] if rate else None, ref[0][0] if ref[0] else None)
                cr = ratio(srv[0] if srv else None, ref[1][0] if ref[1] else None)
            p50 = med([s["latency_us"]["p50"] for s in cell["samples"]])
            lat = f"{p50[0]:,.0f} us" if p50 else "n/a"
            errors = sum(s["errors"] for s in cell["samples"])
            shown = fmt_rate(rate, row["unit"]) + (f", {errors:,} errors" if errors else "")
            out.append(f"| {label} | {cell['server']} | {shown} | {lat} | "
                       f"{fmt_us(srv, per)} | {fmt_us(cli, per)} | {busy} | {who} | {rr} | {cr} |")
    out.append("")
    return "\n".join(out) + "\n"


def mib_per_request(args):
    size = args[args.index("-s") + 1] if "-s" in args else "64"
    mult = {"K": 1024, "M": 1024 * 1024}.get(size[-1], 1)
    n = int(size.rstrip("KM")) * mult
    return n / (1024 * 1024)


def render_latency(out, row):
    for cell in row["cells"]:
        if "failed" in cell and "skipped" not in cell:
            cell["skipped"] = "failed: " + cell["failed"]
        if "skipped" in cell:
            out.append(f"| {row['label']} | {cell['server']} | skipped: {cell['skipped']} "
                       "| | | | | | | |")
    row = dict(row, cells=[c for c in row["cells"] if "skipped" not in c])
    def values(cell):
        ss = cell["samples"]
        return (med([s["latency_us"]["p50"] for s in ss]), med([s["latency_us"]["p99"] for s in ss]),
                med([s.get("server_us") for s in ss]), med([s.get("client_us") for s in ss]))
    ref = next((values(c) for c in row["cells"] if c["name"] == row["ref"]), None)
    for cell in row["cells"]:
        p50, p99, srv, cli = values(cell)
        who, busy = limit(cell["samples"])
        pr = ratio(p50[0], ref[0][0]) if ref else "n/a"
        cr = ratio(srv[0] if srv else None, ref[2][0] if ref and ref[2] else None)
        out.append(f"| {row['label']} | {cell['server']} | p99 {p99[0]:,.0f} ({p99[1]:,.0f}-{p99[2]:,.0f})"
                   f" us | {p50[0]:,.0f} ({p50[1]:,.0f}-{p50[2]:,.0f}) us | {fmt_us(srv, '/req')} | "
                   f"{fmt_us(cli, '/req')} | {busy} | {who} | {pr} (p50) | {cr} |")


def render_idle(out, row):
    def per_conn(cell):
        return (cell["peak_kib"] - cell["base_kib"]) * 1024 / max(cell["held"], 1)
    ref = next((per_conn(c) for c in row["cells"] if c["name"] == row["ref"] and "held" in c), None)
    for cell in row["cells"]:
        if "skipped" in cell:
            out.append(f"| {row['label']} | {cell['server']} | skipped: {cell['skipped']} "
                       "| | | | | | | |")
            continue
        per = per_conn(cell)
        out.append(f"| {row['label']} | {cell['server']} | {cell['peak_kib'] / 1024:.1f} MiB RSS "
                   f"({cell['held']:,} held) | | {per:,.0f} B/conn | | | | | "
                   f"{ratio(per, ref)} (B/conn) |")


if __name__ == "__main__":
    main()
