"""Hostile and broken clients never take the server down: random bytes get
well-formed replies (echoes, 400s, 413s) and a close; clients that reset
the connection mid-frame or with replies pending are cleaned up; and the
server keeps serving new clients afterwards."""

import random
import re
import threading

import pytest

from conftest import OPEN_LENGTH, Client, bound, frame, header, pattern

ERROR_TEXT = re.compile(rb"^(400|408|413|503) [ -~]+$")


def check_reply_stream(data):
    """Replies to garbage are whole frames: E, P, S or '!' with "NNN text";
    the last may be an ECHO reply cut short (its request was cut)."""
    off = 0
    while off < len(data):
        assert len(data) - off >= 5, f"partial header at {off}: {data[off:]!r}"
        t = data[off]
        n = int.from_bytes(data[off + 1:off + 5], "big")
        body = data[off + 5:off + 5 + n] if n != OPEN_LENGTH else data[off + 5:]
        if chr(t) == "E":
            pass                       # payload is the client's own bytes
        elif chr(t) == "P":
            assert n == 0
        elif chr(t) == "S":
            assert body.startswith(b"{") and body.endswith(b"}")
        elif chr(t) == "!":
            assert ERROR_TEXT.match(body), body
        else:
            raise AssertionError(f"reply of type {t:#x} at {off}")
        if n == OPEN_LENGTH or off + 5 + n > len(data):
            assert chr(t) == "E", "only an ECHO reply may be cut short"
            return
        off += 5 + n


@pytest.mark.parametrize("seed", range(12))
def test_random_bytes(echod_factory, seed):
    d = echod_factory(max_frame_size=4096, read_timeout=2)
    rng = random.Random(seed)
    size = rng.choice([1, 7, 100, 5000, 65536, 300000])
    garbage = bytes(rng.getrandbits(8) for _ in range(size))
    c = d.connect()
    got = c.exchange(garbage, timeout=bound(20))
    check_reply_stream(got)
    with Client.connect(d.addr) as fresh:
        assert fresh.request("E", b"alive") == ("E", b"alive")


@pytest.mark.parametrize("seed", range(6))
def test_random_frames_with_plausible_headers(echod_factory, seed):
    # Headers that mostly parse: known and unknown types, small lengths,
    # some oversized, some open; payloads random.
    d = echod_factory(max_frame_size=2048, read_timeout=2)
    rng = random.Random(1000 + seed)
    parts = []
    for _ in range(300):
        t = rng.choice(b"EEEPPSX!\x00\xff")
        r = rng.random()
        n = (rng.randrange(0, 600) if r < 0.9 else
             rng.randrange(2049, 10 ** 6) if r < 0.97 else OPEN_LENGTH)
        parts.append(header(t, n))
        parts.append(bytes(rng.getrandbits(8) for _ in range(min(n, 700))))
    c = d.connect()
    got = c.exchange(b"".join(parts), timeout=bound(20))
    check_reply_stream(got)
    with Client.connect(d.addr) as fresh:
        fresh.ping()


def test_many_garbage_clients_at_once(echod_factory):
    d = echod_factory(max_frame_size=1024, read_timeout=2)
    errors = []

    def one(seed):
        try:
            rng = random.Random(seed)
            with Client.connect(d.addr) as c:
                got = c.exchange(bytes(rng.getrandbits(8) for _ in range(20000)),
                                 timeout=bound(20))
                check_reply_stream(got)
        except Exception as e:   # report every thread's failure
            errors.append(e)

    threads = [threading.Thread(target=one, args=(s,)) for s in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(bound(60))
    assert not errors, errors[:3]
    with Client.connect(d.addr) as fresh:
        fresh.ping()


def test_reset_mid_header_and_mid_payload(echod):
    for data in (b"E\x00", header("E", 1 << 20) + pattern(1000), header("P", 100) + b"x",
                 header("E", OPEN_LENGTH) + b"streaming"):
        c = Client.connect(echod.addr)
        c.send(data)
        c.reset()
    echod.wait_stats(lambda s: s["connections_current"] == 1, what="reset connections closed")
    with Client.connect(echod.addr) as c:
        assert c.request("E", b"fine") == ("E", b"fine")


def test_reset_with_replies_pending(echod):
    # The server is writing into a socket the client has reset.
    clients = []
    for _ in range(20):
        c = Client.connect(echod.addr)
        c.sock.sendall(frame("E", pattern(200000)) * 20)
        clients.append(c)
    for c in clients:
        c.reset()
    echod.wait_stats(lambda s: s["connections_current"] == 1, what="reset connections closed")
    with Client.connect(echod.addr) as c:
        c.ping()


def test_reset_during_a_large_streaming_echo(echod_factory):
    d = echod_factory(max_frame_size=1 << 30)
    c = Client.connect(d.addr)
    c.send(header("E", 1 << 30))
    chunk = pattern(1 << 20)
    for _ in range(8):
        c.send(chunk)
    c.recv_exact(5 + (1 << 20))
    c.reset()
    d.wait_stats(lambda s: s["connections_current"] == 1, what="reset connection closed")
    with Client.connect(d.addr) as c2:
        c2.send(header("E", 3 << 20) + pattern(3 << 20))
        assert c2.recv_exact(5 + (3 << 20)) == header("E", 3 << 20) + pattern(3 << 20)


def test_client_closing_without_reading_replies(echod):
    # close() with the replies unread: the client's kernel answers the
    # server's data with an RST.
    for _ in range(50):
        c = Client.connect(echod.addr)
        c.send(frame("E", b"z" * 5000) * 10)
        c.close()
    echod.wait_stats(lambda s: s["connections_current"] == 1, what="connections closed")
    with Client.connect(echod.addr) as c:
        c.ping()


def test_resets_while_echo_data_is_being_processed(echod_factory):
    # Pipelined mid-size ECHOs (copied through the buffers, not spliced),
    # then an RST: the server is still working through input it had read
    # when its writes start failing. Many rounds, so the timing is hit.
    d = echod_factory(workers=1)
    for rnd in range(150):
        clients = []
        for i in range(10):
            try:
                c = Client.connect(d.addr)
                clients.append(c)
                c.sock.sendall(frame("E", pattern(5000 + 997 * i)) * 30)
            except OSError as e:
                raise AssertionError(f"round {rnd}: {e!r}; echod exit status: "
                                     f"{d.proc.poll()}") from None
        for c in clients:
            c.reset()
        assert d.running(), f"echod died in round {rnd}"
    with Client.connect(d.addr) as c:
        assert c.request("E", b"survived") == ("E", b"survived")
