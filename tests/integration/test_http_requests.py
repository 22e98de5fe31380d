"""http:// listeners: what a request gets (http.md, "What a request gets").

Body echo with Content-Length and chunked, the head echo byte for byte for
body-less requests of any method, HEAD, and the headers every response
carries.
"""

import json

import pytest

from conftest import pattern
from http_util import (CRLF, HttpConn, check_required, chunked, exchange, request)


@pytest.fixture
def srv(echod_factory):
    return echod_factory(listen=("127.0.0.1", "http://127.0.0.1"))


def test_body_with_content_length_is_echoed(srv):
    body = pattern(10000)
    resp = exchange(srv.addr_of("http"), request("POST", "/x", body=body))
    assert resp.status == 200
    assert resp.get("Content-Length") == "10000"
    assert resp.get("Content-Type") == "application/octet-stream"
    assert resp.get("Transfer-Encoding") is None
    assert resp.body == body
    check_required(resp)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "FOO"])
def test_body_echo_any_method(srv, method):
    resp = exchange(srv.addr_of("http"), request(method, "/", body=b"abc\0\xff"))
    assert resp.status == 200 and resp.body == b"abc\0\xff"


def test_chunked_body_gets_chunked_response(srv):
    body = chunked(b"hello ", b"chunked ", b"world")
    resp = exchange(srv.addr_of("http"),
                    request("POST", "/", headers=[("Transfer-Encoding", "chunked")], body=body))
    assert resp.status == 200
    assert resp.chunked and resp.get("Content-Length") is None
    assert resp.get("Content-Type") == "application/octet-stream"
    assert resp.body == b"hello chunked world"
    check_required(resp)


def test_content_length_zero_is_bodyless(srv):
    raw = request("POST", "/z", headers=[("Content-Length", "0")])
    resp = exchange(srv.addr_of("http"), raw)
    assert resp.get("Content-Type") == "text/plain"
    assert resp.body == raw


def test_response_begins_before_body_ends(srv):
    """Streaming: the head and the first bytes come back while the client
    still holds the rest of the body."""
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("POST", "/", headers=[("Content-Length", "2000000")]) + b"a" * 100000)
        head = h.read_until(CRLF + CRLF)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert h.read_exact(100000) == b"a" * 100000
        h.send(b"b" * 1900000)
        assert h.read_exact(1900000) == b"b" * 1900000


@pytest.mark.parametrize("method", ["GET", "DELETE", "OPTIONS", "X-ANY"])
def test_head_echo_byte_for_byte(srv, method):
    raw = (method.encode() + b" /a/b?c=d&e HTTP/1.1\r\n"
           b"host: Example.ORG\r\n"
           b"X-Dup: one\r\n"
           b"x-dup:   two  \r\n"
           b"X-Tab:\tvalue\twith\ttabs \t\r\n"
           b"X-Empty:\r\n"
           b"X-Weird-Case: MiXeD\r\n"
           b"X-Dup: three\r\n"
           b"\r\n")
    resp = exchange(srv.addr_of("http"), raw)
    assert resp.status == 200
    assert resp.get("Content-Type") == "text/plain"
    assert resp.get("Content-Length") == str(len(raw))
    assert resp.body == raw
    check_required(resp)


def test_head_echo_http10_without_host(srv):
    raw = b"GET /old HTTP/1.0\r\nUser-Agent: x\r\n\r\n"
    with HttpConn(srv.addr_of("http")) as h:
        h.send(raw)
        resp = h.read_response()
        assert resp.version == "HTTP/1.1" and resp.status == 200
        assert resp.body == raw
        h.expect_close()


def test_head_method_same_headers_as_get(srv):
    addr = srv.addr_of("http")
    for target in ["/p?x=1", "/?size=1000", "/?format=json", "/?status=404", "/healthz",
                   "/?header=X-A:b"]:
        with HttpConn(addr) as h:
            h.send(request("GET", target))
            get = h.read_response()
            h.send(request("HEAD", target))
            head = h.read_response("HEAD")
        strip = lambda r: [(n, v) for n, v in r.headers if n != "Date"]  # noqa: E731
        if target in ("/?size=1000", "/healthz"):
            assert strip(get) == strip(head), (target, get, head)
        else:
            # The echoed head (or the JSON object naming the method) of
            # HEAD is one byte longer than GET's: "HEAD" vs "GET".
            assert int(head.get("Content-Length")) == int(get.get("Content-Length")) + 1
            no_len = lambda r: [(n, v) for n, v in strip(r) if n != "Content-Length"]  # noqa: E731
            assert no_len(get) == no_len(head), (target, get, head)
        assert head.status == get.status


def test_head_method_sends_no_body(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("HEAD", "/?size=5000") + request("GET", "/after"))
        head = h.read_response("HEAD")
        assert head.get("Content-Length") == "5000"
        # The next bytes are the next response's status line: no body came.
        nxt = h.read_response()
        assert nxt.status == 200 and nxt.body.startswith(b"GET /after ")


def test_head_with_body_discards_it(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("HEAD", "/", body=b"x" * 3000) + request("GET", "/next"))
        head = h.read_response("HEAD")
        assert head.status == 200
        assert h.read_response().body.startswith(b"GET /next ")


def test_required_headers_on_every_kind_of_response(srv):
    addr = srv.addr_of("http")
    cases = [request("GET", "/"), request("POST", "/", body=b"x"),
             request("POST", "/", headers=[("Transfer-Encoding", "chunked")], body=chunked(b"x")),
             request("GET", "/?status=500"), request("GET", "/?status=204"),
             request("GET", "/?status=304"), request("GET", "/?format=json"),
             request("GET", "/healthz"), request("GET", "/readyz"), request("GET", "/stats"),
             request("GET", "/metrics"), request("GET", "/?status=x"), b"BAD\r\n\r\n"]
    for raw in cases:
        resp = exchange(addr, raw)
        check_required(resp)
        assert resp.get("X-Content-Type-Options") == "nosniff"


def test_no_request_chooses_a_rendered_content_type(srv):
    addr = srv.addr_of("http")
    for raw in [request("GET", "/x.html", headers=[("Accept", "text/html")]),
                request("POST", "/", headers=[("Content-Type", "text/html")], body=b"<b>x</b>"),
                request("GET", "/?header=Content-Type:text/html")]:
        resp = exchange(addr, raw)
        ct = resp.get("Content-Type")
        assert ct is None or "html" not in ct, resp
        assert resp.all("Content-Type") == [ct] if ct else True


def test_unix_and_ipv6_http_listeners(echod_factory):
    from conftest import ipv6_available
    kinds = ["127.0.0.1", "http://unix"] + (["http://[::1]"] if ipv6_available() else [])
    srv = echod_factory(listen=kinds)
    for addr in srv.listen[1:]:
        with HttpConn(addr) as h:
            h.send(request("GET", "/?format=json") + request("POST", "/", body=b"u"))
            j = json.loads(h.read_response().body)
            assert j["listener"] == addr, (j, addr)
            assert h.read_response().body == b"u"


def test_date_is_now(srv):
    import calendar
    import time
    from email.utils import parsedate
    for _ in range(3):
        resp = exchange(srv.addr_of("http"), request("GET", "/"))
        when = calendar.timegm(parsedate(resp.get("Date")))
        assert abs(when - time.time()) <= 2, resp.get("Date")
        time.sleep(0.6)
