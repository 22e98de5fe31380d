"""The kernel as the balancer: two echod instances on one port with
`reuse_port = true` (SO_REUSEPORT). Both get connections, and SIGTERM to one
loses no connection it accepted: its requests in progress are finished and
answered, then it closes cleanly, while the other instance goes on serving
its own connections and every new one."""

import os
import signal
import subprocess
import time

from conftest import ECHOD, Client, bound, frame, free_port, header


def server_inodes(pid):
    """Socket inodes of a process's descriptors."""
    out = set()
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{name}")
        except FileNotFoundError:
            continue
        if link.startswith("socket:["):
            out.add(link[8:-1])
    return out


def owners(instances, clients):
    """For each client, the instance that holds the server side of its
    connection (matched in /proc/net/tcp by both ports, then by inode)."""
    by_ports = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[3] == "01":       # ESTABLISHED
                local = int(fields[1].rsplit(":", 1)[1], 16)
                remote = int(fields[2].rsplit(":", 1)[1], 16)
                by_ports[(local, remote)] = fields[9]
    inodes = [server_inodes(e.pid) for e in instances]
    out = []
    for c in clients:
        inode = by_ports.get((c.sock.getpeername()[1], c.sock.getsockname()[1]))
        held = [e for e, ino in zip(instances, inodes) if inode in ino]
        assert len(held) == 1, f"connection held by {len(held)} instances"
        out.append(held[0])
    return out


def start_pair(echod_factory, port):
    # Each also listens on a unix socket of its own: STATS per instance.
    return [echod_factory(listen=[f"127.0.0.1:{port}", "unix"], reuse_port=True,
                          drain_timeout=5) for _ in range(2)]


def test_without_reuse_port_the_second_instance_cannot_bind(echod_factory):
    port = free_port()
    echod_factory(listen=[f"127.0.0.1:{port}"])
    other = echod_factory(listen=[f"127.0.0.1:{port}"], wait=False)
    assert other.wait_exit(bound(10)) != 0
    assert "in use" in other.log()
    other.expected_returncode = other.proc.returncode


def test_two_instances_on_one_port_both_get_connections(echod_factory):
    port = free_port()
    a, b = start_pair(echod_factory, port)
    before = [e.stats(e.listen[1])["connections_total"] for e in (a, b)]
    clients = [Client.connect(f"127.0.0.1:{port}") for _ in range(64)]
    for c in clients:
        c.ping()
    held = owners([a, b], clients)
    counts = [sum(1 for o in held if o is e) for e in (a, b)]
    print(f"64 connections over two instances on one port: {counts[0]} / {counts[1]}")
    # The kernel hashes each 4-tuple: all 64 on one side is a 2^-63 chance.
    assert counts[0] > 0 and counts[1] > 0, counts
    # Each instance's own counters agree with where the connections went.
    after = [e.stats(e.listen[1])["connections_total"] for e in (a, b)]
    assert [x - y for x, y in zip(after, before)] == [n + 1 for n in counts]  # + this STATS
    for c in clients:
        c.close()


def test_sigterm_to_one_instance_loses_no_connection_it_accepted(echod_factory):
    port = free_port()
    a, b = start_pair(echod_factory, port)
    clients = [Client.connect(f"127.0.0.1:{port}") for _ in range(32)]
    for c in clients:
        c.ping()
    held = owners([a, b], clients)
    mine = [c for c, o in zip(clients, held) if o is a]
    others = [c for c, o in zip(clients, held) if o is b]
    assert mine and others, "all 32 connections went to one instance"
    # Every connection of a has requests in flight: a complete ECHO that it
    # has read (answered before the PING that follows proves it) and one in
    # progress, half sent.
    for i, c in enumerate(mine):
        c.send(frame("E", b"done %d" % i) + frame("P") + header("E", 10) + b"01234")
    for i, c in enumerate(mine):
        assert c.read_frame() == ("E", b"done %d" % i)
        assert c.read_frame() == ("P", b"")
        assert c.recv_exact(10) == header("E", 10) + b"01234"
    a.send_signal(signal.SIGTERM)
    a.wait_log(r"SIGTERM: shutting down")
    # While a drains, b serves its own connections and new ones.
    for c in others:
        assert c.request("E", b"still here") == ("E", b"still here")
    # a finishes every frame in progress, then closes cleanly (no reset).
    for c in mine:
        c.send(b"56789")
        assert c.recv_exact(5) == b"56789"
        c.expect_eof(timeout=bound(5))
        c.close()
    assert a.wait_exit(bound(10)) == 0
    # With a gone, every new connection lands on b.
    deadline = time.monotonic() + bound(10)
    served = 0
    while served < 32 and time.monotonic() < deadline:
        with Client.connect(f"127.0.0.1:{port}") as c:
            c.ping()
            served += 1
    assert served == 32
    for c in others:
        c.ping()
        c.close()
    assert b.stats(b.listen[1])["connections_current"] == 1


def test_reuse_port_must_be_a_boolean(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text("reuse_port = 1;\n")
    p = subprocess.run([str(ECHOD), "-t", "-c", str(path)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 1 and "bad.conf:1:" in p.stderr, p.stderr
