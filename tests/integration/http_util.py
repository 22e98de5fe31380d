"""HTTP/1.1 client helpers for the http:// listener tests (test_http_*.py).

Deliberately small and strict: requests are built as exact bytes (so a test
controls every byte of the head it sends), and responses are read from a
buffered connection that keeps whatever follows one response for the next
(pipelining). The reader checks the framing it relies on (a status line, a
header section ending in CRLF CRLF, Content-Length or chunked) and keeps the
raw bytes, so a test can assert on the wire form too.
"""

import re
import socket
import time

from conftest import ECHOD, Client, bound


def echod_version():
    """VERSION as `echod -V` prints it: what Server: echod/VERSION must say."""
    import subprocess
    out = subprocess.run([str(ECHOD), "-V"], capture_output=True, text=True, timeout=10).stdout
    return out.split()[-1]


VERSION = echod_version()

CRLF = b"\r\n"
IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d\d:\d\d:\d\d GMT")


def request(method="GET", target="/", version="HTTP/1.1", headers=None, body=b"", host="t"):
    """The bytes of one request. headers: a list of (name, value) or raw
    header lines (bytes, without CRLF); Host: t is added first unless host is
    None. A body gets a Content-Length unless a header says otherwise."""
    if isinstance(body, str):
        body = body.encode()
    lines = [f"{method} {target} {version}".encode()]
    if host is not None:
        lines.append(b"Host: " + host.encode())
    hs = list(headers or [])
    names = set()
    for h in hs:
        if isinstance(h, bytes):
            lines.append(h)
            names.add(h.split(b":", 1)[0].strip().lower())
        else:
            lines.append(f"{h[0]}: {h[1]}".encode())
            names.add(h[0].lower().encode())
    if body and b"content-length" not in names and b"transfer-encoding" not in names:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return CRLF.join(lines) + CRLF + CRLF + body


def chunked(*pieces, trailers=b"", ext=b""):
    """A chunked body from the given pieces (each a chunk), ending with the
    last chunk, optional trailer lines (bytes with CRLFs) and the final CRLF."""
    out = b""
    for p in pieces:
        if isinstance(p, str):
            p = p.encode()
        out += b"%x" % len(p) + ext + CRLF + p + CRLF
    return out + b"0" + CRLF + trailers + CRLF


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head, chunk_sizes=None):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers          # [(name, value)] as sent
        self.body = body
        self.raw_head = raw_head
        self.chunk_sizes = chunk_sizes  # the sizes of a chunked body's chunks, or None

    def get(self, name):
        """The value of the only header of that name, or None; fails if repeated."""
        vals = self.all(name)
        assert len(vals) <= 1, f"{name} repeated: {vals}"
        return vals[0] if vals else None

    def all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    @property
    def chunked(self):
        return self.chunk_sizes is not None

    def __repr__(self):
        return f"<Response {self.status} {self.headers} body {self.body[:120]!r}>"


