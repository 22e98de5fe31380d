"""http:// listeners: the query-string controls (http.md, "Controls in the
query string"): status, delay, size, close, header, format=json, and a 400
(or 413) for each bad value.
"""

import json
import time

import pytest

from conftest import bound
from http_util import (HttpConn, check_error, check_required, chunked, exchange, request)


@pytest.fixture
def srv(echod_factory):
    return echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), max_frame_size=100000,
                         http_max_delay=2)


def get(srv, target, **kw):
    return exchange(srv.addr_of("http"), request("GET", target, **kw))


@pytest.mark.parametrize("status", [200, 201, 302, 404, 418, 500, 503, 599])
def test_status(srv, status):
    resp = get(srv, f"/s?status={status}")
    assert resp.status == status
    check_required(resp)
    # The body is still the head echo.
    assert resp.body.startswith(b"GET /s?status=")


@pytest.mark.parametrize("status", [204, 304])
def test_status_without_body(srv, status):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", f"/?status={status}") + request("GET", "/next"))
        resp = h.read_response()
        assert resp.status == status
        # RFC 9110 8.6 / 15.4.5: no Content-Length or Transfer-Encoding on a
        # 204 (and none on this 304): the response ends with its head.
        assert resp.get("Transfer-Encoding") is None
        assert resp.get("Content-Length") is None
        assert resp.get("Date") and resp.get("X-Content-Type-Options") == "nosniff"
        nxt = h.read_response()
        assert nxt.status == 200 and nxt.body.startswith(b"GET /next HTTP/1.1")


@pytest.mark.parametrize("value", ["199", "600", "99", "2000", "abc", "", "20a", "-200",
                                   "+200", "%32%30"])
def test_bad_status(srv, value):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", f"/?status={value}"))
        if value == "%32%30":   # decodes to "20": out of range
            check_error(h, 400)
        else:
            check_error(h, 400, reason="status")


def test_delay_delays_the_response(srv):
    t0 = time.monotonic()
    resp = get(srv, "/?delay=400")
    elapsed = time.monotonic() - t0
    assert resp.status == 200
    assert elapsed >= 0.39, elapsed


def test_delay_holds_back_the_head_too(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/?delay=600"))
        assert h.still_open(0.3), "bytes came before the delay ended"
        assert h.read_response().status == 200


def test_delay_does_not_hold_other_connections(echod_factory):
    # One worker: a delay that blocked it would hold the other client too.
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), workers=1)
    addr = srv.addr_of("http")
    with HttpConn(addr) as slow:
        slow.send(request("GET", "/?delay=1500"))
        t0 = time.monotonic()
        for _ in range(5):
            assert exchange(addr, request("GET", "/fast")).status == 200
        fast = time.monotonic() - t0
        assert slow.still_open(0.01)
        resp = slow.read_response()
        slow_elapsed = time.monotonic() - t0
        assert resp.status == 200
    assert fast < slow_elapsed, (fast, slow_elapsed)
    assert fast < 1.4 or bound(1) > 1, fast


def test_pipelined_requests_wait_behind_a_delay(srv):
    with HttpConn(srv.addr_of("http")) as h:
        t0 = time.monotonic()
        h.send(request("GET", "/first?delay=500") + request("GET", "/second")
               + request("POST", "/third", body=b"body3"))
        r1 = h.read_response()
        t1 = time.monotonic() - t0
        r2 = h.read_response()
        r3 = h.read_response()
        assert t1 >= 0.49, t1
        assert r1.body.startswith(b"GET /first?delay=500 ")
        assert r2.body.startswith(b"GET /second ")
        assert r3.body == b"body3"


def test_delay_with_status(srv):
    resp = get(srv, "/?delay=100&status=503")
    assert resp.status == 503


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "", "2001", "99999999999999999999999"])
def test_bad_delay(srv, value):
    # http_max_delay = 2 s: 2001 ms is over it.
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", f"/?delay={value}"))
        check_error(h, 400, reason="delay")


def test_delay_zero_and_max(srv):
    assert get(srv, "/?delay=0").status == 200
    t0 = time.monotonic()
    assert get(srv, "/?delay=2000").status == 200
    assert time.monotonic() - t0 >= 1.99


