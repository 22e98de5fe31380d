"""HAProxy 2.6 (Debian 12) in front of three echod instances, run from the
shipped config/haproxy/*.cfg with the test's ports.

TCP mode over framed instances (config/haproxy/echod-tcp.cfg): the
tcp-check (PING frame out, PING frame back) sees all three UP and a dead
one DOWN; echobench's load spreads over all three (STATS of each instance,
HAProxy's own session counts); SIGKILL of one costs at most the requests in
flight on it; a rolling restart (SIGTERM each in turn, wait for its exit,
start it again on the same port) under steady load costs at most what the
drained connections had in flight, and no connect ever fails. TCP mode
cannot do better: a framed connection lives on one instance, and the drain
closes it after answering what it had read, so requests the client had sent
and the instance had not read are lost with it (the figures are printed).

HTTP mode over http instances (config/haproxy/echod-http.cfg, `option
httpchk GET /readyz`): the rolling restart loses nothing, because /readyz
turns 503 when the drain starts and HAProxy takes the instance out before
its connections close. Skipped while echod has no http listener.
"""

import signal
import time

import pytest

from balancers import (Balancer, HttpLoad, Pool, echobench, echobench_result, free_port,
                       require_listener, wait_until)
from conftest import bound

TCP_CFG = "config/haproxy/echod-tcp.cfg"
HTTP_CFG = "config/haproxy/echod-http.cfg"
TCP_BACKEND = "echod_framed"
HTTP_BACKEND = "echod_http"
CONNS = 12


@pytest.fixture
def tcp_setup(echod_factory):
    pool = Pool(echod_factory, 3)
    port = free_port()
    hap = Balancer("haproxy", TCP_CFG, [f"127.0.0.1:{port}"] +
                   [f"127.0.0.1:{p}" for p in pool.ports], port)
    try:
        hap.wait_all_up(TCP_BACKEND, 3)
        yield pool, hap, port
    finally:
        hap.stop()


def sessions(hap, backend):
    """HAProxy's total sessions per server (stot), in server order."""
    s = hap.servers(backend)
    return [int(s[name]["stot"]) for name in sorted(s)]


def test_tcp_check_marks_a_dead_instance_down_and_a_restarted_one_up(tcp_setup):
    pool, hap, port = tcp_setup
    pool.kill(1)
    hap.wait_servers(TCP_BACKEND, lambda s: s["echod2"]["status"].startswith("DOWN"),
                     "echod2 DOWN")
    # The check is real: it got no PING reply (L4 refused or L7 timeout).
    assert hap.servers(TCP_BACKEND)["echod1"]["status"] == "UP"
    pool.start_again(1)
    hap.wait_all_up(TCP_BACKEND, 3)


