"""Each request type gets the reply protocol.md promises: ECHO comes back
byte-identical, PING as an empty 'P', STATS as a JSON object, and an unknown
type as a 400 error frame after which the connection goes on."""

import json
import subprocess

import pytest

from conftest import ECHOD, frame, pattern


@pytest.mark.parametrize("size", [1, 5, 255, 4096, 65536, 1 << 20])
def test_echo_reply_is_byte_identical(echod, size):
    c = echod.connect()
    request = frame("E", pattern(size, seed=size))
    c.send(request)
    assert c.recv_exact(len(request)) == request


def test_echo_carries_every_byte_value(echod):
    c = echod.connect()
    payload = bytes(range(256)) * 4
    request = frame("E", payload)
    c.send(request)
    assert c.recv_exact(len(request)) == request


def test_zero_length_echo_gets_zero_length_reply(echod):
    c = echod.connect()
    c.send(b"E\x00\x00\x00\x00")
    assert c.recv_exact(5) == b"E\x00\x00\x00\x00"
    c.ping()   # and the connection goes on


def test_ping_gets_empty_ping(echod):
    c = echod.connect()
    c.send(b"P\x00\x00\x00\x00")
    assert c.recv_exact(5) == b"P\x00\x00\x00\x00"


def test_ping_payload_is_ignored(echod):
    c = echod.connect()
    # The payload looks like frames; none of it may be taken as a request.
    c.send_frame("P", frame("E", b"sneaky") + frame("P"))
    assert c.read_frame() == ("P", b"")
    c.send_frame("E", b"after")
    assert c.read_frame() == ("E", b"after")


STATS_NUMBERS = ("uptime_s", "workers", "connections_current", "connections_total",
                 "connections_rejected", "requests_total", "bytes_in", "bytes_out",
                 "errors_total")


def check_stats_shape(st, workers):
    assert isinstance(st["version"], str) and st["version"]
    for key in STATS_NUMBERS:
        assert isinstance(st[key], int) and not isinstance(st[key], bool), (key, st)
        assert st[key] >= 0, (key, st)
    assert st["workers"] == workers
    assert isinstance(st["per_worker"], list) and len(st["per_worker"]) == workers
    for w in st["per_worker"]:
        assert isinstance(w["connections"], int) and isinstance(w["requests"], int), w


@pytest.mark.parametrize("workers", [1, 3])
def test_stats_reply_is_a_json_object_with_the_counters(echod_factory, workers):
    d = echod_factory(workers=workers)
    c = d.connect()
    c.send(b"S\x00\x00\x00\x00")
    t, payload = c.read_frame()
    assert t == "S"
    st = json.loads(payload.decode("utf-8"))
    assert isinstance(st, dict)
    check_stats_shape(st, workers)
    assert st["connections_current"] >= 1   # this one


def test_stats_payload_is_ignored(echod):
    c = echod.connect()
    c.send_frame("S", b"P\x00\x00\x00\x00 not a request")
    t, payload = c.read_frame()
    assert t == "S"
    json.loads(payload)
    c.ping()


def test_stats_version_matches_dash_v(echod):
    out = subprocess.run([str(ECHOD), "-V"], capture_output=True, text=True, timeout=10).stdout
    assert echod.stats()["version"] in out


@pytest.mark.parametrize("t", [0x00, 0x21, 0x41, 0x65, 0x70, 0x73, 0x7F, 0x80, 0xAB, 0xFF])
def test_unknown_type_gets_400_and_connection_goes_on(echod, t):
    c = echod.connect()
    c.send(frame(t, b"some payload") + frame("E", b"next"))
    assert c.read_error() == f"400 unknown frame type 0x{t:02x}"
    assert c.read_frame() == ("E", b"next")


def test_unknown_type_payload_is_discarded_whole(echod):
    c = echod.connect()
    # The discarded payload holds complete frames: they must not be answered.
    inner = frame("P") * 3 + frame("E", b"x")
    c.send(frame("X", inner) + frame("P"))
    assert c.read_error() == "400 unknown frame type 0x58"
    assert c.read_frame() == ("P", b"")
    c.send_frame("E", b"last")
    assert c.read_frame() == ("E", b"last")


def test_unknown_type_with_empty_payload(echod):
    c = echod.connect()
    c.send(b"Z\x00\x00\x00\x00")
    assert c.read_error() == "400 unknown frame type 0x5a"
    c.ping()


def test_many_requests_one_after_another(echod):
    c = echod.connect()
    for i in range(200):
        payload = pattern(i * 7, seed=i)
        assert c.request("E", payload) == ("E", payload)
        if i % 10 == 0:
            c.ping()
