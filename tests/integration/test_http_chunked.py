"""http:// listeners: chunked bodies (RFC 9112 7.1) at their edges: chunk
extensions, trailers, a body of only the last chunk, upper-case hex, chunks
split anywhere, and big chunks streamed back.
"""

import pytest

from conftest import pattern
from http_util import HttpConn, check_error, chunked, request

TE = [("Transfer-Encoding", "chunked")]


@pytest.fixture
def srv(echod_factory):
    return echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), max_frame_size=1 << 22)


def post(srv, body, headers=TE, target="/", method="POST"):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request(method, target, headers=headers, body=body) + request("GET", "/next"))
        resp = h.read_response()
        nxt = h.read_response()
        assert nxt.body.startswith(b"GET /next "), "the chunked body was not read exactly"
        return resp


def test_chunk_extensions(srv):
    body = (b"3;name=value\r\nabc\r\n"
            b"2;a;b=\"quoted;\\\"str\"\r\nde\r\n"
            b"1 ; spaced = 1\r\nf\r\n"
            b"0;last=1\r\n\r\n")
    resp = post(srv, body)
    assert resp.body == b"abcdef" and resp.chunked


def test_bad_chunk_extension(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("POST", "/", headers=TE, body=b"3;=x\r\nabc\r\n0\r\n\r\n"))
        check_error(h, 400)


def test_trailers_are_read_and_not_echoed(srv):
    resp = post(srv, chunked(b"abc", trailers=b"X-Sum: 123\r\nX-Other: y\r\n"))
    assert resp.body == b"abc"
    assert resp.get("X-Sum") is None


def test_bad_trailer(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("POST", "/", headers=TE, body=b"0\r\nNoColon\r\n\r\n"))
        check_error(h, 400)


def test_zero_size_only_body(srv):
    resp = post(srv, b"0\r\n\r\n")
    assert resp.status == 200 and resp.chunked
    assert resp.body == b"" and resp.chunk_sizes == [0]


def test_uppercase_and_padded_hex(srv):
    data = pattern(0x1AB + 0xF)
    body = b"1AB\r\n" + data[:0x1AB] + b"\r\n000F\r\n" + data[0x1AB:] + b"\r\n0\r\n\r\n"
    resp = post(srv, body)
    assert resp.body == data


def test_chunks_split_at_every_byte(srv):
    body = chunked(b"hello", b" ", b"world", ext=b";e=1", trailers=b"T: v\r\n")
    with HttpConn(srv.addr_of("http")) as h:
        raw = request("POST", "/", headers=TE, body=body)
        for i in range(len(raw)):
            h.send(raw[i:i + 1])
        resp = h.read_response()
    assert resp.body == b"hello world"


def test_big_chunks_stream_back(srv):
    data = pattern(3 * 1024 * 1024, seed=9)
    body = chunked(data[:1 << 20], data[1 << 20:(1 << 20) + 17], data[(1 << 20) + 17:])
    with HttpConn(srv.addr_of("http")) as h:
        got = h.c.exchange(request("POST", "/", headers=TE + [("Connection", "close")],
                                   body=body))
    head, _, rest = got.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    # De-chunk the answer.
    out = bytearray()
    while True:
        line, _, rest = rest.partition(b"\r\n")
        n = int(line, 16)
        if n == 0:
            assert rest == b"\r\n"
            break
        out += rest[:n]
        assert rest[n:n + 2] == b"\r\n"
        rest = rest[n + 2:]
    assert bytes(out) == data


def test_chunked_with_size_control(srv):
    resp = post(srv, chunked(b"x" * 100), target="/?size=4")
    assert len(resp.body) == 4 and not resp.chunked


def test_chunked_to_reserved_path(srv):
    resp = post(srv, chunked(b"x" * 100), target="/healthz", method="GET")
    assert resp.body == b"ok"


def test_chunk_line_too_long(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("POST", "/", headers=TE, body=b"3;" + b"e" * 5000 + b"\r\nabc\r\n0\r\n\r\n"))
        resp = check_error(h, 400)
        assert resp.status == 400


def test_trailers_too_long_is_431(echod_factory):
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), http_max_header_size=1024)
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("POST", "/", headers=TE,
                       body=b"0\r\n" + b"X-T: " + b"t" * 2000 + b"\r\n\r\n"))
        check_error(h, 431)
