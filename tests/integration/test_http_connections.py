"""http:// listeners: connections (http.md, "Connections"): keep-alive for
HTTP/1.0 and 1.1, pipelining, a request a byte at a time, Expect:
100-continue, half-close, idle and read timeouts, and a client that never
reads.
"""

import socket
import time

import pytest

from conftest import Client, bound, pattern
from http_util import CRLF, HttpConn, check_error, chunked, request


@pytest.fixture
def srv(echod_factory):
    return echod_factory(listen=("127.0.0.1", "http://127.0.0.1"))


# ---- keep-alive -----------------------------------------------------------

def test_http11_is_persistent(srv):
    with HttpConn(srv.addr_of("http")) as h:
        for i in range(20):
            h.send(request("GET", f"/{i}"))
            resp = h.read_response()
            assert resp.body.startswith(f"GET /{i} ".encode())
            assert resp.get("Connection") is None
        assert h.still_open()


def test_http11_connection_close_from_client(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/", headers=[("Connection", "close")]))
        assert h.read_response().get("Connection") == "close"
        h.expect_close()


def test_http11_connection_close_among_tokens(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/", headers=[("Connection", "TE, Close")]))
        assert h.read_response().get("Connection") == "close"
        h.expect_close()


def test_http10_closes_by_default(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(b"GET /a HTTP/1.0\r\n\r\n")
        resp = h.read_response()
        assert resp.status == 200 and resp.get("Connection") in (None, "close")
        h.expect_close()


def test_http10_keep_alive(srv):
    with HttpConn(srv.addr_of("http")) as h:
        for i in range(5):
            h.send(f"GET /{i} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode())
            resp = h.read_response()
            assert resp.get("Connection") == "keep-alive", resp
            assert resp.get("Content-Length") is not None
        h.send(b"POST / HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-Length: 3\r\n\r\nabc")
        resp = h.read_response()
        assert resp.get("Connection") == "keep-alive" and resp.body == b"abc"
        # The last one without keep-alive: answered, then closed.
        h.send(b"GET /last HTTP/1.0\r\n\r\n")
        assert h.read_response().status == 200
        h.expect_close()


def test_http10_never_chunked(srv):
    # An HTTP/1.0 request cannot send chunked (400 row), and no response to
    # one is chunked: format=json with a 1.0 body has a Content-Length.
    with HttpConn(srv.addr_of("http")) as h:
        h.send(b"POST /?format=json HTTP/1.0\r\nConnection: keep-alive\r\n"
               b"Content-Length: 4\r\n\r\nabcd")
        resp = h.read_response()
        assert not resp.chunked and resp.get("Content-Length")
        assert b'"body_bytes":4' in resp.body
    with HttpConn(srv.addr_of("http")) as h:
        h.send(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        resp = check_error(h, 400)
        assert not resp.chunked


def test_http10_keep_alive_with_close_control(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(b"GET /?close=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert h.read_response().get("Connection") == "close"
        h.expect_close()


# ---- pipelining -----------------------------------------------------------

def test_pipelining_1000_requests_in_one_send(srv):
    reqs = []
    for i in range(1000):
        if i % 3 == 0:
            reqs.append(request("POST", f"/{i}", body=f"body-{i}".encode()))
        elif i % 3 == 1:
            reqs.append(request("GET", f"/{i}"))
        else:
            reqs.append(request("POST", f"/{i}", headers=[("Transfer-Encoding", "chunked")],
                                body=chunked(f"c{i}".encode(), b"!")))
    with HttpConn(srv.addr_of("http")) as h:
        t = __import__("threading").Thread(target=h.send, args=(b"".join(reqs),), daemon=True)
        t.start()
        for i in range(1000):
            resp = h.read_response()
            assert resp.status == 200
            if i % 3 == 0:
                assert resp.body == f"body-{i}".encode()
            elif i % 3 == 1:
                assert resp.body.startswith(f"GET /{i} ".encode())
            else:
                assert resp.body == f"c{i}!".encode() and resp.chunked
        t.join(bound(10))
        assert h.still_open()


def test_request_one_byte_at_a_time(srv):
    raw = (request("GET", "/slow?x=1", headers=[("X-A", "b")])
           + request("POST", "/b", body=b"hello")
           + request("POST", "/c", headers=[("Transfer-Encoding", "chunked")],
                     body=chunked(b"wor", b"ld", ext=b";x=y")))
    with HttpConn(srv.addr_of("http")) as h:
        for i in range(len(raw)):
            h.send(raw[i:i + 1])
        r1, r2, r3 = h.read_response(), h.read_response(), h.read_response()
    assert r1.body == request("GET", "/slow?x=1", headers=[("X-A", "b")])
    assert r2.body == b"hello"
    assert r3.body == b"world"


def test_leading_empty_lines_are_skipped_not_echoed(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("POST", "/", body=b"x") + b"\r\n" + request("GET", "/after"))
        assert h.read_response().body == b"x"
        assert h.read_response().body == request("GET", "/after")


# ---- Expect: 100-continue -------------------------------------------------

def test_100_continue_before_the_body(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("POST", "/", headers=[("Expect", "100-continue"),
                                              ("Content-Length", "5")]))
        head = h.read_head()
        assert head[1] == 100 and head[4] == b"HTTP/1.1 100 Continue\r\n\r\n"
        h.send(b"hello")
        resp = h.read_response()
        assert resp.status == 200 and resp.body == b"hello"


def test_100_continue_chunked(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("POST", "/", headers=[("Expect", "100-Continue"),
                                              ("Transfer-Encoding", "chunked")]))
        assert h.read_head()[1] == 100
        h.send(chunked(b"abc"))
        assert h.read_response().body == b"abc"


def test_100_continue_refused_on_headers(echod_factory):
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), max_frame_size=100)
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("POST", "/", headers=[("Expect", "100-continue"),
                                              ("Content-Length", "101")]))
        resp = check_error(h, 413, probe_linger=False)
        assert b"100 Continue" not in resp.raw_head
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("POST", "/?status=abc", headers=[("Expect", "100-continue"),
                                                         ("Content-Length", "5")]))
        check_error(h, 400)


def test_100_continue_without_body_is_not_sent(srv):
    with HttpConn(srv.addr_of("http")) as h:
        raw = request("GET", "/", headers=[("Expect", "100-continue")])
        h.send(raw)
        resp = h.read_response()
        assert resp.status == 200 and resp.body == raw


def test_100_continue_not_sent_when_body_already_came(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("POST", "/", headers=[("Expect", "100-continue")], body=b"early"))
        resp = h.read_response()   # fails on a 100
        assert resp.status == 200 and resp.body == b"early"


def test_expect_other_is_417(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("POST", "/", headers=[("Expect", "100-continue, foo")], body=b"x"))
        check_error(h, 417)


# ---- half-close -------------------------------------------------------------

def test_half_close_after_requests(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/1") + request("POST", "/2", body=b"two")
               + request("GET", "/3"))
        h.shutdown_write()
        assert h.read_response().body.startswith(b"GET /1 ")
        assert h.read_response().body == b"two"
        assert h.read_response().body.startswith(b"GET /3 ")
        h.expect_close()


def test_half_close_with_the_output_full(srv):
    """The EOF is read while responses still wait for room (a client that
    reads late): every request already received is still answered."""
    s = socket.create_connection(parse(srv.addr_of("http")))
    try:
        s.sendall(request("GET", "/?size=1000000") * 20 + request("GET", "/last"))
        s.shutdown(socket.SHUT_WR)
        time.sleep(0.5)     # echod reads the EOF while its output is full
        got = Client(s, bound(10)).read_all()
    finally:
        s.close()
    assert got.count(b"HTTP/1.1 200 OK\r\n") == 21, len(got)
    assert got.endswith(request("GET", "/last"))


def test_half_close_cuts_a_head(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/1") + b"GET /2 HTTP/1.1\r\nHost:")
        h.shutdown_write()
        assert h.read_response().body.startswith(b"GET /1 ")
        # Nothing of the cut request's response went out: a 400 (or nothing).
        rest = h.rest()
        assert rest == b"" or rest.startswith(b"HTTP/1.1 400 "), rest


def test_half_close_cuts_a_body(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("POST", "/", headers=[("Content-Length", "10")]) + b"abc")
        h.shutdown_write()
        head = h.read_head()
        assert head[1] == 200
        # The echo had begun: it is cut short, never completed or padded.
        assert h.rest(allow_reset=True) == b"abc"


def test_half_close_cuts_a_chunked_body_before_its_first_line(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("POST", "/", headers=[("Transfer-Encoding", "chunked")]) + b"1")
        h.shutdown_write()
        resp = check_error(h, 400, probe_linger=False)
        assert b"cut short" in resp.body


def test_half_close_idle(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.shutdown_write()
        h.expect_close()


# ---- timeouts ---------------------------------------------------------------

def test_idle_timeout_between_requests(echod_factory):
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), idle_timeout=0.5,
                        read_timeout=5)
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/"))
        h.read_response()
        t0 = time.monotonic()
        h.expect_close(timeout=bound(5))   # silently: no 408 for an idle connection
        assert time.monotonic() - t0 >= 0.4


def test_idle_timeout_restarts_with_each_request(echod_factory):
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), idle_timeout=0.6)
    with HttpConn(srv.addr_of("http")) as h:
        for _ in range(4):
            time.sleep(0.3)
            h.send(request("GET", "/"))
            assert h.read_response().status == 200


def test_read_timeout_runs_from_the_first_byte(echod_factory):
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), idle_timeout=30,
                        read_timeout=0.6)
    with HttpConn(srv.addr_of("http")) as h:
        # Dribbling keeps sending, but the request as a whole is late.
        t0 = time.monotonic()
        for b in b"GET / HTTP/1.1\r\nHost: t\r\n":
            h.send(bytes([b]))
            time.sleep(0.05)
            if not h.still_open(0):
                break
        check_error(h, 408, probe_linger=False)
        assert time.monotonic() - t0 >= 0.55


