"""echoc against a real echod: every command, its output, its exit codes
(0 ok, 1 error frame, 2 usage, 3 connection or timeout), binary-safe echo and
stream in both directions at sizes beyond the socket buffers, and requests
ended with shutdown(SHUT_WR) (a server that answers only after EOF).
"""

import json
import os
import socket
import subprocess
import time

import pytest

from client_tools import ECHOC, FaultyServer, echoc, run
from conftest import bound, free_port, ipv6_available

# Larger than any default socket buffer pair, so send-all-then-read would
# deadlock against a server that pushes back.
BIG = 6 * 1024 * 1024


def test_ping_prints_pong(echod):
    p = echoc(echod.addr, "ping")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"PONG\n"


def test_stats_pretty_prints_json(echod):
    p = echoc(echod.addr, "stats")
    assert p.returncode == 0, p.stderr
    text = p.stdout.decode()
    st = json.loads(text)
    for key in ("version", "uptime_s", "workers", "connections_current", "requests_total",
                "per_worker"):
        assert key in st
    # Pretty-printed: one key per line, indented.
    assert '\n  "requests_total": ' in text


def test_echo_words_joined_by_spaces(echod):
    p = echoc(echod.addr, "echo", "hello", "binary", "world")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"hello binary world"     # raw: no newline added off a TTY


def test_echo_stdin_is_binary_safe(echod):
    data = bytes(range(256)) * 64 + b"\x00\xff\n\r\x00"
    p = echoc(echod.addr, "echo", stdin=data)
    assert p.returncode == 0, p.stderr
    assert p.stdout == data


def test_echo_stdin_larger_than_socket_buffers(echod):
    data = os.urandom(BIG)
    p = echoc(echod.addr, "echo", stdin=data)
    assert p.returncode == 0, p.stderr
    assert p.stdout == data


def test_stream_is_binary_safe(echod):
    data = os.urandom(BIG) + b"\x00" * 1000
    p = echoc(echod.addr, "stream", stdin=data)
    assert p.returncode == 0, p.stderr
    assert p.stdout == data


def test_stream_empty_stdin(echod):
    p = echoc(echod.addr, "stream", stdin=b"")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b""


def test_send_echo_type_prints_payload(echod):
    p = echoc(echod.addr, "send", "E", "abc")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"abc"


def test_send_unknown_type_exits_1_with_server_text(echod):
    p = echoc(echod.addr, "send", "X", "abc")
    assert p.returncode == 1
    assert b"400 unknown frame type 0x58" in p.stderr
    p = echoc(echod.addr, "send", "0x01")
    assert p.returncode == 1
    assert b"400 unknown frame type 0x01" in p.stderr


def test_frame_too_large_exits_1(echod_factory):
    d = echod_factory(max_frame_size=1024)
    p = echoc(d.addr, "echo", stdin=b"x" * 2000)
    assert p.returncode == 1
    assert b"413" in p.stderr


def test_hex_dumps_whole_frames(echod):
    p = echoc(echod.addr, "--hex", "echo", "hello")
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert out.startswith("00000000  45 00 00 00 05 68 65 6c  6c 6f"), out
    assert "|E....hello|" in out
    p = echoc(echod.addr, "--hex", "ping")
    assert p.returncode == 0
    assert p.stdout.decode().startswith("00000000  50 00 00 00 00 ")


def test_unix_socket(echod_factory):
    d = echod_factory(listen=["unix"])
    p = echoc(d.addr, "echo", "over", "unix")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"over unix"


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
def test_ipv6(echod_factory):
    d = echod_factory(listen=["[::1]"])
    p = run(ECHOC, ["-6", "-p", str(d.port), "ping"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"PONG\n"


def test_usage_errors_exit_2():
    for args in ([], ["frob"], ["-t", "soon", "ping"], ["ping", "extra"], ["send"],
                 ["send", "0x1ff"], ["--nope", "ping"]):
        p = run(ECHOC, args)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        assert p.stderr, args


def test_help_documents_exit_codes():
    p = run(ECHOC, ["-h"])
    assert p.returncode == 0
    text = p.stdout.decode()
    for line in ("0  success", "1  the server answered an error frame", "2  usage error",
                 "3  connection or timeout failure"):
        assert line in text


def test_connection_refused_exits_3():
    port = free_port()      # nothing listens there now
    p = run(ECHOC, ["-p", str(port), "ping"])
    assert p.returncode == 3
    assert b"cannot connect" in p.stderr


def test_silent_server_times_out_with_exit_3():
    # A listener that accepts (the kernel does) but never answers.
    with socket.socket() as ls:
        ls.bind(("127.0.0.1", 0))
        ls.listen(8)
        port = ls.getsockname()[1]
        t0 = time.monotonic()
        p = run(ECHOC, ["-p", str(port), "-t", "0.5", "ping"], timeout=bound(20))
        elapsed = time.monotonic() - t0
    assert p.returncode == 3
    assert b"timed out" in p.stderr
    assert elapsed < bound(10)


def test_requests_end_with_shutdown_write():
    # The server answers only after the client's EOF: a client that did not
    # shut down its side would wait for the reply until its timeout.
    with FaultyServer("--require-eof") as srv:
        p = echoc(srv.addr, "-t", "5", "echo", "after", "eof")
        assert p.returncode == 0, p.stderr
        assert p.stdout == b"after eof"
        p = echoc(srv.addr, "-t", "5", "ping")
        assert p.returncode == 0, p.stderr
        data = os.urandom(200000)
        p = echoc(srv.addr, "-t", "5", "echo", stdin=data)
        assert p.returncode == 0, p.stderr
        assert p.stdout == data


def test_reply_cut_short_exits_3():
    # A server that announces 100 bytes, sends 3 and closes.
    with socket.socket() as ls:
        ls.bind(("127.0.0.1", 0))
        ls.listen(8)
        port = ls.getsockname()[1]
        proc = subprocess.Popen([str(ECHOC), "-p", str(port), "-t", "5", "ping"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            ls.settimeout(bound(10))
            conn, _ = ls.accept()
            with conn:
                conn.settimeout(bound(10))
                conn.recv(100)
                conn.sendall(b"P\x00\x00\x00\x64abc")
            out, err = proc.communicate(timeout=bound(10))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 3
    assert b"cut short" in err
