"""http:// listeners: the reserved paths (http.md, "Reserved paths"):
/healthz, /readyz (503 during a drain), /metrics (promtool-checked, and in
agreement with STATS), /stats, and http_metrics = false.
"""

import json
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import bound
from http_util import HttpConn, check_required, exchange, request


@pytest.fixture
def srv(echod_factory):
    return echod_factory(listen=("127.0.0.1", "http://127.0.0.1"))


def get(srv, target, method="GET", **kw):
    return exchange(srv.addr_of("http"), request(method, target, **kw), method=method)


def test_healthz(srv):
    resp = get(srv, "/healthz")
    assert resp.status == 200 and resp.body == b"ok"
    assert resp.get("Content-Type") == "text/plain"
    check_required(resp)


def test_readyz(srv):
    resp = get(srv, "/readyz")
    assert resp.status == 200 and resp.body == b"ready"
    check_required(resp)


def test_reserved_query_is_not_read(srv):
    resp = get(srv, "/healthz?status=500&size=10&close=1&format=json&status=bad")
    assert resp.status == 200 and resp.body == b"ok" and resp.get("Connection") is None


def test_reserved_exact_match_only(srv):
    for target in ["/healthz/", "/Healthz", "/healthzz", "/readyz/x", "//stats", "/metrics.txt"]:
        resp = get(srv, target)
        assert resp.status == 200 and resp.body.startswith(f"GET {target} ".encode()), target


def test_reserved_paths_get_or_head_only(srv):
    resp = get(srv, "/healthz", method="POST", body=b"data")
    assert resp.body == b"data"
    raw = request("DELETE", "/stats")
    assert exchange(srv.addr_of("http"), raw).body == raw


def test_reserved_head(srv):
    for path in ["/healthz", "/readyz", "/stats", "/metrics"]:
        g = get(srv, path)
        h = get(srv, path, method="HEAD")
        assert h.status == g.status and h.body == b""
        assert h.get("Content-Type") == g.get("Content-Type")
        if path in ("/healthz", "/readyz"):
            assert h.get("Content-Length") == g.get("Content-Length")


def test_reserved_with_a_body_is_discarded(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/healthz", body=b"x" * 5000) + request("GET", "/after"))
        assert h.read_response().body == b"ok"
        assert h.read_response().body.startswith(b"GET /after ")


def test_stats_json(srv):
    with HttpConn(srv.addr_of("http")) as h:
        for _ in range(3):
            h.send(request("GET", "/x"))
            h.read_response()
        h.send(request("GET", "/stats"))
        resp = h.read_response()
    assert resp.get("Content-Type") == "application/json"
    check_required(resp)
    st = json.loads(resp.body)
    assert st["version"] and st["workers"] == 2
    assert st["requests_by_protocol"]["http"] >= 3
    # The same document as the framed STATS (protocol.md).
    framed = srv.stats()
    assert set(st) == set(framed)


def test_metrics_format_and_promtool(srv):
    for _ in range(3):
        get(srv, "/")
    get(srv, "/?status=404")
    resp = get(srv, "/metrics")
    assert resp.status == 200
    ct = resp.get("Content-Type")
    assert ct.startswith("text/plain") and "version=0.0.4" in ct, ct
    check_required(resp)
    text = resp.body.decode()
    assert "# TYPE echod_requests_total counter" in text
    assert re.search(r'^echod_http_responses_total\{code="404"\} 1$', text, re.M), text
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus): format not checked")
    p = subprocess.run([promtool, "check", "metrics"], input=resp.body, capture_output=True,
                       timeout=bound(30))
    assert p.returncode == 0, (p.stdout + p.stderr).decode()


def metric(text, name, labels=None):
    rx = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "") + r" (\S+)$"
    m = re.search("^" + rx, text, re.M)
    assert m, f"{name}{labels or ''} not in metrics"
    return float(m.group(1))


