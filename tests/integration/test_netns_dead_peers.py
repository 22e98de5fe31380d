"""Dead peers are reclaimed in bounded time, in every state (docs/dead-peers.md):
a client that vanishes (all its packets dropped on its side, both ways) while
idle, in the middle of a frame, or with 8 MiB of replies pending. echod runs
in its own network namespace with short timers; each case measures how long
until STATS shows connections_current back to 0, and checks it against the
bound the configuration promises. Root only (netns_testbed.py)."""

import threading
import time

from conftest import bound, frame, header
from netns_testbed import figure, testbed  # noqa: F401 (fixture)

# Short timers, so each case takes seconds.
KEEPIDLE, KEEPINTVL, KEEPCNT = 1, 1, 2
USER_TIMEOUT = 3.0
READ_TIMEOUT = 2.0
# echod's lingering close waits this long at most for the peer's EOF (worker.c).
LINGER = 5.0
# Slack for the kernel's timer granularity and the STATS polling.
SLACK = 2.0


def settle(tb, conns):
    """The clients are served and counted before the fault. Returns when the
    last of them exchanged anything: the kernel's idle clocks start there."""
    tb.wait_current(len(conns), bound(5))
    for c in conns:
        c.ping()
    return time.monotonic()


def reclaimed_since(tb, t0, timeout):
    """Seconds from t0 until connections_current is 0."""
    tb.wait_current(0, timeout)
    return time.monotonic() - t0


def test_idle_peer_found_by_keepalive(testbed):
    tb = testbed
    # No user timeout: keepalive alone, idle + interval * count.
    tb.start_echod(idle_timeout=0, tcp_keepalive_idle=KEEPIDLE,
                   tcp_keepalive_interval=KEEPINTVL, tcp_keepalive_count=KEEPCNT,
                   tcp_user_timeout=0)
    conns = [tb.connect() for _ in range(3)]
    last = settle(tb, conns)
    promised = KEEPIDLE + KEEPINTVL * KEEPCNT
    tb.vanish()
    took = reclaimed_since(tb, last, bound(promised + SLACK + 5))
    figure("idle peer, keepalive 1/1/2, no user timeout: reclaimed after (since its last "
           "exchange)", f"{took:.2f}", "s")
    assert took <= bound(promised + SLACK), (took, promised)
    assert took >= promised - 1, f"gone after {took:.2f} s: before keepalive could decide"


def test_idle_peer_with_user_timeout(testbed):
    tb = testbed
    # With TCP_USER_TIMEOUT set, it (not the probe count) decides: keepalive
    # 1/1/1 would say 2 s, the connection ends at the first probe past 3 s.
    tb.start_echod(idle_timeout=0, tcp_keepalive_idle=KEEPIDLE,
                   tcp_keepalive_interval=KEEPINTVL, tcp_keepalive_count=1,
                   tcp_user_timeout=USER_TIMEOUT)
    conns = [tb.connect() for _ in range(3)]
    last = settle(tb, conns)
    tb.vanish()
    took = reclaimed_since(tb, last, bound(USER_TIMEOUT + SLACK + 5))
    figure("idle peer, keepalive 1/1/1 + user timeout 3 s: reclaimed after (since its last "
           "exchange)", f"{took:.2f}", "s")
    assert took <= bound(USER_TIMEOUT + KEEPINTVL + SLACK), took
    assert took >= USER_TIMEOUT - 0.5, f"gone after {took:.2f} s: the probe count decided"


def test_peer_vanishing_mid_frame_is_reclaimed(testbed):
    tb = testbed
    tb.start_echod(idle_timeout=0, read_timeout=READ_TIMEOUT, tcp_keepalive_idle=30,
                   tcp_user_timeout=USER_TIMEOUT)
    conns = [tb.connect() for _ in range(3)]
    settle(tb, conns)
    began = time.monotonic()
    for c in conns:
        c.send(header("P", 100) + b"x" * 10)    # a frame begun, never finished
    time.sleep(0.2)                              # ... and received
    tb.vanish()
    # read_timeout sends 408 into the void; the lingering close after it ends
    # at the user timeout (the 408 and our FIN are never acknowledged), or at
    # the linger bound, whichever is first.
    promised = READ_TIMEOUT + min(LINGER, USER_TIMEOUT + KEEPINTVL)
    took = reclaimed_since(tb, began, bound(READ_TIMEOUT + LINGER + SLACK + 5))
    figure("peer gone mid-frame, read_timeout 2 s, user timeout 3 s: reclaimed after (since "
           "the frame began)",
           f"{took:.2f}", "s")
    assert took <= bound(promised + SLACK), (took, promised)
    assert took >= READ_TIMEOUT - 0.5, took


