"""STATS counters move as the traffic says: requests_total by the number of
requests, bytes_in/out by at least the bytes moved, connections_* with the
connections, errors_total with error frames, and the per_worker entries sum
to the totals (per_worker "connections" are each worker's current ones)."""

import time

from conftest import bound, frame, header


def settle(d, current):
    """Wait until only `current` connections (counting the STATS one) are open."""
    return d.wait_stats(lambda s: s["connections_current"] == current,
                        what=f"connections_current == {current}")


def test_requests_total_grows_by_the_number_of_requests(echod):
    settle(echod, 1)
    before = echod.stats()
    c = echod.connect()
    n = 0
    c.send(frame("E", b"abc") * 50 + frame("P") * 30 + frame("X", b"q") * 5)
    for _ in range(85):
        c.read_frame()
    n += 85
    for _ in range(15):
        c.ping()
    n += 15
    after = echod.stats()
    # + 1: one of the two STATS requests falls between the snapshots.
    assert after["requests_total"] - before["requests_total"] == n + 1, (before, after)


def test_bytes_in_and_out_grow_by_at_least_the_bytes_moved(echod):
    before = echod.stats()
    c = echod.connect()
    payload = b"y" * 100000
    sent = frame("E", payload) * 3
    got = c.exchange(sent)
    assert got == sent
    after = echod.stats()
    assert after["bytes_in"] - before["bytes_in"] >= len(sent)
    assert after["bytes_out"] - before["bytes_out"] >= len(sent)


def poll_own(c, predicate, what):
    """Ask STATS on one long-lived connection until predicate holds: no
    other connection comes and goes while watching."""
    deadline = time.monotonic() + bound(10)
    while True:
        st = c.stats()
        if predicate(st):
            return st
        assert time.monotonic() < deadline, f"STATS never showed {what}: {st}"
        time.sleep(0.05)


def test_connection_counters(echod):
    mon = echod.connect()
    before = poll_own(mon, lambda s: s["connections_current"] == 1, "only the monitor open")
    clients = [echod.connect() for _ in range(7)]
    for c in clients:
        c.ping()
    st = mon.stats()
    assert st["connections_current"] == 8, st
    assert st["connections_total"] - before["connections_total"] == 7, (before, st)
    for c in clients:
        c.close()
    # Closed connections leave connections_current; connections_total keeps them.
    after = poll_own(mon, lambda s: s["connections_current"] == 1, "the 7 closed")
    assert after["connections_total"] == st["connections_total"]
    assert after["connections_rejected"] == before["connections_rejected"]


def test_per_worker_entries_sum_to_the_totals(echod_factory):
    d = echod_factory(workers=3)
    clients = [d.connect() for _ in range(12)]
    for i, c in enumerate(clients):
        for _ in range(i + 1):
            c.ping()
    c = d.connect()
    # Quiet once only these 13 are open: nothing moves while STATS is made.
    st = poll_own(c, lambda s: s["connections_current"] == 13, "13 connections")
    assert len(st["per_worker"]) == 3
    assert sum(w["requests"] for w in st["per_worker"]) == st["requests_total"], st
    assert sum(w["connections"] for w in st["per_worker"]) == st["connections_current"], st
    # Connections are spread over the workers, not all on one.
    assert sum(1 for w in st["per_worker"] if w["connections"] > 0) >= 2, st


def test_errors_total_counts_error_frames(echod_factory):
    d = echod_factory(max_frame_size=100)
    before = d.stats()
    c = d.connect()
    c.send(frame("X") + frame("Y"))
    c.read_error()
    c.read_error()
    c2 = d.connect()
    c2.send(header("E", 101))
    assert c2.read_error().startswith("413 ")
    after = d.stats()
    assert after["errors_total"] - before["errors_total"] == 3, (before, after)


def test_uptime_counts_seconds(echod):
    first = echod.stats()["uptime_s"]
    time.sleep(2.1)
    second = echod.stats()["uptime_s"]
    assert 2 <= second - first <= 2 + bound(3), (first, second)
