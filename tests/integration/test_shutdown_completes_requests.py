"""SIGTERM/SIGINT drain: echod stops accepting, answers every request it has
already read, closes idle connections, lets a frame in progress complete
(and answers it) if it completes before drain_timeout, and exits 0 within
drain_timeout. A connection whose input holds the start of another frame
after the last complete one gets '!' "503 server shutting down"; a new
connection during the drain is refused or gets a 503."""

import signal
import socket
import threading
import time

import pytest

from conftest import Client, bound, frame, header, parse_frames, pattern


def wait_drain_started(d):
    """Until a new connection is refused or answered 503 (the drain began),
    then a moment for the workers to get the word too."""
    deadline = time.monotonic() + bound(10)
    while time.monotonic() < deadline:
        try:
            with Client.connect(d.addr, timeout=bound(5)) as c:
                c.send_frame("P")
                got = c.read_all(allow_reset=True)
                if got != frame("P"):
                    break
        except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
            break
        except AssertionError:
            break
        time.sleep(0.02)
    else:
        raise AssertionError("new connections were still served during the drain")
    time.sleep(0.5 * bound(1))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_idle_daemon_exits_0_at_once(echod_factory, sig):
    d = echod_factory(drain_timeout=5)
    d.send_signal(sig)
    assert d.wait_exit(bound(5)) == 0


def test_idle_connections_are_closed_and_exit_is_0(echod_factory):
    d = echod_factory(drain_timeout=5)
    clients = [d.connect() for _ in range(20)]
    for c in clients:
        c.ping()
    started = time.monotonic()
    d.send_signal(signal.SIGTERM)
    for c in clients:
        c.expect_eof(timeout=bound(5))
    assert d.wait_exit(bound(5)) == 0
    # Idle connections do not hold the drain until drain_timeout.
    assert time.monotonic() - started < 5


def test_requests_already_read_are_answered(echod_factory):
    d = echod_factory(drain_timeout=5, workers=1)
    c = d.connect()
    # 500 requests sent at once and answered (so read) before the signal,
    # but their replies not yet read by the client.
    requests = frame("E", b"r" * 40) * 500
    c.send(requests + frame("P"))
    # Wait for the PING reply's arrival without consuming the stream:
    # everything before it was read and answered by then.
    deadline = time.monotonic() + bound(10)
    while len(c.sock.recv(len(requests) + 5, socket.MSG_PEEK)) < len(requests) + 5:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    d.send_signal(signal.SIGTERM)
    got = c.read_all(timeout=bound(10))
    assert got == requests + frame("P")
    assert d.wait_exit(bound(10)) == 0


def test_pipelined_requests_read_but_not_yet_answered_are_answered(echod_factory):
    # The client does not read, so the server holds read requests whose
    # replies cannot go out yet when the signal comes. They are all answered
    # once the client reads; each reply is whole and correct.
    # The sender stops wherever it is, maybe inside a frame that then never
    # completes: the drain waits for it until drain_timeout, kept short.
    d = echod_factory(drain_timeout=3, workers=1)
    c = d.connect(timeout=bound(30))
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    payload = pattern(1000, seed=2)
    one = frame("E", payload)
    stop = threading.Event()
    sent = [0]

    def sender():
        c.sock.settimeout(0.5)
        try:
            while not stop.is_set():
                try:
                    sent[0] += c.sock.send(one * 64)
                except TimeoutError:
                    pass
        except OSError:
            pass

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    time.sleep(1.0 * bound(1))
    d.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    stop.set()
    th.join(bound(5))
    c.sock.settimeout(bound(10))
    got = c.read_all(timeout=bound(20))
    frames, rest = parse_frames(got)
    assert len(frames) > 0
    echoes = [f for f in frames if f[0] == "E"]
    assert all(f == ("E", payload) for f in echoes), "a reply is wrong"
    assert frames[:len(echoes)] == echoes, "an error frame among the replies"
    # After the whole replies: a 503 (the input held the start of a frame),
    # or the reply to a frame cut by the close, cut short too (its reply had
    # started, so no error frame may follow it).
    tail = frames[len(echoes):]
    assert tail in ([], [("!", b"503 server shutting down")]), tail[:3]
    if rest:
        assert not tail and one.startswith(rest), \
            f"after {len(echoes)} replies, {len(rest)} bytes that are not a cut reply: {rest!r}"
    assert len(echoes) * len(one) <= sent[0]
    assert d.wait_exit(bound(15)) == 0


