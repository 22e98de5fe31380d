"""The metrics recipe of docs/scale-out.md for a framed-only deployment:
one extra `http://127.0.0.1:PORT` listener serves /metrics (and /readyz)
while the clients go on speaking framed on their own listener; the framed
requests echobench made are what /metrics counts."""

import http.client
import re
import subprocess

from balancers import ECHOBENCH, framed_ok, require_listener, wait_until
from conftest import bound, free_port


def scrape(port, path="/metrics"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=bound(5))
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type", ""), resp.read().decode()
    finally:
        conn.close()


def sample(text, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    rx = "^" + re.escape(name) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" (\S+)$"
    m = re.search(rx, text, re.M)
    assert m, f"no {name}{{{want}}} in /metrics:\n{text[:2000]}"
    return float(m.group(1))


def test_a_localhost_http_listener_gives_a_framed_deployment_its_metrics(echod_factory):
    require_listener("http")
    clients, metrics = free_port(), free_port()
    # wait_ready speaks framed to every listener; the http one is checked below.
    e = echod_factory(listen=[f"127.0.0.1:{clients}", f"http://127.0.0.1:{metrics}"], wait=False)
    wait_until("echod serving framed", lambda: _ok(lambda: framed_ok(f"127.0.0.1:{clients}")))
    status, ctype, _ = scrape(metrics, "/readyz")
    assert status == 200
    n = 5000
    p = subprocess.run([str(ECHOBENCH), "-p", str(clients), "-c", "4", "-n", str(n), "--json",
                        "--no-progress"], capture_output=True, text=True, timeout=bound(60))
    assert p.returncode == 0, p.stderr
    status, ctype, text = scrape(metrics)
    assert status == 200 and ctype.startswith("text/plain"), (status, ctype)
    # echobench's requests plus our readiness PINGs, all on the framed side.
    framed = sample(text, "echod_requests_total", proto="framed")
    assert n <= framed <= n + 50, framed
    assert sample(text, "echod_requests_total", proto="raw") == 0
    assert sample(text, "echod_connections_accepted_total") >= 4


def _ok(fn):
    try:
        fn()
        return True
    except (OSError, AssertionError):
        return False