def test_read_timeout_while_waiting_for_the_first_chunk_line(echod_factory):
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), read_timeout=0.5)
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("POST", "/", headers=[("Transfer-Encoding", "chunked")]))
        check_error(h, 408)


# ---- a client that never reads -----------------------------------------------

def test_client_that_never_reads(echod_factory):
    """Pipelined requests whose answers are never read: echod stops reading
    once its output is full (backpressure), holds its memory bounded, and
    still serves others."""
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), write_timeout=30)
    addr = srv.addr_of("http")
    s = socket.create_connection(parse(addr))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setblocking(False)
    one = request("GET", "/?size=65536")
    sent = 0
    base = srv.rss_kib()
    deadline = time.monotonic() + bound(5)
    with srv.rss_sampler() as rss:
        while time.monotonic() < deadline:
            try:
                sent += s.send(one * 16)
            except BlockingIOError:
                time.sleep(0.05)
                if time.monotonic() > deadline - bound(4):
                    break
        # Requests were accepted until the server stopped reading.
        with HttpConn(addr) as other:
            other.send(request("GET", "/other"))
            assert other.read_response().status == 200
    s.close()
    print(f"never-reading client: sent {sent} bytes of requests; RSS growth "
          f"{rss.growth_kib()} KiB (base {base} KiB)")
    assert sent < 64 * 1024 * 1024, "the server kept reading with its output full"
    assert rss.growth_kib() < 16 * 1024, rss.growth_kib()


