"""drain_delay: at SIGTERM, /readyz answers 503 while the listeners stay open
and every request is still served, so a load balancer's health check takes
the instance out before a connection is refused; then the usual drain. A
second signal skips the wait; drain_delay = 0 (the default) drains at once."""

import signal
import socket
import time

import pytest

from conftest import Client, bound


def http_get(addr, path):
    """(status, body) of one GET on a new connection."""
    with Client.connect(addr) as c:
        c.send(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        raw = c.read_all()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_readyz_turns_503_while_listeners_still_serve(echod_factory):
    d = echod_factory(listen=("http://127.0.0.1", "127.0.0.1"), drain_delay=1.5, drain_timeout=2)
    http, framed = d.addr_of("http"), d.addr_of("framed")
    assert http_get(http, "/readyz") == (200, b"ready")
    start = time.monotonic()
    d.send_signal(signal.SIGTERM)
    d.wait_log(r"/readyz answers 503; draining in 1\.5 s")
    # During the delay: not ready, but everything is still served, also on
    # new connections and on the framed listener.
    assert http_get(http, "/readyz") == (503, b"draining")
    assert http_get(http, "/healthz") == (200, b"ok")
    status, body = http_get(http, "/still-served")
    assert status == 200 and body.startswith(b"GET /still-served HTTP/1.1\r\n")
    with Client.connect(framed) as c:
        c.ping()
    assert time.monotonic() - start < 1.5, "the checks above took longer than the delay"
    # Then the drain: listeners close and the daemon exits 0.
    assert d.wait_exit(bound(10)) == 0
    took = time.monotonic() - start
    assert took >= 1.4, f"exited after {took:.2f} s, before drain_delay"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", d.port), timeout=2).close()


def test_a_second_signal_skips_the_delay(echod_factory):
    d = echod_factory(listen=("http://127.0.0.1", "127.0.0.1"), drain_delay=30, drain_timeout=2)
    start = time.monotonic()
    d.send_signal(signal.SIGTERM)
    d.wait_log(r"draining in 30 s")
    d.send_signal(signal.SIGTERM)
    assert d.wait_exit(bound(10)) == 0
    assert time.monotonic() - start < 15


def test_no_delay_by_default(echod_factory):
    d = echod_factory(listen=("http://127.0.0.1", "127.0.0.1"))
    start = time.monotonic()
    d.send_signal(signal.SIGTERM)
    assert d.wait_exit(bound(10)) == 0
    assert time.monotonic() - start < 5
    assert "drain_delay" not in d.log()
