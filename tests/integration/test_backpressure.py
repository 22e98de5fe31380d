"""Backpressure: a client that sends ECHO data without reading the replies
is not read any further once its pending output passes a bound, so the
daemon's memory stays bounded however much the client pushes (measured as
VmRSS from /proc). When the client starts reading, the server resumes and
every byte comes back correct and in order."""

import socket
import threading
import time

import pytest

from conftest import SAN, bound, frame, header, pattern

MiB = 1 << 20
PUSH = 256 * MiB
# RSS growth allowed while the client pushes; sanitizer allocators keep
# more (quarantine, shadow), so their bound is looser.
RSS_GROWTH_MAX_KIB = (64 if SAN else 16) * 1024


def kernel_buffer_bound():
    """Most bytes the kernel can hold in flight on one loopback connection,
    both directions, with autotuned buffers (plus slack for the daemon's own
    bounded buffers and pipes)."""
    def maximum(path):
        with open(path) as f:
            return int(f.read().split()[2])
    rmem = maximum("/proc/sys/net/ipv4/tcp_rmem")
    wmem = maximum("/proc/sys/net/ipv4/tcp_wmem")
    return 2 * (rmem + wmem) + 16 * MiB


class Pusher:
    """Sends prefix + unit * count from a thread; .sent counts bytes taken
    by the kernel so far."""

    def __init__(self, sock, prefix, unit, count):
        self.sock = sock
        self.data = [prefix] + [unit] * count
        self.sent = 0
        self.error = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        try:
            for piece in self.data:
                view = memoryview(piece)
                while view:
                    try:
                        n = self.sock.send(view[:MiB])
                    except socket.timeout:
                        continue
                    view = view[n:]
                    self.sent += n
        except OSError as e:
            self.error = e

    def wait_stall(self, quiet=1.0, limit=30.0):
        """Until .sent stops moving for `quiet` seconds; returns .sent."""
        deadline = time.monotonic() + bound(limit)
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            if not self.thread.is_alive():
                return self.sent
            if self.sent != last:
                last, since = self.sent, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return self.sent
            time.sleep(0.05)
        raise AssertionError(f"sending never stalled ({self.sent} bytes sent)")


def read_and_check(sock, prefix, unit, count, timeout):
    """Read len(prefix) + len(unit) * count bytes and check them against
    the stream prefix + unit * count without building it."""
    total = len(prefix) + len(unit) * count
    doubled = unit + unit
    buf = bytearray(MiB)
    view = memoryview(buf)
    off = 0
    deadline = time.monotonic() + timeout
    while off < total:
        assert time.monotonic() < deadline, f"read only {off} of {total} bytes in time"
        n = sock.recv_into(view, min(MiB, total - off))
        assert n > 0, f"EOF after {off} of {total} bytes"
        got = bytes(view[:n])
        pos = 0
        if off < len(prefix):
            k = min(n, len(prefix) - off)
            assert got[:k] == prefix[off:off + k], f"prefix differs at {off}"
            pos = k
        while pos < n:
            u = (off + pos - len(prefix)) % len(unit)
            k = min(n - pos, len(unit) - u)
            if got[pos:pos + k] != doubled[u:u + k]:
                raise AssertionError(f"byte stream differs in [{off + pos}, {off + pos + k})")
            pos += k
        off += n
    return off


@pytest.mark.parametrize("shape", ["one_256MiB_echo", "many_64KiB_echoes"])
def test_non_reading_client_is_throttled_and_memory_stays_bounded(echod_factory, shape):
    d = echod_factory(max_frame_size=512 * MiB, read_timeout=0, write_timeout=0,
                      idle_timeout=0, workers=1)
    # Warm up the worker's buffer and pipe pools so they are not counted.
    with d.connect() as w:
        data = frame("E", pattern(4 * MiB)) + frame("E", pattern(1000)) * 100
        assert w.exchange(data) == data

    if shape == "one_256MiB_echo":
        unit = pattern(MiB + 7, seed=1)          # odd period: a slip shows
        count = PUSH // len(unit)
        prefix = header("E", len(unit) * count)
    else:
        unit = frame("E", pattern(64 * 1024 - 3, seed=2))
        count = PUSH // len(unit)
        prefix = b""

    c = d.connect(timeout=bound(30))
    with d.rss_sampler() as rss:
        p = Pusher(c.sock, prefix, unit, count)
        p.thread.start()
        stalled_at = p.wait_stall()
        # The server stopped reading: the client could not push it all, only
        # what the kernel buffers (and the daemon's small buffers) hold.
        assert p.thread.is_alive() and p.error is None, (p.error, stalled_at)
        assert stalled_at < kernel_buffer_bound(), stalled_at
        time.sleep(0.5)
        assert p.sent == stalled_at, "the server kept reading"
        growth_while_stalled = rss.growth_kib()

        # Now read: the server resumes and every byte comes back.
        received = read_and_check(c.sock, prefix, unit, count, timeout=bound(120))
        p.thread.join(bound(30))
    assert p.error is None, p.error
    assert received == len(prefix) + len(unit) * count
    assert growth_while_stalled < RSS_GROWTH_MAX_KIB, f"RSS grew {growth_while_stalled} KiB"
    assert rss.growth_kib() < RSS_GROWTH_MAX_KIB, f"RSS grew {rss.growth_kib()} KiB"
    print(f"{shape}: stalled after {stalled_at} bytes; RSS growth {rss.growth_kib()} KiB")
    c.ping()


def test_throttled_client_does_not_slow_down_others(echod_factory):
    d = echod_factory(max_frame_size=512 * MiB, read_timeout=0, write_timeout=0, workers=1)
    hog = d.connect(timeout=bound(30))
    unit = pattern(MiB, seed=3)
    p = Pusher(hog.sock, header("E", 128 * MiB), unit, 128)
    p.thread.start()
    p.wait_stall()
    # Same worker, while the hog sits throttled: others are served at once.
    for _ in range(20):
        with d.connect() as c:
            assert c.request("E", b"me too") == ("E", b"me too")
    hog.sock.shutdown(socket.SHUT_RDWR)   # wakes the blocked sender
    p.thread.join(bound(10))
    assert not p.thread.is_alive()
