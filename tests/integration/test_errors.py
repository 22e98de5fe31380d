"""Error frames that end a connection: 413 for a frame over max_frame_size,
400 for the open length on anything but ECHO. The replies to requests before
the bad frame still arrive, then the error frame, then EOF: the server closes
without an RST even when the client keeps sending (lingering close)."""

import pytest

from conftest import OPEN_LENGTH, frame, header, parse_frames, pattern

MAX = 1024


@pytest.mark.parametrize("t", ["E", "P", "S", "X"])
def test_frame_of_exactly_max_frame_size_is_accepted(echod_factory, t):
    d = echod_factory(max_frame_size=MAX)
    c = d.connect()
    payload = pattern(MAX)
    c.send(frame(t, payload))
    reply = c.read_frame()
    if t == "E":
        assert reply == ("E", payload)
    elif t == "P":
        assert reply == ("P", b"")
    elif t == "S":
        assert reply[0] == "S"
    else:
        assert reply == ("!", b"400 unknown frame type 0x58")
    c.ping()


@pytest.mark.parametrize("t,length", [("E", MAX + 1), ("P", MAX + 1), ("S", 100000),
                                      ("E", 0xFFFFFFFE)])
def test_frame_over_max_frame_size_gets_413_then_close(echod_factory, t, length):
    d = echod_factory(max_frame_size=MAX)
    c = d.connect()
    c.send(header(t, length))
    text = c.read_error()
    assert text.startswith("413 "), text
    c.expect_eof()


def test_413_with_its_payload_following_still_reads_cleanly(echod_factory):
    d = echod_factory(max_frame_size=MAX)
    c = d.connect()
    # The client sends the whole oversized frame before reading anything.
    c.send(frame("E", pattern(MAX + 1)))
    c.shutdown_write()
    frames, rest = parse_frames(c.read_all())
    assert rest == b""
    assert len(frames) == 1 and frames[0][0] == "!" and frames[0][1].startswith(b"413 ")


def test_replies_before_the_error_are_delivered_first(echod_factory):
    d = echod_factory(max_frame_size=MAX)
    c = d.connect()
    c.send(frame("P") + frame("E", b"abc") + frame("E", pattern(2000)) + frame("P"))
    assert c.read_frame() == ("P", b"")
    assert c.read_frame() == ("E", b"abc")
    assert c.read_error().startswith("413 ")
    c.expect_eof()   # the PING after the bad frame is not answered


def test_error_close_does_not_reset_unread_replies(echod_factory):
    # Many replies queued, then a bad frame, then the client keeps sending a
    # lot before it reads anything: an RST from the server would destroy the
    # replies still in flight. All must arrive, then a clean EOF.
    d = echod_factory(max_frame_size=MAX)
    c = d.connect()
    pings = 2000
    c.send(frame("P") * pings + header("E", MAX + 1))
    c.send(b"\x00" * (2 << 20))
    c.shutdown_write()
    frames, rest = parse_frames(c.read_all(timeout=30))
    assert rest == b""
    assert frames[:pings] == [("P", b"")] * pings
    assert len(frames) == pings + 1, frames[pings:]
    assert frames[pings][0] == "!" and frames[pings][1].startswith(b"413 ")


@pytest.mark.parametrize("t", ["P", "S", "X", "!"])
def test_open_length_on_anything_but_echo_gets_400_then_close(echod, t):
    c = echod.connect()
    c.send(header(t, OPEN_LENGTH) + b"some bytes")
    assert c.read_error() == "400 open length is only allowed on ECHO"
    c.expect_eof()


def test_open_length_error_after_answered_requests(echod):
    c = echod.connect()
    c.send(frame("E", b"one") + frame("P") + header("P", OPEN_LENGTH))
    assert c.read_frame() == ("E", b"one")
    assert c.read_frame() == ("P", b"")
    assert c.read_error() == "400 open length is only allowed on ECHO"
    c.expect_eof()


def test_server_keeps_serving_after_error_closes(echod_factory):
    d = echod_factory(max_frame_size=MAX)
    for _ in range(20):
        c = d.connect()
        c.send(header("E", MAX + 1))
        assert c.read_error().startswith("413 ")
        c.expect_eof()
        c.close()
    c = d.connect()
    assert c.request("E", b"still here") == ("E", b"still here")
