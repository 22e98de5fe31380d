"""raw:// listeners: RFC 862 echo. Every byte comes back in order, whatever
the chunking; the client's EOF is answered with everything owed, then our
FIN; bulk streams through bounded memory; a client that stops reading is
held by backpressure, not buffered; idle_timeout applies and read_timeout
does not; the drain echoes everything read before closing."""

import hashlib
import os
import signal
import socket
import threading
import time

from conftest import Client, bound, pattern


def raw(echod_factory, **settings):
    return echod_factory(listen=("raw://127.0.0.1", "127.0.0.1"), **settings)


def test_bytes_come_back_in_order(echod_factory):
    d = raw(echod_factory)
    with d.connect(d.addr_of("raw")) as c:
        for chunk in (b"a", b"hello world", bytes(range(256)), pattern(10000, 3)):
            c.send(chunk)
            assert c.recv_exact(len(chunk)) == chunk


def test_one_byte_at_a_time_then_half_close(echod_factory):
    d = raw(echod_factory)
    data = pattern(300, 5)
    with d.connect(d.addr_of("raw")) as c:
        for i in range(len(data)):
            c.send(data[i:i + 1])
        c.shutdown_write()
        # Everything owed, then the server's FIN (not a reset).
        assert c.read_all() == data


def test_half_close_is_answered_with_all_bytes_then_eof(echod_factory):
    d = raw(echod_factory)
    data = pattern(3 * 1024 * 1024, 7)
    with d.connect(d.addr_of("raw")) as c:
        got = c.exchange(data, timeout=bound(20))
    assert len(got) == len(data)
    assert got == data


def test_unix_raw_listener(echod_factory):
    d = echod_factory(listen=("raw://unix", "127.0.0.1"))
    with d.connect(d.addr_of("raw")) as c:
        c.send(b"over a unix socket")
        assert c.recv_exact(18) == b"over a unix socket"


def test_bulk_streams_with_bounded_memory(echod_factory):
    """256 MiB through one connection: every byte back, in order, while the
    daemon's RSS grows by a few MiB at most (splice and fixed buffers)."""
    d = raw(echod_factory, workers=1)
    total = 256 * 1024 * 1024
    block = os.urandom(1 << 20)
    sent_hash = hashlib.sha256()
    got_hash = hashlib.sha256()
    received = [0]
    with d.connect(d.addr_of("raw"), timeout=bound(30)) as c, d.rss_sampler() as rss:
        def reader():
            while received[0] < total:
                chunk = c.sock.recv(1 << 20)
                if not chunk:
                    break
                got_hash.update(chunk)
                received[0] += len(chunk)

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        for _ in range(total // len(block)):
            c.sock.sendall(block)
            sent_hash.update(block)
        c.shutdown_write()
        th.join(bound(60))
        assert not th.is_alive(), f"reader stuck after {received[0]} bytes"
    assert received[0] == total
    assert got_hash.digest() == sent_hash.digest()
    print(f"raw 256 MiB: RSS growth {rss.growth_kib()} KiB")
    assert rss.growth_kib() < 16 * 1024, f"RSS grew {rss.growth_kib()} KiB"


def test_client_that_never_reads_is_held_by_backpressure(echod_factory):
    """A client sends and never reads: echod stops reading once its buffers
    and the socket buffers are full, so the sender blocks after a bounded
    amount instead of echod buffering everything. Reading then brings back
    every byte."""
    d = raw(echod_factory, workers=1)
    c = d.connect(d.addr_of("raw"))
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    c.sock.setblocking(False)
    data = pattern(64 * 1024 * 1024, 9)
    sent = 0
    deadline = time.monotonic() + bound(5)
    stalled_since = None
    while sent < len(data) and time.monotonic() < deadline:
        try:
            sent += c.sock.send(data[sent:sent + 65536])
            stalled_since = None
        except BlockingIOError:
            if stalled_since is None:
                stalled_since = time.monotonic()
            elif time.monotonic() - stalled_since > 0.5:
                break
            time.sleep(0.01)
    assert sent < 32 * 1024 * 1024, f"echod took {sent} bytes from a client that never reads"
    rss_before = d.rss_kib()
    time.sleep(0.3)
    assert d.rss_kib() - rss_before < 4096
    c.sock.setblocking(True)
    c.sock.settimeout(bound(10))
    got = c.recv_exact(sent, timeout=bound(20))
    assert got == data[:sent]


def test_idle_timeout_applies_and_read_timeout_does_not(echod_factory):
    d = raw(echod_factory, idle_timeout=1.0, read_timeout=0.3)
    with d.connect(d.addr_of("raw")) as c:
        # Bytes every 0.2 s for 1.2 s: longer than read_timeout, never idle.
        for i in range(6):
            c.send(b"x")
            assert c.recv_exact(1) == b"x"
            time.sleep(0.2)
        # Then silence: idle_timeout closes it (a FIN, nothing else).
        start = time.monotonic()
        c.expect_eof(timeout=bound(5))
        assert time.monotonic() - start >= 0.5


def test_requests_are_counted_per_protocol(echod_factory):
    d = raw(echod_factory)
    before = d.stats()
    with d.connect(d.addr_of("raw")) as c:
        for i in range(5):
            c.send(b"chunk")
            assert c.recv_exact(5) == b"chunk"
    st = d.stats()
    assert st["requests_by_protocol"]["raw"] - before["requests_by_protocol"]["raw"] == 5
    # Framed counts only the STATS requests themselves.
    assert st["requests_by_protocol"]["framed"] - before["requests_by_protocol"]["framed"] == 1
    assert st["requests_by_protocol"]["http"] == 0


def test_drain_echoes_everything_read_then_closes(echod_factory):
    d = raw(echod_factory, drain_timeout=5)
    c = d.connect(d.addr_of("raw"))
    data = pattern(200000, 11)
    c.send(data)
    assert c.recv_exact(1000) == data[:1000]
    d.send_signal(signal.SIGTERM)
    rest = c.read_all(timeout=bound(10))
    assert rest == data[1000:]
    assert d.wait_exit(bound(10)) == 0


def served_raw(addr, timeout):
    """A raw connection that is served: the start-up probes may still hold
    the one slot for a moment after they closed, so retry until one is."""
    deadline = time.monotonic() + timeout
    while True:
        c = Client.connect(addr)
        c.send(b"a")
        try:
            if c.recv_exact(1) == b"a":
                return c
        except AssertionError:
            pass
        c.close()
        if time.monotonic() > deadline:
            raise AssertionError("no raw connection was served within the bound")
        time.sleep(0.05)


def test_over_max_connections_closes_without_a_byte(echod_factory):
    d = raw(echod_factory, max_connections=1)
    with served_raw(d.addr_of("raw"), bound(5)) as first:
        with Client.connect(d.addr_of("raw")) as second:
            second.expect_eof(timeout=bound(5), allow_reset=True)
        first.send(b"b")
        assert first.recv_exact(1) == b"b"
