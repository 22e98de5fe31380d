"""The open-length ECHO (length 0xFFFFFFFF): the reply header 'E' ff ff ff ff
comes at once, the bytes stream back as they arrive, and after the client's
EOF the server flushes and closes. It is not bound by max_frame_size."""

import hashlib
import threading

from conftest import OPEN_LENGTH, bound, frame, header, pattern

OPEN_HEADER = b"E\xff\xff\xff\xff"


def test_reply_header_comes_at_once_and_bytes_stream_back(echod):
    c = echod.connect()
    c.send(header("E", OPEN_LENGTH))
    # Before any payload and long before EOF.
    assert c.recv_exact(5) == OPEN_HEADER
    for chunk in (b"hello", b" ", b"world", pattern(10000)):
        c.send(chunk)
        assert c.recv_exact(len(chunk)) == chunk
    c.shutdown_write()
    c.expect_eof()


def test_open_length_with_no_payload(echod):
    c = echod.connect()
    c.send(header("E", OPEN_LENGTH))
    c.shutdown_write()
    assert c.read_all() == OPEN_HEADER


def test_frame_like_bytes_inside_are_just_payload(echod):
    c = echod.connect()
    inner = frame("P") + frame("S") + header("E", OPEN_LENGTH) + frame("X", b"?")
    got = c.exchange(header("E", OPEN_LENGTH) + inner)
    assert got == OPEN_HEADER + inner


def test_pipelined_frames_before_it_are_answered_first(echod):
    c = echod.connect()
    body = pattern(5000, seed=3)
    got = c.exchange(frame("P") + frame("E", b"abc") + header("E", OPEN_LENGTH) + body)
    assert got == frame("P") + frame("E", b"abc") + OPEN_HEADER + body


def test_open_length_is_not_limited_by_max_frame_size(echod_factory):
    d = echod_factory(max_frame_size=16)
    c = d.connect()
    body = pattern(200 * 1024, seed=5)
    assert c.exchange(header("E", OPEN_LENGTH) + body) == OPEN_HEADER + body


def test_large_open_length_stream(echod):
    # 64 MiB through, read concurrently, checked by digest.
    size = 64 << 20
    chunk = pattern(1 << 20, seed=11)
    c = echod.connect(timeout=bound(30))
    err = []

    def sender():
        try:
            c.send(header("E", OPEN_LENGTH))
            for _ in range(size // len(chunk)):
                c.send(chunk)
            c.shutdown_write()
        except OSError as e:
            err.append(e)

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    assert c.recv_exact(5) == OPEN_HEADER
    digest = hashlib.sha1()
    total = 0
    while True:
        data = c.sock.recv(1 << 20)
        if not data:
            break
        digest.update(data)
        total += len(data)
    th.join(bound(30))
    assert not err, err
    assert total == size
    expected = hashlib.sha1()
    for _ in range(size // len(chunk)):
        expected.update(chunk)
    assert digest.digest() == expected.digest()