def test_frame_in_progress_completes_and_is_answered(echod_factory):
    d = echod_factory(drain_timeout=5, workers=1)
    c = d.connect()
    # A PING in the same segment proves the server read the partial frame.
    c.send(frame("P") + header("P", 4) + b"ab")
    assert c.read_frame() == ("P", b"")
    d.send_signal(signal.SIGTERM)
    wait_drain_started(d)
    c.send(b"cd")
    assert c.read_frame() == ("P", b"")
    c.expect_eof(timeout=bound(5))
    c.close()   # the server lingers until our FIN
    assert d.wait_exit(bound(10)) == 0


def test_echo_in_progress_completes_and_is_answered(echod_factory):
    d = echod_factory(drain_timeout=5, workers=1)
    c = d.connect()
    c.send(header("E", 10) + b"01234")
    assert c.recv_exact(10) == header("E", 10) + b"01234"
    d.send_signal(signal.SIGTERM)
    wait_drain_started(d)
    c.send(b"56789")
    assert c.recv_exact(5) == b"56789"
    c.expect_eof(timeout=bound(5))
    c.close()   # the server lingers until our FIN
    assert d.wait_exit(bound(10)) == 0


def test_start_of_another_frame_after_the_last_complete_one_gets_503(echod_factory):
    d = echod_factory(drain_timeout=5, workers=1)
    c = d.connect()
    c.send(frame("P") + header("P", 4) + b"ab")
    assert c.read_frame() == ("P", b"")
    d.send_signal(signal.SIGTERM)
    wait_drain_started(d)
    # The frame in progress completes, and the same segment starts another.
    c.send(b"cd" + frame("E", b"more")[:3])
    assert c.read_frame() == ("P", b"")
    assert c.read_error() == "503 server shutting down"
    c.expect_eof(timeout=bound(5))
    c.close()   # the server lingers until our FIN
    assert d.wait_exit(bound(10)) == 0


def test_complete_frames_after_the_one_in_progress_are_answered(echod_factory):
    # Requests that arrive whole along with the end of the frame in progress
    # are read completely, so they are answered too; only a partial one
    # after them gets the 503.
    d = echod_factory(drain_timeout=5, workers=1)
    c = d.connect()
    c.send(frame("P") + header("E", 3) + b"a")
    assert c.recv_exact(5 + 6) == frame("P") + header("E", 3) + b"a"
    d.send_signal(signal.SIGTERM)
    wait_drain_started(d)
    c.send(b"bc" + frame("P") + frame("E", b"zz") + b"P\x00")
    got = c.read_all(timeout=bound(10))
    assert got == b"bc" + frame("P") + frame("E", b"zz") + frame("!", b"503 server shutting down")
    c.close()
    assert d.wait_exit(bound(10)) == 0


def test_echo_started_after_the_last_complete_frame_is_not_corrupted_by_the_503(echod_factory):
    # During the drain an ECHO arrives after the last complete frame, with
    # part of its payload. Either its reply never starts and the 503 comes,
    # or its reply starts and is then cut short at close (as at EOF); an
    # error frame after reply bytes would be read as ECHO payload.
    d = echod_factory(drain_timeout=5, workers=1)
    c = d.connect()
    c.send(frame("P") + header("E", 3) + b"a")
    assert c.recv_exact(5 + 6) == frame("P") + header("E", 3) + b"a"
    d.send_signal(signal.SIGTERM)
    wait_drain_started(d)
    c.send(b"bc" + header("E", 2) + b"z")
    got = c.read_all(timeout=bound(10))
    assert got in (b"bc" + frame("!", b"503 server shutting down"),
                   b"bc" + header("E", 2) + b"z"), got
    c.close()
    assert d.wait_exit(bound(10)) == 0


