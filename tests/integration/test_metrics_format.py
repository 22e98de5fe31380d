"""The /metrics text is valid Prometheus exposition format, as promtool sees it.

Two sources go through ``promtool check metrics`` (Debian's prometheus
package), which parses the text and lints names, types, HELP and histogram
buckets:

* the renderer (server/metrics.c) on a sample with every kind of series it
  supports, written by the unit-test binary
  (``build/tests/test_metrics --dump FILE``): base families of struct stats,
  proto- and code-labelled counters, a per-protocol latency histogram;
* the running daemon's own ``GET /metrics`` after framed and HTTP traffic.
"""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, bound

DUMPER = REPO / "build" / "tests" / "test_metrics"
PROMTOOL = shutil.which("promtool")

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package prometheus; make deps)")


def render_sample():
    if not os.access(DUMPER, os.X_OK):
        pytest.fail(f"{DUMPER} missing: build it with `make unit-tests`")
    out = REPO / "build" / f"metrics-sample-{os.getpid()}.prom"
    try:
        subprocess.run([str(DUMPER), "--dump", str(out)], check=True, timeout=30)
        return out.read_text()
    finally:
        out.unlink(missing_ok=True)


def promtool_check(text):
    return subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60)


@needs_promtool
def test_rendered_metrics_pass_promtool():
    text = render_sample()
    r = promtool_check(text)
    assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", \
        f"promtool check metrics (rc {r.returncode}):\n{r.stdout}{r.stderr}\n--- input:\n{text}"


def test_sample_has_every_kind_of_series():
    text = render_sample()
    for family, kind in [("echod_build_info", "gauge"), ("echod_uptime_seconds", "gauge"),
                         ("echod_connections", "gauge"),
                         ("echod_connections_accepted_total", "counter"),
                         ("echod_connections_rejected_total", "counter"),
                         ("echod_requests_total", "counter"),
                         ("echod_received_bytes_total", "counter"),
                         ("echod_sent_bytes_total", "counter"),
                         ("echod_errors_total", "counter"),
                         ("echod_worker_requests_total", "counter"),
                         ("echod_http_responses_total", "counter"),
                         ("echod_request_duration_seconds", "histogram")]:
        assert f"\n# TYPE {family} {kind}\n" in text or text.startswith(f"# TYPE {family} {kind}\n")
        assert text.count(f"# TYPE {family} ") == 1, family
    assert 'echod_requests_total{proto="http"} ' in text
    assert re.search(r'^echod_http_responses_total\{code="200"\} \d+$', text, re.M)
    assert re.search(r'^echod_worker_requests_total\{worker="1"\} \d+$', text, re.M)
    assert 'echod_request_duration_seconds_bucket{proto="http",le="+Inf"} ' in text


@needs_promtool
def test_promtool_rejects_a_broken_sample():
    """The check above can fail: the same text with one defect is refused."""
    text = render_sample()
    broken = [
        text.replace("echod_errors_total", "echod_errors"),                 # counter without _total
        text.replace('{proto="raw"}', '{proto="raw}', 1),                    # unterminated label
        text + "# TYPE echod_workers gauge\necho_workers 1\n",              # a second TYPE line
    ]
    for b in broken:
        assert b != text
        assert promtool_check(b).returncode != 0


def http_get(echod, path):
    """One GET on a fresh connection; the status and the body."""
    with echod.connect(echod.addr_of("http")) as c:
        c.send(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        data = c.read_all()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = re.search(rb"\r\nContent-Length: (\d+)\r\n", head)
    assert length and int(length.group(1)) == len(body), head
    return status, head, body


@needs_promtool
def test_daemon_metrics_pass_promtool(echod_factory):
    e = echod_factory(listen=["127.0.0.1", "http://127.0.0.1"])
    with e.connect(e.addr_of("framed")) as c:
        for _ in range(3):
            c.send_frame("P")
            assert c.read_frame()[0] == "P"
    assert http_get(e, "/?status=201")[0] == 201
    assert http_get(e, "/?status=bad")[0] == 400
    # A worker records a reply's latency just after writing it, so the
    # counts may trail the replies by a moment: scrape until they show (the
    # start-up check adds a PING of its own to the three above).
    def value(text, series):
        m = re.search(r"^" + re.escape(series) + r" (\d+)$", text, re.M)
        return int(m.group(1)) if m else None

    want = {'echod_http_responses_total{code="201"}': 1,
            'echod_http_responses_total{code="400"}': 1,
            'echod_request_duration_seconds_count{proto="framed"}': 3}
    deadline = time.monotonic() + bound(10)
    while True:
        status, head, body = http_get(e, "/metrics")
        assert status == 200
        text = body.decode()
        if all((value(text, k) or 0) >= n for k, n in want.items()):
            break
        assert time.monotonic() < deadline, f"never reached {want}:\n{text}"
        time.sleep(0.05)
    assert b"\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n" in head, head
    r = promtool_check(text)
    assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", \
        f"promtool check metrics (rc {r.returncode}):\n{r.stdout}{r.stderr}\n--- input:\n{text}"
