"""http:// listeners with real clients from Debian: curl (keep-alive over
several URLs, --http1.0, chunked upload, Expect: 100-continue), ab -k
(HTTP/1.0 keep-alive) and wrk. Each test skips, saying so, when its client
is not installed (the Makefile's DEB_PACKAGES installs them).
"""

import json
import re
import shutil
import subprocess
import time

import pytest

from conftest import bound, pattern


def need(binary, package):
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} not installed (Debian package {package})")
    return path


@pytest.fixture
def srv(echod_factory):
    return echod_factory(listen=("127.0.0.1", "http://127.0.0.1"))


def url(srv, path="/"):
    return "http://" + srv.addr_of("http").split("://")[1] + path


def run(argv, timeout=30, **kw):
    p = subprocess.run(argv, capture_output=True, timeout=bound(timeout), **kw)
    return p


def test_curl_keep_alive_over_several_urls(srv):
    curl = need("curl", "curl")
    before = srv.stats()["connections_total"]
    urls = [url(srv, f"/u{i}?format=json") for i in range(4)]
    p = run([curl, "-sS", "-v"] + urls)
    assert p.returncode == 0, p.stderr.decode()
    # Four JSON objects, one after the other.
    objs = [json.loads(s) for s in re.findall(rb"\{.*?\"body_bytes\":\d+\}", p.stdout)]
    assert [o["path"] for o in objs] == [f"/u{i}" for i in range(4)]
    # One connection: the same client port every time, and curl says so.
    assert len({o["remote"] for o in objs}) == 1, objs
    assert p.stderr.count(b"Re-using existing connection") == 3, p.stderr.decode()
    after = srv.stats()["connections_total"]
    assert after - before == 2   # curl's one, and the first STATS's own


def test_curl_http10(srv):
    curl = need("curl", "curl")
    p = run([curl, "-sS", "-i", "--http1.0", url(srv, "/old")])
    assert p.returncode == 0, p.stderr.decode()
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"Transfer-Encoding" not in head
    assert body.startswith(b"GET /old HTTP/1.0\r\n")
    # curl 1.0 over several URLs: a new connection each (no keep-alive asked).
    p = run([curl, "-sS", "-v", "--http1.0", url(srv, "/a"), url(srv, "/b")])
    assert p.returncode == 0 and b"Re-using" not in p.stderr


def test_curl_http10_keep_alive(srv):
    curl = need("curl", "curl")
    p = run([curl, "-sS", "-v", "--http1.0", "-H", "Connection: keep-alive",
             url(srv, "/a"), url(srv, "/b")])
    assert p.returncode == 0, p.stderr.decode()
    assert b"< Connection: keep-alive" in p.stderr
    assert p.stderr.count(b"Re-using existing connection") == 1, p.stderr.decode()


def test_curl_chunked_upload(srv, tmp_path):
    curl = need("curl", "curl")
    data = pattern(300000, seed=5)
    f = tmp_path / "body"
    f.write_bytes(data)
    p = run([curl, "-sS", "-D", str(tmp_path / "head"), "-H", "Transfer-Encoding: chunked",
             "--data-binary", f"@{f}", url(srv, "/up")])
    assert p.returncode == 0, p.stderr.decode()
    head = (tmp_path / "head").read_bytes()
    assert b"Transfer-Encoding: chunked" in head
    assert p.stdout == data


def test_curl_upload_from_stdin_is_chunked(srv):
    curl = need("curl", "curl")
    data = pattern(100000, seed=6)
    p = run([curl, "-sS", "-T", "-", url(srv, "/put")], input=data)
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout == data


def test_curl_expect_100_continue(srv, tmp_path):
    curl = need("curl", "curl")
    data = pattern(2 * 1024 * 1024, seed=7)
    f = tmp_path / "body"
    f.write_bytes(data)
    t0 = time.monotonic()
    p = run([curl, "-sS", "-v", "--expect100-timeout", "20", "-H", "Expect: 100-continue",
             "--data-binary", f"@{f}", url(srv, "/e")])
    elapsed = time.monotonic() - t0
    assert p.returncode == 0, p.stderr.decode()
    assert b"< HTTP/1.1 100 Continue" in p.stderr, p.stderr.decode()
    assert p.stdout == data
    # curl sent the body on the 100, not when its 20 s wait ran out.
    assert elapsed < 15, elapsed


def test_curl_expect_refused(echod_factory, tmp_path):
    curl = need("curl", "curl")
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), max_frame_size=1000)
    f = tmp_path / "body"
    f.write_bytes(b"x" * 5000)
    p = run([curl, "-sS", "-i", "--expect100-timeout", "20", "-H", "Expect: 100-continue",
             "--data-binary", f"@{f}", url(srv, "/")])
    assert p.stdout.startswith(b"HTTP/1.1 413 "), p.stdout[:200]
    assert b"Connection: close" in p.stdout


def test_curl_controls(srv):
    curl = need("curl", "curl")
    p = run([curl, "-sS", "-i", url(srv, "/?status=418&header=X-Test:yes&size=10")])
    assert p.stdout.startswith(b"HTTP/1.1 418 ")
    assert b"X-Test: yes\r\n" in p.stdout and p.stdout.endswith(b"\r\n\r\n" + p.stdout[-10:])


def test_ab_http10_keep_alive(srv):
    ab = need("ab", "apache2-utils")
    n = 2000
    p = run([ab, "-k", "-n", str(n), "-c", "8", "-q", url(srv, "/ab")], timeout=60)
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    assert re.search(rf"Complete requests:\s+{n}\b", out), out
    assert re.search(r"Failed requests:\s+0\b", out), out
    assert re.search(rf"Keep-Alive requests:\s+{n}\b", out), out
    assert not re.search(r"Non-2xx responses", out), out


def test_ab_post(srv, tmp_path):
    ab = need("ab", "apache2-utils")
    f = tmp_path / "body"
    f.write_bytes(pattern(4096))
    p = run([ab, "-k", "-n", "500", "-c", "4", "-q", "-p", str(f), "-T",
             "application/octet-stream", url(srv, "/")], timeout=60)
    out = p.stdout.decode()
    assert p.returncode == 0, out
    assert re.search(r"Failed requests:\s+0\b", out), out
    assert re.search(r"Total body sent:\s+\d+", out)


def test_wrk_short_run(srv):
    wrk = need("wrk", "wrk")
    p = run([wrk, "-t", "1", "-c", "10", "-d", "1s", url(srv, "/wrk")], timeout=30)
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    m = re.search(r"(\d+) requests in", out)
    assert m and int(m.group(1)) > 0, out
    assert "Socket errors" not in out, out
    assert "Non-2xx" not in out, out
    print(f"wrk: {m.group(1)} requests in 1 s, 10 connections")


def test_wrk_pipelined_script(srv, tmp_path):
    wrk = need("wrk", "wrk")
    script = tmp_path / "pipe.lua"
    script.write_text("""
init = function(args)
  local r = {}
  for i = 1, 8 do r[i] = wrk.format("GET", "/p" .. i) end
  req = table.concat(r)
end
request = function() return req end
""")
    p = run([wrk, "-t", "1", "-c", "4", "-d", "1s", "-s", str(script), url(srv, "/")], timeout=30)
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    assert "Socket errors" not in out and "Non-2xx" not in out, out
    assert int(re.search(r"(\d+) requests in", out).group(1)) > 0, out


def test_clients_left_no_errors(srv):
    """After a curl run, the server counts no error."""
    curl = need("curl", "curl")
    run([curl, "-sS", url(srv, "/a"), url(srv, "/b")])
    assert srv.stats()["errors_total"] == 0
