"""A small echo server for the client tests, correct or deliberately wrong.

    faulty_echo_server.py [--proto framed|raw|http] [--corrupt-every N]
                          [--stall-every N --stall-ms MS] [--require-eof]
                          [--chunked] [--status N]

Listens on 127.0.0.1 (a free port), prints "port N" on stdout, and serves each
connection in a thread until the peer's EOF. framed: echod's frames (ECHO
echoed, PING answered, anything else '!' 400). raw: bytes echoed as read.
http: HTTP/1.1 keep-alive; a request with a Content-Length body gets it back,
one without gets "ok"; --chunked answers in chunks (with an extension and a
trailer), --status N answers that status; "Connection: close" is honoured.

Faults, counted over all connections: --corrupt-every N flips one payload byte
of every Nth reply; --stall-every N holds every Nth reply back for MS
milliseconds. --require-eof answers nothing until the client's EOF, which is
how a server can tell that a client ends its requests with shutdown(SHUT_WR).
Runs until killed.
"""

import argparse
import socket
import struct
import sys
import threading
import time

HEADER = struct.Struct(">BI")
OPEN_LENGTH = 0xFFFFFFFF


class Faults:
    def __init__(self, corrupt_every, stall_every, stall_ms):
        self.corrupt_every = corrupt_every
        self.stall_every = stall_every
        self.stall_s = stall_ms / 1000.0
        self.count = 0
        self.lock = threading.Lock()

    def next_reply(self):
        """(corrupt, stall) for the next reply."""
        with self.lock:
            self.count += 1
            n = self.count
        corrupt = self.corrupt_every > 0 and n % self.corrupt_every == 0
        stall = self.stall_every > 0 and n % self.stall_every == 0
        return corrupt, stall


def flip_one(data):
    if not data:
        return data
    i = len(data) // 2
    return data[:i] + bytes([data[i] ^ 0x5A]) + data[i + 1:]


def framed_replies(buf, faults):
    """Replies for the whole frames in buf; returns (replies, rest)."""
    out = []
    off = 0
    while len(buf) - off >= HEADER.size:
        t, n = HEADER.unpack_from(buf, off)
        if n == OPEN_LENGTH or len(buf) - off - HEADER.size < n:
            break
        payload = bytes(buf[off + HEADER.size:off + HEADER.size + n])
        off += HEADER.size + n
        corrupt, stall = faults.next_reply()
        if t == ord("E"):
            reply = HEADER.pack(t, n) + (flip_one(payload) if corrupt else payload)
        elif t == ord("P"):
            reply = HEADER.pack(t, 0)
        else:
            text = b"400 unknown frame type 0x%02x" % t
            reply = HEADER.pack(ord("!"), len(text)) + text
        out.append((reply, stall))
    return out, bytes(buf[off:])


def http_replies(buf, args, faults):
    """Responses for the whole requests in buf; returns (replies, rest, close)."""
    out = []
    while True:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return out, buf, False
        head = buf[:end].decode("latin-1").split("\r\n")
        fields = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        length = int(fields.get("content-length", "0"))
        if len(buf) < end + 4 + length:
            return out, buf, False
        body = buf[end + 4:end + 4 + length]
        buf = buf[end + 4 + length:]
        corrupt, stall = faults.next_reply()
        body = body if length else b"ok"
        if corrupt:
            body = flip_one(body)
        close = fields.get("connection", "").lower() == "close"
        head_out = f"HTTP/1.1 {args.status} X\r\nServer: faulty\r\n"
        if close:
            head_out += "Connection: close\r\n"
        if args.chunked:
            half = len(body) // 2
            reply = (head_out + "Transfer-Encoding: chunked\r\n\r\n").encode()
            for piece in (body[:half], body[half:]):
                if piece:
                    reply += b"%x;ext=1\r\n" % len(piece) + piece + b"\r\n"
            reply += b"0\r\nX-Trailer: t\r\n\r\n"
        else:
            reply = (head_out + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        out.append((reply, stall))
        if close:
            return out, b"", True


def serve_http(conn, args, faults):
    buf = b""
    while True:
        data = conn.recv(1 << 16)
        if not data:
            break
        buf += data
        replies, buf, close = http_replies(buf, args, faults)
        for reply, stall in replies:
            if stall:
                time.sleep(faults.stall_s)
            conn.sendall(reply)
        if close:
            break


def serve(conn, args, faults):
    buf = b""
    held = []
    try:
        while args.proto != "http":
            data = conn.recv(1 << 16)
            if args.proto == "raw":
                if data:
                    corrupt, stall = faults.next_reply()
                    reply = flip_one(data) if corrupt else data
                    if stall:
                        time.sleep(faults.stall_s)
                    if args.require_eof:
                        held.append(reply)
                    else:
                        conn.sendall(reply)
                if not data:
                    for r in held:
                        conn.sendall(r)
                    break
                continue
            buf += data
            replies, buf = framed_replies(buf, faults)
            for reply, stall in replies:
                if stall:
                    time.sleep(faults.stall_s)
                if args.require_eof:
                    held.append(reply)
                else:
                    conn.sendall(reply)
            if not data:
                for r in held:
                    conn.sendall(r)
                break
        if args.proto == "http":
            serve_http(conn, args, faults)
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--proto", choices=("framed", "raw", "http"), default="framed")
    p.add_argument("--corrupt-every", type=int, default=0)
    p.add_argument("--stall-every", type=int, default=0)
    p.add_argument("--stall-ms", type=int, default=0)
    p.add_argument("--require-eof", action="store_true")
    p.add_argument("--chunked", action="store_true")
    p.add_argument("--status", type=int, default=200)
    args = p.parse_args()
    faults = Faults(args.corrupt_every, args.stall_every, args.stall_ms)

    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(1024)
    print(f"port {ls.getsockname()[1]}", flush=True)
    while True:
        conn, _ = ls.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(conn, args, faults), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
