"""tcp_nodelay and tcp_keepalive (contract: config keys), the keepalive timing
and tcp_user_timeout on the server's side of real connections, read from
echod's own sockets: a duplicate of the descriptor taken with pidfd_getfd(2),
then getsockopt. A reload changes what new connections get, never what open
ones have."""
import ctypes
import errno
import os
import socket

import pytest

from conftest import Client, ipv6_available

SYS_PIDFD_GETFD = 438   # x86_64 and the generic table alike
libc = ctypes.CDLL(None, use_errno=True)


def server_socket(pid, client):
    """A duplicate of echod's descriptor for the other end of client."""
    client_port = client.sock.getsockname()[1]
    server_port = client.sock.getpeername()[1]
    want = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                # sl local_address rem_address st ... inode
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                established = fields[3] == "01"
                if established and (local_port, remote_port) == (server_port, client_port):
                    want = f"socket:[{fields[9]}]"
    assert want is not None, "the connection is not in /proc/net/tcp"
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}") == want:
                break
        except FileNotFoundError:
            continue
    else:
        raise AssertionError("echod holds no descriptor for the connection")
    pidfd = os.pidfd_open(pid)
    try:
        fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
        if fd < 0:
            err = ctypes.get_errno()
            if err in (errno.EPERM, errno.ENOSYS):
                pytest.skip(f"pidfd_getfd: {os.strerror(err)}")
            raise OSError(err, os.strerror(err))
    finally:
        os.close(pidfd)
    return socket.socket(fileno=fd)


def options(e):
    with Client.connect(e.addr) as c:
        c.ping()    # accepted and handed to a worker
        with server_socket(e.pid, c) as s:
            return (s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0,
                    s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0)


@pytest.mark.parametrize("nodelay,keepalive", [(True, True), (False, False), (True, False),
                                               (False, True)])
def test_options_as_configured(echod_factory, nodelay, keepalive):
    e = echod_factory(tcp_nodelay=nodelay, tcp_keepalive=keepalive)
    assert options(e) == (nodelay, keepalive)


def test_options_on_ipv6(echod_factory):
    if not ipv6_available():
        pytest.skip("no IPv6 loopback")
    e = echod_factory(listen=("[::1]",), tcp_nodelay=True, tcp_keepalive=True)
    assert options(e) == (True, True)


def test_reload_changes_options_of_new_connections(echod_factory):
    e = echod_factory(tcp_nodelay=True, tcp_keepalive=False)
    old = Client.connect(e.addr)
    old.ping()
    offset = e.log_offset()
    e.reload(tcp_nodelay=False, tcp_keepalive=True)
    e.wait_log(r"configuration reloaded", since=offset)
    assert options(e) == (False, True)
    # An existing connection keeps what it had.
    with server_socket(e.pid, old) as s:
        assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0
    old.close()


def timing(s):
    """(idle s, interval s, count, user timeout ms) of a socket."""
    return (s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            s.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT))


def accepted_timing(e, addr=None):
    with Client.connect(addr or e.addr) as c:
        c.ping()
        with server_socket(e.pid, c) as s:
            return timing(s)


def test_keepalive_timing_defaults(echod_factory):
    e = echod_factory()
    assert accepted_timing(e) == (60, 10, 6, 120000)


@pytest.mark.parametrize("idle,interval,count,user_timeout,want_ms", [
    (1, 1, 1, 0, 0),
    (7, 3, 5, 2.5, 2500),
    (32767, 32767, 127, 2147483, 2147483000),
])
def test_keepalive_timing_as_configured(echod_factory, idle, interval, count, user_timeout,
                                        want_ms):
    e = echod_factory(tcp_keepalive_idle=idle, tcp_keepalive_interval=interval,
                      tcp_keepalive_count=count, tcp_user_timeout=user_timeout)
    assert accepted_timing(e) == (idle, interval, count, want_ms)


def test_keepalive_timing_on_ipv6(echod_factory):
    if not ipv6_available():
        pytest.skip("no IPv6 loopback")
    e = echod_factory(listen=("[::1]",), tcp_keepalive_idle=11, tcp_keepalive_interval=4,
                      tcp_keepalive_count=2, tcp_user_timeout=9)
    assert accepted_timing(e) == (11, 4, 2, 9000)


def test_unix_listener_ignores_tcp_timing(echod_factory):
    e = echod_factory(listen=("unix",), tcp_keepalive_idle=5, tcp_user_timeout=3)
    with Client.connect(e.addr) as c:
        c.ping()
    assert "socket options" not in e.log()


def test_reload_changes_timing_of_new_connections_only(echod_factory):
    e = echod_factory(tcp_keepalive_idle=30, tcp_keepalive_interval=5, tcp_keepalive_count=4,
                      tcp_user_timeout=50)
    old = Client.connect(e.addr)
    old.ping()
    offset = e.log_offset()
    e.reload(tcp_keepalive_idle=2, tcp_keepalive_interval=1, tcp_keepalive_count=3,
             tcp_user_timeout=0.75)
    e.wait_log(r"configuration reloaded", since=offset)
    assert accepted_timing(e) == (2, 1, 3, 750)
    with server_socket(e.pid, old) as s:
        assert timing(s) == (30, 5, 4, 50000)
    old.ping()
    old.close()
    # And back: a reload to 0 turns the user timeout off for new connections.
    offset = e.log_offset()
    e.reload(tcp_user_timeout=0)
    e.wait_log(r"configuration reloaded", since=offset)
    assert accepted_timing(e)[3] == 0
