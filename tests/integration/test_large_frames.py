"""Large ECHO frames stream through bounded memory: a 1 GiB frame comes back
byte for byte while the daemon's RSS grows by no more than a few MiB."""

import struct
import threading

from conftest import SAN, bound, header, pattern

MiB = 1 << 20
GiB = 1 << 30
# Allowed RSS growth while 1 GiB streams through (sanitizer allocators keep more).
RSS_GROWTH_MAX_KIB = (64 if SAN else 16) * 1024


def block(base, i):
    """The i-th 1 MiB block: its index stamped over the first 8 bytes, so a
    lost, repeated or reordered block shows."""
    return struct.pack(">Q", i) + base[8:]


def test_one_gib_echo_streams_with_bounded_memory(echod_factory):
    d = echod_factory(max_frame_size=GiB, read_timeout=0, write_timeout=0, workers=1)
    with d.connect() as w:   # warm the pools up
        data = header("E", 8 * MiB) + pattern(8 * MiB)
        assert w.exchange(data) == data

    base = pattern(MiB, seed=5)
    nblocks = GiB // MiB
    c = d.connect(timeout=bound(60))
    err = []

    def sender():
        try:
            c.send(header("E", GiB))
            for i in range(nblocks):
                c.send(block(base, i))
        except OSError as e:
            err.append(e)

    with d.rss_sampler() as rss:
        th = threading.Thread(target=sender, daemon=True)
        th.start()
        assert c.recv_exact(5, timeout=bound(60)) == header("E", GiB)
        buf = bytearray(MiB)
        view = memoryview(buf)
        for i in range(nblocks):
            got = 0
            while got < MiB:
                n = c.sock.recv_into(view[got:], MiB - got)
                assert n > 0, f"EOF in block {i} after {got} bytes"
                got += n
            if bytes(buf) != block(base, i):
                raise AssertionError(f"block {i} differs")
        th.join(bound(60))
    assert not err, err
    # Nothing more: the next request is answered normally.
    c.ping()
    print(f"1 GiB echo: RSS growth {rss.growth_kib()} KiB")
    assert rss.growth_kib() < RSS_GROWTH_MAX_KIB, f"RSS grew {rss.growth_kib()} KiB"


def test_frames_larger_than_the_socket_buffers_on_many_connections(echod_factory):
    d = echod_factory(max_frame_size=64 * MiB)
    size = 24 * MiB
    results = {}

    def one(k):
        with d.connect(timeout=bound(60)) as c:
            data = header("E", size) + pattern(size, seed=k)
            results[k] = c.exchange(data, timeout=bound(60)) == data

    threads = [threading.Thread(target=one, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(bound(120))
    assert results == {k: True for k in range(4)}
