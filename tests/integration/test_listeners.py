"""Listeners of every kind serve the same protocol: IPv4, IPv6 ([::1]) and
unix-socket paths, alone or together; and netcat-openbsd (`nc -N`) works as
a real client."""

import os
import shutil
import subprocess

import pytest

from conftest import Client, bound, frame, ipv6_available, parse_address, pattern

needs_ipv6 = pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
NC = shutil.which("nc.openbsd") or ("/bin/nc.openbsd" if os.path.exists("/bin/nc.openbsd") else None)
needs_nc = pytest.mark.skipif(NC is None, reason="netcat-openbsd is not installed")


def serves(addr):
    with Client.connect(addr) as c:
        c.ping()
        payload = pattern(70000, seed=4)
        assert c.request("E", payload) == ("E", payload)
        assert c.request("S")[0] == "S"


@needs_ipv6
def test_ipv6_listener(echod_factory):
    d = echod_factory(listen=["[::1]"])
    assert d.addr.startswith("[::1]:")
    serves(d.addr)


def test_unix_listener(echod_factory):
    d = echod_factory(listen=["unix"])
    assert d.addr.startswith("unix:/")
    serves(d.addr)


def test_unix_listener_pipelining_and_shutdown(echod_factory):
    d = echod_factory(listen=["unix"])
    data = b"".join(frame("E", pattern(i, seed=i)) for i in range(500))
    with Client.connect(d.addr) as c:
        assert c.exchange(data) == data


@needs_ipv6
def test_every_kind_at_once(echod_factory):
    d = echod_factory(listen=["127.0.0.1", "[::1]", "unix"])
    kinds = [parse_address(a)[0] for a in d.listen]
    assert len(set(kinds)) == 3
    for a in d.listen:
        serves(a)
    # One STATS view over all of them.
    clients = [d.connect(a) for a in d.listen]
    for c in clients:
        c.ping()
    d.wait_stats(lambda s: s["connections_current"] == 4, what="3 clients + STATS")


def test_two_ipv4_listeners(echod_factory):
    d = echod_factory(listen=["127.0.0.1", "127.0.0.1"])
    assert d.listen[0] != d.listen[1]
    for a in d.listen:
        serves(a)


def nc(args, data):
    return subprocess.run([NC, "-N", *args], input=data, capture_output=True,
                          timeout=bound(10))


@needs_nc
def test_nc_echo_with_printf(echod):
    # The README's example, as a user would type it.
    r = subprocess.run(["/bin/sh", "-c",
                        f"printf 'E\\000\\000\\000\\005hello' | {NC} -N 127.0.0.1 {echod.port}"],
                       capture_output=True, timeout=bound(10))
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"E\x00\x00\x00\x05hello"


@needs_nc
def test_nc_pipelined_requests(echod):
    data = frame("P") + frame("E", b"via netcat") + frame("S")
    r = nc(["127.0.0.1", str(echod.port)], data)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith(frame("P") + frame("E", b"via netcat") + b"S")
    assert out.endswith(b"}")


@needs_nc
def test_nc_over_a_unix_socket(echod_factory):
    d = echod_factory(listen=["unix"])
    path = parse_address(d.addr)[1]
    r = nc(["-U", path], frame("E", b"unix"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == frame("E", b"unix")


@needs_nc
def test_nc_large_echo(echod):
    data = frame("E", pattern(5 << 20, seed=8))
    r = nc(["127.0.0.1", str(echod.port)], data)
    assert r.returncode == 0, r.stderr
    assert r.stdout == data
