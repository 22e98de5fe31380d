"""echod behind a real nginx (Debian's package), as it is meant to be used:
the test starts nginx in the foreground with a config in a temporary
directory on free loopback ports (`proxy_pass` to an upstream with
keepalive, `proxy_http_version 1.1`), and stops it by PID. echod's head echo
then shows what nginx sent, and bodies must survive the proxy both ways.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import bound, free_port, pattern
from http_util import HttpConn, request

NGINX_CONF = """
error_log {dir}/error.log info;
pid {dir}/nginx.pid;
worker_processes 1;
events {{ worker_connections 128; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_max_body_size 64m;
    upstream echod {{
        server {upstream};
        keepalive 4;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://echod;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host echo.test;
            proxy_set_header X-Via-Nginx yes;
        }}
        location /stream/ {{
            proxy_pass http://echod;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_request_buffering off;
            proxy_buffering off;
        }}
    }}
}}
"""


class Nginx:
    def __init__(self, upstream):
        self.binary = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access(
            "/usr/sbin/nginx", os.X_OK) else None)
        if self.binary is None:
            pytest.skip("nginx not installed (Debian package nginx-light)")
        self.dir = tempfile.mkdtemp(prefix="echod-nginx-", dir="/tmp")
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=self.dir, upstream=upstream, port=self.port))
        self.proc = subprocess.Popen(
            [self.binary, "-p", self.dir, "-e", os.path.join(self.dir, "error.log"), "-c", conf,
             "-g", "daemon off; master_process off;"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + bound(10)
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited: {self.proc.stderr.read().decode()}"
                                     f"{self.log()}")
            try:
                HttpConn(f"http://127.0.0.1:{self.port}", timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"nginx did not listen: {self.log()}"
                time.sleep(0.05)

    @property
    def addr(self):
        return f"http://127.0.0.1:{self.port}"

    def log(self):
        try:
            with open(os.path.join(self.dir, "error.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGQUIT)
            try:
                self.proc.wait(bound(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def proxied(echod_factory):
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"))
    ngx = Nginx(srv.addr_of("http").split("://")[1])
    yield srv, ngx
    ngx.stop()


def test_head_echo_shows_what_nginx_sent(proxied):
    srv, ngx = proxied
    with HttpConn(ngx.addr) as h:
        h.send(request("GET", "/seen?x=1", host="client.example",
                       headers=[("X-Client", "abc"), ("Connection", "keep-alive")]))
        resp = h.read_response()
    assert resp.status == 200
    assert resp.get("Server").startswith("nginx")   # nginx replaces Server
    head = resp.body
    lines = head.split(b"\r\n")
    assert lines[0] == b"GET /seen?x=1 HTTP/1.1"
    assert b"Host: echo.test" in lines, head
    assert b"X-Via-Nginx: yes" in lines, head
    assert b"X-Client: abc" in lines, head
    # proxy_set_header Connection "": nginx sends no Connection field.
    assert not any(line.lower().startswith(b"connection:") for line in lines), head
    assert head.endswith(b"\r\n\r\n")


def test_upstream_keepalive_reuses_one_connection(proxied):
    srv, ngx = proxied
    remotes = set()
    with HttpConn(ngx.addr) as h:
        for i in range(10):
            h.send(request("GET", f"/k{i}?format=json"))
            remotes.add(json.loads(h.read_response().body)["remote"])
    assert len(remotes) == 1, remotes
    # Separate client connections still share nginx's upstream connection.
    for i in range(3):
        with HttpConn(ngx.addr) as h:
            h.send(request("GET", "/again?format=json"))
            remotes.add(json.loads(h.read_response().body)["remote"])
    assert len(remotes) == 1, remotes


def test_bodies_survive_the_proxy(proxied):
    srv, ngx = proxied
    body = pattern(2 * 1024 * 1024, seed=11)
    with HttpConn(ngx.addr) as h:
        # No half-close: nginx takes the client's EOF for an abort.
        th = threading.Thread(target=h.send, args=(request("POST", "/up", body=body),),
                              daemon=True)
        th.start()
        resp = h.read_response(timeout=bound(20))
        th.join(bound(10))
    assert resp.status == 200 and not resp.chunked
    assert resp.body == body


def test_chunked_upload_through_the_proxy(proxied):
    srv, ngx = proxied
    data = pattern(300000, seed=12)
    pieces = [data[i:i + 70000] for i in range(0, len(data), 70000)]
    chunked_body = b"".join(b"%x\r\n" % len(p) + p + b"\r\n" for p in pieces) + b"0\r\n\r\n"
    for path in ["/buffered", "/stream/unbuffered"]:
        with HttpConn(ngx.addr) as h:
            h.send(request("POST", path, headers=[("Transfer-Encoding", "chunked")],
                           body=chunked_body))
            resp = h.read_response(timeout=bound(20))
            assert resp.status == 200 and resp.body == data, path


def test_what_nginx_sends_for_a_chunked_upload(proxied):
    """nginx buffers a chunked request body by default and sends it to echod
    with a Content-Length; unbuffered (HTTP/1.1 upstream) it passes the
    chunks on. format=json shows the head echod received."""
    srv, ngx = proxied
    seen = {}
    for path in ["/?format=json", "/stream/?format=json"]:
        with HttpConn(ngx.addr) as h:
            # The body comes after the head: nginx cannot know its length
            # when it starts the upstream request.
            h.send(request("POST", path, headers=[("Transfer-Encoding", "chunked")]))
            time.sleep(0.2)
            h.send(b"5\r\nhello\r\n")
            time.sleep(0.1)
            h.send(b"0\r\n\r\n")
            j = json.loads(h.read_response().body)
        seen[path] = {n.lower(): v for n, v in j["headers"]}
        assert j["body_bytes"] == 5
    assert seen["/?format=json"].get("content-length") == "5"
    assert seen["/stream/?format=json"].get("transfer-encoding") == "chunked"


def test_controls_through_the_proxy(proxied):
    srv, ngx = proxied
    with HttpConn(ngx.addr) as h:
        h.send(request("GET", "/?status=503&header=X-Up:1"))
        resp = h.read_response()
        assert resp.status == 503 and resp.get("X-Up") == "1"
        h.send(request("HEAD", "/?size=1000"))
        resp = h.read_response("HEAD")
        assert resp.status == 200 and resp.get("Content-Length") == "1000"
        h.send(request("GET", "/?size=100000"))
        assert len(h.read_response().body) == 100000
    # The proxy's own health probe.
    with HttpConn(ngx.addr) as h:
        h.send(request("GET", "/healthz"))
        assert h.read_response().body == b"ok"
    assert srv.stats()["errors_total"] == 0, ngx.log()
