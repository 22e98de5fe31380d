"""Logging goes to stderr, every line with a "<N>" syslog priority prefix
(journald reads it); log_level filters; at info nothing is logged per
request or per connection."""

import re
import signal
import time

from conftest import Client, bound, frame

PREFIXED = re.compile(r"<[0-7]>\S")


def lines(text):
    return [ln for ln in text.splitlines() if ln]


def test_every_log_line_has_a_priority_prefix(echod_factory):
    d = echod_factory(log_level="debug")
    with Client.connect(d.addr) as c:
        c.send(frame("X"))
        c.read_error()
    d.reload(max_frame_size=2048)
    d.wait_log("reload")
    d.send_signal(signal.SIGTERM)
    assert d.wait_exit(bound(10)) == 0
    out = lines(d.log())
    assert out, "nothing logged at all"
    bad = [ln for ln in out if not PREFIXED.match(ln)]
    assert not bad, bad


def test_start_and_stop_are_logged_at_info(echod):
    assert re.search(r"^<6>.*listen", echod.log(), re.M), echod.log()
    echod.send_signal(signal.SIGTERM)
    assert echod.wait_exit(bound(10)) == 0
    after = echod.log()
    assert len(lines(after)) >= 2


def test_nothing_is_logged_per_request_or_connection_at_info(echod):
    before = echod.log()
    for _ in range(100):
        with Client.connect(echod.addr) as c:
            c.send(frame("E", b"quiet") + frame("P") + frame("S"))
            c.shutdown_write()
            c.read_all()
    c = echod.connect()
    for _ in range(500):
        c.ping()
    assert echod.stats()["requests_total"] >= 800
    assert echod.log() == before, echod.log()[len(before):]


def test_log_level_error_hides_info(echod_factory):
    d = echod_factory(log_level="error")
    with Client.connect(d.addr) as c:
        c.ping()
    d.send_signal(signal.SIGTERM)
    assert d.wait_exit(bound(10)) == 0
    assert not re.search(r"^<[67]>", d.log(), re.M), d.log()


def test_debug_level_logs_more_than_info(echod_factory):
    d = echod_factory(log_level="debug")
    before = len(d.log())
    for _ in range(3):
        with Client.connect(d.addr) as c:
            c.send(frame("Q"))
            c.read_error()
    # Debug may speak per connection; at least the error frames show.
    d.wait_log(r"<7>", since=before)


def test_log_level_change_on_reload(echod_factory):
    d = echod_factory(log_level="info")
    with Client.connect(d.addr) as c:
        c.send(frame("Q"))
        c.read_error()
    assert "<7>" not in d.log()
    since = d.log_offset()
    d.reload(log_level="debug")
    # The reload takes effect a moment after the signal: provoke an error
    # frame (a debug message) until debug lines show up.
    deadline = time.monotonic() + bound(10)
    while "<7>" not in d.log()[since:]:
        assert time.monotonic() < deadline, f"no debug line after the reload:\n{d.log()}"
        with Client.connect(d.addr) as c:
            c.send(frame("Q"))
            c.read_error()
        time.sleep(0.05)
