"""tcp_nodelay and tcp_keepalive (contract: config keys) on the server's side
of real connections, read from echod's own sockets: a duplicate of the
descriptor taken with pidfd_getfd(2), then getsockopt. A reload changes what
new connections get."""
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