def parse(addr):
    host, port = addr.split("://")[1].rsplit(":", 1)
    return host, int(port)


def test_big_bodies_both_ways_with_a_slow_reader(srv):
    body = pattern(3 * 1024 * 1024, seed=3)
    with HttpConn(srv.addr_of("http")) as h:
        got = h.c.exchange(request("POST", "/", headers=[("Connection", "close")], body=body))
    head, _, rest = got.partition(CRLF + CRLF)
    assert head.startswith(b"HTTP/1.1 200 ") and rest == body


def test_write_timeout_closes_a_client_that_never_reads(echod_factory):
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), write_timeout=0.5)
    s = socket.create_connection(parse(srv.addr_of("http")))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        s.sendall(request("GET", "/?size=16000000"))
        before = srv.stats()["errors_total"]
        st = srv.wait_stats(lambda st: st["errors_total"] > before, timeout=bound(10),
                            what="the write timeout counted as an error")
        assert st["connections_current"] == 1   # only the STATS connection is left
    finally:
        s.close()


def test_concurrent_connections_mixed_pipelines(srv):
    """40 connections at once, each pipelining 40 requests of every kind
    (bodies by Content-Length and chunked, head echoes, size=, delays):
    every answer complete and in order."""
    import random
    import threading
    errs = []

    def one(k):
        try:
            rnd = random.Random(k)
            reqs, exp = [], []
            for i in range(40):
                t = rnd.randrange(5)
                if t == 0:
                    b = pattern(rnd.randrange(1, 200000), seed=k + i)
                    reqs.append(request("POST", "/", body=b))
                    exp.append(("body", b))
                elif t == 1:
                    b = pattern(rnd.randrange(1, 50000), seed=i)
                    reqs.append(request("POST", "/", headers=[("Transfer-Encoding", "chunked")],
                                        body=chunked(b[:len(b) // 2], b[len(b) // 2:])))
                    exp.append(("body", b))
                elif t == 2:
                    r = request("GET", f"/{k}/{i}")
                    reqs.append(r)
                    exp.append(("body", r))
                elif t == 3:
                    n = rnd.randrange(0, 100000)
                    reqs.append(request("GET", f"/?size={n}"))
                    exp.append(("size", n))
                else:
                    reqs.append(request("GET", "/?delay=%d" % rnd.randrange(0, 30)))
                    exp.append(("status", 200))
            with HttpConn(srv.addr_of("http")) as h:
                th = threading.Thread(target=h.send, args=(b"".join(reqs),), daemon=True)
                th.start()
                for kind, v in exp:
                    r = h.read_response(timeout=bound(30))
                    if kind == "body":
                        assert r.body == v
                    elif kind == "size":
                        assert len(r.body) == v
                    else:
                        assert r.status == v
                th.join(bound(10))
        except BaseException as e:  # noqa: B902 - reported below
            errs.append(repr(e)[:300])

    threads = [threading.Thread(target=one, args=(k,)) for k in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(bound(60))
    assert not errs, errs


def test_idle_keep_alive_connections_hold_no_buffers(echod_factory):
    """After its request, a kept-alive connection gives back its buffers and
    its request state: 1,000 of them cost about a struct conn each."""
    from conftest import raise_nofile
    if not raise_nofile(4096):
        pytest.skip("cannot raise the descriptor limit to 4096")
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), workers=1)
    # Warm the worker's pools first, so the figure is the connections' own.
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("POST", "/", body=b"w" * 100000))
        h.read_response()
    base = srv.rss_kib()
    conns = []
    try:
        for _ in range(1000):
            h = HttpConn(srv.addr_of("http"))
            conns.append(h)
            h.send(request("POST", "/", body=b"x" * 2000))
        for h in conns:
            assert h.read_response().body == b"x" * 2000
        st = srv.stats()
        assert st["connections_current"] == 1001
        growth = srv.rss_kib() - base
    finally:
        for h in conns:
            h.close()
    print(f"1,000 idle http connections: RSS growth {growth} KiB ({growth * 1024 // 1000} B each)")
    # Sanitizers' shadow memory multiplies every allocation (TSan: ~2.5 KiB each).
    from conftest import SAN
    assert growth < (8 if SAN else 2) * 1000, growth
