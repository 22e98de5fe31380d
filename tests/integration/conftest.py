"""Shared fixtures and helpers for the echod integration tests.

Every test talks to the real build/echod over real sockets. The pieces:

* ``echod_factory(**config)`` starts a daemon with a temporary libconfig file
  and returns an :class:`Echod`; ``echod`` is one started with the defaults
  below. Keyword arguments become config keys (``max_frame_size=1024``,
  ``read_timeout=1.0``, ``log_level="debug"``); ``listen`` takes a list of
  kinds resolved to free addresses: ``"127.0.0.1"``, ``"[::1]"`` and
  ``"unix"`` (or a literal address string), each optionally behind a
  protocol scheme (``"raw://127.0.0.1"``, ``"http://unix"``). ``config_text=`` replaces the
  generated file entirely; ``argv=`` replaces the command line.
* At teardown each daemon is stopped by PID (SIGTERM, then SIGKILL after a
  bound) and the test fails if it had crashed, exited non-zero, or wrote a
  sanitizer report to stderr.
* :class:`Client` wraps a socket whose every operation has a timeout, with
  frame helpers (``send_frame``, ``read_frame``, ``read_error``,
  ``read_all``, ``expect_eof``, ``exchange``).
* Module-level helpers: :func:`frame`, :func:`parse_frames`,
  :func:`free_port`, :func:`raise_nofile`, :func:`bound`.

Set ``ECHOD=/path/to/echod`` to test another binary, and ``SAN`` (any
non-empty value, as ``make test SAN=...`` does) when the binary is
sanitizer-built: every time bound is then multiplied by :data:`SLOW`.

Other test files in this directory import the helpers with
``from conftest import ...``.
"""

import json
import os
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ECHOD = Path(os.environ.get("ECHOD", str(REPO / "build" / "echod")))
SAN = os.environ.get("SAN", "")
# Sanitizer builds run 2-10x slower: every time bound is scaled by this.
SLOW = 5 if SAN else 1

HEADER = struct.Struct(">BI")
HEADER_SIZE = HEADER.size
OPEN_LENGTH = 0xFFFFFFFF

# Defaults written into every generated config unless a test overrides them:
# two workers so cross-worker paths are exercised, and a short drain so a
# test that leaves a frame half-sent does not hold teardown for 10 s.
DEFAULT_CONFIG = {
    "workers": 2,
    "drain_timeout": 2,
    "log_level": "info",
}

# What a sanitizer writes when it finds something; any of them fails the test.
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "WARNING: ThreadSanitizer",
    "SUMMARY: AddressSanitizer",
    "SUMMARY: UndefinedBehaviorSanitizer",
    "SUMMARY: ThreadSanitizer",
)

# How long a started daemon has to answer its first PING.
START_TIMEOUT = 10.0
# Default timeout of every client socket operation.
IO_TIMEOUT = 10.0


def bound(seconds):
    """A generous time bound, scaled for sanitizer builds."""
    return seconds * SLOW


# --------------------------------------------------------------------------
# Frames


def type_byte(t):
    """Frame type as an int from 'E', b'E' or 0x45."""
    if isinstance(t, int):
        return t
    if isinstance(t, str):
        t = t.encode("latin-1")
    assert len(t) == 1, t
    return t[0]


def header(t, length):
    """The 5-byte header: type, then the length big-endian."""
    return HEADER.pack(type_byte(t), length)


def frame(t, payload=b"", length=None):
    """A whole frame; ``length`` overrides the header's length field."""
    if isinstance(payload, str):
        payload = payload.encode()
    return header(t, len(payload) if length is None else length) + payload


def error_frame(text):
    return frame("!", text.encode())


def parse_frames(data):
    """Split bytes into (type_char, payload) frames; returns (frames, rest)
    where rest holds an incomplete trailing frame, if any."""
    frames = []
    off = 0
    while len(data) - off >= HEADER_SIZE:
        t, n = HEADER.unpack_from(data, off)
        if n == OPEN_LENGTH or len(data) - off - HEADER_SIZE < n:
            break
        frames.append((chr(t), bytes(data[off + HEADER_SIZE:off + HEADER_SIZE + n])))
        off += HEADER_SIZE + n
    return frames, bytes(data[off:])


def pattern(size, seed=0):
    """Deterministic, non-periodic-looking bytes for payload checks."""
    block = bytes((i * 131 + seed * 7 + (i >> 8) * 17) & 0xFF for i in range(4096))
    reps = size // len(block) + 1
    return (block * reps)[:size]


# --------------------------------------------------------------------------
# Sockets


