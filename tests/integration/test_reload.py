"""SIGHUP reloads the config file: new limits and timeouts apply to new
connections, listeners are added and removed to match `listen`, and a broken
file is logged (with its FILE:LINE error) while the old configuration keeps
serving."""

import signal
import socket
import time

from conftest import Client, bound, free_port, header, pattern


def poll(check, what, timeout=None):
    """Until check() returns a true value (exceptions count as not yet)."""
    deadline = time.monotonic() + (timeout or bound(10))
    last = None
    while time.monotonic() < deadline:
        try:
            r = check()
            if r:
                return r
        except (OSError, AssertionError) as e:
            last = e
        time.sleep(0.05)
    raise AssertionError(f"never: {what} (last error: {last!r})")


def oversize_gets_413(d, length):
    with Client.connect(d.addr) as c:
        c.send(header("E", length) + pattern(length))
        t, payload = c.read_frame()
        return t == "!" and payload.startswith(b"413 ")


def test_smaller_max_frame_size_applies_to_new_connections(echod_factory):
    d = echod_factory(max_frame_size=1000)
    assert not oversize_gets_413(d, 600)
    d.reload(max_frame_size=500)
    poll(lambda: oversize_gets_413(d, 600), "a 600-byte frame refused after the reload")
    with Client.connect(d.addr) as c:
        assert c.request("E", pattern(500)) == ("E", pattern(500))


def test_larger_max_frame_size_applies_to_new_connections(echod_factory):
    d = echod_factory(max_frame_size=100)
    assert oversize_gets_413(d, 200)
    d.reload(max_frame_size=100000)
    poll(lambda: not oversize_gets_413(d, 50000), "a 50000-byte frame echoed after the reload")


def test_shorter_idle_timeout_applies_to_new_connections(echod_factory):
    d = echod_factory(idle_timeout=0)
    d.reload(idle_timeout=1)

    def closed_when_idle():
        with Client.connect(d.addr) as c:
            c.ping()
            c.expect_eof(timeout=bound(5))
            return True

    poll(closed_when_idle, "idle connection closed after the reload", timeout=bound(20))


def test_read_timeout_change_applies(echod_factory):
    d = echod_factory(read_timeout=0, idle_timeout=0)
    d.reload(read_timeout=1)

    def gets_408():
        with Client.connect(d.addr) as c:
            c.send(b"P\x00")
            return c.read_error(timeout=bound(5)).startswith("408 ")

    poll(gets_408, "408 after the reload", timeout=bound(20))


def test_added_listener_serves_and_removed_one_is_closed(echod_factory):
    d = echod_factory()
    old = d.addr
    kept = d.connect()          # accepted on the listener about to go
    kept.ping()
    new = f"127.0.0.1:{free_port()}"
    d.reload(listen=[new])

    def new_serves():
        with Client.connect(new, timeout=2) as c:
            c.ping()
            return True

    poll(new_serves, f"connect to {new} after the reload")

    def old_refused():
        try:
            with Client.connect(old, timeout=2):
                return False
        except ConnectionRefusedError:
            return True

    poll(old_refused, f"{old} refused after the reload")
    # A connection accepted on the removed listener stays open and served.
    assert kept.request("E", b"kept") == ("E", b"kept")
    d.wait_stats(lambda s: s["connections_current"] == 2, addr=new,
                 what="the kept connection and this one")


def test_listener_added_next_to_the_old_one(echod_factory):
    d = echod_factory()
    old = d.addr
    new = f"127.0.0.1:{free_port()}"
    d.reload(listen=[old, new])

    def both_serve():
        for a in (new, old):
            with Client.connect(a, timeout=2) as c:
                c.ping()
        return True

    poll(both_serve, "both listeners serve")


def test_connection_open_across_a_reload_keeps_working(echod_factory):
    d = echod_factory()
    c = d.connect()
    c.ping()
    since = d.log_offset()
    d.reload(max_frame_size=4096, idle_timeout=100)
    d.wait_log(r"reload", since=since)
    for _ in range(10):
        assert c.request("E", b"steady") == ("E", b"steady")


def test_broken_file_is_logged_and_old_config_keeps_serving(echod_factory):
    d = echod_factory(max_frame_size=1000)
    c = d.connect()
    since = d.log_offset()
    d.reload(text='workers = 2;\nmax_frame_size = 1000;\nthis is not libconfig\n')
    line = d.wait_log(rf"{d.config_path}:\d+", since=since)
    assert f"{d.config_path}:3" in d.log()[since:], d.log()[since:]
    assert line.group(0).startswith(str(d.config_path))
    assert d.running()
    # The old config stays: same listener, same max_frame_size.
    c.ping()
    with Client.connect(d.addr) as c2:
        assert c2.request("E", pattern(1000)) == ("E", pattern(1000))
    assert oversize_gets_413(d, 1001)


def test_invalid_value_on_reload_is_logged_with_its_line(echod_factory):
    d = echod_factory(max_frame_size=1000)
    since = d.log_offset()
    text = (f'listen = [ "{d.addr}" ];\n'
            'workers = 2;\n'
            'max_frame_size = 0;\n'
            'drain_timeout = 2;\n')
    d.reload(text=text)
    d.wait_log(rf"{d.config_path}:3", since=since)
    assert oversize_gets_413(d, 1001)
    with Client.connect(d.addr) as c:
        assert c.request("E", pattern(1000)) == ("E", pattern(1000))


def test_reload_with_a_missing_file_keeps_serving(echod_factory):
    d = echod_factory()
    since = d.log_offset()
    d.config_path.unlink()
    d.send_signal(signal.SIGHUP)
    d.wait_log(str(d.config_path), since=since)
    with Client.connect(d.addr) as c:
        c.ping()
    d.write_config()   # the file back for anything later


def test_good_reload_after_a_bad_one_applies(echod_factory):
    d = echod_factory(max_frame_size=1000)
    since = d.log_offset()
    d.reload(text="max_frame_size = ;\n")
    d.wait_log(rf"{d.config_path}:1", since=since)
    d.reload(max_frame_size=100)
    poll(lambda: oversize_gets_413(d, 500), "the good reload applied")


def test_many_reloads_in_a_row(echod_factory):
    d = echod_factory()
    c = d.connect()
    for i in range(20):
        d.reload(max_frame_size=10000 + i)
        assert c.request("E", b"during reloads") == ("E", b"during reloads")
    # Reloads run after the signal arrives (and pending SIGHUPs merge), but
    # the last file written is the one that ends up applied.
    poll(lambda: not oversize_gets_413(d, 10019), "the last of the reloads applied")
    assert oversize_gets_413(d, 10020)
    assert d.running()


def test_unix_listener_added_by_reload(echod_factory):
    d = echod_factory()
    path = f"{d.dir}/added.sock"
    d.reload(listen=[d.addr, f"unix:{path}"])

    def unix_serves():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2)
        s.connect(path)
        with Client(s) as c:
            c.ping()
        return True

    poll(unix_serves, "the unix listener added by reload serves")
