"""The /metrics text is valid Prometheus exposition format, as promtool sees it.

The renderer (server/metrics.c) is pure, so its real output is produced by the
unit-test binary: ``build/tests/test_metrics --dump FILE`` renders a sample
with every kind of series echod has (the base families of struct stats,
proto- and code-labelled counters, a per-protocol latency histogram). That
text goes through ``promtool check metrics`` (Debian's prometheus package),
which parses it and lints names, types, HELP and the histogram's buckets.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

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
