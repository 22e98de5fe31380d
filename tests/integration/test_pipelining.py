"""Pipelining: a client may send any number of frames without waiting, in
any segmentation, and gets one reply per request in request order. After
shutdown(SHUT_WR) at a frame boundary the server sends every remaining reply
and then closes."""

import json
import random
import socket
import time

from conftest import frame, parse_frames, pattern


def mixed_requests(n, seed):
    """n requests of every kind, and the replies expected (STATS as None:
    its content varies)."""
    rng = random.Random(seed)
    requests, replies = [], []
    for i in range(n):
        kind = rng.random()
        if kind < 0.6:
            payload = pattern(rng.randrange(0, 300), seed=i)
            requests.append(frame("E", payload))
            replies.append(("E", payload))
        elif kind < 0.85:
            requests.append(frame("P", b"x" * rng.randrange(0, 20)))
            replies.append(("P", b""))
        elif kind < 0.95:
            t = rng.choice(b"XYZaq\x00\xff")
            requests.append(frame(t, b"junk" * rng.randrange(0, 5)))
            replies.append(("!", f"400 unknown frame type 0x{t:02x}".encode()))
        else:
            requests.append(frame("S"))
            replies.append(None)
    return requests, replies


def check_replies(got, expected):
    assert len(got) == len(expected), (len(got), len(expected))
    for i, (g, e) in enumerate(zip(got, expected)):
        if e is None:
            assert g[0] == "S", (i, g)
            json.loads(g[1])
        else:
            assert g == e, f"reply {i}: got {g[0]!r} {g[1][:60]!r}, expected {e[0]!r} {e[1][:60]!r}"


def test_thousand_pipelined_frames_in_one_send(echod):
    requests, replies = mixed_requests(1000, seed=1)
    c = echod.connect()
    c.send(b"".join(requests))
    got = [c.read_frame() for _ in replies]
    check_replies(got, replies)
    c.ping()    # nothing extra is queued behind them


def test_thousand_pipelined_echoes_then_shutdown_get_exactly_the_replies(echod):
    payloads = [pattern(i % 97, seed=i) for i in range(1000)]
    data = b"".join(frame("E", p) for p in payloads)
    c = echod.connect()
    got = c.exchange(data)
    # ECHO replies are byte-identical, so the whole stream comes back as sent.
    assert got == data


def test_one_byte_at_a_time(echod):
    requests = [frame("E", b"hello"), frame("P"), frame("E"), frame("X", b"abc"),
                frame("S"), frame("E", pattern(300)), frame("P", b"ignored")]
    expected = [("E", b"hello"), ("P", b""), ("E", b""),
                ("!", b"400 unknown frame type 0x58"), None, ("E", pattern(300)), ("P", b"")]
    c = echod.connect()
    for b in b"".join(requests):
        c.send(bytes([b]))
        time.sleep(0.0005)   # each byte its own segment (TCP_NODELAY is on)
    c.shutdown_write()
    frames, rest = parse_frames(c.read_all())
    # The ECHO reply may start before its payload is complete, so the bytes
    # arrive interleaved in time, but the stream is still the frames in order.
    assert rest == b""
    check_replies(frames, expected)


def test_split_at_every_point_of_a_frame_pair(echod):
    data = frame("E", b"0123456789") + frame("P")
    expected = data[:15] + frame("P")
    for cut in range(1, len(data)):
        c = echod.connect()
        c.send(data[:cut])
        time.sleep(0.002)
        c.send(data[cut:])
        c.shutdown_write()
        assert c.read_all() == expected, f"split at {cut}"
        c.close()


def test_shutdown_at_frame_boundary_gets_every_reply_then_eof(echod):
    requests, replies = mixed_requests(300, seed=7)
    c = echod.connect()
    c.send(b"".join(requests))
    c.shutdown_write()
    frames, rest = parse_frames(c.read_all())
    assert rest == b""
    check_replies(frames, replies)


def test_shutdown_right_after_connect_gets_eof(echod):
    c = echod.connect()
    c.shutdown_write()
    c.expect_eof()


def test_large_and_small_replies_keep_request_order(echod):
    parts = [frame("E", pattern(1 << 20, seed=1)), frame("P"), frame("E", b"small"),
             frame("E", pattern(3 << 20, seed=2)), frame("P"), frame("E", b"")]
    data = b"".join(parts)
    c = echod.connect()
    got = c.exchange(data, timeout=60)
    frames, rest = parse_frames(got)
    assert rest == b""
    assert [t for t, _ in frames] == ["E", "P", "E", "E", "P", "E"]
    assert frames[0][1] == pattern(1 << 20, seed=1)
    assert frames[2][1] == b"small"
    assert frames[3][1] == pattern(3 << 20, seed=2)


def test_pipelined_requests_across_many_segments(echod):
    # Frames cut at arbitrary points across sends: headers and payloads split.
    requests, replies = mixed_requests(400, seed=3)
    data = b"".join(requests)
    rng = random.Random(5)
    c = echod.connect()
    off = 0
    while off < len(data):
        n = rng.randrange(1, 200)
        c.send(data[off:off + n])
        off += n
    c.sock.shutdown(socket.SHUT_WR)
    frames, rest = parse_frames(c.read_all())
    assert rest == b""
    check_replies(frames, replies)
