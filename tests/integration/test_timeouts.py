"""The three connection timers, with 1-second settings.

read_timeout runs from a frame's first byte to its last: a frame not
completed in time gets '!' "408 ..." and close (unless part of its ECHO
reply already went out, in which case the reply is cut short and the
connection closed, since an error frame would be read as payload).
idle_timeout: a connection with no frame in progress and nothing pending is
closed, with no error frame. write_timeout: a client that does not read while
output is pending gets closed.
"""

import socket
import threading
import time

import pytest

from conftest import bound, frame, header, pattern


def test_partial_header_gets_408(echod_factory):
    d = echod_factory(read_timeout=1, idle_timeout=0)
    c = d.connect()
    c.send(b"P\x00")
    text = c.read_error(timeout=bound(10))
    assert text.startswith("408 "), text
    c.expect_eof()


def test_partial_payload_gets_408(echod_factory):
    d = echod_factory(read_timeout=1, idle_timeout=0)
    c = d.connect()
    c.send(header("P", 10) + b"abc")
    assert c.read_error(timeout=bound(10)).startswith("408 ")
    c.expect_eof()


def test_echo_header_alone_gets_408(echod_factory):
    d = echod_factory(read_timeout=1, idle_timeout=0)
    c = d.connect()
    c.send(header("E", 10))
    assert c.read_error(timeout=bound(10)).startswith("408 ")
    c.expect_eof()


def test_echo_with_part_of_its_payload_is_cut_short(echod_factory):
    d = echod_factory(read_timeout=1, idle_timeout=0)
    c = d.connect()
    c.send(header("E", 10) + b"abc")
    assert c.read_all(timeout=bound(10)) == header("E", 10) + b"abc"


def test_read_timeout_counts_from_the_first_byte_not_the_last(echod_factory):
    # A frame trickling in, a byte every 0.2 s, would take 4 s: progress does
    # not restart the clock, so the 408 comes while it is still arriving.
    d = echod_factory(read_timeout=1, idle_timeout=0)
    c = d.connect()
    data = header("P", 15) + b"x" * 15
    got = b""
    for i, b in enumerate(data):
        try:
            c.send(bytes([b]))
        except OSError:
            break
        c.sock.settimeout(0.2)
        try:
            got += c.sock.recv(4096)
        except TimeoutError:
            pass
        c.sock.settimeout(c.timeout)
        if got:
            break
    assert got, "no reply while the frame trickled in"
    got += c.read_all(timeout=bound(10), allow_reset=True)
    assert got.startswith(b"!"), got
    assert got[5:9] == b"408 ", got
    assert i < len(data) - 1, "the 408 came only after the frame was complete"


def test_completed_frames_restart_the_read_clock(echod_factory):
    # Each frame completes well within read_timeout; together they take
    # longer than it. None may time out.
    d = echod_factory(read_timeout=1, idle_timeout=0)
    c = d.connect()
    for _ in range(6):
        c.send(b"P\x00\x00")
        time.sleep(0.1)
        c.send(b"\x00\x00")
        assert c.read_frame() == ("P", b"")
        time.sleep(0.2)


def test_idle_connection_is_closed_without_an_error_frame(echod_factory):
    d = echod_factory(idle_timeout=1)
    c = d.connect()
    c.expect_eof(timeout=bound(10))


def test_idle_timeout_after_a_request(echod_factory):
    d = echod_factory(idle_timeout=1)
    c = d.connect()
    c.ping()
    c.expect_eof(timeout=bound(10))


def test_idle_timeout_does_not_cut_a_frame_in_progress(echod_factory):
    # With no read_timeout, a frame in progress is not idle: it survives
    # well past idle_timeout and is answered when it completes.
    d = echod_factory(idle_timeout=1, read_timeout=0)
    c = d.connect()
    c.send(header("P", 4) + b"ab")
    time.sleep(2.5)
    c.send(b"cd")
    assert c.read_frame() == ("P", b"")


def test_idle_timeout_zero_means_never(echod_factory):
    d = echod_factory(idle_timeout=0, read_timeout=1)
    c = d.connect()
    c.ping()
    time.sleep(2.5)
    c.ping()


@pytest.mark.parametrize("flood", ["one_large_echo", "many_small_echoes"])
def test_client_that_never_reads_is_closed_by_write_timeout(echod_factory, flood):
    d = echod_factory(write_timeout=1, read_timeout=0, idle_timeout=0,
                      max_frame_size=1 << 30)
    c = d.connect(timeout=bound(30))
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    failed = []

    def sender():
        try:
            if flood == "one_large_echo":
                c.send(header("E", 1 << 30))
                chunk = pattern(1 << 20)
                for _ in range(1024):
                    c.send(chunk)
            else:
                batch = frame("E", pattern(1000)) * 1000
                for _ in range(1000):
                    c.send(batch)
        except OSError as e:
            failed.append(e)

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    # The server gives up on the connection: its count drops to the STATS
    # connection alone, and the flooding client's sends fail.
    d.wait_stats(lambda s: s["connections_current"] == 1, timeout=bound(20),
                 what="the non-reading client closed")
    th.join(bound(20))
    assert not th.is_alive(), "the client could keep sending: the server still reads it"
    assert failed, "the whole flood was accepted without the client reading"