def test_tcp_traffic_spreads_over_all_three(tcp_setup):
    pool, hap, port = tcp_setup
    r = echobench_result(echobench(port, duration=2, conns=CONNS), bound(30))
    per = pool.requests()
    stot = sessions(hap, TCP_BACKEND)
    print(f"\nHAProxy tcp, {CONNS} connections, 2 s: {r['requests']} requests ok, "
          f"{r['errors']['total']} failed; per instance (STATS) {per}; "
          f"HAProxy sessions per server {stot}")
    assert r["errors"]["total"] == 0, r["errors"]
    assert r["requests"] > 0
    # leastconn puts 4 connections on each; every instance served a fair part.
    total = sum(per)
    assert total >= r["requests"], (per, r["requests"])
    for n in per:
        assert n >= total / 6, per
    assert all(s >= CONNS // 3 for s in stot), stot


def test_tcp_sigkill_of_one_instance_costs_at_most_its_requests_in_flight(tcp_setup):
    pool, hap, port = tcp_setup
    depth = 2
    bench = echobench(port, "-P", str(depth), duration=4, conns=CONNS)
    wait_until("load on instance 2", lambda: pool.connections_current(1) > 0)
    time.sleep(1.0)
    held = pool.connections_current(1)
    pool.kill(1)
    r = echobench_result(bench, bound(30))
    e = r["errors"]
    status = hap.servers(TCP_BACKEND)["echod2"]["status"]
    print(f"\nHAProxy tcp, SIGKILL of 1 of 3 under load ({CONNS} connections, pipeline {depth}): "
          f"{r['totals']['issued']} sent, {r['requests']} ok, {e['total']} failed "
          f"(reset {e['reset']}, closed {e['closed']}, timeout {e['timeout']}); "
          f"the killed instance held {held} connections, at most {held * depth} requests "
          f"in flight; HAProxy has it {status}")
    assert e["total"] <= held * depth, e
    assert e["mismatch"] == 0 and e["connect_refused"] == 0, e
    assert status.startswith("DOWN")
    # The load went on over the two left.
    assert r["requests"] > 0


def test_tcp_rolling_restart_costs_at_most_what_the_drain_closed(tcp_setup):
    """SIGTERM each instance in turn under steady load, wait for its exit,
    start it again on the same port, wait until HAProxy has it UP. One
    echobench run per instance, so sent and failed are per instance."""
    pool, hap, port = tcp_setup
    depth = 1
    lines = []
    total_failed = 0
    for i in range(3):
        before = pool.requests()
        bench = echobench(port, "-P", str(depth), duration=3, conns=CONNS)
        wait_until(f"load on instance {i + 1}", lambda: pool.connections_current(i) > 0)
        time.sleep(0.5)
        held = pool.restart(i)
        hap.wait_all_up(TCP_BACKEND, 3)
        r = echobench_result(bench, bound(30))
        e = r["errors"]
        served = [a - b for a, b in zip(pool.requests(), before)]
        lines.append(f"instance {i + 1}: {r['totals']['issued']} sent, {e['total']} failed "
                     f"(closed {e['closed']}, reset {e['reset']}, 503 "
                     f"{e['error_frames'].get('503', 0)}, connect {e['connect_refused']}); "
                     f"it held {held} connections; served per instance {served}")
        # What a drain can cost in TCP mode: the requests in flight on the
        # connections it closed; never a connect (HAProxy retries those).
        assert e["total"] <= held * depth, e
        assert e["connect_refused"] == 0 and e["connect_other"] == 0 and e["mismatch"] == 0, e
        assert e["timeout"] == 0, e
        total_failed += e["total"]
    stat = hap.servers(TCP_BACKEND)
    lines.append("HAProxy per server: " + "; ".join(
        f"{n} sessions {r['stot']}, connect errors {r['econ']}, response errors {r['eresp']}, "
        f"retries {r['wretr']}, redispatches {r['wredis']}" for n, r in sorted(stat.items())))
    print("\nHAProxy tcp rolling restart:\n  " + "\n  ".join(lines))
    for r in stat.values():
        assert r["status"] == "UP"


# -- HTTP mode: ready for echod's http listener


@pytest.fixture
def http_setup(echod_factory):
    require_listener("http")
    # drain_delay: three check intervals of /readyz 503 before the listeners
    # close (scaled like every bound, since checks slow down with the daemon).
    pool = Pool(echod_factory, 3, scheme="http", drain_delay=bound(1.5))
    port = free_port()
    hap = Balancer("haproxy", HTTP_CFG, [f"127.0.0.1:{port}"] +
                   [f"127.0.0.1:{p}" for p in pool.ports], port)
    try:
        hap.wait_all_up(HTTP_BACKEND, 3)
        yield pool, hap, port
    finally:
        hap.stop()


def test_http_traffic_spreads_over_all_three(http_setup):
    pool, hap, port = http_setup
    with HttpLoad(port) as load:
        time.sleep(2)
    per = pool.requests()
    print(f"\nHAProxy http: {load.sent} sent, {len(load.failed)} failed; per instance {per}")
    assert not load.failed, load.failed[:5]
    assert all(n >= load.sent / 6 for n in per), per


def test_http_readyz_takes_a_stopping_instance_out_while_it_still_serves(http_setup):
    """With drain_delay, SIGTERM turns /readyz 503 while the listeners stay
    open: HAProxy marks the instance DOWN on the 503 itself (L7STS), not on
    a refused connect, and before the instance has stopped serving."""
    pool, hap, port = http_setup
    e = pool.instances[0]
    e.send_signal(signal.SIGTERM)
    e.wait_log(r"/readyz answers 503")
    down = wait_until("echod1 DOWN",
                      lambda: hap.servers(HTTP_BACKEND)["echod1"]["status"].startswith("DOWN"),
                      bound(5))
    row = hap.servers(HTTP_BACKEND)["echod1"]
    assert e.running(), f"the instance exited before HAProxy took it out: {row}; {e.log()}"
    assert row["check_status"] == "L7STS" and row["check_code"] == "503", row
    print(f"\nechod1 DOWN by /readyz: check {row['check_status']} {row['check_code']}")
    assert e.wait_exit(bound(10)) == 0
    assert down


def test_http_rolling_restart_loses_no_request(http_setup):
    pool, hap, port = http_setup
    lines = []
    total_sent = 0
    for i in range(3):
        with HttpLoad(port) as load:
            time.sleep(0.5)
            held = pool.restart(i)
            hap.wait_all_up(HTTP_BACKEND, 3)
            time.sleep(0.5)
        lines.append(f"instance {i + 1}: {load.sent} sent, {len(load.failed)} failed "
                     f"(it held {held} connections)")
        if load.failed:
            print(hap.log())
        assert not load.failed, load.failed[:5]
        total_sent += load.sent
    stat = hap.servers(HTTP_BACKEND)
    lines.append("HAProxy per server: " + "; ".join(
        f"{n} requests {r['stot']}, 5xx {r['hrsp_5xx']}, connect errors {r['econ']}, "
        f"response errors {r['eresp']}, retries {r['wretr']}" for n, r in sorted(stat.items())))
    print("\nHAProxy http rolling restart:\n  " + "\n  ".join(lines))
    for r in stat.values():
        # A response error (a connection the drain closed under a request)
        # is one HAProxy retried elsewhere: the client never saw it.
        assert int(r["hrsp_5xx"]) == 0 and int(r["eresp"]) <= int(r["wretr"]), r
    # What clients got, by HAProxy's count: no 5xx, and a 2xx for every
    # request the load counted (stats are updated as each stream ends).
    front = hap.show_stat()[(HTTP_BACKEND, "FRONTEND")]
    assert int(front["hrsp_5xx"]) == 0, front
    assert int(front["hrsp_2xx"]) >= 0.99 * total_sent, (front["hrsp_2xx"], total_sent)
