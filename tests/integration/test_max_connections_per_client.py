"""max_connections_per_client: one client IP address holding that many open
connections gets '!' "503 ..." and a close for the next one, while other
addresses are served; unix clients are never limited; STATS counts the
refusals in connections_rejected; a reload changes the limit, and counts
include the connections opened before it. Client addresses come from the
loopback block: 127.0.0.2 and 127.0.0.3 (bound before connect), and ::1.
STATS is asked over a unix listener, which no limit applies to."""

import socket

import pytest

from conftest import Client, IO_TIMEOUT, bound, free_port, ipv6_available, parse_address


def connect_from(d, source, addr=None):
    """A client connection to d whose source address is `source`."""
    family, sa = parse_address(addr or d.addr)
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(IO_TIMEOUT)
    try:
        s.bind((source, 0))
        s.connect(sa)
    except BaseException:
        s.close()
        raise
    c = Client(s)
    d.clients.append(c)
    return c


def served(c):
    """True if c is served (PING answered), False if it got the 503."""
    c.send_frame("P")
    t, payload = c.read_frame()
    if t == "P":
        return True
    assert t == "!" and payload.startswith(b"503 "), (t, payload)
    c.expect_eof(allow_reset=True)
    return False


def limited(echod_factory, **settings):
    """A daemon on 127.0.0.1 (its address, d.addr) and a unix socket (for STATS)."""
    d = echod_factory(listen=("127.0.0.1", "unix"), **settings)
    d.stats_addr = d.listen[1]
    return d


def stats(d):
    return d.stats(d.stats_addr)


def test_an_address_over_its_limit_gets_503_others_are_served(echod_factory):
    d = limited(echod_factory, max_connections_per_client=2)
    a = [connect_from(d, "127.0.0.2") for _ in range(2)]
    assert all(served(c) for c in a)
    extra = connect_from(d, "127.0.0.2")
    text = extra.read_error()
    # The answer names the limit that refused it, not max_connections.
    assert text == ("503 too many connections from this address: "
                    "max_connections_per_client is 2"), text
    extra.expect_eof()
    # Other addresses have their own allowance, and the held ones are untouched.
    b = [connect_from(d, "127.0.0.3") for _ in range(2)]
    assert all(served(c) for c in b)
    assert not served(connect_from(d, "127.0.0.3"))
    assert served(connect_from(d, "127.0.0.4"))
    for c in a + b:
        c.ping()
    st = stats(d)
    assert st["connections_rejected"] == 2, st
    assert st["connections_current"] == 6, st     # 2 + 2 + 1, and this one


def test_every_connection_over_the_limit_is_refused_and_counted(echod_factory):
    d = limited(echod_factory, max_connections_per_client=1)
    held = connect_from(d, "127.0.0.2")
    assert served(held)
    for _ in range(20):
        c = connect_from(d, "127.0.0.2")
        assert not served(c)
        c.close()
    held.ping()
    assert stats(d)["connections_rejected"] == 20


def test_a_client_sending_at_once_still_reads_the_503(echod_factory):
    d = limited(echod_factory, max_connections_per_client=1)
    assert served(connect_from(d, "127.0.0.2"))
    extra = connect_from(d, "127.0.0.2")
    extra.send(b"P\0\0\0\0" * 1000 + b"E\0\1\x86\xa0" + b"x" * 100000)
    extra.shutdown_write()
    got = extra.read_all()
    assert got[:1] == b"!" and got[5:9] == b"503 ", got[:80]


def test_ipv6_clients_are_limited_per_address(echod_factory):
    if not ipv6_available():
        pytest.skip("no IPv6 loopback")
    d = echod_factory(max_connections_per_client=1)
    # Added by a reload, so that no start-up check has connected to it.
    v6 = f"[::1]:{free_port('::1')}"
    offset = d.log_offset()
    d.reload(listen=d.listen + [v6])
    d.wait_log(r"configuration reloaded", since=offset)
    assert served(connect_from(d, "::1", v6))
    assert not served(connect_from(d, "::1", v6))
    # IPv4 clients are other clients.
    assert served(connect_from(d, "127.0.0.2"))


def test_unix_clients_are_not_limited(echod_factory):
    d = echod_factory(listen=("unix", "127.0.0.1"), max_connections_per_client=1)
    unix = [d.connect(d.listen[0]) for _ in range(5)]
    for c in unix:
        c.ping()
    assert served(connect_from(d, "127.0.0.2", d.listen[1]))
    assert not served(connect_from(d, "127.0.0.2", d.listen[1]))


def test_reload_changes_the_limit_and_counts_connections_already_open(echod_factory):
    d = limited(echod_factory)     # no limit
    held = [connect_from(d, "127.0.0.2") for _ in range(3)]
    assert all(served(c) for c in held)
    offset = d.log_offset()
    d.reload(max_connections_per_client=3)
    d.wait_log(r"configuration reloaded", since=offset)
    # The three opened before the limit existed count against it.
    assert not served(connect_from(d, "127.0.0.2"))
    assert served(connect_from(d, "127.0.0.3"))
    offset = d.log_offset()
    d.reload(max_connections_per_client=5)
    d.wait_log(r"configuration reloaded", since=offset)
    more = [connect_from(d, "127.0.0.2") for _ in range(2)]
    assert all(served(c) for c in more)
    assert not served(connect_from(d, "127.0.0.2"))
    offset = d.log_offset()
    d.reload(max_connections_per_client=0)
    d.wait_log(r"configuration reloaded", since=offset)
    assert all(served(connect_from(d, "127.0.0.2")) for _ in range(3))


def test_closing_frees_the_slot_at_once(echod_factory):
    d = limited(echod_factory, max_connections_per_client=2)
    # Connections opened in between, held, take the lowest free descriptor
    # numbers, so the freed ones are not simply accepted again.
    others = []
    for round_ in range(5):
        a = [connect_from(d, "127.0.0.2") for _ in range(2)]
        assert all(served(c) for c in a), f"round {round_}"
        for c in a:
            c.close()
        # The server sees the EOF and closes; then the address is free again.
        d.wait_stats(lambda st: st["connections_current"] == 1 + len(others),
                     timeout=bound(5), what="the closed connections gone", addr=d.stats_addr)
        for i in range(2):
            others.append(connect_from(d, f"127.0.1.{len(others) + 1}"))
            assert served(others[-1])
    b = [connect_from(d, "127.0.0.2") for _ in range(2)]
    assert all(served(c) for c in b)
    assert "never released" not in d.log(), d.log()
