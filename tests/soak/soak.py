#!/usr/bin/env python3
"""soak.py - hours of churn in minutes: every kind of load against one echod
at once, with SIGHUP reloads every few seconds (make soak; SOAK_SECONDS).

Loads are rows of LOADS (name, protocol, well-behaved or abusive, how many
at once, the function that runs one). Each runner loops until the stop flag
and counts, in its Tally, exactly what echod will count for it: connections
it opened (accepted by echod), requests echod completed (in STATS'
requests_by_protocol under the load's protocol), error replies or timeouts
it provoked. echod listens with every protocol it speaks (framed, raw://,
http://); a new kind of load is one more row. A raw "request" is whatever
one recv() got, which no client can know: raw loads are checked byte for
byte, and their request count only for being at least one per connection.

At the end it asserts:
  - well-behaved loads saw zero errors (every reply byte checked);
  - STATS connections_total, errors_total and the framed and http request
    counts equal the sums of the tallies, connections_rejected is 0,
    connections_current is back to 1 (the STATS connection asking);
  - echod's descriptors and RSS are back to their baseline, taken after a
    warm-up round of every load, within a slack: each worker keeps up to
    WORKER_PIPES_KEEP splice pipes (2 fds each) and WORKER_POOL_KEEP spare
    64 KiB buffers per pool, so how many are cached at either moment varies;
  - no sanitizer report in its log, and exit 0 on SIGTERM.
Every figure is printed. Exit status 0 only if all of that holds.
"""

import argparse
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ECHOD = REPO / "build" / "echod"
ECHOBENCH = REPO / "build" / "echobench"
SAN = os.environ.get("SAN", "")

HDR = struct.Struct(">BI")
OPEN_LENGTH = 0xFFFFFFFF
WORKERS = 2
# server/worker.c: splice pipes kept per worker, spare buffers kept per pool.
PIPES_KEEP, POOL_KEEP, BUF_KIB = 8, 64, 64
FD_SLACK = WORKERS * PIPES_KEEP * 2
RSS_SLACK_KIB = WORKERS * 2 * POOL_KEEP * BUF_KIB + 4096     # the pools + 4 MiB of heap noise
if SAN:
    RSS_SLACK_KIB += 64 * 1024      # sanitizer shadow memory and (bounded) quarantine
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer", "SUMMARY: ")
READ_TIMEOUT = 2            # slowloris is cut by it
MAX_FRAME = 8 << 20         # a larger frame is the "too large" abuse


def frame(t, payload=b"", length=None):
    return HDR.pack(ord(t), len(payload) if length is None else length) + payload


class Tally:
    """What one load did, in echod's units; summed at the end."""

    def __init__(self):
        self.proto = "framed"
        self.connections = 0    # connections echod accepted
        self.requests = 0       # frames echod completed (its requests_total)
        self.server_errors = 0  # error replies / timeouts echod counted (errors_total)
        self.client_errors = 0  # anything a well-behaved client did not expect
        self.raw_connections = 0    # raw connections that sent at least a byte
        self.detail = ""

    def add(self, other):
        for k in ("connections", "requests", "server_errors", "client_errors",
                  "raw_connections"):
            setattr(self, k, getattr(self, k) + getattr(other, k))


