"""Support for the balancer tests (test_balancer_*.py): three echod
instances behind the real HAProxy or nginx from Debian's packages.

* :func:`listener_supported` asks ``echod -t`` whether a listener scheme
  (``http://``, ``raw://``) exists yet; tests of modes that need it skip.
* :class:`Pool` starts N instances with the test's ports, each also on a
  unix socket of its own that speaks framed, so STATS counts per instance
  whatever the proxied protocol; it restarts one on the same port.
* :func:`render` turns a shipped config file into the test's: the
  addresses in it are replaced by the test's, in order.
* :class:`Balancer` runs haproxy or nginx in the foreground from a temp
  dir and stops it by PID; :meth:`Balancer.show_stat` reads HAProxy's
  stats socket.
* :func:`echobench` runs build/echobench --json and returns its report;
  :class:`HttpLoad` is the HTTP load (echobench speaks framed and raw).
"""

import csv
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import ECHOD, REPO, Client, bound, free_port

ECHOBENCH = REPO / "build" / "echobench"
NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"


def listener_supported(scheme):
    """True when `echod -t` accepts a `listen` entry with this scheme."""
    with tempfile.TemporaryDirectory(prefix="echod-scheme-") as d:
        path = os.path.join(d, "probe.conf")
        with open(path, "w") as f:
            f.write(f'listen = [ "{scheme}://127.0.0.1:{free_port()}" ];\n')
        p = subprocess.run([str(ECHOD), "-t", "-c", path], capture_output=True, text=True,
                           timeout=30)
        return p.returncode == 0


def require_listener(scheme):
    if not listener_supported(scheme):
        pytest.skip(f"echod has no {scheme} listener yet")


def require_tool(name, package):
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.access(f"/usr/sbin/{name}", os.X_OK)
                                  else None)
    if path is None:
        pytest.fail(f"{name} is not installed (Debian package {package}; make deps installs it)")
    return path


class Pool:
    """N echod instances, each on its own port (with `scheme`) and a unix
    socket (framed) for STATS."""

    def __init__(self, factory, n=3, scheme="", **settings):
        self.factory = factory
        self.scheme = scheme
        self.settings = dict(drain_timeout=5, **settings)
        self.ports = [free_port() for _ in range(n)]
        self.instances = [self._start(p) for p in self.ports]
        # Counters of instances that were stopped, to add to the live ones.
        self.retired = [0] * n

    def _start(self, port):
        prefix = f"{self.scheme}://" if self.scheme else ""
        listen = [f"{prefix}127.0.0.1:{port}", "unix"]
        if not self.scheme:
            e = self.factory(listen=listen, **self.settings)
            # Requests of ours in its counters: wait_ready's PING on each
            # listener, then every STATS we ask.
            e.own_requests = 2
            return e
        # wait_ready speaks framed to every listener: here only the unix one.
        e = self.factory(listen=listen, wait=False, **self.settings)

        def ready():
            assert e.running(), f"echod exited at start:\n{e.log()}"
            try:
                framed_ok(e.listen[1])
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except (OSError, AssertionError):
                return False
        wait_until(f"echod on {listen[0]}", ready)
        e.own_requests = 1
        return e

    def stats_of(self, i):
        e = self.instances[i]
        e.own_requests += 1
        return e.stats(e.listen[1])

    def requests(self):
        """Requests served per instance so far (STATS of the live ones plus
        what stopped ones had served; our own STATS requests left out)."""
        out = []
        for i, e in enumerate(self.instances):
            live = 0
            if e.running():
                live = self.stats_of(i)["requests_total"] - e.own_requests
            out.append(self.retired[i] + live)
        return out

    def connections_current(self, i):
        return self.stats_of(i)["connections_current"] - 1    # this STATS

    def kill(self, i, sig=signal.SIGKILL):
        e = self.instances[i]
        os.kill(e.pid, sig)
        e.proc.wait(bound(10))
        e.expected_returncode = e.proc.returncode

    def start_again(self, i):
        """Start instance i again on its port (after a kill)."""
        self.instances[i] = self._start(self.ports[i])

    def restart(self, i):
        """SIGTERM instance i, wait for its exit (0), start it again on the
        same port. Returns the connections it held when told to stop."""
        e = self.instances[i]
        st = self.stats_of(i)
        held = st["connections_current"] - 1
        # The requests it served, as its last STATS says (those after it are
        # counted by the balancer and the client, not here).
        self.retired[i] += st["requests_total"] - e.own_requests
        e.send_signal(signal.SIGTERM)
        wait = float(self.settings["drain_timeout"]) + float(self.settings.get("drain_delay", 0))
        assert e.wait_exit(bound(wait + 10)) == 0, e.log()
        self.instances[i] = self._start(self.ports[i])
        return held


