"""A network of our own for the fault tests (test_netns_*.py): two network
namespaces joined by veth pairs, echod in one ("srv"), clients in the other
("cli"), built and removed by each test, so no packet leaves them.

    srv 10.77.0.1/24 vs<PID>-<n>  ===  vc<PID>-<n> 10.77.0.2/24 cli
    srv 10.77.1.1/24 ws<PID>-<n>  ===  wc<PID>-<n> 10.77.1.2/24 cli   (second_link=True)

Names carry the test process's PID and a counter, so concurrent runs never
meet; Testbed.close() (the fixture's teardown) stops echod and deletes both
namespaces, which removes the veth pairs with them, whatever the test did.

Faults (docs: /work/shared/notes style, see docs/dead-peers.md): vanish()
drops every packet on the client side both ways (nft), loss() drops a share
of packets at random both ways, heal() removes either; link_down()/up() pull
the cable; tbf() limits the server's egress on one link.

Client sockets are made inside "cli" by switching this thread's network
namespace around socket() (setns(2) affects only the calling thread, and a
socket stays in the namespace it was created in). echod's STATS are read
over a unix socket, which is a file and so reachable from here.

Everything needs root, ip(8), nft(8) and tc(8); the fixture skips with the
reason otherwise.
"""

import ctypes
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import (ECHOD, SANITIZER_MARKERS, Client, bound, config_text)

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
_counter = itertools.count()

SRV_IP = "10.77.0.1"
CLI_IP = "10.77.0.2"
SRV_IP2 = "10.77.1.1"
CLI_IP2 = "10.77.1.2"
PORT = 7007