class Pipeline:
    """8 MiB of ECHO requests sent from a thread (as far as backpressure
    lets), the replies read by another at `read_rate` bytes/s (0: never)."""

    def __init__(self, c, read_rate):
        self.c = c
        self.data = frame("E", b"r" * 65536) * 128
        self.sent = 0
        self.got = 0
        self.read_rate = read_rate
        self.stop = threading.Event()
        threading.Thread(target=self._send, daemon=True).start()
        if read_rate:
            threading.Thread(target=self._read, daemon=True).start()

    def _send(self):
        try:
            while self.sent < len(self.data) and not self.stop.is_set():
                self.sent += self.c.sock.send(self.data[self.sent:self.sent + (1 << 16)])
        except OSError:
            pass

    def _read(self):
        try:
            while not self.stop.is_set():
                n = len(self.c.sock.recv(8192))
                if n == 0:
                    return
                self.got += n
                time.sleep(n / self.read_rate)
        except OSError:
            pass

    def wait_stalled(self):
        """Until the sender has made no progress for half a second."""
        last, still = -1, 0
        deadline = time.monotonic() + bound(20)
        while still < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
            still = still + 1 if self.sent == last else 0
            last = self.sent


def test_peer_vanishing_with_8_mib_pending_is_reclaimed(testbed):
    tb = testbed
    # write_timeout far away: the user timeout is what must end it.
    tb.start_echod(idle_timeout=0, read_timeout=60, write_timeout=60, tcp_keepalive_idle=30,
                   tcp_user_timeout=USER_TIMEOUT)
    c = tb.connect(rcvbuf=65536, timeout=30)
    c.ping()
    # Replies read at 2 MB/s: echod always has output pending and data in
    # flight when the client vanishes.
    p = Pipeline(c, read_rate=2_000_000)
    deadline = time.monotonic() + bound(10)
    while p.got < (1 << 20) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert p.got >= 1 << 20, f"only {p.got} bytes of replies came back"
    t0 = time.monotonic()
    tb.vanish()
    took = reclaimed_since(tb, t0, bound(USER_TIMEOUT + SLACK + 10))
    p.stop.set()
    figure(f"peer gone with 8 MiB of replies asked ({p.sent / 1048576:.1f} MiB sent, "
           f"{p.got / 1048576:.1f} MiB read back), user timeout 3 s: reclaimed after (since "
           "it vanished)",
           f"{took:.2f}", "s")
    assert took >= USER_TIMEOUT - 0.5, f"gone after {took:.2f} s, before the user timeout"
    assert took <= bound(USER_TIMEOUT + SLACK), took


def test_alive_client_that_never_reads_is_ended_by_the_user_timeout(testbed):
    tb = testbed
    # Its kernel answers every probe with a zero window: keepalive never
    # decides. TCP_USER_TIMEOUT ends it (write_timeout would, later).
    tb.start_echod(idle_timeout=0, read_timeout=60, write_timeout=60, tcp_keepalive_idle=1,
                   tcp_keepalive_interval=1, tcp_user_timeout=USER_TIMEOUT)
    c = tb.connect(rcvbuf=4096, timeout=30)
    c.ping()
    p = Pipeline(c, read_rate=0)
    p.wait_stalled()
    stalled = time.monotonic()
    took = reclaimed_since(tb, stalled, bound(USER_TIMEOUT + SLACK + 10))
    p.stop.set()
    figure(f"alive client never reading ({p.sent / 1048576:.1f} MiB sent before the window "
           "closed), user timeout 3 s: ended after the stall by", f"{took:.2f}", "s")
    assert took <= bound(USER_TIMEOUT + SLACK), took