class Ctx:
    def __init__(self, ports, stop):
        self.ports = ports      # protocol -> port
        self.port = ports["framed"]
        self.stop = stop

    def connect(self, timeout=20, proto="framed"):
        s = socket.create_connection(("127.0.0.1", self.ports[proto]), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise ConnectionError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def read_frame(s):
    t, n = HDR.unpack(recv_exact(s, HDR.size))
    return chr(t), recv_exact(s, n) if n else b""


def read_to_eof(s):
    buf = bytearray()
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            return bytes(buf)
        buf += chunk


def send_while_reading(s, data, expect_len):
    """Send data from a thread while reading expect_len bytes back."""
    err = []

    def sender():
        try:
            s.sendall(data)
        except OSError as e:
            err.append(e)

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    got = recv_exact(s, expect_len)
    th.join(30)
    if err:
        raise err[0]
    return got


# ---- well-behaved loads -------------------------------------------------

def echobench_run(ctx, t, extra):
    out = subprocess.run([str(ECHOBENCH), "-p", str(ctx.port), "--json", "--no-progress",
                          "-T", "30"] + extra, capture_output=True, text=True, timeout=600)
    if out.returncode != 0 and not out.stdout:
        t.client_errors += 1
        t.detail = out.stderr[-300:]
        return
    r = json.loads(out.stdout)
    t.connections += r["totals"]["connections_opened"]
    t.requests += r["totals"]["ok"]
    if r["errors"]["total"] or r["totals"]["ok"] != r["totals"]["issued"]:
        t.client_errors += r["errors"]["total"] or 1
        t.detail = json.dumps(r["errors"])


def load_pipelined(ctx, t):
    """echobench closed loop, 4 connections, 16 in flight, a fixed count
    per run so that nothing is left in flight when it stops."""
    while not ctx.stop.is_set():
        echobench_run(ctx, t, ["-c", "4", "-P", "16", "-s", "16-4096", "--mix", "9:1",
                               "-n", "20000"])


def load_oneshot(ctx, t):
    """echobench --oneshot: a connection per request."""
    while not ctx.stop.is_set():
        echobench_run(ctx, t, ["--oneshot", "-c", "4", "-n", "500"])


def load_large(ctx, t):
    """ECHO frames of 1-6 MiB, a few per connection."""
    rng = random.Random(11)
    while not ctx.stop.is_set():
        with ctx.connect() as s:
            t.connections += 1
            for _ in range(3):
                p = rng.randbytes(rng.randint(1 << 20, 6 << 20))
                f = frame("E", p)
                if send_while_reading(s, f, len(f)) != f:
                    t.client_errors += 1
                t.requests += 1


def load_streaming(ctx, t):
    """Open-length ECHO: the payload streams until our EOF."""
    rng = random.Random(12)
    while not ctx.stop.is_set():
        with ctx.connect() as s:
            t.connections += 1
            p = rng.randbytes(rng.randint(1, 3 << 20))
            err = []

            def sender():
                try:
                    s.sendall(frame("E", length=OPEN_LENGTH) + p)
                    s.shutdown(socket.SHUT_WR)
                except OSError as e:
                    err.append(e)

            th = threading.Thread(target=sender, daemon=True)
            th.start()
            got = read_to_eof(s)
            th.join(30)
            if err or got != HDR.pack(ord("E"), OPEN_LENGTH) + p:
                t.client_errors += 1
            t.requests += 1


def load_idle(ctx, t):
    """Connections held open, a PING on each every few seconds."""
    conns = []
    try:
        for _ in range(100):
            conns.append(ctx.connect())
            t.connections += 1
        while not ctx.stop.wait(3):
            for s in conns:
                s.sendall(frame("P"))
                if read_frame(s) != ("P", b""):
                    t.client_errors += 1
                t.requests += 1
    finally:
        for s in conns:
            s.close()


def load_stats(ctx, t):
    """STATS asked on its own connection now and then."""
    while not ctx.stop.wait(0.5):
        with ctx.connect() as s:
            t.connections += 1
            s.sendall(frame("S"))
            typ, body = read_frame(s)
            if typ != "S" or "connections_total" not in json.loads(body):
                t.client_errors += 1
            t.requests += 1


def load_raw(ctx, t):
    """raw:// (RFC 862): bytes back as they came, to our EOF."""
    rng = random.Random(15)
    while not ctx.stop.is_set():
        with ctx.connect(proto="raw") as s:
            t.connections += 1
            p = rng.randbytes(rng.randint(1, 512 << 10))
            err = []

            def sender():
                try:
                    s.sendall(p)
                    s.shutdown(socket.SHUT_WR)
                except OSError as e:
                    err.append(e)

            th = threading.Thread(target=sender, daemon=True)
            th.start()
            got = read_to_eof(s)
            th.join(30)
            if err or got != p:
                t.client_errors += 1
            t.raw_connections += 1


def read_http_response(s, buf):
    """(status, headers dict, body, rest of buf) of one response."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(1 << 16)
        if not chunk:
            raise ConnectionError("EOF inside a response head")
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    while len(buf) < n:
        chunk = s.recv(1 << 16)
        if not chunk:
            raise ConnectionError("EOF inside a response body")
        buf += chunk
    return status, headers, buf[:n], buf[n:]


def load_http(ctx, t):
    """http://: persistent connections, POSTs echoed, a few pipelined."""
    rng = random.Random(16)
    while not ctx.stop.is_set():
        with ctx.connect(proto="http") as s:
            t.connections += 1
            buf = b""
            for _ in range(rng.randint(1, 30)):
                bodies = [rng.randbytes(rng.randint(1, 64 << 10)) for _ in range(rng.randint(1, 4))]
                s.sendall(b"".join(b"POST /soak HTTP/1.1\r\nHost: soak\r\nContent-Length: "
                                   + str(len(b)).encode() + b"\r\n\r\n" + b for b in bodies))
                for b in bodies:
                    status, _, body, buf = read_http_response(s, buf)
                    if status != 200 or body != b:
                        t.client_errors += 1
                    t.requests += 1


# ---- abusive loads: errors are what they are for ----------------------

def load_garbage(ctx, t):
    """Unknown frame types (a 400 each, connection kept), then a frame over
    max_frame_size (a 413 and close)."""
    rng = random.Random(13)
    while not ctx.stop.is_set():
        with ctx.connect() as s:
            t.connections += 1
            n = rng.randint(1, 20)
            s.sendall(b"".join(frame(chr(rng.choice(b"XYZqrw")), rng.randbytes(rng.randint(0, 200)))
                               for _ in range(n)))
            for _ in range(n):
                typ, body = read_frame(s)
                assert typ == "!" and body.startswith(b"400 "), (typ, body[:60])
            t.requests += n
            t.server_errors += n
            s.sendall(HDR.pack(ord("E"), MAX_FRAME + 1))
            typ, body = read_frame(s)
            assert typ == "!" and body.startswith(b"413 "), (typ, body[:60])
            t.server_errors += 1
            read_to_eof(s)
        time.sleep(0.01)


def load_http_garbage(ctx, t):
    """http://: a good GET, then a malformed head: a 400 and close."""
    rng = random.Random(17)
    bad = [b"GET / HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n",
           b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
           b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
           b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n"]
    while not ctx.stop.is_set():
        with ctx.connect(proto="http") as s:
            t.connections += 1
            s.sendall(b"GET /x HTTP/1.1\r\nHost: soak\r\n\r\n" + rng.choice(bad))
            status, _, body, rest = read_http_response(s, b"")
            assert status == 200 and body.startswith(b"GET /x HTTP/1.1\r\n"), (status, body[:60])
            t.requests += 1
            status, _, body, rest = read_http_response(s, rest)
            assert status == 400, (status, body[:60])
            t.server_errors += 1
        time.sleep(0.01)


def load_resets(ctx, t):
    """Half a frame, then an RST: a PING's payload, or an ECHO's (whose reply
    has started streaming back)."""
    rng = random.Random(14)
    while not ctx.stop.is_set():
        s = ctx.connect()
        t.connections += 1
        if rng.random() < 0.5:
            s.sendall(frame("P", length=1000) + b"x" * rng.randint(0, 999))
        else:
            s.sendall(frame("E", length=1 << 20) + rng.randbytes(rng.randint(1, 200000)))
        time.sleep(0.005)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        time.sleep(0.01)


def load_slowloris(ctx, t):
    """A header trickled a byte at a time: read_timeout cuts it with a 408."""
    while not ctx.stop.is_set():
        with ctx.connect(timeout=READ_TIMEOUT * 10 + 10) as s:
            t.connections += 1
            hdr = frame("P", length=10)
            try:
                for b in hdr[:4]:
                    s.sendall(bytes([b]))
                    time.sleep(READ_TIMEOUT / 3)
            except OSError:
                pass
            typ, body = read_frame(s)
            assert typ == "!" and body.startswith(b"408 "), (typ, body[:60])
            t.server_errors += 1
            read_to_eof(s)


# name, protocol, well-behaved, how many at once, runner
LOADS = [
    ("pipelined", "framed", True, 1, load_pipelined),
    ("oneshot", "framed", True, 1, load_oneshot),
    ("large", "framed", True, 1, load_large),
    ("streaming", "framed", True, 1, load_streaming),
    ("idle", "framed", True, 1, load_idle),
    ("stats", "framed", True, 1, load_stats),
    ("raw", "raw", True, 1, load_raw),
    ("http", "http", True, 1, load_http),
    ("garbage", "framed", False, 2, load_garbage),
    ("http-garbage", "http", False, 1, load_http_garbage),
    ("resets", "framed", False, 2, load_resets),
    ("slowloris", "framed", False, 8, load_slowloris),
]


# ---- echod --------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def conf_text(ports, stats_sock, variant):
    # The reload flips reloadable values back and forth: limits far from
    # what the loads reach, so behaviour stays the same while every reload
    # really swaps the configuration under the running connections.
    return (f'listen = [ "127.0.0.1:{ports["framed"]}", "raw://127.0.0.1:{ports["raw"]}", '
            f'"http://127.0.0.1:{ports["http"]}", "unix:{stats_sock}" ];\n'
            f"workers = {WORKERS};\nmax_frame_size = {MAX_FRAME};\n"
            f"read_timeout = {READ_TIMEOUT};\nidle_timeout = 60;\nwrite_timeout = 30;\n"
            f"drain_timeout = 5;\nmax_connections = {20000 + variant};\n"
            f"tcp_keepalive_idle = {60 + variant};\ntcp_user_timeout = {120 + variant};\n"
            f"max_connections_per_client = 0;\nlog_level = \"info\";\n")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# The soak's own STATS connections and requests count in STATS too.
OWN = Tally()


def stats(stats_sock):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(stats_sock)
        OWN.connections += 1
        s.sendall(frame("S"))
        typ, body = read_frame(s)
        OWN.requests += 1
        return json.loads(body)


def settle(stats_sock, pid, seconds=60):
    """Until only the asker is connected, then a moment for the workers to
    return their buffers; (stats, fds, rss)."""
    deadline = time.monotonic() + seconds
    while True:
        st = stats(stats_sock)
        if st["connections_current"] == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    time.sleep(1.0)
    return st, fd_count(pid), rss_kib(pid)


def run_loads(ports, tallies, label):
    stop = threading.Event()
    ctx = Ctx(ports, stop)
    threads = []
    failures = []
    for name, proto, good, n, fn in LOADS:
        for i in range(n):
            t = Tally()
            t.proto = proto
            tallies.append((name, good, t))

            def body(fn=fn, t=t, name=name):
                try:
                    fn(ctx, t)
                except Exception as e:     # noqa: BLE001 - every failure is reported
                    t.client_errors += 1
                    t.detail = f"{type(e).__name__}: {e}"
                    failures.append(f"{label} {name}: {t.detail}")

            th = threading.Thread(target=body, name=f"{name}-{i}", daemon=True)
            th.start()
            threads.append(th)
    return stop, threads, failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    ap.add_argument("--reload-every", type=float, default=3.0)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="echod-soak-", dir="/tmp"))
    ports = {p: free_port() for p in ("framed", "raw", "http")}
    stats_sock = str(work / "stats.sock")
    conf = work / "echod.conf"
    conf.write_text(conf_text(ports, stats_sock, 0))
    env = dict(os.environ)
    # A bounded quarantine, so RSS measures echod rather than ASan's memory of
    # every connection freed (use-after-free within it is still caught).
    env.setdefault("ASAN_OPTIONS", "quarantine_size_mb=16:detect_leaks=1")
    log_path = work / "echod.stderr"
    with open(log_path, "wb") as err:
        proc = subprocess.Popen([str(ECHOD), "-c", str(conf)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=work)
    ok = True
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                stats(stats_sock)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    print(log_path.read_text(errors="replace"))
                    raise SystemExit("echod did not start")
                time.sleep(0.1)

        # Warm-up: every load once, so pools and caches are as full as they get.
        warm = []
        stop, threads, failures = run_loads(ports, warm, "warm-up")
        time.sleep(min(5.0, max(2.0, args.seconds / 20)))
        stop.set()
        for th in threads:
            th.join(120)
        st0, fds0, rss0 = settle(stats_sock, proc.pid)
        print(f"baseline after warm-up: {fds0} descriptors, RSS {rss0} KiB, "
              f"connections_total {st0['connections_total']}", flush=True)

        tallies = []
        stop, threads, failures2 = run_loads(ports, tallies, "soak")
        failures += failures2
        t0 = time.monotonic()
        reloads = 0
        peak_fds, peak_rss, peak_conns = fds0, rss0, 0
        next_report = t0 + 10
        while time.monotonic() - t0 < args.seconds:
            time.sleep(min(args.reload_every, max(0.0, args.seconds - (time.monotonic() - t0))))
            reloads += 1
            tmp = conf.with_suffix(".tmp")
            tmp.write_text(conf_text(ports, stats_sock, reloads % 2))
            os.replace(tmp, conf)
            proc.send_signal(signal.SIGHUP)
            peak_fds = max(peak_fds, fd_count(proc.pid))
            peak_rss = max(peak_rss, rss_kib(proc.pid))
            st = stats(stats_sock)
            peak_conns = max(peak_conns, st["connections_current"])
            if time.monotonic() >= next_report:
                next_report += 10
                print(f"  {time.monotonic() - t0:5.0f} s: {st['connections_current']} open, "
                      f"{st['connections_total']} total, {st['requests_total']} requests, "
                      f"{fd_count(proc.pid)} fds, RSS {rss_kib(proc.pid)} KiB", flush=True)
        stop.set()
        for th in threads:
            th.join(300)
        hung = [th.name for th in threads if th.is_alive()]
        st1, fds1, rss1 = settle(stats_sock, proc.pid)

        # ---- figures and checks
        total = Tally()
        for _, _, t in warm + tallies:
            total.add(t)
        total.add(OWN)      # up to and including the STATS that st1 is
        print(f"\nsoak: {args.seconds:.0f} s, {reloads} reloads")
        by_load = {}
        for name, good, t in tallies:
            agg = by_load.setdefault(name, (good, Tally()))[1]
            agg.add(t)
            if t.detail:
                agg.detail = t.detail
        for name, (good, t) in by_load.items():
            print(f"  {name:12s} {'well-behaved' if good else 'abusive':12s} "
                  f"{t.connections:8d} conns {t.requests:10d} requests "
                  f"{t.server_errors:6d} provoked errors {t.client_errors:4d} client errors"
                  f"{'  ' + t.detail if t.detail else ''}")
        print(f"  peak: {peak_conns} connections open, {peak_fds} descriptors, RSS {peak_rss} KiB")
        print(f"  descriptors: {fds0} before, {fds1} after (slack {FD_SLACK})")
        print(f"  RSS: {rss0} KiB before, {rss1} KiB after (slack {RSS_SLACK_KIB} KiB)")
        def requests_of(proto):
            n = sum(t.requests for _, _, t in warm + tallies if t.proto == proto)
            return n + (OWN.requests if proto == "framed" else 0)

        want = {"connections_total": total.connections,
                "errors_total": total.server_errors,
                "framed requests": requests_of("framed"),
                "http requests": requests_of("http")}
        got = {"connections_total": st1["connections_total"],
               "errors_total": st1["errors_total"],
               "framed requests": st1["requests_by_protocol"]["framed"],
               "http requests": st1["requests_by_protocol"]["http"]}
        raw_requests = st1["requests_by_protocol"]["raw"]
        print(f"  raw: {raw_requests} chunks counted for {total.raw_connections} connections "
              "(at least one each)")
        print(f"  STATS {got}")
        print(f"  clients {want}")

        def check(cond, what):
            nonlocal ok
            if not cond:
                ok = False
                print(f"FAIL: {what}")

        for f in failures:
            check(False, f)
        check(not hung, f"load threads still running: {hung}")
        bad = {n: t.client_errors for n, (g, t) in by_load.items() if g and t.client_errors}
        check(not bad, f"well-behaved loads saw errors: {bad}")
        check(got == want, "STATS totals differ from the clients' counts")
        check(raw_requests >= total.raw_connections, "raw connections counted no request")
        check(st1["connections_rejected"] == 0, f"connections_rejected {st1['connections_rejected']}")
        check(st1["connections_current"] == 1, f"connections_current {st1['connections_current']}")
        check(fds1 <= fds0 + FD_SLACK, f"descriptors {fds0} -> {fds1}")
        check(rss1 <= rss0 + RSS_SLACK_KIB, f"RSS {rss0} -> {rss1} KiB")
        reloaded = len(re.findall(r"configuration reloaded", log_path.read_text(errors="replace")))
        check(reloaded == reloads, f"{reloads} SIGHUPs, {reloaded} reloads logged")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    log = log_path.read_text(errors="replace")
    reports = [m for m in SANITIZER_MARKERS if m in log]
    if reports or proc.returncode != 0:
        ok = False
        print(f"FAIL: echod exit {proc.returncode}, sanitizer reports {reports}\n{log[-5000:]}")
    print("soak passed" if ok else "soak FAILED", flush=True)
    if ok:
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"(log kept in {log_path})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
