"""A client EOF in the middle of a frame. When no byte of the cut request's
reply has gone out, the server answers '!' "400 truncated frame: got X of Y
bytes" and closes (X/Y count payload bytes once the header was complete,
header bytes of 5 before that). An ECHO whose reply already started (it
starts with the first payload byte) is cut short instead: the reply header
announces the full length, fewer bytes follow, then EOF, no error frame."""

import pytest

from conftest import frame, header, pattern


@pytest.mark.parametrize("have", [1, 2, 3, 4])
def test_eof_inside_the_header(echod, have):
    c = echod.connect()
    c.send(header("E", 10)[:have])
    c.shutdown_write()
    assert c.read_error() == f"400 truncated frame: got {have} of 5 bytes"
    c.expect_eof()


@pytest.mark.parametrize("t,length,have", [("P", 5, 2), ("P", 5, 0), ("S", 3, 0),
                                           ("S", 7, 6), ("X", 4, 1)])
def test_eof_inside_a_non_echo_payload(echod, t, length, have):
    c = echod.connect()
    c.send(header(t, length) + b"z" * have)
    c.shutdown_write()
    assert c.read_error() == f"400 truncated frame: got {have} of {length} bytes"
    c.expect_eof()


def test_echo_header_without_payload_gets_400(echod):
    c = echod.connect()
    c.send(header("E", 10))
    c.shutdown_write()
    assert c.read_error() == "400 truncated frame: got 0 of 10 bytes"
    c.expect_eof()


def test_echo_cut_after_some_payload_gets_a_short_reply_and_eof(echod):
    c = echod.connect()
    c.send(header("E", 10) + b"abcd")
    c.shutdown_write()
    # The reply header announces 10; only the 4 bytes that came follow.
    assert c.read_all() == header("E", 10) + b"abcd"


def test_large_echo_cut_short_streams_what_came(echod):
    c = echod.connect()
    length = 4 << 20
    sent = pattern(700 * 1024, seed=9)
    got = c.exchange(header("E", length) + sent)
    assert got == header("E", length) + sent


def test_complete_frames_are_answered_before_the_truncation_error(echod):
    c = echod.connect()
    c.send(frame("E", b"first") + frame("P") + header("P", 8) + b"abc")
    c.shutdown_write()
    assert c.read_frame() == ("E", b"first")
    assert c.read_frame() == ("P", b"")
    assert c.read_error() == "400 truncated frame: got 3 of 8 bytes"
    c.expect_eof()


def test_complete_frames_are_answered_before_a_cut_echo(echod):
    c = echod.connect()
    c.send(frame("P") + frame("E", b"whole") + header("E", 100) + b"part")
    c.shutdown_write()
    assert c.read_all() == frame("P") + frame("E", b"whole") + header("E", 100) + b"part"