def render(shipped, addresses, extra=()):
    """The shipped config text with its `127.0.0.1:PORT` addresses replaced,
    in order of appearance, by `addresses` (a list, one per address in the
    file); `extra` is a list of (regex, replacement) applied after."""
    text = (REPO / shipped).read_text()
    found = re.findall(r"127\.0\.0\.1:\d+", text)
    assert len(found) == len(addresses), f"{shipped} has {len(found)} addresses: {found}"
    it = iter(addresses)
    text = re.sub(r"127\.0\.0\.1:\d+", lambda m: next(it), text)
    for rx, repl in extra:
        text, n = re.subn(rx, repl, text, flags=re.M)
        assert n > 0, f"{rx!r} not in {shipped}"
    return text


class Balancer:
    """haproxy or nginx in the foreground, stopped by PID."""

    def __init__(self, kind, shipped, addresses, listen_port):
        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix=f"echod-{kind}-", dir="/tmp")
        self.listen_port = listen_port
        self.stats_sock = os.path.join(self.dir, "stats.sock")
        if kind == "haproxy":
            exe = require_tool("haproxy", "haproxy")
            text = render(shipped, addresses,
                          [(r"^(\s*stats socket )\S+", rf"\g<1>{self.stats_sock}")])
            self.conf = os.path.join(self.dir, "haproxy.cfg")
            argv = [exe, "-db", "-f", self.conf]
        else:
            exe = require_tool("nginx", "nginx")
            if "stream" in shipped and not os.path.exists(NGINX_STREAM_MODULE):
                pytest.fail(f"{NGINX_STREAM_MODULE} missing (Debian package libnginx-mod-stream)")
            text = render(shipped, addresses)
            os.mkdir(os.path.join(self.dir, "tmp"))      # the temp paths' parent
            self.conf = os.path.join(self.dir, "nginx.conf")
            argv = [exe, "-e", "stderr", "-g", "daemon off; master_process off;",
                    "-p", self.dir, "-c", self.conf]
        with open(self.conf, "w") as f:
            f.write(text)
        self.log_path = os.path.join(self.dir, "balancer.log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.monotonic() + bound(10)
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"{kind} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", listen_port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{kind} does not listen on {listen_port}:\n{self.log()}")
                time.sleep(0.05)
        # HAProxy's stats socket too (bound in the same start-up, not always first).
        while kind == "haproxy" and not os.path.exists(self.stats_sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"haproxy has no stats socket:\n{self.log()}")
            time.sleep(0.05)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(bound(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- HAProxy's own view
    def command(self, cmd):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(bound(5))
            s.connect(self.stats_sock)
            s.sendall(cmd.encode() + b"\n")
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out.decode()
                out += chunk

    def show_stat(self):
        """`show stat` as {(proxy, server): row dict}."""
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {(r["pxname"], r["svname"]): r for r in rows if r.get("pxname")}

    def servers(self, backend):
        return {sv: r for (px, sv), r in self.show_stat().items()
                if px == backend and sv not in ("FRONTEND", "BACKEND")}

    def wait_servers(self, backend, predicate, what, timeout=None):
        deadline = time.monotonic() + (timeout or bound(15))
        while True:
            s = self.servers(backend)
            if predicate(s):
                return s
            if time.monotonic() > deadline:
                raise AssertionError(f"HAProxy never showed {what}: "
                                     f"{ {k: v['status'] for k, v in s.items()} }")
            time.sleep(0.05)

    def wait_all_up(self, backend, n):
        return self.wait_servers(backend, lambda s: len(s) == n and all(
            r["status"] == "UP" for r in s.values()), f"all {n} servers UP")


def echobench(port, *args, duration=2, conns=12):
    """Start build/echobench against 127.0.0.1:port; returns the Popen (its
    stdout is the JSON report)."""
    if not os.access(ECHOBENCH, os.X_OK):
        pytest.fail(f"{ECHOBENCH} is not built (run make)")
    argv = [str(ECHOBENCH), "-H", "127.0.0.1", "-p", str(port), "-c", str(conns),
            "-d", str(duration), "-T", "5", "--json", "--no-progress", *args]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def echobench_result(proc, timeout):
    """Wait for an echobench started by :func:`echobench`; its JSON report."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("echobench did not finish within its bound")
    assert proc.returncode in (0, 1), f"echobench exited {proc.returncode}: {err}"
    return json.loads(out)


def wait_until(what, predicate, timeout=None, interval=0.05):
    deadline = time.monotonic() + (timeout or bound(10))
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def framed_ok(addr):
    with Client.connect(addr) as c:
        c.ping()


class HttpLoad:
    """Threads each keeping one HTTP/1.1 connection busy with POSTs through
    the balancer, every response body checked; counts sent and failed."""

    def __init__(self, port, threads=6):
        self.port = port
        self.sent = 0
        self.failed = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(k,), daemon=True)
                        for k in range(threads)]

    def run(self, k):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=bound(5))
        n = 0
        while not self.stop.is_set():
            body = b"%d:%d" % (k, n)
            n += 1
            try:
                conn.request("POST", "/echo", body=body)
                resp = conn.getresponse()
                got = resp.read()
                ok = resp.status == 200 and got == body
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                ok, got = False, repr(exc)
                conn.close()
            with self.lock:
                self.sent += 1
                if not ok:
                    self.failed.append(got)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(bound(10))
