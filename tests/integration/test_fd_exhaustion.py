"""Out of file descriptors: accept fails with EMFILE. echod must neither spin
on the listening socket nor drop the connections waiting in the backlog, and
must serve again as soon as descriptors are free (contract: sockets done
right; accept survives EMFILE/ENFILE without a busy loop and recovers)."""
import os
import resource
import time

from conftest import Client, bound

# Descriptors echod may open beyond what it holds after start-up.
HEADROOM = 6


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def settled_fds(pid):
    """echod's descriptor count once the start-up probe connections are gone."""
    deadline = time.monotonic() + bound(5)
    last = open_fds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = open_fds(pid)
        if now == last:
            return now
        last = now
    return last


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def set_soft_limit(pid, soft):
    """Lower (or restore) echod's soft descriptor limit; the hard one stays."""
    _, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))


def test_accept_pauses_on_emfile_and_recovers(echod_factory):
    e = echod_factory(workers=1, max_connections=1000, idle_timeout=0)
    set_soft_limit(e.pid, settled_fds(e.pid) + HEADROOM)

    # More clients than descriptors: the first HEADROOM are served at once,
    # the rest wait in the listen backlog while accept fails.
    clients = [Client.connect(e.addr) for _ in range(HEADROOM + 10)]
    for c in clients[:HEADROOM]:
        c.ping()
    e.wait_log(r"accept: Too many open files; pausing accepts")

    # Starved, it sleeps between attempts instead of spinning.
    before = cpu_seconds(e.pid)
    time.sleep(1.0)
    assert cpu_seconds(e.pid) - before < 0.5, "echod busy-loops while out of descriptors"
    # Retries every 100 ms stay quiet: one line per episode. (A descriptor
    # echod still held when the limit was set can end an episode early, so
    # there may be more than one, each closed by a recovery line.)
    log = e.log()
    assert log.count("pausing accepts") == log.count("accepting connections again") + 1, log

    # Descriptors come back: every waiting client is served, none was lost.
    for c in clients[:HEADROOM]:
        c.close()
    for c in clients[HEADROOM:HEADROOM * 2]:
        c.ping()
    e.wait_log(r"accepting connections again")
    for c in clients[HEADROOM:HEADROOM * 2]:
        c.close()
    for c in clients[HEADROOM * 2:]:
        c.ping()
        c.close()

    set_soft_limit(e.pid, 1024)
    with Client.connect(e.addr) as c:
        assert c.stats()["connections_current"] == 1


def test_connections_over_the_limit_are_not_reset(echod_factory):
    """A client stuck behind the exhaustion gets its answer, not a reset,
    once the server can accept it."""
    e = echod_factory(workers=1, idle_timeout=0)
    set_soft_limit(e.pid, settled_fds(e.pid) + 1)
    holder = Client.connect(e.addr)
    holder.ping()
    waiting = Client.connect(e.addr)
    waiting.send_frame("E", b"queued")
    waiting.shutdown_write()
    e.wait_log(r"pausing accepts")
    holder.close()
    assert waiting.read_all(timeout=bound(10)) == b"E\x00\x00\x00\x06queued"
    waiting.close()
    set_soft_limit(e.pid, 1024)
