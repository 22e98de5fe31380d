"""The drain (SIGTERM) closes at a frame boundary: a reply is started only
for a request that will be answered whole, a reply already started is
finished within drain_timeout, and only drain_timeout's expiry may cut one.
Large frames back to back, a frame half sent when the drain begins, a slow
reader, and a pipeline already read."""

import signal
import socket
import threading
import time

from conftest import HEADER_SIZE, OPEN_LENGTH, bound, frame, parse_frames, pattern

FRAME = 256 * 1024


def read_until_eof(c, timeout):
    return c.read_all(timeout=timeout, allow_reset=True)


def assert_whole_frames(data, payload):
    """Every reply is a whole ECHO of payload, optionally ended by one 503
    error frame; nothing is cut."""
    frames, rest = parse_frames(data)
    assert rest == b"", (f"a reply was cut: {len(frames)} whole frames, then {len(rest)} "
                         f"bytes of a frame announcing "
                         f"{int.from_bytes(rest[1:5], 'big') if len(rest) >= 5 else '?'}")
    errors = [p for t, p in frames if t == "!"]
    echoes = [p for t, p in frames if t == "E"]
    assert all(p == payload for p in echoes)
    assert len(errors) <= 1 and (not errors or frames[-1][0] == "!"), frames[-3:]
    if errors:
        assert errors[0].startswith(b"503"), errors
    return len(echoes)


def test_large_frames_back_to_back_are_never_cut(echod_factory):
    d = echod_factory(workers=1, drain_timeout=8)
    c = d.connect(timeout=bound(20))
    payload = pattern(FRAME, 1)
    one = frame("E", payload)
    stop = threading.Event()
    sent = [0]

    def sender():
        try:
            while not stop.is_set():
                c.sock.sendall(one)
                sent[0] += 1
        except OSError:
            pass

    got = bytearray()

    def reader():
        got.extend(read_until_eof(c, bound(30)))

    ts = threading.Thread(target=sender, daemon=True)
    tr = threading.Thread(target=reader, daemon=True)
    ts.start()
    tr.start()
    time.sleep(0.5)
    d.send_signal(signal.SIGTERM)
    tr.join(bound(30))
    stop.set()
    assert not tr.is_alive()
    n = assert_whole_frames(bytes(got), payload)
    assert n > 0
    print(f"{n} whole 256 KiB replies before the drain closed; {sent[0]} frames sent")
    assert d.wait_exit(bound(15)) == 0


def test_frame_half_sent_at_the_drain_is_read_and_answered_whole(echod_factory):
    d = echod_factory(workers=1, drain_timeout=8)
    c = d.connect(timeout=bound(20))
    payload = pattern(4 * 1024 * 1024, 2)
    whole = frame("E", payload)
    c.send(whole[:len(whole) // 2])
    time.sleep(0.2)
    d.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    got = bytearray()
    tr = threading.Thread(target=lambda: got.extend(read_until_eof(c, bound(30))), daemon=True)
    tr.start()
    c.send(whole[len(whole) // 2:])
    tr.join(bound(30))
    frames, rest = parse_frames(bytes(got))
    assert rest == b"" and frames == [("E", payload)], (len(got), frames[:1])
    assert d.wait_exit(bound(15)) == 0


def test_slow_reader_gets_its_reply_whole(echod_factory):
    """The reply is pending in a full socket when the drain begins; the
    client then reads slowly: it still gets every byte."""
    d = echod_factory(workers=1, drain_timeout=8)
    c = d.connect(timeout=bound(20))
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    payload = pattern(2 * 1024 * 1024, 3)
    sender = threading.Thread(target=lambda: c.sock.sendall(frame("E", payload)), daemon=True)
    sender.start()
    time.sleep(0.3)
    d.send_signal(signal.SIGTERM)
    got = bytearray()
    deadline = time.monotonic() + bound(20)
    while time.monotonic() < deadline:
        chunk = c.sock.recv(65536)
        if not chunk:
            break
        got += chunk
        time.sleep(0.002)
    frames, rest = parse_frames(bytes(got))
    assert rest == b"" and frames == [("E", payload)], len(got)
    assert d.wait_exit(bound(15)) == 0


def test_pipeline_already_read_is_answered_then_closed(echod_factory):
    d = echod_factory(workers=1, drain_timeout=5)
    c = d.connect()
    frames_out = b"".join(frame("E", pattern(100, i)) for i in range(200))
    c.send(frames_out)
    # Wait for the replies to start so the pipeline has been read.
    head = c.recv_exact(HEADER_SIZE + 100)
    d.send_signal(signal.SIGTERM)
    rest = read_until_eof(c, bound(10))
    frames, tail = parse_frames(head + rest)
    assert tail == b""
    assert [p for _, p in frames] == [pattern(100, i) for i in range(200)]
    assert d.wait_exit(bound(10)) == 0


def test_open_length_echo_runs_until_the_client_ends_it(echod_factory):
    """An open-length ECHO has begun: the drain lets it finish at the
    client's EOF (within drain_timeout) rather than cutting it."""
    d = echod_factory(workers=1, drain_timeout=8)
    c = d.connect(timeout=bound(20))
    c.send(frame("E", b"", length=OPEN_LENGTH))
    assert c.recv_exact(HEADER_SIZE) == frame("E", b"", length=OPEN_LENGTH)
    c.send(b"before the drain;")
    assert c.recv_exact(17) == b"before the drain;"
    d.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    c.send(b"after it")
    assert c.recv_exact(8) == b"after it"
    c.shutdown_write()
    assert read_until_eof(c, bound(10)) == b""
    assert d.wait_exit(bound(10)) == 0


def test_drain_timeout_is_what_cuts(echod_factory):
    """A frame that never completes is cut when drain_timeout expires, and
    not before."""
    d = echod_factory(workers=1, drain_timeout=1.5)
    c = d.connect(timeout=bound(20))
    c.send(frame("E", pattern(1000, 4))[:600])
    time.sleep(0.2)
    start = time.monotonic()
    d.send_signal(signal.SIGTERM)
    read_until_eof(c, bound(10))
    waited = time.monotonic() - start
    assert waited >= 1.2, f"cut after {waited:.2f} s, before drain_timeout"
    assert d.wait_exit(bound(10)) == 0
