"""echobench's peer protocols against the real peers: --proto redis against
redis-server (RESP ECHO, the reply checked byte for byte), --proto memcache
against memcached (meta no-op), and --proto http against nginx (GET, POST with
--no-check-body, --oneshot, pipelining, statuses counted by code, the path and
headers it sends) and against the HTTP mode of faulty_echo_server.py (the POST
body checked, Content-Length and chunked responses, corruption caught).

Each peer is started here on a free loopback port with its files in the test's
temporary directory and stopped by PID. A peer that is not installed skips the
test, naming the Debian package (all are in the Makefile's DEB_PACKAGES).
"""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from client_tools import ECHOBENCH, FaultyServer, echobench_json, run
from conftest import bound, free_port, split_scheme

START_TIMEOUT = 10.0


def need(binary, package):
    path = shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}") if os.path.exists(p)), None)
    if path is None:
        pytest.skip(f"{binary} is not installed (Debian package {package})")
    return path


class Peer:
    """A server process on 127.0.0.1:port, ready once it accepts a connection."""

    def __init__(self, argv, port, workdir):
        self.port = port
        self.addr = f"127.0.0.1:{port}"
        self.log = open(workdir / f"peer-{port}.log", "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=workdir)
        deadline = time.monotonic() + bound(START_TIMEOUT)
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(f"{argv[0]} did not start: "
                                         f"{(workdir / f'peer-{port}.log').read_text()}")
                time.sleep(0.05)

    def request(self, data, until):
        """Send data on a new connection, read until `until` is in the reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(data)
            got = b""
            while until not in got:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            return got

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(bound(10))
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(bound(10))
        self.log.close()


@pytest.fixture
def redis(tmp_path):
    binary = need("redis-server", "redis-server")
    port = free_port()
    peer = Peer([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(tmp_path), "--daemonize", "no",
                 # oneshot spreads its source addresses over 127/8, which protected
                 # mode refuses (it takes only 127.0.0.1 and ::1 as local)
                 "--protected-mode", "no"],
                port, tmp_path)
    yield peer
    peer.stop()


@pytest.fixture
def memcached(tmp_path):
    binary = need("memcached", "memcached")
    port = free_port()
    argv = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0"]
    if os.geteuid() == 0:
        argv += ["-u", "root"]
    peer = Peer(argv, port, tmp_path)
    yield peer
    peer.stop()


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 1024; }}
http {{
    log_format probe '$request_method $uri $http_x_probe $http_x_other $http_connection';
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok"; }}
        location /missing {{ return 404; }}
        location /probe {{ access_log {d}/probe.log probe; return 200 "probed"; }}
    }}
}}
"""


@pytest.fixture
def nginx(tmp_path):
    binary = need("nginx", "nginx-light")
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.format(d=tmp_path, port=port))
    peer = Peer([binary, "-c", str(conf), "-p", str(tmp_path), "-e", str(tmp_path / "error.log")],
                port, tmp_path)
    peer.dir = tmp_path
    yield peer
    peer.stop()


# ---- redis ------------------------------------------------------------------------


