"""Socket activation: systemd-socket-activate hands echod a TCP and a unix
listening socket (LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES); clients are
served on both, the `listen` addresses of the config are not bound, the log
names the inherited sockets, and they keep serving across a SIGHUP reload.
LISTEN_* meant for another process is ignored."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import ECHOD, Client, bound, config_text, frame, free_port

ACTIVATE = shutil.which("systemd-socket-activate")

pytestmark = pytest.mark.skipif(ACTIVATE is None, reason="systemd-socket-activate not installed "
                                "(Debian package systemd)")


def connect_retry(addr, timeout):
    """The first connection makes systemd-socket-activate exec echod; it is
    queued in the kernel until echod accepts it, so one attempt suffices,
    but the unix file may appear a moment after the process starts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return Client.connect(addr, timeout=timeout)
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="echod-sa-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def activated(echod_factory, workdir, settings):
    """echod under systemd-socket-activate on a fresh TCP port and unix path.
    Returns (echod, tcp address, unix address, config path)."""
    for _ in range(3):      # the free port may be taken before the activator binds it
        port = free_port()
        tcp = f"127.0.0.1:{port}"
        unix = f"{workdir}/act.sock"
        conf = os.path.join(workdir, "echod.conf")
        with open(conf, "w") as f:
            f.write(config_text(settings))
        argv = [ACTIVATE, "-l", tcp, "-l", unix, "--fdname=tcp:local",
                # systemd-socket-activate passes on only what -E names.
                "-E", "ASAN_OPTIONS", "-E", "UBSAN_OPTIONS", "-E", "TSAN_OPTIONS",
                str(ECHOD), "-c", conf]
        d = echod_factory(argv=argv, wait=False)
        deadline = time.monotonic() + bound(5)
        while not os.path.exists(unix) and d.running() and time.monotonic() < deadline:
            time.sleep(0.02)
        if os.path.exists(unix):
            return d, tcp, f"unix:{unix}", conf
        d.expected_returncode = d.proc.wait(bound(5))
    raise AssertionError(f"systemd-socket-activate did not listen; log:\n{d.log()}")


def test_inherited_tcp_and_unix_sockets_are_served(echod_factory, workdir):
    own = f"127.0.0.1:{free_port()}"
    d, tcp, unix, _ = activated(echod_factory, workdir,
                                {"listen": [own], "workers": 2, "drain_timeout": 2})
    with connect_retry(tcp, bound(10)) as c:
        c.ping()
        assert c.request("E", b"over tcp") == ("E", b"over tcp")
    with connect_retry(unix, bound(10)) as c:
        c.ping()
        assert c.request("E", b"over unix") == ("E", b"over unix")
    # Several at once on both.
    clients = [Client.connect(a) for a in (tcp, unix) * 4]
    for i, c in enumerate(clients):
        c.send(frame("E", b"n%d" % i))
    for i, c in enumerate(clients):
        assert c.read_frame() == ("E", b"n%d" % i)
        c.close()
    # The config's own address is not bound: the inherited sockets replace it.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(own.rsplit(":", 1)[1])), timeout=2).close()
    log = d.log()
    assert "inherited" in log, log
    assert "tcp" in log and "local" in log, log    # LISTEN_FDNAMES
    assert f"listening on {own}" not in log, log


def test_inherited_sockets_survive_a_reload(echod_factory, workdir):
    own = f"127.0.0.1:{free_port()}"
    settings = {"listen": [own], "workers": 2, "drain_timeout": 2}
    d, tcp, unix, conf = activated(echod_factory, workdir, settings)
    with connect_retry(tcp, bound(10)) as c:
        c.ping()
        held = Client.connect(unix)
        held.ping()
        other = f"127.0.0.1:{free_port()}"
        with open(conf, "w") as f:
            f.write(config_text(dict(settings, listen=[other], max_frame_size=64)))
        since = d.log_offset()
        d.send_signal(signal.SIGHUP)
        d.wait_log(r"reloaded|reload failed", since=since)
        assert "reloaded" in d.log()[since:], d.log()
        # Open connections and both inherited listeners carry on...
        c.ping()
        held.ping()
        for a in (tcp, unix):
            with Client.connect(a) as n:
                n.ping()
                # ...with the new configuration.
                n.send_frame("E", b"z" * 100)
                assert n.read_error().startswith("413")
        held.close()
    # and the new `listen` address is still not bound.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(other.rsplit(":", 1)[1])), timeout=2).close()


def test_listen_fds_for_another_process_are_ignored(tmp_path):
    """LISTEN_PID names someone else: echod binds its own `listen` and
    leaves the descriptor it was handed alone."""
    stray = socket.socket()
    stray.bind(("127.0.0.1", 0))
    stray.listen()
    stray_port = stray.getsockname()[1]
    own = f"127.0.0.1:{free_port()}"
    conf = tmp_path / "echod.conf"
    conf.write_text(config_text({"listen": [own], "workers": 1}))
    log = tmp_path / "stderr"
    env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="x")

    def put_on_fd3():     # in the child; dup2 leaves it inheritable
        os.dup2(stray.fileno(), 3)

    with open(log, "wb") as err:
        proc = subprocess.Popen([str(ECHOD), "-c", str(conf)], env=env, stdin=subprocess.DEVNULL,
                                stderr=err, close_fds=False, preexec_fn=put_on_fd3)
    try:
        c = connect_retry(own, bound(10))
        with c:
            c.ping()
        assert "inherited" not in log.read_text(), log.read_text()
        # echod has the socket as fd 3 but does not accept on it.
        assert os.readlink(f"/proc/{proc.pid}/fd/3") == f"socket:[{os.fstat(stray.fileno()).st_ino}]"
        with socket.create_connection(("127.0.0.1", stray_port), timeout=2) as s:
            s.settimeout(0.5)
            s.sendall(frame("P"))
            with pytest.raises(socket.timeout):
                s.recv(5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(bound(15)) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stray.close()
