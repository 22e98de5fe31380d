"""Each listener speaks one protocol, named by the scheme of its `listen`
entry (no scheme = framed): the config check knows the schemes, the log line
names the protocol, a reload adds and removes listeners of any protocol and
can change the protocol of an address for new connections, and an inherited
socket's protocol is its LISTEN_FDNAMES name."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import ECHOD, Client, bound, config_text, free_port


def check(text):
    d = tempfile.mkdtemp(prefix="echod-lp-", dir="/tmp")
    try:
        path = os.path.join(d, "x.conf")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([str(ECHOD), "-t", "-c", path], capture_output=True, text=True,
                           timeout=bound(10))
        return r.returncode, r.stdout + r.stderr, path
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_schemes_are_accepted_by_the_check():
    rc, out, _ = check('listen = [ "framed://127.0.0.1:7007", "raw://127.0.0.1:7008",\n'
                       '           "raw://unix:/tmp/x.sock", "127.0.0.1:7009" ];\n')
    assert rc == 0, out
    assert "configuration ok" in out


def test_unknown_scheme_is_a_config_error_with_its_line():
    rc, out, path = check('workers = 1;\nlisten = [ "127.0.0.1:7007",\n'
                          '  "gopher://127.0.0.1:7008" ];\n')
    assert rc == 1
    assert re.search(re.escape(path) + r":3: listen\[1\]: unknown protocol", out), out


def test_one_address_under_two_schemes_is_refused():
    rc, out, path = check('listen = [ "raw://127.0.0.1:7007", "framed://127.0.0.1:7007" ];\n')
    assert rc == 1
    assert "same address" in out, out


def test_log_line_names_each_protocol(echod_factory):
    d = echod_factory(listen=("127.0.0.1", "raw://127.0.0.1", "framed://unix"))
    framed, raw_addr, unix = d.listen
    log = d.log()
    assert f"listening on {framed} (framed)" in log, log
    assert f"listening on {raw_addr.split('://')[1]} (raw)" in log, log
    assert f"listening on {unix.split('://')[1]} (framed)" in log, log


def test_each_listener_speaks_its_protocol(echod_factory):
    d = echod_factory(listen=("127.0.0.1", "raw://127.0.0.1"))
    with d.connect(d.addr_of("framed")) as c:
        c.ping()
    with d.connect(d.addr_of("raw")) as c:
        # A PING frame on a raw listener is just five bytes to echo.
        c.send(b"P\0\0\0\0")
        assert c.recv_exact(5) == b"P\0\0\0\0"


def test_reload_adds_and_removes_listeners_of_any_protocol(echod_factory):
    d = echod_factory(listen=("127.0.0.1",))
    framed = d.addr
    raw_addr = f"raw://127.0.0.1:{free_port()}"
    since = d.log_offset()
    d.reload(listen=[framed, raw_addr])
    d.wait_log(r"listening on 127\.0\.0\.1:\d+ \(raw\)", since=since)
    with Client.connect(raw_addr) as c:
        c.send(b"new")
        assert c.recv_exact(3) == b"new"
    since = d.log_offset()
    d.reload(listen=[framed])
    d.wait_log(r"no longer listening on 127\.0\.0\.1:\d+", since=since)
    with pytest.raises(ConnectionRefusedError):
        Client.connect(raw_addr, timeout=2)
    with d.connect(framed) as c:
        c.ping()


def test_reload_changes_the_protocol_of_an_address_for_new_connections(echod_factory):
    d = echod_factory(listen=("127.0.0.1", "127.0.0.1"))
    keep, moving = d.listen
    old = d.connect(moving)
    old.ping()
    since = d.log_offset()
    d.reload(listen=[keep, "raw://" + moving])
    d.wait_log(r"\(raw, was framed\)", since=since)
    # The connection from before still speaks framed...
    old.ping()
    # ... and a new one speaks raw.
    with Client.connect("raw://" + moving) as c:
        c.send(b"P\0\0\0\0")
        assert c.recv_exact(5) == b"P\0\0\0\0"
    old.close()


ACTIVATE = shutil.which("systemd-socket-activate")


@pytest.mark.skipif(ACTIVATE is None, reason="systemd-socket-activate not installed "
                    "(Debian package systemd)")
@pytest.mark.parametrize("fdname,proto", [("raw", "raw"), ("framed", "framed"),
                                          ("echod", "framed")])
def test_inherited_socket_protocol_is_its_fdname(echod_factory, fdname, proto):
    workdir = tempfile.mkdtemp(prefix="echod-lp-", dir="/tmp")
    try:
        port = free_port()
        conf = os.path.join(workdir, "echod.conf")
        with open(conf, "w") as f:
            f.write(config_text({"workers": 1, "drain_timeout": 1}))
        argv = [ACTIVATE, "-l", f"127.0.0.1:{port}", f"--fdname={fdname}",
                "-E", "ASAN_OPTIONS", "-E", "UBSAN_OPTIONS", "-E", "TSAN_OPTIONS",
                str(ECHOD), "-c", conf]
        d = echod_factory(argv=argv, wait=False)
        deadline = time.monotonic() + bound(10)
        while True:
            try:
                c = Client.connect(f"127.0.0.1:{port}")
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        with c:
            c.send(b"P\0\0\0\0")
            # framed answers PING with an empty P frame; raw echoes the bytes:
            # the same five bytes either way, so ask for something that differs.
            assert c.recv_exact(5) == b"P\0\0\0\0"
            c.send(b"S\0\0\0\0")
            head = c.recv_exact(5)
            if proto == "raw":
                assert head == b"S\0\0\0\0"
            else:
                assert head[:1] == b"S" and head[1:] != b"\0\0\0\0"
        log = d.wait_log(r"listening on 127\.0\.0\.1:\d+ \(inherited[^\n]*").group(0)
        assert f"{fdname}; {proto}" in log, log
        if fdname not in ("raw", "framed", "http"):
            assert "by default" in log, log
        d.send_signal(signal.SIGTERM)
        d.wait_exit(bound(10))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
