#!/usr/bin/env python3
"""profile.py - where echod's CPU per request goes, beside the floor's.

    /usr/bin/python3 tests/bench/profile.py [p1|c1|mib ...]    (root; needs perf)

The evidence behind the bench table: starts build/echod (one worker) and the
floor (build/bare_echo, built by `make bench`) pinned like `make bench` does
(servers on CPU 0, echobench on CPU 1) and, for a fixed number of requests,
counts with perf on each server:

  p1, c1   64 B ECHO at pipeline 1 on 50 connections / on 1: CPU, context
           switches and system calls per request, epoll events returned per
           request and per epoll_wait, and the share of samples in user space
           (with echod's top user-space symbols)
  mib      1 MiB ECHO on 4 connections: server and client CPU per MiB, and the
           client's page allocator: pages freed by the client and allocations
           that had to refill from the zone (zone lock), per MiB

Output goes to stdout; perf data and logs to a scratch directory under build/
(removed at exit). Servers are stopped by PID.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import bench  # noqa: E402  (the servers and the pinning of make bench)

CASES = {
    "p1": (["-c", "50", "-P", "1", "-s", "64"], 300000),
    "c1": (["-c", "1", "-P", "1", "-s", "64"], 30000),
    "mib": (["-c", "4", "-P", "1", "-s", "1M"], 800),
}
SYSCALLS = ["epoll_wait", "recvfrom", "sendto", "writev", "splice", "clock_gettime"]
# User-space sampling rate (Hz): enough samples for a 1% share in a few seconds.
SAMPLE_HZ = 4999


def perf_stat(events, target, argv, out):
    """perf stat EVENTS on TARGET (["-p", PID] or []) while ARGV runs; {event: count}."""
    cmd = ["perf", "stat", "-x,", "-o", out, "-e", ",".join(events)] + target + ["--"] + argv
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    counts = {}
    with open(out) as f:
        for line in f:
            p = line.strip().split(",")
            if len(p) > 2:
                try:
                    counts[p[2]] = float(p[0])
                except ValueError:
                    pass
    return counts


def client(server, proto, args, n):
    argv = [bench.ECHOBENCH, "--json", "--no-progress", "-n", str(n),
            "-p", str(server.proto_ports[proto])]
    if proto != "framed":
        argv += ["--proto", proto]
    return bench.pinned(bench.CLIENT_CPU, argv + args)


def epoll_events(server, proto, args, n, work):
    """(epoll_wait calls, events returned) during N requests."""
    data = os.path.join(work, "epoll.data")
    subprocess.run(["perf", "record", "-q", "-o", data, "-e", "syscalls:sys_exit_epoll_wait",
                    "-p", str(server.pid), "--"] + client(server, proto, args, n),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    out = subprocess.run(["perf", "script", "-i", data], capture_output=True, text=True).stdout
    calls = events = 0
    for line in out.splitlines():
        m = re.search(r"0x([0-9a-f]+)\s*$", line)
        if m:
            calls += 1
            events += int(m.group(1), 16)
    return calls, events


def user_share(server, proto, args, n, work):
    """(share of samples in user space, [(share, symbol), ...] of the top ones)."""
    data = os.path.join(work, "cpu.data")
    subprocess.run(["perf", "record", "-q", "-F", str(SAMPLE_HZ), "-o", data,
                    "-p", str(server.pid), "--"] + client(server, proto, args, n),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    out = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                          "--sort", "dso,sym"], capture_output=True, text=True).stdout
    user, top = 0.0, []
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(\S+)", line)
        if m and m.group(3) == ".":
            share = float(m.group(1))
            user += share
            top.append((share, f"{m.group(2)}:{m.group(4)}"))
    return user, sorted(top, reverse=True)[:8]


def profile_small(name, servers, work):
    args, n = CASES[name]
    print(f"## {name}: {' '.join(args)}, {n:,} requests per server\n")
    print("| per request | " + " | ".join(s.name for s, _ in servers) + " |")
    print("|---|" + "---:|" * len(servers))
    rows = {}
    events = ["task-clock", "context-switches", "raw_syscalls:sys_enter"] + \
             [f"syscalls:sys_enter_{s}" for s in SYSCALLS]
    for s, proto in servers:
        c = perf_stat(events, ["-p", str(s.pid)], client(s, proto, args, n),
                      os.path.join(work, "stat.csv"))
        calls, evs = epoll_events(s, proto, args, n, work)
        user, top = user_share(s, proto, args, n, work)
        r = {"CPU (us)": c.get("task-clock", 0) * 1e3 / n,
             "context switches": c.get("context-switches", 0) / n,
             "system calls": c.get("raw_syscalls:sys_enter", 0) / n}
        for sc in SYSCALLS:
            r[sc] = c.get(f"syscalls:sys_enter_{sc}", 0) / n
        r["epoll events returned"] = evs / n
        r["events per epoll_wait"] = evs / calls if calls else 0
        r["user-space share of samples (%)"] = user
        rows[s.name] = (r, top)
    for key in rows[servers[0][0].name][0]:
        print(f"| {key} | " + " | ".join(f"{rows[s.name][0][key]:.3f}" for s, _ in servers) + " |")
    print()
    for s, _ in servers:
        top = rows[s.name][1]
        print(f"{s.name}, top user-space symbols (% of all samples): " +
              ", ".join(f"{sym} {share:.2f}" for share, sym in top))
    print()


def profile_mib(servers, work):
    args, n = CASES["mib"]
    print(f"## mib: {' '.join(args)}, {n:,} MiB per server\n")
    print("| per MiB | " + " | ".join(s.name for s, _ in servers) + " |")
    print("|---|" + "---:|" * len(servers))
    ev = ["task-clock", "kmem:mm_page_alloc", "kmem:mm_page_free",
          "kmem:mm_page_alloc_zone_locked"]
    rows = {}
    for s, proto in servers:
        cli_csv = os.path.join(work, "cli.csv")
        inner = ["perf", "stat", "-x,", "-o", cli_csv, "-e", ",".join(ev), "--"] + \
            client(s, proto, args, n)
        srv = perf_stat(ev, ["-p", str(s.pid)], inner, os.path.join(work, "srv.csv"))
        cli = perf_stat_file(cli_csv)
        rows[s.name] = {
            "server CPU (us)": srv.get("task-clock", 0) * 1e3 / n,
            "client CPU (us)": cli.get("task-clock", 0) * 1e3 / n,
            "pages allocated by the client": cli.get("kmem:mm_page_alloc", 0) / n,
            "pages freed by the client": cli.get("kmem:mm_page_free", 0) / n,
            "pages freed by the server": srv.get("kmem:mm_page_free", 0) / n,
            "client allocations refilled from the zone": cli.get("kmem:mm_page_alloc_zone_locked", 0) / n,
        }
    for key in rows[servers[0][0].name]:
        print(f"| {key} | " + " | ".join(f"{rows[s.name][key]:.1f}" for s, _ in servers) + " |")
    print()


def perf_stat_file(path):
    counts = {}
    try:
        with open(path) as f:
            for line in f:
                p = line.strip().split(",")
                if len(p) > 2:
                    try:
                        counts[p[2]] = float(p[0])
                    except ValueError:
                        pass
    except OSError:
        pass
    return counts


def main():
    if shutil.which("perf") is None:
        sys.exit("profile.py: perf is not installed (apt-get install linux-perf)")
    if not os.path.exists(bench.BARE):
        sys.exit("profile.py: build/bare_echo is missing (run make bench once)")
    cases = sys.argv[1:] or ["p1", "c1", "mib"]
    for c in cases:
        if c not in CASES:
            sys.exit(f"profile.py: unknown case {c} (p1, c1, mib)")
    if os.cpu_count() >= 2:
        bench.SERVER_CPU, bench.CLIENT_CPU = "0", "1"
    work = tempfile.mkdtemp(prefix="profile.", dir=bench.BUILD)
    servers = []
    try:
        for make in (bench.make_echod, bench.make_floor):
            s = make(work)
            s.start()
            servers.append((s, "framed" if s.name == "echod" else "raw"))
        for c in cases:
            if c == "mib":
                profile_mib(servers, work)
            else:
                profile_small(c, servers, work)
    finally:
        for s, _ in servers:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