def free_port(host="127.0.0.1"):
    """A TCP port free right now on host (the kernel picks it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ipv6_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def split_scheme(addr):
    """"raw://127.0.0.1:7" -> ("raw", "127.0.0.1:7"); no scheme is framed."""
    if "://" in addr:
        scheme, rest = addr.split("://", 1)
        return scheme, rest
    return "framed", addr


def parse_address(addr):
    """echod address text (a scheme is ignored) -> (family, sockaddr)."""
    addr = split_scheme(addr)[1]
    if addr.startswith("unix:"):
        return socket.AF_UNIX, addr[len("unix:"):]
    m = re.fullmatch(r"\[(.*)\]:(\d+)", addr)
    if m:
        return socket.AF_INET6, (m.group(1), int(m.group(2)))
    host, port = addr.rsplit(":", 1)
    return socket.AF_INET, (host, int(port))


def raise_nofile(n):
    """Raise this process's descriptor limit to at least n (children inherit
    it). Returns True on success, False if the system does not allow it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= n:
        return True
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, n), max(hard, n)))
        return True
    except (ValueError, OSError):
        try:
            if hard >= n:
                resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))
                return True
        except (ValueError, OSError):
            pass
        return False


class Client:
    """One client connection; every operation is bounded by a timeout."""

    def __init__(self, sock, timeout=IO_TIMEOUT):
        self.sock = sock
        self.timeout = timeout
        sock.settimeout(timeout)

    @classmethod
    def connect(cls, addr, timeout=IO_TIMEOUT):
        family, sa = parse_address(addr)
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(sa)
        except BaseException:
            s.close()
            raise
        if family != socket.AF_UNIX:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(s, timeout)

    # sending
    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, t, payload=b"", length=None):
        self.sock.sendall(frame(t, payload, length))

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    # receiving
    def recv_exact(self, n, timeout=None):
        """Exactly n bytes; fails on EOF, reset or timeout before that."""
        buf = bytearray()
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {len(buf)} of {n} bytes: {bytes(buf[:80])!r}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            except socket.timeout:
                raise AssertionError(
                    f"timed out after {len(buf)} of {n} bytes: {bytes(buf[:80])!r}") from None
            except ConnectionResetError:
                raise AssertionError(f"connection reset after {len(buf)} of {n} bytes") from None
            finally:
                self.sock.settimeout(self.timeout)
            if not chunk:
                raise AssertionError(f"EOF after {len(buf)} of {n} bytes: {bytes(buf[:80])!r}")
            buf += chunk
        return bytes(buf)

    def read_header(self, timeout=None):
        """(type_char, length) of the next frame."""
        t, n = HEADER.unpack(self.recv_exact(HEADER_SIZE, timeout))
        return chr(t), n

    def read_frame(self, timeout=None):
        """(type_char, payload) of the next frame."""
        t, n = self.read_header(timeout)
        assert n != OPEN_LENGTH, "unexpected open-length reply"
        return t, self.recv_exact(n, timeout) if n else b""

    def read_error(self, timeout=None):
        """The text of the next frame, which must be an error frame '!'."""
        t, payload = self.read_frame(timeout)
        assert t == "!", f"expected an error frame, got {t!r} {payload[:80]!r}"
        return payload.decode("ascii")

    def request(self, t, payload=b""):
        self.send_frame(t, payload)
        return self.read_frame()

    def ping(self):
        assert self.request("P") == ("P", b"")

    def stats(self):
        t, payload = self.request("S")
        assert t == "S", (t, payload)
        return json.loads(payload)

    def read_all(self, timeout=None, allow_reset=False):
        """Everything until EOF. Fails if EOF does not come within the
        timeout, or on a reset unless allow_reset."""
        buf = bytearray()
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no EOF within the timeout; got {len(buf)} bytes: "
                                     f"{bytes(buf[:80])!r}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except ConnectionResetError:
                if allow_reset:
                    return bytes(buf)
                raise AssertionError(f"connection reset after {len(buf)} bytes: "
                                     f"{bytes(buf[:80])!r}") from None
            finally:
                self.sock.settimeout(self.timeout)
            if not chunk:
                return bytes(buf)
            buf += chunk

    def expect_eof(self, timeout=None, allow_reset=False):
        """The server closes with nothing more to say."""
        rest = self.read_all(timeout, allow_reset)
        assert rest == b"", f"expected EOF, got {rest[:200]!r}"

    def exchange(self, data, timeout=None):
        """Send data from a thread (then shutdown(SHUT_WR)) while reading
        everything until EOF; returns what came back. For payloads larger
        than the socket buffers, where send-then-read would deadlock."""
        err = []

        def sender():
            try:
                self.sock.sendall(data)
                self.sock.shutdown(socket.SHUT_WR)
            except OSError as e:
                err.append(e)

        th = threading.Thread(target=sender, daemon=True)
        th.start()
        try:
            got = self.read_all(timeout)
        finally:
            th.join(bound(10))
        assert not err, f"sending failed: {err[0]!r}"
        return got

    def reset(self):
        """Close with SO_LINGER 0: the kernel sends an RST."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------
# The daemon


def config_value(v):
    """Python value -> libconfig text."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[ " + ", ".join(config_value(x) for x in v) + " ]"
    raise TypeError(f"no libconfig form for {v!r}")