def test_frame_not_completed_within_drain_timeout_is_cut(echod_factory):
    d = echod_factory(drain_timeout=1, workers=1)
    c = d.connect()
    c.send(frame("P") + header("P", 100) + b"ab")
    assert c.read_frame() == ("P", b"")
    started = time.monotonic()
    d.send_signal(signal.SIGTERM)
    assert d.wait_exit(1 + bound(5)) == 0
    assert time.monotonic() - started >= 0.9   # it did wait for the frame
    rest = c.read_all(timeout=bound(5), allow_reset=True)
    frames, _ = parse_frames(rest)
    assert all(t == "!" and p.startswith(b"503 ") for t, p in frames), rest


def test_new_connections_during_the_drain_are_refused_or_get_503(echod_factory):
    d = echod_factory(drain_timeout=5, workers=1)
    holder = d.connect()
    holder.send(frame("P") + header("P", 4) + b"ab")   # keeps the drain going
    assert holder.read_frame() == ("P", b"")
    d.send_signal(signal.SIGTERM)
    wait_drain_started(d)
    for _ in range(5):
        try:
            c = Client.connect(d.addr, timeout=bound(5))
        except ConnectionRefusedError:
            continue
        with c:
            try:
                c.send_frame("P")
            except (BrokenPipeError, ConnectionResetError):
                continue
            got = c.read_all(timeout=bound(5), allow_reset=True)
            assert got == b"" or (got[:1] == b"!" and got[5:9] == b"503 "), got
    holder.send(b"cd")
    assert holder.read_frame() == ("P", b"")
    assert d.wait_exit(bound(10)) == 0


def test_drain_with_many_busy_connections_exits_0(echod_factory):
    d = echod_factory(drain_timeout=3)
    clients = [d.connect() for _ in range(50)]
    for i, c in enumerate(clients):
        c.send(frame("E", pattern(500, seed=i)) * 20)
    d.send_signal(signal.SIGTERM)
    for i, c in enumerate(clients):
        got = c.read_all(timeout=bound(10), allow_reset=False)
        frames, rest = parse_frames(got)
        assert rest == b""
        # All 20 requests were sent whole; answered ones are correct, and
        # only whole requests not yet read may go unanswered.
        assert all(f == ("E", pattern(500, seed=i)) for f in frames), i
    assert d.wait_exit(3 + bound(5)) == 0


def test_drain_of_a_throttled_client_does_not_reset_its_replies(echod_factory):
    # The client pushed far more PINGs than the server would read (it does
    # not read the replies, so the server stopped reading it). When the drain
    # closes the connection, input the server never read is still queued in
    # its socket: a plain close() would answer with an RST, which destroys
    # the replies still on their way. Every reply must arrive whole, then a
    # clean EOF.
    d = echod_factory(drain_timeout=5, workers=1)
    c = d.connect(timeout=bound(30))
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    c.sock.settimeout(0.5)
    sent = 0
    data = frame("P") * 20000
    deadline = time.monotonic() + bound(30)
    while time.monotonic() < deadline:
        try:
            sent += c.sock.send(data)
        except TimeoutError:
            break           # the server stopped reading: throttled
    else:
        raise AssertionError("the server never stopped reading")
    d.send_signal(signal.SIGTERM)
    wait_drain_started(d)
    c.sock.settimeout(bound(10))
    got = c.read_all(timeout=bound(20))
    frames, rest = parse_frames(got)
    assert rest == b""
    pings = [f for f in frames if f == ("P", b"")]
    assert frames[len(pings):] in ([], [("!", b"503 server shutting down")]), frames[len(pings):][:3]
    assert 0 < len(pings) * 5 <= sent
    c.close()   # the server may be lingering until our FIN
    assert d.wait_exit(bound(10)) == 0