def test_metrics_agree_with_stats(echod_factory):
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), workers=1)
    addr = srv.addr_of("http")
    with HttpConn(addr) as h:
        for i in range(7):
            h.send(request("POST", "/", body=b"x" * i) if i % 2 else request("GET", "/"))
            h.read_response()
        h.send(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        h.read_response()
    with HttpConn(addr) as h:
        # On one connection, one after the other: STATS between them counts
        # nothing of its own.
        h.send(request("GET", "/stats"))
        st = json.loads(h.read_response().body)
        h.send(request("GET", "/metrics"))
        text = h.read_response().body.decode()
    # /stats was answered (counted) before /metrics rendered: one request more.
    assert metric(text, "echod_requests_total", 'proto="http"') == \
        st["requests_by_protocol"]["http"] + 1
    assert metric(text, "echod_worker_requests_total", 'worker="0"') == st["requests_total"] + 1
    assert metric(text, "echod_errors_total") == st["errors_total"] >= 1
    assert metric(text, "echod_connections_accepted_total") == st["connections_total"]
    assert metric(text, "echod_connections") == st["connections_current"]
    assert metric(text, "echod_http_responses_total", 'code="400"') == 1
    assert metric(text, "echod_workers") == st["workers"] == 1
    assert metric(text, "echod_received_bytes_total") >= st["bytes_in"]


def test_http_metrics_false_makes_them_echo_paths(echod_factory):
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), http_metrics=False)
    for path in ["/metrics", "/stats"]:
        raw = request("GET", path)
        resp = exchange(srv.addr_of("http"), raw)
        assert resp.status == 200 and resp.body == raw
    # health checks stay
    assert get(srv, "/healthz").body == b"ok"
    assert get(srv, "/readyz").body == b"ready"


# ---- drain ------------------------------------------------------------------

def test_readyz_503_during_drain_on_a_kept_alive_connection(echod_factory):
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), drain_timeout=3)
    with HttpConn(srv.addr_of("http")) as h, HttpConn(srv.addr_of("http")) as busy:
        h.send(request("GET", "/readyz"))
        assert h.read_response().body == b"ready"
        # A request in flight keeps the drain going.
        busy.send(request("POST", "/", headers=[("Content-Length", "10")]) + b"12345")
        assert busy.read_head()[1] == 200
        # The readiness probe is pipelined on the kept-alive connection
        # right behind the signal: the drain has begun when it is read.
        h.send(request("GET", "/readyz", headers=[("X-Delay", "x")])[:10])
        srv.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        # The probe begun before the drain is still finished and answered.
        h.send(request("GET", "/readyz", headers=[("X-Delay", "x")])[10:])
        resp = h.read_response()
        assert resp.status == 503 and resp.body == b"draining", resp
        assert resp.get("Connection") == "close"
        h.expect_close()
        busy.send(b"67890")
        assert busy.read_exact(10) == b"1234567890"
    assert srv.wait_exit(bound(10)) == 0


def test_drain_answers_requests_already_read_with_close(echod_factory):
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), drain_timeout=3)
    with HttpConn(srv.addr_of("http")) as h, HttpConn(srv.addr_of("http")) as idle:
        idle.send(request("GET", "/"))
        idle.read_response()
        # Three whole requests and one delayed: all in the buffer when
        # the drain starts.
        h.send(request("GET", "/a?delay=600") + request("GET", "/b") + request("GET", "/c"))
        time.sleep(0.2)
        srv.send_signal(signal.SIGTERM)
        # The idle keep-alive connection is closed without a word.
        idle.expect_close()
        r = [h.read_response() for _ in range(3)]
        for resp, p in zip(r, [b"/a", b"/b", b"/c"]):
            assert resp.status == 200 and resp.body.startswith(b"GET " + p)
            assert resp.get("Connection") == "close", resp
        h.expect_close()
    assert srv.wait_exit(bound(10)) == 0


def test_metrics_with_the_most_workers(echod_factory):
    """The worst case of the page (every counter at 20 digits, every status
    code) outgrows an output buffer long before the page does: with the
    largest worker count the config allows, /metrics is still served."""
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), workers=256)
    resp = get(srv, "/metrics")
    assert resp.status == 200, resp
    assert 'echod_worker_requests_total{worker="255"}' in resp.body.decode()
    assert json.loads(get(srv, "/stats").body)["workers"] == 256
