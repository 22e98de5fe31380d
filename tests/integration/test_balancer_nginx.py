"""nginx 1.22 (Debian 12) in front of three echod instances, run from the
shipped config/nginx/*.conf with the test's ports (foreground, no master
process, prefix in a temp dir; stopped by PID).

stream over framed instances: echobench's load spreads over all three
(STATS of each); SIGKILL of one costs at most the requests in flight on it;
a rolling restart costs at most what the drained connections had in flight
and no connect fails (nginx passes a refused connect to the next instance).
stream over raw instances: the spread. http with upstream keep-alive over
http instances: the spread, far fewer upstream connections than requests,
and a rolling restart that loses no request (waiting the shipped
fail_timeout after each instance is back, as nginx has no active check).
The raw and http tests skip on an echod without raw:// or http:// listeners.
"""

import time

import pytest

from balancers import (Balancer, HttpLoad, Pool, echobench, echobench_result, free_port,
                       require_listener, wait_until)
from conftest import bound

STREAM_CONF = "config/nginx/echod-stream.conf"
HTTP_CONF = "config/nginx/echod-http.conf"
CONNS = 12
# The shipped fail_timeout: how long nginx leaves out an instance that
# refused a connect. A rolling restart waits that long (and a margin) after
# each instance is back, as the configs tell an operator to.
FAIL_TIMEOUT = 1.0


def stream_balancer(framed_ports=None, raw_ports=None):
    """nginx from echod-stream.conf: framed front and instances, raw front
    and instances (ports of nothing where a test does not use one side)."""
    framed_front, raw_front = free_port(), free_port()
    framed_ports = framed_ports or [free_port() for _ in range(3)]
    raw_ports = raw_ports or [free_port() for _ in range(3)]
    addrs = ([f"127.0.0.1:{p}" for p in framed_ports] + [f"127.0.0.1:{p}" for p in raw_ports]
             + [f"127.0.0.1:{framed_front}", f"127.0.0.1:{raw_front}"])
    b = Balancer("nginx", STREAM_CONF, addrs, framed_front)
    b.framed_port, b.raw_port = framed_front, raw_front
    return b


@pytest.fixture
def framed_setup(echod_factory):
    pool = Pool(echod_factory, 3)
    ngx = stream_balancer(framed_ports=pool.ports)
    try:
        yield pool, ngx
    finally:
        ngx.stop()


def test_stream_framed_traffic_spreads_over_all_three(framed_setup):
    pool, ngx = framed_setup
    r = echobench_result(echobench(ngx.framed_port, duration=2, conns=CONNS), bound(30))
    per = pool.requests()
    print(f"\nnginx stream framed, {CONNS} connections, 2 s: {r['requests']} ok, "
          f"{r['errors']['total']} failed; per instance (STATS) {per}")
    assert r["errors"]["total"] == 0, r["errors"]
    assert sum(per) >= r["requests"] > 0
    assert all(n >= sum(per) / 6 for n in per), per


def test_stream_framed_sigkill_costs_at_most_the_requests_in_flight(framed_setup):
    pool, ngx = framed_setup
    depth = 2
    bench = echobench(ngx.framed_port, "-P", str(depth), duration=4, conns=CONNS)
    wait_until("load on instance 2", lambda: pool.connections_current(1) > 0)
    time.sleep(1.0)
    held = pool.connections_current(1)
    pool.kill(1)
    r = echobench_result(bench, bound(30))
    e = r["errors"]
    print(f"\nnginx stream framed, SIGKILL of 1 of 3 ({CONNS} connections, pipeline {depth}): "
          f"{r['totals']['issued']} sent, {r['requests']} ok, {e['total']} failed "
          f"(reset {e['reset']}, closed {e['closed']}); it held {held} connections")
    assert e["total"] <= held * depth, e
    assert e["mismatch"] == 0 and e["connect_refused"] == 0 and e["timeout"] == 0, e


def test_stream_framed_rolling_restart_costs_at_most_what_the_drain_closed(framed_setup):
    pool, ngx = framed_setup
    lines = []
    for i in range(3):
        bench = echobench(ngx.framed_port, duration=3.5, conns=CONNS)
        wait_until(f"load on instance {i + 1}", lambda: pool.connections_current(i) > 0)
        time.sleep(0.5)
        held = pool.restart(i)
        time.sleep(FAIL_TIMEOUT + 0.5)
        r = echobench_result(bench, bound(30))
        e = r["errors"]
        lines.append(f"instance {i + 1}: {r['totals']['issued']} sent, {e['total']} failed "
                     f"(closed {e['closed']}, reset {e['reset']}, "
                     f"503 {e['error_frames'].get('503', 0)}); it held {held} connections")
        assert e["total"] <= held, e       # pipeline 1: one in flight per connection
        assert e["connect_refused"] == 0 and e["mismatch"] == 0 and e["timeout"] == 0, e
    print("\nnginx stream framed rolling restart:\n  " + "\n  ".join(lines))


def test_stream_raw_traffic_spreads_over_all_three(echod_factory):
    require_listener("raw")
    pool = Pool(echod_factory, 3, scheme="raw")
    ngx = stream_balancer(raw_ports=pool.ports)
    try:
        r = echobench_result(echobench(ngx.raw_port, "--proto", "raw", duration=2, conns=CONNS),
                             bound(30))
    finally:
        ngx.stop()
    per = pool.requests()
    print(f"\nnginx stream raw: {r['requests']} ok, {r['errors']['total']} failed; "
          f"per instance (STATS, chunks) {per}")
    assert r["errors"]["total"] == 0 and r["requests"] > 0, r["errors"]
    assert all(n > 0 for n in per), per


@pytest.fixture
def http_setup(echod_factory):
    require_listener("http")
    pool = Pool(echod_factory, 3, scheme="http")
    front = free_port()
    ngx = Balancer("nginx", HTTP_CONF, [f"127.0.0.1:{p}" for p in pool.ports] +
                   [f"127.0.0.1:{front}"], front)
    try:
        yield pool, ngx, front
    finally:
        ngx.stop()


def test_http_spreads_and_keeps_upstream_connections_alive(http_setup):
    pool, ngx, front = http_setup
    with HttpLoad(front) as load:
        time.sleep(2)
    per = pool.requests()
    conns = [pool.stats_of(i)["connections_total"] for i in range(3)]
    print(f"\nnginx http: {load.sent} sent, {len(load.failed)} failed; per instance {per}; "
          f"connections per instance {conns}")
    assert not load.failed, load.failed[:5]
    assert all(n >= load.sent / 6 for n in per), per
    # Keep-alive upstream: far fewer connections than requests.
    assert sum(conns) < load.sent / 10, (conns, load.sent)


def test_http_rolling_restart_loses_no_request(http_setup):
    pool, ngx, front = http_setup
    lines = []
    for i in range(3):
        with HttpLoad(front) as load:
            time.sleep(0.5)
            held = pool.restart(i)
            time.sleep(FAIL_TIMEOUT + 0.5)
        lines.append(f"instance {i + 1}: {load.sent} sent, {len(load.failed)} failed "
                     f"(it held {held} connections)")
        assert not load.failed, (len(load.failed), load.failed[:1], ngx.log()[-2000:])
    print("\nnginx http rolling restart:\n  " + "\n  ".join(lines))