class HttpConn:
    """A client connection with an input buffer, for reading responses."""

    def __init__(self, addr, timeout=None):
        self.c = Client.connect(addr, timeout or bound(10))
        self.sock = self.c.sock
        self.buf = bytearray()
        self.eof = False

    def close(self):
        self.c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def _fill(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out; buffered {bytes(self.buf[:200])!r}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except ConnectionResetError:
                raise AssertionError(f"reset; buffered {bytes(self.buf[:200])!r}") from None
            if not data:
                self.eof = True
                raise AssertionError(f"EOF; buffered {bytes(self.buf[:200])!r}")
            self.buf += data
            return

    def read_until(self, marker, timeout=None):
        deadline = time.monotonic() + (timeout or bound(10))
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out = bytes(self.buf[:i + len(marker)])
                del self.buf[:i + len(marker)]
                return out
            self._fill(deadline - time.monotonic())

    def read_exact(self, n, timeout=None):
        deadline = time.monotonic() + (timeout or bound(10))
        while len(self.buf) < n:
            self._fill(deadline - time.monotonic())
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_head(self, timeout=None):
        """(version, status, reason, headers, raw) of the next response head."""
        raw = self.read_until(CRLF + CRLF, timeout)
        lines = raw[:-4].split(CRLF)
        m = re.fullmatch(rb"(HTTP/1\.[01]) (\d{3}) (.*)", lines[0])
        assert m, f"bad status line {lines[0]!r}"
        headers = []
        for line in lines[1:]:
            assert b":" in line, f"bad header line {line!r} in {raw!r}"
            n, v = line.split(b":", 1)
            assert n == n.strip() and n, f"bad header name {line!r}"
            headers.append((n.decode("latin-1"), v.strip(b" \t").decode("latin-1")))
        return m.group(1).decode(), int(m.group(2)), m.group(3).decode("latin-1"), headers, raw

    def read_response(self, method="GET", timeout=None, allow_continue=False):
        """The next final response (a 100 Continue before it fails unless
        allow_continue, in which case it is skipped)."""
        while True:
            version, status, reason, headers, raw = self.read_head(timeout)
            if status == 100 and allow_continue:
                continue
            break
        resp = Response(version, status, reason, headers, b"", raw)
        te = resp.all("Transfer-Encoding")
        cl = resp.all("Content-Length")
        assert not (te and cl), f"both Content-Length and Transfer-Encoding: {raw!r}"
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return resp
        if te:
            assert te == ["chunked"], te
            resp.chunk_sizes = []
            body = bytearray()
            while True:
                line = self.read_until(CRLF, timeout)
                size = int(line[:-2].split(b";")[0], 16)
                resp.chunk_sizes.append(size)
                if size == 0:
                    assert self.read_until(CRLF, timeout) == CRLF, "trailers in a response"
                    break
                body += self.read_exact(size, timeout)
                assert self.read_exact(2, timeout) == CRLF, "chunk not followed by CRLF"
            resp.body = bytes(body)
        elif cl:
            assert len(cl) == 1, cl
            resp.body = self.read_exact(int(cl[0]), timeout)
        else:
            raise AssertionError(f"a response with neither Content-Length nor chunked: {raw!r}")
        return resp

    def rest(self, timeout=None, allow_reset=False):
        """Everything until EOF (the buffer first)."""
        out = bytes(self.buf)
        self.buf.clear()
        return out + self.c.read_all(timeout or bound(10), allow_reset=allow_reset)

    def expect_close(self, timeout=None, allow_reset=False):
        rest = self.rest(timeout, allow_reset)
        assert rest == b"", f"expected the connection to close, got {rest[:300]!r}"

    def still_open(self, wait=0.2):
        """True if, after wait seconds, nothing came and no EOF: the server
        keeps the connection."""
        if self.buf:
            return False
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(1)
        except (socket.timeout, BlockingIOError):
            return True
        finally:
            self.sock.settimeout(bound(10))
        if data:
            self.buf += data
        return False


def exchange(addr, data, method="GET", timeout=None):
    """Send data on a new connection and read one response."""
    with HttpConn(addr, timeout) as h:
        h.send(data)
        return h.read_response(method, timeout)


def check_required(resp):
    """The headers every response carries (http.md, "What a request gets")."""
    assert resp.get("Content-Length") is not None or resp.get("Transfer-Encoding") == "chunked" \
        or resp.status in (204, 304), resp
    date = resp.get("Date")
    assert date is not None and IMF_FIXDATE.fullmatch(date), resp
    assert resp.get("Server") == "echod/" + VERSION, resp
    assert resp.get("X-Content-Type-Options") == "nosniff", resp
    ctype = resp.get("Content-Type")
    assert ctype is None or ctype.split(";")[0].strip() in (
        "text/plain", "application/octet-stream", "application/json"), resp


def check_error(h, status, method="GET", reason=None, probe_linger=True):
    """The error response of http.md: status, Connection: close, text/plain
    "NNN reason", then the server closes. With probe_linger, more bytes are
    sent after the answer arrived, and the answer must still be readable
    and end in a clean EOF (a lingering close, not a reset)."""
    resp = h.read_response(method)
    assert resp.status == status, resp
    check_required(resp)
    assert resp.get("Connection") == "close", resp
    assert resp.get("Content-Type") == "text/plain", resp
    if method != "HEAD":
        assert re.fullmatch(rb"%d \S.*" % status, resp.body), resp.body
        if reason:
            assert reason.encode() in resp.body, resp.body
    if probe_linger:
        try:
            h.send(b"more bytes after the error " * 100)
        except (BrokenPipeError, ConnectionResetError):
            raise AssertionError("the server reset instead of a lingering close") from None
    h.expect_close()
    return resp
