"""A small echo server for the client tests, correct or deliberately wrong.

    faulty_echo_server.py [--proto framed|raw] [--corrupt-every N]
                          [--stall-every N --stall-ms MS] [--require-eof]

Listens on 127.0.0.1 (a free port), prints "port N" on stdout, and serves each
connection in a thread until the peer's EOF. framed: echod's frames (ECHO
echoed, PING answered, anything else '!' 400). raw: bytes echoed as read.

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


def serve(conn, args, faults):
    buf = b""
    held = []
    try:
        while True:
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
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--proto", choices=("framed", "raw"), default="framed")
    p.add_argument("--corrupt-every", type=int, default=0)
    p.add_argument("--stall-every", type=int, default=0)
    p.add_argument("--stall-ms", type=int, default=0)
    p.add_argument("--require-eof", action="store_true")
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