def config_text(settings):
    """A libconfig file, one key per line in the order given."""
    return "".join(f"{k} = {config_value(v)};\n" for k, v in settings.items())


def proc_status_kib(pid, field):
    """A size field (VmRSS, VmHWM) of /proc/PID/status, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


class RssSampler:
    """Samples a process's VmRSS until stopped, to see its peak growth."""

    def __init__(self, pid, interval):
        self.pid = pid
        self.interval = interval
        self.base_kib = proc_status_kib(pid, "VmRSS")
        self.peak_kib = self.base_kib
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak_kib = max(self.peak_kib, proc_status_kib(self.pid, "VmRSS"))
            except (OSError, AssertionError):
                return
            self._stop.wait(self.interval)

    def growth_kib(self):
        return self.peak_kib - self.base_kib

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        try:
            self.peak_kib = max(self.peak_kib, proc_status_kib(self.pid, "VmRSS"))
        except (OSError, AssertionError):
            pass


class Echod:
    """A running echod: its addresses, process, log, and helpers."""

    def __init__(self, workdir, settings, text=None, argv=None, env=None):
        self.dir = Path(workdir)
        self.config_path = self.dir / "echod.conf"
        self.stderr_path = self.dir / "echod.stderr"
        self.stdout_path = self.dir / "echod.stdout"
        self.settings = dict(settings)
        self.text = text
        self.argv = argv
        self.env = env
        self.proc = None
        self.clients = []
        self.expected_returncode = 0

    # configuration
    @property
    def listen(self):
        return list(self.settings.get("listen", []))

    def write_config(self, text=None):
        """Write self.settings (or the given raw text) to the config file."""
        body = text if text is not None else config_text(self.settings)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(body)
        os.replace(tmp, self.config_path)   # a reload never sees half a file

    # addresses
    @property
    def addr(self):
        """The first listen address, e.g. "127.0.0.1:40123"."""
        return self.listen[0]

    def addr_of(self, scheme):
        """The first listen address of a protocol ("framed", "raw", "http")."""
        for a in self.listen:
            if split_scheme(a)[0] == scheme:
                return a
        raise AssertionError(f"no {scheme} listener in {self.listen}")

    @property
    def port(self):
        for a in self.listen:
            family, sa = parse_address(a)
            if family != socket.AF_UNIX:
                return sa[1]
        raise AssertionError("no TCP listener")

    @property
    def pid(self):
        return self.proc.pid

    # life cycle
    def start(self):
        if self.argv is None:
            self.write_config(self.text)
            argv = [str(ECHOD), "-c", str(self.config_path)]
        else:
            argv = self.argv
        with open(self.stderr_path, "wb") as err, open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=self.env, cwd=self.dir)

    def wait_ready(self, timeout=None):
        """Until every TCP/unix listener answers (a PING on framed ones, an
        echoed byte on raw, GET /healthz on http); False if the process
        exited first. Fails after the bound."""
        deadline = time.monotonic() + (timeout or bound(START_TIMEOUT))
        pending = list(self.listen)
        while pending:
            if self.proc.poll() is not None:
                return False
            try:
                with Client.connect(pending[0], timeout=1.0 * SLOW) as c:
                    scheme = split_scheme(pending[0])[0]
                    if scheme == "raw":
                        c.send(b"r")
                        assert c.recv_exact(1) == b"r"
                    elif scheme == "http":
                        c.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                        assert c.read_all().startswith(b"HTTP/1.1 200")
                    else:
                        c.ping()
                pending.pop(0)
                continue
            except (OSError, AssertionError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"echod did not answer on {pending[0]} within the bound; "
                                     f"log:\n{self.log()}")
            time.sleep(0.02)
        return True

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        assert self.running(), f"echod is not running; log:\n{self.log()}"
        os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout):
        """The exit code; fails if the process is still running after timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"echod (pid {self.pid}) still running after {timeout} s; "
                                 f"log:\n{self.log()}") from None

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Signal, wait for exit (SIGKILL after the bound); returns the code."""
        if self.proc.poll() is None:
            drain = float(self.settings.get("drain_timeout", 10))
            os.kill(self.proc.pid, sig)
            try:
                return self.proc.wait(timeout or drain + bound(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"echod ignored {sig!r}; killed. log:\n{self.log()}")
        return self.proc.returncode

    def reload(self, text=None, **changes):
        """Rewrite the config file (changes merged into the settings, or the
        raw text) and send SIGHUP."""
        if text is None:
            self.settings.update(changes)
        self.write_config(text)
        self.send_signal(signal.SIGHUP)

    # clients
    def connect(self, addr=None, timeout=IO_TIMEOUT):
        c = Client.connect(addr or self.addr, timeout)
        self.clients.append(c)
        return c

    def stats(self, addr=None):
        """The STATS JSON, asked on a fresh connection (to the first framed
        listener unless addr is given)."""
        with Client.connect(addr or self.addr_of("framed")) as c:
            return c.stats()

    def wait_stats(self, predicate, timeout=None, what="condition", addr=None):
        """Poll STATS (each time on a fresh connection, which counts in
        connections_current) until predicate(stats) holds; returns them."""
        deadline = time.monotonic() + (timeout or bound(10))
        while True:
            st = self.stats(addr)
            if predicate(st):
                return st
            if time.monotonic() > deadline:
                raise AssertionError(f"STATS never showed {what}: {st}")
            time.sleep(0.05)

    # observation
    def log(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stdout(self):
        try:
            return self.stdout_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_offset(self):
        return len(self.log())

    def wait_log(self, regex, since=0, timeout=None):
        """Poll stderr until regex matches (in the text after offset since)."""
        deadline = time.monotonic() + (timeout or bound(10))
        rx = re.compile(regex)
        while True:
            text = self.log()[since:]
            m = rx.search(text)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"log never matched {regex!r}; log:\n{self.log()}")
            time.sleep(0.05)

    def rss_kib(self):
        return proc_status_kib(self.pid, "VmRSS")

    def hwm_kib(self):
        return proc_status_kib(self.pid, "VmHWM")

    def rss_sampler(self, interval=0.02):
        """A context manager sampling VmRSS in a thread; its .growth_kib()
        is the peak minus the value when it started."""
        return RssSampler(self.pid, interval)

    def sanitizer_reports(self):
        text = self.log()
        return [m for m in SANITIZER_MARKERS if m in text]


def _kinds_to_addresses(kinds, workdir):
    out = []
    for k in kinds:
        prefix = ""
        if "://" in k:
            scheme, k = k.split("://", 1)
            prefix = scheme + "://"
        out.append(prefix + _kind_to_address(k, workdir, len(out)))
    return out


def _kind_to_address(k, workdir, index):
    if k == "127.0.0.1":
        return f"127.0.0.1:{free_port('127.0.0.1')}"
    if k == "[::1]":
        return f"[::1]:{free_port('::1')}"
    if k == "unix":
        return f"unix:{workdir}/s{index}.sock"
    return k


class EchodFactory:
    """Starts daemons for one test and checks every one of them at the end."""

    def __init__(self):
        self.instances = []
        self.dirs = []

    def __call__(self, listen=("127.0.0.1",), config_text=None, argv=None, env=None,
                 wait=True, **settings):
        attempts = 3    # a free port may be taken by someone else before echod binds it
        for attempt in range(attempts):
            # Short path: unix socket names are limited to 108 bytes.
            workdir = tempfile.mkdtemp(prefix="echod-t-", dir="/tmp")
            self.dirs.append(workdir)
            full = {"listen": _kinds_to_addresses(listen, workdir)}
            for k, v in DEFAULT_CONFIG.items():
                full[k] = v
            full.update(settings)
            e = Echod(workdir, full, text=config_text, argv=argv, env=env)
            e.start()
            self.instances.append(e)
            if not wait:
                return e
            if e.wait_ready():
                return e
            e.proc.wait(bound(10))
            if "in use" in e.log() and attempt < attempts - 1:
                e.expected_returncode = e.proc.returncode
                continue
            raise AssertionError(f"echod exited at start with {e.proc.returncode}; "
                                 f"log:\n{e.log()}")
        raise AssertionError("unreachable")

    def finish(self):
        problems = []
        for e in self.instances:
            for c in e.clients:
                try:
                    c.close()
                except OSError:
                    pass
            if e.proc is None:
                continue
            try:
                rc = e.stop()
            except AssertionError as exc:
                problems.append(str(exc))
                continue
            if e.expected_returncode is not None and rc != e.expected_returncode:
                problems.append(f"echod exited with {rc} (expected {e.expected_returncode}); "
                                f"log:\n{e.log()}")
            reports = e.sanitizer_reports()
            if reports:
                problems.append(f"sanitizer report ({', '.join(reports)}) in stderr:\n{e.log()}")
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)
        if problems:
            pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def echod_factory():
    """Call it with config keys to start a daemon; see the module docstring.
    Every daemon it started is stopped and checked at teardown."""
    if not os.access(ECHOD, os.X_OK):
        pytest.fail(f"{ECHOD} is not built (run make)")
    factory = EchodFactory()
    yield factory
    factory.finish()


@pytest.fixture
def echod(echod_factory):
    """A daemon with the default test configuration on 127.0.0.1."""
    return echod_factory()
