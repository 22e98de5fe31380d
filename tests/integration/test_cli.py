"""The command line of contract.md: -t checks a file ("configuration ok" and
exit 0, or "FILE:LINE: message" on stderr and exit 1), -V and -h exit 0,
-c with a missing file fails, and without -c echod serves 127.0.0.1:7007."""

import re
import signal
import socket
import subprocess

import pytest

from conftest import ECHOD, REPO, Client, bound, config_text, free_port

GOOD = {
    "listen": ["127.0.0.1:7007", "[::1]:7007", "unix:/tmp/echod-cli-test.sock"],
    "workers": 0,
    "backlog": 511,
    "max_connections": 10000,
    "max_frame_size": 16777216,
    "idle_timeout": 300,
    "read_timeout": 30.5,
    "write_timeout": 30,
    "drain_timeout": 10,
    "tcp_nodelay": True,
    "tcp_keepalive": False,
    "log_level": "info",
    "user": "",
}


def run(*args, timeout=None):
    return subprocess.run([str(ECHOD), *args], capture_output=True, text=True,
                          timeout=timeout or bound(10), stdin=subprocess.DEVNULL)


def check(tmp_path, text):
    path = tmp_path / "echod.conf"
    path.write_text(text)
    return path, run("-t", "-c", str(path))


def test_dash_v_prints_the_version(tmp_path):
    r = run("-V")
    assert r.returncode == 0
    assert re.search(r"\d+\.\d+\.\d+", r.stdout), r.stdout


def test_dash_h_prints_usage(tmp_path):
    r = run("-h")
    assert r.returncode == 0
    assert "-c" in r.stdout and "-t" in r.stdout, r.stdout


def test_unknown_option_fails(tmp_path):
    r = run("-Z")
    assert r.returncode != 0
    assert r.stderr


def test_check_accepts_a_file_with_every_key(tmp_path):
    path, r = check(tmp_path, config_text(GOOD))
    assert r.returncode == 0, r.stderr
    assert "configuration ok" in r.stdout + r.stderr


def test_check_accepts_the_shipped_configs(tmp_path):
    for name in ("echod.conf", "loadtest.conf"):
        f = REPO / "config" / name
        if not f.exists():
            continue
        r = run("-t", "-c", str(f))
        assert r.returncode == 0, (name, r.stderr)
        assert "configuration ok" in r.stdout + r.stderr


def test_check_accepts_listen_as_a_list_and_fractional_timeouts(tmp_path):
    text = ('listen = ( "127.0.0.1:7007" );\n'
            "idle_timeout = 0.5;\nread_timeout = 2;\nwrite_timeout = 0;\n")
    path, r = check(tmp_path, text)
    assert r.returncode == 0, r.stderr
    assert "configuration ok" in r.stdout


# (setting line, why it is wrong); the bad setting is always on line 3.
BAD = [
    ("no_such_key = 1;", "unknown key"),
    ('workers = "two";', "wrong type"),
    ("workers = 1.5;", "wrong type"),
    ("max_frame_size = true;", "wrong type"),
    ("tcp_nodelay = 1;", "wrong type"),
    ("listen = 7007;", "wrong type"),
    ('listen = [ 1, 2 ];', "wrong element type"),
    ("listen = [ ];", "empty list"),
    ('listen = [ "nonsense" ];', "bad address"),
    ('listen = [ "127.0.0.1:99999" ];', "port out of range"),
    ("workers = -1;", "out of range"),
    ("workers = 100000;", "out of range"),
    ("backlog = 0;", "out of range"),
    ("max_connections = 0;", "out of range"),
    ("max_frame_size = 0;", "out of range"),
    ("max_frame_size = 4294967295;", "out of range (the open length)"),
    ("idle_timeout = -1;", "out of range"),
    ("read_timeout = -0.5;", "out of range"),
    ('log_level = "loud";', "unknown level"),
    ("log_level = 3;", "wrong type"),
    ("user = 0;", "wrong type"),
    ("workers = ;", "syntax error"),
    ('user = "no-such-user-echod";', "unknown user"),
    ('listen = [ "127.0.0.1:7007", "127.0.0.1:7007" ];', "address twice"),
]


@pytest.mark.parametrize("setting,why", BAD, ids=[b[0] for b in BAD])
def test_check_rejects_with_file_and_line(tmp_path, setting, why):
    text = f'# a comment\nbacklog = 128;\n{setting}\ndrain_timeout = 1;\n'
    path, r = check(tmp_path, text)
    assert r.returncode == 1, (why, r.returncode, r.stdout, r.stderr)
    assert f"{path}:3:" in r.stderr, (why, r.stderr)
    assert "configuration ok" not in r.stdout


def test_the_error_line_is_the_bad_settings_line(tmp_path):
    lines = ["# comment"] * 4 + ["", "workers = 1;", "", "backlog = 10;", "",
                                 "max_frame_size = -5;", "idle_timeout = 1;"]
    path, r = check(tmp_path, "\n".join(lines) + "\n")
    assert r.returncode == 1
    assert f"{path}:10:" in r.stderr, r.stderr


def test_a_key_given_twice_is_rejected_with_its_line(tmp_path):
    path, r = check(tmp_path, "workers = 1;\nbacklog = 5;\nworkers = 2;\n")
    assert r.returncode == 1
    assert f"{path}:3:" in r.stderr, r.stderr


def test_check_of_a_missing_file_fails(tmp_path):
    r = run("-t", "-c", str(tmp_path / "missing.conf"))
    assert r.returncode == 1
    assert "missing.conf" in r.stderr


def test_start_with_a_missing_file_fails(tmp_path):
    r = run("-c", str(tmp_path / "missing.conf"))
    assert r.returncode == 1
    assert "missing.conf" in r.stderr


def test_start_with_an_invalid_file_fails_with_file_and_line(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text(f'listen = [ "127.0.0.1:{free_port()}" ];\nworkers = "x";\n')
    r = run("-c", str(path))
    assert r.returncode == 1
    assert f"{path}:2:" in r.stderr, r.stderr


def test_start_fails_when_the_address_is_taken(echod_factory):
    d = echod_factory()
    e = echod_factory(listen=[d.addr], wait=False)
    e.expected_returncode = None   # checked here
    rc = e.wait_exit(bound(10))
    assert rc != 0
    assert d.addr in e.log(), e.log()
    with Client.connect(d.addr) as c:   # the first one is unaffected
        c.ping()


def port_7007_free():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 7007))
        return True
    except OSError:
        return False
    finally:
        s.close()


def test_without_dash_c_it_serves_127_0_0_1_port_7007(echod_factory):
    if not port_7007_free():
        pytest.skip("127.0.0.1:7007 is in use on this machine")
    d = echod_factory(argv=[str(ECHOD)], listen=["127.0.0.1:7007"], wait=False)
    d.settings["drain_timeout"] = 10
    if not d.wait_ready():
        if "in use" in d.log():
            d.expected_returncode = None
            pytest.skip("127.0.0.1:7007 was taken meanwhile")
        raise AssertionError(f"echod without -c did not start: {d.log()}")
    with Client.connect("127.0.0.1:7007") as c:
        assert c.request("E", b"defaults") == ("E", b"defaults")
        st = c.stats()
        assert st["workers"] >= 1
    d.send_signal(signal.SIGTERM)
    assert d.wait_exit(bound(15)) == 0