def redis_echo_calls(peer):
    info = peer.request(b"INFO commandstats\r\n", b"\r\n\r\n").decode()
    for line in info.splitlines():
        if line.startswith("cmdstat_echo:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


def test_redis_echo_every_reply_checked(redis):
    r = echobench_json(redis.addr, "--proto", "redis", "-c", "4", "-P", "8", "-n", "5000",
                       "-s", "0-2000")
    assert r["proto"] == "redis"
    assert r["errors"]["total"] == 0, r["errors"]
    assert r["requests"] == r["totals"]["ok"] == 5000
    assert redis_echo_calls(redis) == 5000
    assert r["payload_bytes"] > 0


def test_redis_oneshot_and_open_loop(redis):
    r = echobench_json(redis.addr, "--proto", "redis", "--oneshot", "-c", "2", "-n", "200")
    assert r["errors"]["total"] == 0 and r["requests"] == 200
    r = echobench_json(redis.addr, "--proto", "redis", "-c", "4", "-R", "1000", "-d", "1")
    assert r["errors"]["total"] == 0 and r["mode"] == "open"
    assert abs(r["requests"] - 1000) <= 100


# ---- memcached ----------------------------------------------------------------------


def memcached_stat(peer, name):
    text = peer.request(b"stats\r\n", b"END\r\n").decode()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == name:
            return int(parts[2])
    raise AssertionError(f"no stat {name} in {text!r}")


def test_memcache_meta_noop(memcached):
    before = memcached_stat(memcached, "bytes_read")
    r = echobench_json(memcached.addr, "--proto", "memcache", "-c", "4", "-P", "16",
                       "-n", "20000", "-s", "100")
    after = memcached_stat(memcached, "bytes_read")
    assert r["proto"] == "memcache"
    assert r["errors"]["total"] == 0, r["errors"]
    assert r["requests"] == 20000
    # -s is ignored: every request is the 4 bytes "mn\r\n".
    assert r["totals"]["bytes_out"] == 4 * 20000 == r["totals"]["bytes_in"]
    # The server read them all (plus the first "stats\r\n").
    assert after - before == 4 * 20000 + len(b"stats\r\n")


# ---- http against nginx ---------------------------------------------------------------


def test_http_get_pipelined_against_nginx(nginx):
    r = echobench_json(nginx.addr, "--proto", "http", "-c", "4", "-P", "8", "-n", "5000")
    assert r["proto"] == "http"
    assert r["errors"]["total"] == 0, r["errors"]
    assert r["requests"] == 5000
    assert r["totals"]["connections_opened"] == 4


def test_http_post_against_nginx_needs_no_check_body(nginx):
    # nginx's `return 200 "ok"` does not echo: the body check catches it...
    r = echobench_json(nginx.addr, "--proto", "http", "-s", "300", "-c", "2", "-n", "200",
                       expect_rc=1)
    assert r["errors"]["mismatch"] == 200 and r["requests"] == 0, r["errors"]
    # ... and --no-check-body accepts any 2xx body.
    r = echobench_json(nginx.addr, "--proto", "http", "-s", "300", "-c", "2", "-P", "4",
                       "-n", "2000", "--no-check-body")
    assert r["errors"]["total"] == 0, r["errors"]
    assert r["requests"] == 2000


def test_http_oneshot_against_nginx(nginx):
    r = echobench_json(nginx.addr, "--proto", "http", "--oneshot", "-c", "4", "-n", "300")
    assert r["errors"]["total"] == 0, r["errors"]
    assert r["requests"] == 300
    assert r["totals"]["connections_opened"] == 300
    assert r["connect_us"]["count"] == 300


def test_http_statuses_counted_by_code(nginx):
    r = echobench_json(nginx.addr, "--proto", "http", "--path", "/missing", "-c", "2",
                       "-n", "100", expect_rc=1)
    assert r["errors"]["http_status"] == {"404": 100}, r["errors"]
    assert r["errors"]["total"] == 100 and r["requests"] == 0
    # The connection stays usable after a 404: no reconnects.
    assert r["totals"]["connections_opened"] == 2


def test_http_path_and_headers_reach_the_server(nginx):
    r = echobench_json(nginx.addr, "--proto", "http", "--path", "/probe", "-H", "X-Probe: one",
                       "--header", "X-Other:two", "-c", "1", "-n", "10")
    assert r["errors"]["total"] == 0 and r["requests"] == 10
    nginx.stop()    # flushes the log
    lines = (nginx.dir / "probe.log").read_text().splitlines()
    assert lines == ["GET /probe one two -"] * 10, lines
    p = run(ECHOBENCH, ["--proto", "http", "-p", "1", "--oneshot", "-H", "Bad header"],
            timeout=bound(10))
    assert p.returncode == 3    # "Bad header" is not a header, so it is the host


# ---- echod's own listeners ---------------------------------------------------------------


def test_http_against_echod(echod_factory):
    d = echod_factory(listen=["http://127.0.0.1"])
    addr = split_scheme(d.addr_of("http"))[1]
    # POST: echod echoes the body, and every byte of it is checked.
    r = echobench_json(addr, "--proto", "http", "-s", "1-3000", "-c", "4", "-P", "4",
                       "-n", "3000")
    assert r["errors"]["total"] == 0, r["errors"]
    assert r["requests"] == 3000
    # GET: the body is the request head echoed; read to its end, not compared.
    r = echobench_json(addr, "--proto", "http", "-c", "2", "-P", "8", "-n", "2000",
                       "-H", "X-Probe: 1")
    assert r["errors"]["total"] == 0 and r["requests"] == 2000
    r = echobench_json(addr, "--proto", "http", "--oneshot", "-s", "100", "-c", "2",
                       "-n", "200")
    assert r["errors"]["total"] == 0 and r["requests"] == 200
    assert r["totals"]["connections_opened"] == 200
    # A status chosen by the query string is counted by code.
    r = echobench_json(addr, "--proto", "http", "--path", "/?status=503", "-c", "1",
                       "-n", "20", expect_rc=1)
    assert r["errors"]["http_status"] == {"503": 20}, r["errors"]


def test_raw_against_echod(echod_factory):
    d = echod_factory(listen=["raw://127.0.0.1"])
    addr = split_scheme(d.addr_of("raw"))[1]
    r = echobench_json(addr, "--proto", "raw", "-c", "4", "-P", "16", "-s", "64",
                       "-n", "20000")
    assert r["errors"]["total"] == 0, r["errors"]
    assert r["requests"] == 20000
    r = echobench_json(addr, "--proto", "raw", "--oneshot", "-c", "2", "-n", "200")
    assert r["errors"]["total"] == 0 and r["requests"] == 200


# ---- http against an echo server ------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True])
def test_http_post_body_checked_against_an_echo(chunked):
    extra = ["--chunked"] if chunked else []
    with FaultyServer("--proto", "http", *extra) as srv:
        r = echobench_json(srv.addr, "--proto", "http", "-s", "1-5000", "-c", "4", "-P", "4",
                           "-n", "2000")
        assert r["errors"]["total"] == 0, r["errors"]
        assert r["requests"] == 2000
        r = echobench_json(srv.addr, "--proto", "http", "--oneshot", "-s", "100", "-c", "2",
                           "-n", "100")
        assert r["errors"]["total"] == 0 and r["requests"] == 100


def test_http_corrupted_body_is_a_mismatch():
    with FaultyServer("--proto", "http", "--corrupt-every", "10") as srv:
        r = echobench_json(srv.addr, "--proto", "http", "-s", "64", "-c", "1", "-n", "200",
                           expect_rc=1)
    assert r["errors"]["mismatch"] == 20, r["errors"]
    assert r["requests"] == 180


def test_http_server_errors_by_status():
    with FaultyServer("--proto", "http", "--status", "503") as srv:
        r = echobench_json(srv.addr, "--proto", "http", "-c", "1", "-n", "50", expect_rc=1)
    assert r["errors"]["http_status"] == {"503": 50}, r["errors"]


def test_protocol_usage_errors():
    for args in (["--proto", "redis", "--mix", "1:1"], ["--proto", "memcached"],
                 ["--path", "/x"], ["--proto", "http", "--path", "x"],
                 ["--proto", "http", "--header", "nocolon"]):
        p = run(ECHOBENCH, args, timeout=bound(10))
        assert p.returncode == 2, (args, p.returncode, p.stderr)