def test_delays_off(echod_factory):
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), http_max_delay=0)
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/?delay=1"))
        check_error(h, 400)
    assert get(srv, "/?delay=0").status == 200


def test_size(srv):
    resp = get(srv, "/?size=5000")
    assert resp.status == 200
    assert resp.get("Content-Length") == "5000"
    assert resp.get("Content-Type") == "application/octet-stream"
    assert len(resp.body) == 5000
    check_required(resp)


def test_size_zero_and_max(srv):
    assert get(srv, "/?size=0").body == b""
    assert len(get(srv, "/?size=100000").body) == 100000


def test_size_discards_the_request_body(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("POST", "/?size=10", body=b"Z" * 50000)
               + request("POST", "/?size=7", headers=[("Transfer-Encoding", "chunked")],
                         body=chunked(b"Y" * 3000, b"Y" * 10))
               + request("GET", "/after"))
        r1 = h.read_response()
        r2 = h.read_response()
        r3 = h.read_response()
        assert len(r1.body) == 10 and b"Z" not in r1.body
        assert len(r2.body) == 7 and b"Y" not in r2.body
        assert not r2.chunked
        assert r3.body.startswith(b"GET /after ")


def test_size_over_max_frame_size_is_413(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/?size=100001"))
        check_error(h, 413)
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/?size=999999999999999999999999999"))
        check_error(h, 413)


@pytest.mark.parametrize("value", ["abc", "-1", "", "1e3", "0x10"])
def test_bad_size(srv, value):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", f"/?size={value}"))
        check_error(h, 400, reason="size")


def test_close(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/?close=1"))
        resp = h.read_response()
        assert resp.status == 200 and resp.get("Connection") == "close"
        h.expect_close()


def test_close_zero_keeps_the_connection(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/?close=0"))
        assert h.read_response().get("Connection") is None
        h.send(request("GET", "/again"))
        assert h.read_response().status == 200


def test_close_drops_pipelined_requests_behind_it(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/?close=1") + request("GET", "/never"))
        assert h.read_response().get("Connection") == "close"
        h.expect_close()


@pytest.mark.parametrize("value", ["2", "yes", "", "true"])
def test_bad_close(srv, value):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", f"/?close={value}"))
        check_error(h, 400, reason="close")


def test_header(srv):
    resp = get(srv, "/?header=X-One:1&header=X-Two:two%20words&header=X-One:again"
               "&header=Cache-Control:no-store")
    assert resp.status == 200
    assert resp.all("X-One") == ["1", "again"]
    assert resp.get("X-Two") == "two words"
    assert resp.get("Cache-Control") == "no-store"
    check_required(resp)


def test_header_with_tab_and_empty_value(srv):
    resp = get(srv, "/?header=X-T:a%09b&header=X-E:")
    assert resp.get("X-T") == "a\tb"
    assert resp.get("X-E") == ""


@pytest.mark.parametrize("value", ["Content-Length:5", "Transfer-Encoding:chunked",
                                   "Connection:close", "Date:x", "content-length:5",
                                   "CONNECTION:keep-alive", "Content-Type:text/html"])
def test_header_forbidden_names(srv, value):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", f"/?header={value}"))
        check_error(h, 400, reason="header")


@pytest.mark.parametrize("value", ["NoColon", ":v", "Bad%20Name:v", "X-A:%01", "X-A:%0d%0aX-B:c",
                                   "X-A:%7f", "X(a):v", "X-A:%zz"])
def test_header_bad_values(srv, value):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", f"/?header={value}"))
        check_error(h, 400, reason="header")


def test_unknown_keys_ignored(srv):
    resp = get(srv, "/?foo=bar&status2=999&x&=&&size_=abc")
    assert resp.status == 200 and resp.body.startswith(b"GET /?foo=bar")


def test_format_json_fields(srv):
    h_addr = srv.addr_of("http")
    raw = (b"GET /p/q?format=json&a=%20b HTTP/1.1\r\nHost: j\r\nX-Dup: 1\r\n"
           b"x-dup:  2 \r\nX-Latin: caf\xe9\r\n\r\n")
    with HttpConn(h_addr) as h:
        h.send(raw)
        resp = h.read_response()
        local = "%s:%d" % h.sock.getpeername()
        remote = "%s:%d" % h.sock.getsockname()
    assert resp.status == 200
    assert resp.get("Content-Type") == "application/json"
    check_required(resp)
    j = json.loads(resp.body)
    assert j["method"] == "GET"
    assert j["target"] == "/p/q?format=json&a=%20b"
    assert j["path"] == "/p/q"
    assert j["query"] == "format=json&a=%20b"
    assert j["version"] == "HTTP/1.1"
    assert j["headers"] == [["Host", "j"], ["X-Dup", "1"], ["x-dup", "2"], ["X-Latin", "caf\xe9"]]
    assert j["remote"] == remote
    assert j["listener"] == "http://" + local == "http://" + srv.addr_of("http").split("://")[1]
    assert isinstance(j["worker"], int) and 0 <= j["worker"] < 2
    assert j["body_bytes"] == 0


def test_format_json_counts_the_body(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("POST", "/?format=json", body=b"q" * 12345) + request("GET", "/next"))
        resp = h.read_response()
        j = json.loads(resp.body)
        assert j["body_bytes"] == 12345 and j["method"] == "POST"
        assert b"qq" not in resp.body
        assert resp.get("Content-Length") == str(len(resp.body))
        assert h.read_response().body.startswith(b"GET /next ")


def test_format_json_with_chunked_body_answers_chunked(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("POST", "/?format=json", headers=[("Transfer-Encoding", "chunked")],
                       body=chunked(b"a" * 100, b"b" * 23)))
        resp = h.read_response()
        assert resp.chunked
        j = json.loads(resp.body)
        assert j["body_bytes"] == 123
        assert j["headers"][-1] == ["Transfer-Encoding", "chunked"]


def test_format_json_http10(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(b"GET /?format=json HTTP/1.0\r\n\r\n")
        resp = h.read_response()
        j = json.loads(resp.body)
        assert j["version"] == "HTTP/1.0" and j["headers"] == []
        h.expect_close()


def test_format_other_is_ignored(srv):
    resp = get(srv, "/?format=xml")
    assert resp.get("Content-Type") == "text/plain"


def test_controls_combined(srv):
    resp = get(srv, "/?status=201&size=3&header=X-K:v&close=1")
    assert resp.status == 201 and len(resp.body) == 3
    assert resp.get("X-K") == "v" and resp.get("Connection") == "close"


def test_delay_after_100_continue(srv):
    with HttpConn(srv.addr_of("http")) as h:
        t0 = time.monotonic()
        h.send(request("POST", "/?delay=400", headers=[("Expect", "100-continue"),
                                                        ("Content-Length", "3")]))
        assert h.read_head()[1] == 100
        h.send(b"abc")
        resp = h.read_response()
        assert resp.body == b"abc" and time.monotonic() - t0 >= 0.39


def test_delay_longer_than_read_and_idle_timeouts(echod_factory):
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), read_timeout=0.3,
                        idle_timeout=0.3, http_max_delay=2)
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/?delay=900"))
        resp = h.read_response()
        assert resp.status == 200


def test_delayed_request_answered_after_half_close(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/?delay=300") + request("GET", "/second"))
        h.shutdown_write()
        assert h.read_response().status == 200
        assert h.read_response().body.startswith(b"GET /second ")
        h.expect_close()


def test_status_1xx_is_refused(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/?status=101"))
        check_error(h, 400)


def test_too_many_added_headers(srv):
    q = "&".join(f"header=X-H{i}:" + "v" * 60 for i in range(40))
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/?" + q))
        check_error(h, 400, reason="too long")


def test_format_json_of_a_big_head(echod_factory):
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), http_max_header_size=65536)
    hdrs = [(f"X-H{i}", "v" * 200) for i in range(250)]
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/?format=json", headers=hdrs))
        resp = h.read_response()
        if resp.status == 200:
            assert len(json.loads(resp.body)["headers"]) == 251
        else:
            assert resp.status == 431 and resp.get("Connection") == "close"