def sh(*argv, check=True, timeout=30):
    """Run a command; its output, or a failure with what it said."""
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def missing_requirement():
    """Why the testbed cannot be built here, or None."""
    if os.geteuid() != 0:
        return "network namespace tests need root (ip netns add)"
    for tool in ("ip", "nft", "tc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (make deps installs iproute2 and nftables)"
    return None


class Testbed:
    def __init__(self, second_link=False):
        # PID, then a counter: a name says which process made it.
        n = f"{os.getpid()}-{next(_counter)}"
        self.srv = f"echod-srv-{n}"
        self.cli = f"echod-cli-{n}"
        self.vs, self.vc = f"vs{n}", f"vc{n}"
        self.ws, self.wc = f"ws{n}", f"wc{n}"
        assert len(self.vs) < 16, self.vs
        self.second_link = second_link
        self.dir = Path(tempfile.mkdtemp(prefix="echod-ns-", dir="/tmp"))
        self.proc = None
        self.stats_path = str(self.dir / "stats.sock")
        self.config_path = self.dir / "echod.conf"
        self.stderr_path = self.dir / "echod.stderr"
        self.settings = {}
        self.faulted = False
        self.closed = False
        self.socks = []         # every socket made in a namespace, closed first

    # ---- building and removing
    def build(self):
        try:
            sh("ip", "netns", "add", self.srv)
            sh("ip", "netns", "add", self.cli)
            links = [(self.vs, self.vc, SRV_IP, CLI_IP)]
            if self.second_link:
                links.append((self.ws, self.wc, SRV_IP2, CLI_IP2))
            for s_if, c_if, s_ip, c_ip in links:
                sh("ip", "link", "add", s_if, "netns", self.srv, "type", "veth", "peer", "name",
                   c_if, "netns", self.cli)
                sh("ip", "-n", self.srv, "addr", "add", f"{s_ip}/24", "dev", s_if)
                sh("ip", "-n", self.cli, "addr", "add", f"{c_ip}/24", "dev", c_if)
                sh("ip", "-n", self.srv, "link", "set", s_if, "up")
                sh("ip", "-n", self.cli, "link", "set", c_if, "up")
            for ns in (self.srv, self.cli):
                sh("ip", "-n", ns, "link", "set", "lo", "up")
        except RuntimeError as e:
            self.close()
            pytest.skip(f"cannot build the network namespaces: {e}")

    def close(self):
        if self.closed:
            return
        self.closed = True
        problems = []
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(float(self.settings.get("drain_timeout", 2)) + bound(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problems.append("echod ignored SIGTERM; killed")
        if self.proc is not None and self.proc.returncode not in (0, None):
            problems.append(f"echod exited with {self.proc.returncode}")
        for ns in (self.srv, self.cli):
            sh("ip", "netns", "del", ns, check=False)
        log = self.log()
        reports = [m for m in SANITIZER_MARKERS if m in log]
        if reports:
            problems.append(f"sanitizer report ({', '.join(reports)})")
        shutil.rmtree(self.dir, ignore_errors=True)
        if problems:
            pytest.fail("; ".join(problems) + f"\nlog:\n{log}", pytrace=False)

    # ---- echod
    def start_echod(self, **settings):
        """echod in srv on 10.77.0.1:7007 (and 10.77.1.1:7007 with the second
        link) plus a unix socket for STATS."""
        listen = [f"{SRV_IP}:{PORT}"]
        if self.second_link:
            listen.append(f"{SRV_IP2}:{PORT}")
        listen.append(f"unix:{self.stats_path}")
        self.settings = {"listen": listen, "workers": 2, "drain_timeout": 2,
                         "log_level": "info"}
        self.settings.update(settings)
        self.config_path.write_text(config_text(self.settings))
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.srv, str(ECHOD), "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, cwd=self.dir)
        deadline = time.monotonic() + bound(10)
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"echod exited at start; log:\n{self.log()}")
            try:
                self.stats()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"echod never answered; log:\n{self.log()}")
                time.sleep(0.05)

    def reload(self, **changes):
        self.settings.update(changes)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(config_text(self.settings))
        os.replace(tmp, self.config_path)
        self.proc.send_signal(signal.SIGHUP)

    def log(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stats(self):
        with Client.connect(f"unix:{self.stats_path}", timeout=bound(5)) as c:
            return c.stats()

    def current(self):
        """Open client connections, not counting the STATS one asking."""
        return self.stats()["connections_current"] - 1

    def wait_current(self, want, timeout, poll=0.05):
        """Seconds until connections_current (less the asker) == want;
        fails after timeout."""
        t0 = time.monotonic()
        while True:
            cur = self.current()
            if cur == want:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"connections_current stayed {cur} (want {want}) for "
                                     f"{timeout:.1f} s; log:\n{self.log()}")
            time.sleep(poll)

    # ---- sockets and commands inside the namespaces
    def socket(self, ns=None, family=socket.AF_INET, type_=socket.SOCK_STREAM, proto=0):
        """A socket created inside namespace ns (default cli)."""
        ns = ns or self.cli
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if libc.setns(target, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns {ns}: {os.strerror(err)}")
            try:
                s = socket.socket(family, type_, proto)
                self.socks.append(s)
                return s
            finally:
                if libc.setns(own, CLONE_NEWNET) != 0:
                    # Left in the wrong namespace: nothing after this can be trusted.
                    os.abort()
        finally:
            os.close(own)
            os.close(target)

    def connect(self, server=SRV_IP, source=None, timeout=10.0, rcvbuf=None):
        """A Client in cli connected to echod at server."""
        s = self.socket()
        s.settimeout(timeout)
        if rcvbuf is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source is not None:
            s.bind((source, 0))
        try:
            s.connect((server, PORT))
        except BaseException:
            s.close()
            raise
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Client(s, timeout)

    def run(self, ns, *argv, check=True):
        return sh("ip", "netns", "exec", ns, *argv, check=check)

    def nft(self, *args):
        self.run(self.cli, "nft", *args)

    # ---- faults
    def vanish(self):
        """Drop everything to and from the client namespace, both ways."""
        self.faulted = True
        self.nft("add", "table", "inet", "chaos")
        self.nft("add", "chain", "inet", "chaos", "in",
                 "{ type filter hook input priority 0; policy drop; }")
        self.nft("add", "chain", "inet", "chaos", "out",
                 "{ type filter hook output priority 0; policy drop; }")

    def loss(self, percent):
        """Drop percent% of packets at random, each way, on the client side."""
        self.faulted = True
        self.nft("add", "table", "inet", "chaos")
        for chain, hook, match in (("in", "input", "saddr"), ("out", "output", "daddr")):
            self.nft("add", "chain", "inet", "chaos", chain,
                     f"{{ type filter hook {hook} priority 0; policy accept; }}")
            self.nft("add", "rule", "inet", "chaos", chain, "ip", match, SRV_IP, "numgen",
                     "random", "mod", "100", "<", str(percent), "drop")

    def heal(self):
        self.nft("delete", "table", "inet", "chaos")

    def link(self, up):
        self.run(self.cli, "ip", "link", "set", self.vc, "up" if up else "down")

    def tbf(self, rate="4mbit"):
        self.run(self.srv, "tc", "qdisc", "add", "dev", self.vs, "root", "tbf", "rate", rate,
                 "burst", "16kb", "latency", "50ms")

    def sysctl(self, ns, key, value):
        self.run(ns, "sysctl", "-qw", f"{key}={value}")

    def nstat(self, ns, *names):
        """Absolute kernel counters in ns (0 for those never counted)."""
        out = self.run(ns, "nstat", "-asz", *names)
        got = {n: 0 for n in names}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] in got:
                got[parts[0]] = int(parts[1])
        return got


@pytest.fixture
def testbed():
    """A built Testbed (one link); removed at teardown."""
    why = missing_requirement()
    if why:
        pytest.skip(why)
    tb = Testbed()
    tb.build()
    try:
        yield tb
    finally:
        tb.close()


@pytest.fixture
def testbed2():
    """The same with a second, independent link (10.77.1.0/24)."""
    why = missing_requirement()
    if why:
        pytest.skip(why)
    tb = Testbed(second_link=True)
    tb.build()
    try:
        yield tb
    finally:
        tb.close()


def figure(name, value, unit=""):
    """One measured figure, printed for `pytest -s` and the report."""
    print(f"\n[figure] {name}: {value}{(' ' + unit) if unit else ''}", flush=True)


__all__ = ["Testbed", "testbed", "testbed2", "figure", "SRV_IP", "CLI_IP", "SRV_IP2",
           "CLI_IP2", "PORT", "json"]
