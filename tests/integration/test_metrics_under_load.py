"""/metrics scraped under load agrees with what the clients counted and with
STATS: requests by protocol and kind, HTTP responses by code, errors and
timeouts by kind, refusals by reason, the latency histograms' counts; and
it passes promtool while the load runs."""

import re
import shutil
import subprocess
import threading
import time

import pytest

from client_tools import echobench_json
from conftest import Client, bound, split_scheme

PROMTOOL = shutil.which("promtool")


def scrape(addr):
    with Client.connect(addr) as c:
        c.send(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        raw = c.read_all()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return body.decode()


def sample(text, name, **labels):
    """The value of one series (labels in any order); 0 if absent."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if got == {k: str(v) for k, v in labels.items()}:
            return float(m.group(3))
    return 0.0


def hostport(addr):
    return split_scheme(addr)[1]


def test_counters_agree_with_the_clients_and_stats(echod_factory):
    d = echod_factory(listen=("127.0.0.1", "http://127.0.0.1", "raw://127.0.0.1"), workers=2,
                      read_timeout=0.3)
    framed, http, raw = d.addr_of("framed"), d.addr_of("http"), d.addr_of("raw")
    base = scrape(http)
    n_framed, n_http = 20000, 3000
    r = echobench_json(framed, "-c", "8", "-n", str(n_framed), "-s", "64", timeout=bound(60))
    assert r["errors"]["total"] == 0, r["errors"]
    h = echobench_json(hostport(http), "--proto", "http", "-c", "4", "-n", str(n_http),
                       timeout=bound(60))
    assert h["errors"]["total"] == 0, h["errors"]
    # Errors of known kinds: a bad control (400), an unknown frame type (400,
    # the connection goes on), a frame left unfinished (408 by read_timeout).
    with Client.connect(http) as c:
        c.send(b"GET /?status=abc HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.read_all().startswith(b"HTTP/1.1 400")
    with Client.connect(framed) as c:
        c.send(b"X\0\0\0\0")
        assert c.read_error().startswith("400 unknown frame type")
        c.send(b"P\0\0")     # a header never finished
        assert c.read_error().startswith("408")
    with Client.connect(raw) as c:
        c.send(b"raw bytes")
        assert c.recv_exact(9) == b"raw bytes"

    def delta(name, **labels):
        return sample(text, name, **labels) - sample(base, name, **labels)

    text = scrape(http)
    st = d.stats()
    assert delta("echod_requests_by_kind_total", proto="framed", kind="echo") == r["requests"]
    assert delta("echod_requests_by_kind_total", proto="framed", kind="unknown") == 1
    assert delta("echod_requests_by_kind_total", proto="http", kind="head_echo") == h["requests"]
    assert delta("echod_requests_by_kind_total", proto="raw", kind="chunk") >= 1
    # The 400 of status=abc and the scrapes' own 200s are not echo requests.
    assert delta("echod_http_responses_total", code=200) >= h["requests"]
    assert delta("echod_http_responses_total", code=400) == 1
    assert delta("echod_errors_by_kind_total", kind="bad_request") == 2
    assert delta("echod_errors_by_kind_total", kind="read_timeout") == 1
    assert delta("echod_timeouts_total", kind="read") == 1
    # Every answered request went into the latency histogram of its protocol.
    for proto in ("framed", "http", "raw"):
        assert sample(text, "echod_requests_total", proto=proto) == \
            sample(text, "echod_request_duration_seconds_count", proto=proto), proto
    # And /metrics says what STATS, asked right after, says: STATS counts
    # itself, and the scrape is counted once its page is out.
    assert sample(text, "echod_requests_total", proto="framed") == \
        st["requests_by_protocol"]["framed"] - 1
    assert sample(text, "echod_requests_total", proto="http") == \
        st["requests_by_protocol"]["http"] - 1


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")
def test_scrapes_during_load_pass_promtool(echod_factory, tmp_path):
    d = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), workers=2)
    framed, http = d.addr_of("framed"), d.addr_of("http")
    done = threading.Event()
    result = {}

    def load():
        result["r"] = echobench_json(framed, "-c", "16", "-P", "4", "-d", str(bound(2)),
                                     timeout=bound(60))
        done.set()

    th = threading.Thread(target=load, daemon=True)
    th.start()
    scrapes = 0
    counts = []
    while not done.is_set():
        text = scrape(http)
        p = tmp_path / f"m{scrapes}.txt"
        p.write_text(text)
        check = subprocess.run([PROMTOOL, "check", "metrics"], stdin=p.open(), capture_output=True,
                               text=True, timeout=bound(30))
        assert check.returncode == 0, check.stdout + check.stderr
        counts.append(sample(text, "echod_requests_total", proto="framed"))
        scrapes += 1
        time.sleep(0.2)
    th.join(bound(60))
    assert result["r"]["errors"]["total"] == 0
    assert scrapes >= 2
    assert counts == sorted(counts), "a counter went down between scrapes"
    assert sample(scrape(http), "echod_buffers_in_use") >= 0
