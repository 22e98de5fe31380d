"""max_connections: a connection beyond the limit gets '!' "503 ..." and is
closed; STATS counts it in connections_rejected; once a slot frees up, new
clients are served again."""

import time

from conftest import bound, frame

LIMIT = 3


class Counter:
    """Connections that must be served, counting the 503s seen on the way
    (a slot freed by a close is taken back a moment after the close)."""

    def __init__(self, d):
        self.d = d
        self.rejected = 0

    def open_served(self):
        deadline = time.monotonic() + bound(10)
        while True:
            c = self.d.connect()
            c.send_frame("P")
            t, payload = c.read_frame()
            if t == "P":
                return c
            assert t == "!" and payload.startswith(b"503 "), (t, payload)
            self.rejected += 1
            c.close()
            assert time.monotonic() < deadline, "no slot ever became free"
            time.sleep(0.05)

    def stats(self):
        c = self.open_served()
        st = c.stats()
        c.close()
        return st


def test_connection_over_the_limit_gets_503_and_close(echod_factory):
    d = echod_factory(max_connections=LIMIT)
    k = Counter(d)
    held = [k.open_served() for _ in range(LIMIT)]
    extra = d.connect()
    text = extra.read_error()
    assert text.startswith("503 "), text
    extra.expect_eof()
    k.rejected += 1
    held[0].ping()   # the held ones are untouched
    held[-1].ping()


def test_rejected_connections_are_counted(echod_factory):
    d = echod_factory(max_connections=LIMIT)
    k = Counter(d)
    held = [k.open_served() for _ in range(LIMIT)]
    for _ in range(5):
        extra = d.connect()
        assert extra.read_error().startswith("503 ")
        extra.expect_eof()
        extra.close()
        k.rejected += 1
    held.pop().close()
    st = k.stats()
    assert st["connections_rejected"] == k.rejected, (st, k.rejected)
    assert st["connections_current"] == LIMIT   # the two held + the STATS one


def test_a_freed_slot_serves_a_new_client(echod_factory):
    d = echod_factory(max_connections=LIMIT)
    k = Counter(d)
    held = [k.open_served() for _ in range(LIMIT)]
    held.pop(0).close()
    c = k.open_served()
    assert c.request("E", b"back in") == ("E", b"back in")


def test_rejected_client_sending_data_still_reads_the_503(echod_factory):
    d = echod_factory(max_connections=1)
    k = Counter(d)
    k.open_served()
    extra = d.connect()
    extra.send(frame("P") * 1000 + frame("E", b"x" * 100000))
    extra.shutdown_write()
    got = extra.read_all()
    assert got[:1] == b"!" and got[5:9] == b"503 ", got[:80]
