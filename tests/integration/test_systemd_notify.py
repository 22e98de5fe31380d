"""The systemd notification protocol, with a datagram socket standing in for
systemd's NOTIFY_SOCKET: READY=1 only once every listener answers, STATUS=
lines with the counts, RELOADING=1 (+ MONOTONIC_USEC) then READY=1 around
SIGHUP, STOPPING=1 at SIGTERM, in that order; WATCHDOG=1 at half of
WATCHDOG_USEC, not for another WATCHDOG_PID, and no more once a worker hangs
(ECHOD_DEBUG_STALL_WORKER). Abstract (@name) sockets work too."""

import os
import re
import signal
import socket
import tempfile
import time

import pytest

from conftest import ECHOD, Client, bound, frame, ipv6_available


class NotifySocket:
    """What systemd would receive: one datagram per sd_notify call."""

    def __init__(self, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        if abstract:
            name = f"echod-test-notify-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind("\0" + name)
            self.env_value = "@" + name
            self.dir = None
        else:
            self.dir = tempfile.mkdtemp(prefix="echod-n-", dir="/tmp")
            path = os.path.join(self.dir, "notify")
            self.sock.bind(path)
            self.env_value = path
        self.messages = []      # (monotonic arrival time, {key: value})

    def receive(self, timeout):
        """The next message as a dict, or None if none came within timeout."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return None
        fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
        self.messages.append((time.monotonic(), fields))
        return fields

    def wait_for(self, key, timeout=None, value=None):
        """Receive until a message has key (with value, if given); returns it.
        Fails after the bound."""
        deadline = time.monotonic() + (timeout or bound(10))
        while True:
            left = deadline - time.monotonic()
            msg = self.receive(left) if left > 0 else None
            if msg is None:
                raise AssertionError(f"no {key}{'=' + value if value else ''} within the bound; "
                                     f"got {[m for _, m in self.messages]}")
            if key in msg and (value is None or msg[key] == value):
                return msg

    def collect(self, seconds):
        """Every message over the next `seconds`."""
        got = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            msg = self.receive(left)
            if msg is not None:
                got.append((time.monotonic(), msg))
        return got

    def close(self):
        self.sock.close()
        if self.dir:
            for f in os.listdir(self.dir):
                os.unlink(os.path.join(self.dir, f))
            os.rmdir(self.dir)


@pytest.fixture
def notify():
    n = NotifySocket()
    yield n
    n.close()


def state_changes(messages):
    """The state messages only (no STATUS=, no WATCHDOG=), as names."""
    out = []
    for m in messages:
        for key in ("READY", "RELOADING", "STOPPING"):
            if m.get(key) == "1":
                out.append(key)
    return out


def start(echod_factory, notify, extra_env=None, **settings):
    env = dict(os.environ, NOTIFY_SOCKET=notify.env_value)
    env.update(extra_env or {})
    return echod_factory(env=env, wait=False, **settings)


def test_ready_comes_only_when_every_listener_serves(echod_factory, notify):
    listen = ["127.0.0.1", "unix"] + (["[::1]"] if ipv6_available() else [])
    d = start(echod_factory, notify, listen=listen)
    notify.wait_for("READY", value="1")
    # No retry: at READY=1 every address must already answer.
    for addr in d.listen:
        with Client.connect(addr, timeout=bound(5)) as c:
            c.ping()


def test_status_says_connections_workers_and_addresses(echod_factory, notify):
    d = start(echod_factory, notify, listen=["127.0.0.1", "unix"], workers=3)
    notify.wait_for("READY", value="1")
    status = notify.wait_for("STATUS")["STATUS"]
    assert re.search(r"\b0 connections\b", status), status
    assert re.search(r"\b3 workers\b", status), status
    for addr in d.listen:
        assert addr in status, (addr, status)
    clients = [d.connect() for _ in range(3)]
    for c in clients:
        c.ping()
    # A reload refreshes STATUS at once (otherwise it is periodic).
    d.send_signal(signal.SIGHUP)
    notify.wait_for("READY", value="1")
    status = notify.wait_for("STATUS")["STATUS"]
    assert re.search(r"\b3 connections\b", status), status


def test_reload_and_stop_are_announced_in_order(echod_factory, notify):
    d = start(echod_factory, notify)
    notify.wait_for("READY", value="1")
    before_us = time.monotonic_ns() // 1000
    d.reload(max_frame_size=100)
    msg = notify.wait_for("RELOADING", value="1")
    after_us = time.monotonic_ns() // 1000
    # MONOTONIC_USEC is CLOCK_MONOTONIC at the reload, the clock Python's
    # monotonic() reads: it falls between our two readings.
    assert "MONOTONIC_USEC" in msg, msg
    assert before_us <= int(msg["MONOTONIC_USEC"]) <= after_us, (before_us, msg, after_us)
    notify.wait_for("READY", value="1")
    # The new configuration is in force once READY=1 is back.
    with d.connect() as c:
        c.send_frame("E", b"x" * 200)
        assert c.read_error().startswith("413"), "reload did not apply max_frame_size"
    d.send_signal(signal.SIGTERM)
    notify.wait_for("STOPPING", value="1")
    assert d.wait_exit(bound(15)) == 0
    notify.collect(0.2)
    assert state_changes(m for _, m in notify.messages) == \
        ["READY", "RELOADING", "READY", "STOPPING"]


def test_a_bad_reload_still_returns_to_ready(echod_factory, notify):
    d = start(echod_factory, notify)
    notify.wait_for("READY", value="1")
    d.reload(text="listen = [ \"127.0.0.1:1\" ];\nno_such_key = 1;\n")
    notify.wait_for("RELOADING", value="1")
    notify.wait_for("READY", value="1")
    d.wait_log(r"reload failed")
    with Client.connect(d.addr) as c:
        c.ping()


def test_abstract_notify_socket(echod_factory):
    n = NotifySocket(abstract=True)
    try:
        d = start(echod_factory, n)
        n.wait_for("READY", value="1")
        d.send_signal(signal.SIGTERM)
        n.wait_for("STOPPING", value="1")
        assert d.wait_exit(bound(15)) == 0
    finally:
        n.close()


def test_unreachable_notify_socket_is_logged_once_and_ignored(echod_factory):
    env = dict(os.environ, NOTIFY_SOCKET="/nonexistent/echod-notify")
    d = echod_factory(env=env)     # waits until it serves
    d.send_signal(signal.SIGHUP)   # more notifications, which fail too
    d.wait_log(r"reloaded|no configuration")
    with Client.connect(d.addr) as c:
        c.ping()
    assert len(re.findall(r"notification failed", d.log())) == 1, d.log()


# Watchdog interval used by the tests: pings are due every half of it.
WATCHDOG_S = 1.0


def watchdog_env(pid=None):
    env = {"WATCHDOG_USEC": str(int(WATCHDOG_S * 1e6))}
    if pid is not None:
        env["WATCHDOG_PID"] = str(pid)
    return env


def pings(messages):
    return [t for t, m in messages if m.get("WATCHDOG") == "1"]


def test_watchdog_pings_at_half_the_interval(echod_factory, notify):
    start(echod_factory, notify, extra_env=watchdog_env())
    notify.wait_for("READY", value="1")
    times = pings(notify.collect(6 * WATCHDOG_S))
    gaps = [b - a for a, b in zip(times, times[1:])]
    # Half the interval: about 12 pings in 6 intervals. Every gap well
    # inside the interval (else systemd would kill us), and none a burst.
    assert len(times) >= 8, times
    assert max(gaps) < WATCHDOG_S, gaps
    assert min(gaps) > WATCHDOG_S / 4, gaps


def test_watchdog_pid_of_this_process_pings(echod_factory, notify):
    # The shell's $$ is the PID echod gets after exec.
    env = dict(os.environ, NOTIFY_SOCKET=notify.env_value, WATCHDOG_USEC=str(int(WATCHDOG_S * 1e6)))
    d = echod_factory(env=env, wait=False,
                      argv=["/bin/sh", "-c", 'WATCHDOG_PID=$$ exec "$0" "$@"', str(ECHOD)])
    notify.wait_for("READY", value="1")
    assert len(pings(notify.collect(2 * WATCHDOG_S))) >= 2
    d.expected_returncode = 0


def test_watchdog_pid_of_another_process_means_no_pings(echod_factory, notify):
    start(echod_factory, notify, extra_env=watchdog_env(pid=os.getpid()))
    notify.wait_for("READY", value="1")
    assert pings(notify.collect(3 * WATCHDOG_S)) == []


# Seconds after start at which worker 0 hangs (ECHOD_DEBUG_STALL_WORKER).
STALL_AFTER_S = 2


def test_pings_stop_when_a_worker_hangs(echod_factory, notify):
    env = watchdog_env()
    env["ECHOD_DEBUG_STALL_WORKER"] = str(STALL_AFTER_S)
    d = start(echod_factory, notify, extra_env=env, workers=2)
    notify.wait_for("READY", value="1")
    before = pings(notify.collect(STALL_AFTER_S * 0.75))
    assert len(before) >= 2, "no pings while every thread was healthy"
    d.wait_log(r"stalling on purpose", timeout=bound(STALL_AFTER_S + 5))
    # Within one interval of the hang the pings stop, and stay stopped.
    notify.collect(WATCHDOG_S * 1.5)
    after = pings(notify.collect(4 * WATCHDOG_S))
    assert after == [], f"{len(after)} pings after worker 0 hung"
    d.wait_log(r"not making progress")
    assert d.running(), "echod exited instead of hanging"
    # A stuck worker never drains: end it as systemd would, with a kill.
    d.send_signal(signal.SIGKILL)
    d.wait_exit(bound(10))
    d.expected_returncode = -signal.SIGKILL


def test_no_watchdog_without_watchdog_usec(echod_factory, notify):
    start(echod_factory, notify)
    notify.wait_for("READY", value="1")
    assert pings(notify.collect(1.5)) == []


def test_status_refreshes_by_itself(echod_factory, notify):
    d = start(echod_factory, notify)
    notify.wait_for("READY", value="1")
    notify.wait_for("STATUS")
    c = d.connect()
    c.ping()
    # The periodic refresh (every few seconds) picks up the new connection.
    deadline = time.monotonic() + bound(15)
    while not re.search(r"\b1 connection;", notify.wait_for("STATUS", timeout=bound(15))["STATUS"]):
        assert time.monotonic() < deadline, [m for _, m in notify.messages]
    c.send(frame("P"))
    assert c.read_frame() == ("P", b"")

