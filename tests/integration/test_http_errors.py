"""http:// listeners: every row of the error table of http.md, one test per
cause of 400. Each answer must be that status with Connection: close and a
text/plain body "NNN reason", then a lingering close: the client can still
read the whole answer although it sent more bytes after the bad request
(a server that closed with those bytes unread would reset, and the reset
would throw the answer away).
"""

import socket
import time

import pytest

from conftest import bound
from http_util import HttpConn, check_error, request

JUNK = b"J" * 65536     # more than a lingering close may drop: it must still read it


# (id, request bytes, status). Every 400 cause of the table, each on its own.
CASES = [
    # malformed request line
    ("request-line-no-version", b"GET /\r\nHost: t\r\n\r\n", 400),
    ("request-line-two-spaces", b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    ("request-line-trailing-space", b"GET / HTTP/1.1 \r\nHost: t\r\n\r\n", 400),
    ("request-line-tab", b"GET\t/ HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    ("request-line-lowercase-http", b"GET / http/1.1\r\nHost: t\r\n\r\n", 400),
    ("request-line-bad-method-char", b"G(T / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    ("request-line-control-in-target", b"GET /a\x01b HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    ("request-line-empty-target", b"GET  HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    ("request-line-garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    # malformed header
    ("header-no-colon", b"GET / HTTP/1.1\r\nHost: t\r\nNoColonHere\r\n\r\n", 400),
    ("header-empty-name", b"GET / HTTP/1.1\r\nHost: t\r\n: v\r\n\r\n", 400),
    ("header-bad-name-char", b"GET / HTTP/1.1\r\nHost: t\r\nX(a): v\r\n\r\n", 400),
    ("header-control-in-value", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n", 400),
    ("host-missing-1.1", b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400),
    ("host-repeated", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
    ("host-repeated-http10", b"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400),
    ("cl-and-te", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("te-and-cl", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                  b"Content-Length: 3\r\n\r\n0\r\n\r\n", 400),
    ("cl-repeated", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                    b"Content-Length: 3\r\n\r\nabc", 400),
    ("cl-list", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3, 3\r\n\r\nabc", 400),
    ("cl-signed-plus", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n\r\nabc", 400),
    ("cl-signed-minus", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -3\r\n\r\nabc", 400),
    ("cl-non-decimal-hex", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0x3\r\n\r\nabc", 400),
    ("cl-non-decimal-word", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: three\r\n\r\n", 400),
    ("cl-empty", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: \r\n\r\n", 400),
    ("cl-inner-space", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1 2\r\n\r\n", 400),
    ("cl-overflow", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: "
                    b"99999999999999999999999999\r\n\r\n", 400),
    ("cl-overflow-2^64", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: "
                         b"18446744073709551616\r\n\r\n", 400),
    ("te-not-ending-in-chunked", b"POST / HTTP/1.1\r\nHost: t\r\n"
                                 b"Transfer-Encoding: chunked, gzip\r\n\r\n", 400),
    ("te-chunked-twice", b"POST / HTTP/1.1\r\nHost: t\r\n"
                         b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
    ("te-http10-not-chunked", b"POST / HTTP/1.0\r\nTransfer-Encoding: identity\r\n\r\n", 400),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n  folded\r\n\r\n", 400),
    ("obs-fold-tab", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n\tfolded\r\n\r\n", 400),
    ("space-first-header", b"GET / HTTP/1.1\r\n Host: t\r\n\r\n", 400),
    ("space-before-colon", b"GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400),
    ("tab-before-colon", b"GET / HTTP/1.1\r\nHost: t\r\nX-A\t: b\r\n\r\n", 400),
    ("bare-cr-request-line", b"GET /\r HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    ("bare-cr-header-value", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n", 400),
    ("bare-cr-end-of-head", b"GET / HTTP/1.1\r\nHost: t\r\n\r\r\n", 400),
    ("bare-lf-request-line", b"GET / HTTP/1.1\nHost: t\r\n\r\n", 400),
    ("bare-lf-header", b"GET / HTTP/1.1\r\nHost: t\nX-A: b\r\n\r\n", 400),
    ("bare-lf-end-of-head", b"GET / HTTP/1.1\r\nHost: t\r\n\n", 400),
    ("bare-lf-in-chunk-line", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                              b"3\nabc\r\n0\r\n\r\n", 400),
    ("bare-cr-in-chunk-line", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                              b"3\rabc\r\n0\r\n\r\n", 400),
    ("bad-chunk-size-nonhex", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                              b"zz\r\nabc\r\n0\r\n\r\n", 400),
    ("bad-chunk-size-empty", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"\r\nabc\r\n0\r\n\r\n", 400),
    ("bad-chunk-size-signed", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                              b"-3\r\nabc\r\n0\r\n\r\n", 400),
    ("bad-chunk-size-0x", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"0x3\r\nabc\r\n0\r\n\r\n", 400),
    ("bad-chunk-size-overflow", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                                b"10000000000000000\r\n", 400),
    ("bad-chunk-size-space", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"3 \r\nabc\r\n0\r\n\r\n", 400),
    ("bad-chunk-framing-no-crlf", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                                  b"\r\n3\r\nabcX\r\n0\r\n\r\n", 400),
    ("bad-chunk-framing-lf-only", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                                  b"\r\n3\r\nabc\n0\r\n\r\n", 400),
    ("bad-chunk-framing-last", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                               b"\r\n0\r\nX\r\n", 400),
    ("bad-control-value", b"GET /?status=abc HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    # the other rows
    ("expect-other", b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 200-ok\r\nContent-Length: 3\r\n"
                     b"\r\nabc", 417),
    ("other-coding", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                     b"0\r\n\r\n", 501),
    # A coding alone, not ending in chunked, is the 400 row (RFC 9112 6.3:
    # the length cannot be determined), not the 501 one.
    ("other-coding-alone", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    ("method-over-32", b"A" * 33 + b" / HTTP/1.1\r\nHost: t\r\n\r\n", 501),
    ("version-2.0", b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    ("version-1.2", b"GET / HTTP/1.2\r\nHost: t\r\n\r\n", 505),
    ("version-0.9", b"GET / HTTP/0.9\r\nHost: t\r\n\r\n", 505),
    ("version-3", b"GET / HTTP/3\r\nHost: t\r\n\r\n", 505),
    ("http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
]


@pytest.fixture(scope="module")
def srv_module():
    """One daemon for the whole table, checked (exit code, sanitizer
    reports) when the module ends, as echod_factory does per test."""
    from conftest import EchodFactory
    f = EchodFactory()
    e = f(listen=("127.0.0.1", "http://127.0.0.1"), max_frame_size=1000,
          http_max_header_size=2048, read_timeout=30)
    yield e
    f.finish()


@pytest.mark.parametrize("raw,status", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error_row(srv_module, raw, status):
    with HttpConn(srv_module.addr_of("http")) as h:
        h.send(raw)
        check_error(h, status)


@pytest.mark.parametrize("raw,status", [c[1:] for c in CASES[::7]], ids=[c[0] for c in CASES[::7]])
def test_error_with_junk_behind_is_still_read(srv_module, raw, status):
    """Bytes sent after the bad request (here before the answer is read) do
    not turn the close into a reset that would destroy the answer."""
    with HttpConn(srv_module.addr_of("http")) as h:
        h.send(raw + JUNK)
        time.sleep(0.1)
        check_error(h, status)


AFTER_DATA = {"bad-chunk-framing-no-crlf", "bad-chunk-framing-lf-only"}
BYTEWISE = [c for c in CASES[::5] if c[0] not in AFTER_DATA]


@pytest.mark.parametrize("raw,status", [c[1:] for c in BYTEWISE], ids=[c[0] for c in BYTEWISE])
def test_error_byte_at_a_time(srv_module, raw, status):
    with HttpConn(srv_module.addr_of("http")) as h:
        for i in range(len(raw)):
            try:
                h.send(raw[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            if h.buf or not h.still_open(0.002):
                break   # the answer came before the rest: a rejection at the first sure byte
        check_error(h, status, probe_linger=False)


def test_error_after_good_pipelined_requests(srv_module):
    with HttpConn(srv_module.addr_of("http")) as h:
        h.send(request("GET", "/one") + request("POST", "/two", body=b"2") +
               b"GET / HTTP/1.1\r\nHost: t\r\nHost: t\r\n\r\n" + request("GET", "/never"))
        assert h.read_response().body.startswith(b"GET /one ")
        assert h.read_response().body == b"2"
        check_error(h, 400)


def test_head_error_has_no_body(srv_module):
    with HttpConn(srv_module.addr_of("http")) as h:
        h.send(b"HEAD /?status=1 HTTP/1.1\r\nHost: t\r\n\r\n")
        resp = check_error(h, 400, method="HEAD")
        assert int(resp.get("Content-Length")) > 0


def test_413_declared(srv_module):
    with HttpConn(srv_module.addr_of("http")) as h:
        h.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n" + b"x" * 1001)
        check_error(h, 413)
    # At the limit: echoed.
    with HttpConn(srv_module.addr_of("http")) as h:
        h.send(request("POST", "/", body=b"y" * 1000))
        assert h.read_response().body == b"y" * 1000


def test_413_chunked_on_the_size_line(srv_module):
    """A chunk whose size line takes the body over the limit is refused before
    its data is read (nothing of a response has gone out yet)."""
    with HttpConn(srv_module.addr_of("http")) as h:
        h.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n")
        check_error(h, 413)


def test_413_chunks_so_far(srv_module):
    """No chunk is over the limit, their sum is: the chunk lines already in
    the buffer are checked before the response starts."""
    with HttpConn(srv_module.addr_of("http")) as h:
        h.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"258\r\n" + b"a" * 600 + b"\r\n258\r\n" + b"b" * 600 + b"\r\n0\r\n\r\n")
        check_error(h, 413)


def test_413_chunks_after_the_response_began_cut_it(srv_module):
    """Once the chunked echo has begun (the first chunk went back), a chunk
    line taking the body over the limit can no longer change the status:
    the response is cut, never ended with the last chunk (docs/http.md)."""
    with HttpConn(srv_module.addr_of("http")) as h:
        h.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"1f4\r\n" + b"a" * 500 + b"\r\n")
        assert h.read_head()[1] == 200
        assert h.read_until(b"a" * 500)
        h.send(b"1f5\r\n")      # 500 + 501 > 1000: the size line is enough
        rest = h.rest(allow_reset=True)
        assert not rest.endswith(b"0\r\n\r\n") and b"413" not in rest, rest


def test_bad_chunk_after_the_response_began_cuts_it(srv_module):
    with HttpConn(srv_module.addr_of("http")) as h:
        h.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n")
        assert h.read_head()[1] == 200
        assert h.read_until(b"abc\r\n")
        h.send(b"zz\r\n")
        rest = h.rest(allow_reset=True)
        assert not rest.endswith(b"0\r\n\r\n") and b"400" not in rest, rest


def test_414_request_line_too_long(srv_module):
    with HttpConn(srv_module.addr_of("http")) as h:
        h.send(b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        check_error(h, 414)


def test_414_without_waiting_for_the_line_end(srv_module):
    with HttpConn(srv_module.addr_of("http")) as h:
        h.send(b"GET /" + b"a" * 2100)
        check_error(h, 414, probe_linger=False)


def test_431_header_section_too_large(srv_module):
    with HttpConn(srv_module.addr_of("http")) as h:
        h.send(b"GET / HTTP/1.1\r\nHost: t\r\n" + b"X-Big: " + b"v" * 2100 + b"\r\n\r\n")
        check_error(h, 431)
    with HttpConn(srv_module.addr_of("http")) as h:
        h.send(b"GET / HTTP/1.1\r\nHost: t\r\n" + b"X-A: b\r\n" * 400 + b"\r\n")
        check_error(h, 431)


def test_header_at_the_limit_is_served(srv_module):
    line = b"GET / HTTP/1.1\r\nHost: t\r\n"
    pad = 2048 - len(line) - len(b"X-P: \r\n\r\n")
    raw = line + b"X-P: " + b"p" * pad + b"\r\n\r\n"
    assert len(raw) == 2048
    with HttpConn(srv_module.addr_of("http")) as h:
        h.send(raw)
        assert h.read_response().body == raw


@pytest.fixture
def srv_408(echod_factory):
    return echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), read_timeout=1)


def test_408_read_timeout_head(srv_408):
    with HttpConn(srv_408.addr_of("http")) as h:
        h.send(b"GET / HTTP/1.1\r\nHost: t\r\n")
        t0 = time.monotonic()
        check_error(h, 408)
        assert time.monotonic() - t0 >= 0.9


def test_408_read_timeout_body(srv_408):
    with HttpConn(srv_408.addr_of("http")) as h:
        h.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        # The response began with the echo: the timeout can only cut it.
        head = h.read_head()
        assert head[1] == 200
        rest = h.rest(timeout=bound(5), allow_reset=True)
        assert rest == b"abc", rest


def test_503_over_max_connections(echod_factory):
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), max_connections=2)
    addr = srv.addr_of("http")
    held = []
    try:
        deadline = time.monotonic() + bound(10)
        while len(held) < 2:
            # The start-up probe's connection may not be counted out yet.
            c = HttpConn(addr)
            c.send(request("GET", "/hold"))
            if c.read_response().status == 200:
                held.append(c)
                continue
            c.close()
            assert time.monotonic() < deadline, "never got two connections in"
            time.sleep(0.05)
        with HttpConn(addr) as h:
            check_error(h, 503, reason="too many connections", probe_linger=False)
        # The two held connections are still served.
        held[0].send(request("GET", "/still"))
        assert held[0].read_response().status == 200
    finally:
        for c in held:
            c.close()


def test_503_request_begun_after_drain(echod_factory):
    import signal
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), drain_timeout=5)
    with HttpConn(srv.addr_of("http")) as h:
        # A request in progress keeps the connection in the drain; one begun
        # after it has started is refused.
        h.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nab")
        assert h.read_head()[1] == 200
        srv.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        h.send(b"cde" + b"GET /late HTTP/1.1\r\nHost: t\r\n")
        assert h.read_exact(5) == b"abcde"
        check_error(h, 503, probe_linger=False)
    assert srv.wait_exit(bound(10)) == 0


def test_error_closes_on_reset_free_eof(srv_module):
    """The peer's EOF right after the bad request: answered, then closed."""
    with HttpConn(srv_module.addr_of("http")) as h:
        h.send(b"GET / HTTP/9.9\r\nHost: t\r\n\r\n")
        h.sock.shutdown(socket.SHUT_WR)
        check_error(h, 505, probe_linger=False)
