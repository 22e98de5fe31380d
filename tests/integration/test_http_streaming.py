"""http:// listeners: bodies stream through with bounded memory (a 1 GiB
Content-Length body, a chunked one), and reloads add and remove http
listeners.
"""

import hashlib
import os
import re
import threading
import time

from conftest import bound, free_port
from http_util import CRLF, HttpConn, request

GIB = 1 << 30


def stream(h, head, total, block, chunk_framing=False):
    """Send head + total body bytes (block repeated) from a thread while
    hashing what comes back after the response head; returns
    (response head, received body bytes, sent digest, received digest)."""
    sent_hash = hashlib.sha256()
    got_hash = hashlib.sha256()
    state = {"head": None, "n": 0}
    err = []

    def sender():
        try:
            h.send(head)
            for _ in range(total // len(block)):
                piece = block
                if chunk_framing:
                    piece = b"%x\r\n" % len(block) + block + CRLF
                h.sock.sendall(piece)
                sent_hash.update(block)
            if chunk_framing:
                h.sock.sendall(b"0\r\n\r\n")
        except OSError as e:
            err.append(e)

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    state["head"] = h.read_until(CRLF + CRLF, timeout=bound(30))
    pending = bytes(h.buf)
    h.buf.clear()
    if not chunk_framing:
        got_hash.update(pending)
        state["n"] += len(pending)
        h.sock.settimeout(bound(60))
        while state["n"] < total:
            data = h.sock.recv(1 << 20)
            assert data, f"EOF after {state['n']} bytes"
            got_hash.update(data)
            state["n"] += len(data)
    else:
        h.buf += pending
        while True:
            line = h.read_until(CRLF, timeout=bound(60))
            n = int(line[:-2], 16)
            if n == 0:
                assert h.read_exact(2) == CRLF
                break
            while n > 0:
                if not h.buf:
                    h._fill(bound(60))
                take = bytes(h.buf[:n])
                del h.buf[:len(take)]
                got_hash.update(take)
                state["n"] += len(take)
                n -= len(take)
            assert h.read_exact(2, timeout=bound(60)) == CRLF
    th.join(bound(60))
    assert not err, err
    return state["head"], state["n"], sent_hash.digest(), got_hash.digest()


def test_1gib_body_streams_with_bounded_memory(echod_factory):
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), workers=1,
                        max_frame_size=2 * GIB, read_timeout=120)
    block = os.urandom(1 << 20)
    with HttpConn(srv.addr_of("http"), timeout=bound(60)) as h, srv.rss_sampler() as rss:
        t0 = time.monotonic()
        head, n, sent, got = stream(
            h, b"POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % GIB, GIB, block)
        secs = time.monotonic() - t0
        # The connection goes on.
        h.send(request("GET", "/after"))
        assert h.read_response().body.startswith(b"GET /after ")
    assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: %d\r\n" % GIB in head
    assert n == GIB and got == sent
    print(f"http 1 GiB Content-Length body: RSS growth {rss.growth_kib()} KiB, "
          f"{GIB / secs / 1e6:.0f} MB/s each way")
    assert rss.growth_kib() < 8 * 1024, f"RSS grew {rss.growth_kib()} KiB"


def test_chunked_body_streams_with_bounded_memory(echod_factory):
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), workers=1,
                        max_frame_size=2 * GIB, read_timeout=120)
    total = 128 << 20
    block = os.urandom(256 << 10)
    with HttpConn(srv.addr_of("http"), timeout=bound(60)) as h, srv.rss_sampler() as rss:
        head, n, sent, got = stream(
            h, b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", total, block,
            chunk_framing=True)
    assert b"Transfer-Encoding: chunked" in head
    assert n == total and got == sent
    print(f"http 128 MiB chunked body: RSS growth {rss.growth_kib()} KiB")
    assert rss.growth_kib() < 8 * 1024, f"RSS grew {rss.growth_kib()} KiB"


def test_reload_adds_and_removes_an_http_listener(echod_factory):
    srv = echod_factory(listen=("127.0.0.1",))
    port = free_port()
    new = f"http://127.0.0.1:{port}"
    since = srv.log_offset()
    srv.reload(listen=srv.listen + [new])
    srv.wait_log(r"listening on 127\.0\.0\.1:%d \(http\)" % port, since=since)
    with HttpConn(new) as h:
        h.send(request("GET", "/added"))
        assert h.read_response().body.startswith(b"GET /added ")
        # Removing the listener leaves this connection served.
        since = srv.log_offset()
        srv.reload(listen=srv.listen[:1])
        srv.wait_log(r"127\.0\.0\.1:%d" % port, since=since)
        deadline = time.monotonic() + bound(10)
        while True:
            try:
                with HttpConn(new, timeout=1):
                    pass
            except (ConnectionRefusedError, OSError):
                break
            assert time.monotonic() < deadline, "the removed listener still accepts"
            time.sleep(0.05)
        h.send(request("GET", "/still"))
        assert h.read_response().status == 200
    srv.stats()  # the framed listener is untouched


def test_reload_switches_an_address_to_http(echod_factory):
    srv = echod_factory(listen=("127.0.0.1", "127.0.0.1"))
    addr = srv.listen[1]
    since = srv.log_offset()
    srv.reload(listen=[srv.listen[0], "http://" + addr])
    srv.wait_log(r"listening on %s \(http, was framed\)" % re.escape(addr), since=since)
    with HttpConn("http://" + addr) as h:
        h.send(request("GET", "/switched"))
        assert h.read_response().body.startswith(b"GET /switched ")
