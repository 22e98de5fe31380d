"""echod under a real systemd, installed the way an operator installs it.

A Debian 12 root (tests/systemd/container.py: debootstrap once, cached in
build/systemd-root) gets `make install DESTDIR=ROOT`, then boots its own
systemd in private PID and mount namespaces on the host's network. Checked
there, with the shipped units (a drop-in only where a test says so):
start becomes active only after READY=1; `systemctl status` shows STATUS=;
reload reaches echod and returns to active (and RELOADING=1 / READY=1 drive
systemd's own state), on a root without procps (no /bin/kill: the minimal
system a new user tries first); stop drains and exits 0; echod.socket starts the
service on a client's connection, which is served on TCP and unix; SIGSTOP
and a hung worker make the watchdog restart it; the journal has echod's
lines with their priorities; the sandbox is in force (dynamic user, no
capabilities, read-only /usr, private /tmp and /dev, seccomp). At the end
the whole system is killed and nothing of it is left running. The template:
echod@a and echod@b run from /etc/echod/a.conf and b.conf at once, reload
and stop one at a time, share one port with reuse_port, and
echod@NAME.socket starts its own instance.

Root only. Skipped under sanitizers (`make test SAN=...`): their runtimes
are not in the test root; the plain `make test` runs it. Set
ECHOD_SKIP_SYSTEMD_E2E=1 to skip it on a machine without network access.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, SAN, Client, config_text, free_port

sys.path.insert(0, str(REPO / "tests" / "systemd"))
import container as ct  # noqa: E402

ROOT = ct.DEFAULT_ROOT
# Where systemd looks for the units of a PREFIX=/usr/local install.
UNITDIR = "/usr/local/lib/systemd/system"
DROPIN_DIRS = ("etc/systemd/system/echod.service.d", "etc/systemd/system/echod.socket.d")
# Any wait for a state inside: generous, the system is small but CI is slow.
STATE_TIMEOUT = 30.0
# Watchdog interval for the restart tests (shipped: 20 s).
TEST_WATCHDOG_S = 2

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="booting a systemd needs root"),
    pytest.mark.skipif(bool(SAN), reason="sanitizer runtimes are not in the test root; "
                       "runs in the plain `make test`"),
    pytest.mark.skipif(os.environ.get("ECHOD_SKIP_SYSTEMD_E2E") == "1",
                       reason="ECHOD_SKIP_SYSTEMD_E2E=1"),
]


def wait_until(what, predicate, timeout=STATE_TIMEOUT, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


class System:
    """The booted system and the echod set-up in it."""

    def __init__(self, box, port, socket_port):
        self.box = box
        self.port = port                    # echod.conf's `listen`
        self.socket_port = socket_port      # echod.socket's ListenStream
        self.settings = {"listen": [f"127.0.0.1:{port}"], "workers": 2, "drain_timeout": 2}

    # -- set-up
    def write_config(self, **changes):
        self.settings.update(changes)
        path = ROOT / "etc/echod/echod.conf"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(config_text(self.settings))
        os.replace(tmp, path)

    def dropin(self, unit, text):
        d = ROOT / f"etc/systemd/system/{unit}.d"
        d.mkdir(parents=True, exist_ok=True)
        (d / "test.conf").write_text(text)
        self.box.systemctl("daemon-reload")

    def reset(self):
        """Every test starts here: both units stopped and clean, no template
        instance, shipped config values, only the socket drop-in (the test's
        port)."""
        self.box.systemctl("stop", "echod.socket", "echod.service", "echod@*", check=False)
        self.box.systemctl("reset-failed", "echod.service", "echod.socket", "echod@*", check=False)
        shutil.rmtree(ROOT / DROPIN_DIRS[0], ignore_errors=True)
        for d in (ROOT / "etc/systemd/system").glob("echod@*.d"):
            shutil.rmtree(d)
        for f in (ROOT / "etc/echod").glob("*.conf"):
            if f.name != "echod.conf":
                f.unlink()
        self.settings = {"listen": [f"127.0.0.1:{self.port}"], "workers": 2, "drain_timeout": 2}
        self.write_config()
        self.dropin("echod.socket", "[Socket]\nListenStream=\n"
                    f"ListenStream=127.0.0.1:{self.socket_port}\nListenStream=/run/echod.sock\n")

    # -- observation
    def show(self, *props, unit="echod.service"):
        return self.box.show(unit, *props)

    def state(self, unit="echod.service"):
        s = self.show("ActiveState", "SubState", unit=unit)
        return f"{s['ActiveState']}/{s['SubState']}"

    def main_pid(self):
        return int(self.show("MainPID")["MainPID"])

    def host_pid(self):
        return self.box.host_pid(self.main_pid())

    def journal(self, *args, unit="echod.service"):
        """A unit's journal entries (echod's lines and systemd's about the
        unit) as dicts, oldest first."""
        self.box.run("journalctl", "--sync", check=False)
        out = self.box.run("journalctl", "-u", unit, "-o", "json", "--no-pager",
                           *args, check=False).stdout
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    def messages(self, *args, unit="echod.service"):
        return [e.get("MESSAGE", "") for e in self.journal(*args, unit=unit)]

    def log_text(self):
        return self.box.systemctl("status", "echod.service", "-n", "40", check=False).stdout

    def wait_journal(self, regex, since=0, timeout=STATE_TIMEOUT, unit="echod.service"):
        """Wait for a message matching regex among entries [since:]; returns its index."""
        rx = re.compile(regex)

        def find():
            for i, m in enumerate(self.messages(unit=unit)[since:]):
                if rx.search(m):
                    return since + i + 1
            return None
        try:
            return wait_until(f"journal line {regex!r}", find, timeout) - 1
        except AssertionError:
            raise AssertionError(f"no journal line {regex!r}:\n"
                                 + "\n".join(self.messages(unit=unit)[-40:]))

    def stop_service(self):
        """systemctl stop echod (it returns once echod exited); returns how
        the main process ended, as systemd says it at debug level
        ("code=exited, status=0/SUCCESS"): Result=success alone would also
        accept death by SIGTERM."""
        since = len(self.messages())
        self.box.systemctl("log-level", "debug")
        try:
            self.box.systemctl("stop", "echod.service")
            i = self.wait_journal(r"Main process exited, code=", since)
        finally:
            self.box.systemctl("log-level", "info")
        return re.search(r"code=\w+, status=[^ ,]+", self.messages()[i]).group(0)

    def client(self, port=None, timeout=10.0):
        return Client.connect(f"127.0.0.1:{port or self.port}", timeout=timeout)


@pytest.fixture(scope="module")
def system():
    for tool in ("debootstrap", "unshare", "nsenter", "pivot_root"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (make deps installs debootstrap; util-linux the rest)")
    with ct.RootLock(ROOT):
        how = ct.ensure_root(ROOT, log=str(ROOT) + ".debootstrap.log")
        print(how)
        # The operator's way in: install into the root (PREFIX=/usr/local).
        p = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(REPO), "install",
                            f"DESTDIR={ROOT}"], capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stdout + p.stderr
        for d in DROPIN_DIRS:
            shutil.rmtree(ROOT / d, ignore_errors=True)
        # Markers the sandbox must hide from the service.
        (ROOT / "tmp/echod-e2e-marker").write_text("host /tmp\n")
        (ROOT / "home/echod-e2e-marker").write_text("host /home\n")
        box = ct.Container(ROOT, console_log=str(ROOT) + ".console.log")
        state = box.boot()
        try:
            assert state == "running", f"system is {state}: " + box.systemctl(
                "--failed", check=False).stdout
            sysm = System(box, free_port(), free_port())
            sysm.reset()
            yield sysm
        finally:
            gone = box.shutdown()
        assert gone, "processes of the test system were still alive after its PID 1 was killed"


@pytest.fixture
def fresh(system):
    system.reset()
    return system


def test_units_are_installed_and_verify_inside(fresh):
    s = fresh
    out = s.box.systemctl("cat", "echod.service").stdout
    assert f"{UNITDIR}/echod.service" in out and "/usr/local/sbin/echod" in out
    # Verify with the system's own units (sysinit.target & co. are real here).
    p = s.box.run("systemd-analyze", "verify", "--man=no", "echod.service", "echod.socket", check=False)
    assert p.returncode == 0 and p.stdout + p.stderr == "", p.stdout + p.stderr


def test_start_becomes_active_only_after_ready(fresh):
    s = fresh
    s.box.systemctl("start", "echod.service")      # returns when the job is done
    assert s.state() == "active/running", s.log_text()
    # No retry: active means every listener serves.
    with s.client() as c:
        c.ping()
    msgs = s.messages()
    ready = [i for i, m in enumerate(msgs) if re.search(r"echod \S+ ready", m)]
    started = [i for i, m in enumerate(msgs) if m.startswith("Started echod.service")]
    assert ready and started, msgs
    # Type=notify: systemd declares it started only after echod said READY=1
    # (it logs "ready" just before); a Type=simple unit would be "Started" at fork.
    assert ready[0] < started[0], msgs
    assert s.show("Type")["Type"] == "notify"


def test_status_shows_the_status_line(fresh):
    s = fresh
    s.box.systemctl("start", "echod.service")
    text = s.show("StatusText")["StatusText"]
    assert "0 connections" in text and "2 workers" in text and f"127.0.0.1:{s.port}" in text, text
    clients = [s.client() for _ in range(2)]
    for c in clients:
        c.ping()
    # STATUS= is refreshed every few seconds.
    wait_until("STATUS with 2 connections", lambda: re.search(
        r"\b2 connections", s.show("StatusText")["StatusText"]), timeout=20)
    status = s.box.systemctl("status", "echod.service").stdout
    assert re.search(r'Status: "2 connections; 2 workers; listening on 127\.0\.0\.1:\d+"', status), status
    for c in clients:
        c.close()


def test_the_root_is_minimal(system):
    """What a debootstrap --variant=minbase with systemd and libconfig9 has:
    no procps (so no /bin/kill, which the reload once needed), no dbus."""
    assert ct.INCLUDE == "systemd,libconfig9"
    for tool in ("bin/kill", "usr/bin/kill", "usr/bin/ps", "usr/bin/pkill", "usr/bin/dbus-daemon"):
        assert not (ROOT / tool).exists(), f"{tool} in the test root: it is not minimal"
    status = (ROOT / "var/lib/dpkg/status").read_text()
    assert not re.search(r"^Package: procps$", status, re.M), "procps is installed in the test root"


def test_reload_applies_the_file_and_returns_to_active(fresh):
    s = fresh
    s.box.systemctl("start", "echod.service")
    pid = s.main_pid()
    since = len(s.messages())
    s.write_config(max_frame_size=100)
    s.box.systemctl("reload", "echod.service")
    s.wait_journal(r"configuration reloaded", since)
    wait_until("active/running after reload", lambda: s.state() == "active/running")
    assert s.main_pid() == pid, "reload restarted the service"
    assert s.show("ReloadResult")["ReloadResult"] == "success"
    with s.client() as c:
        c.send_frame("E", b"x" * 200)
        assert c.read_error().startswith("413"), "the reloaded max_frame_size is not in force"
    # A bad file: `systemctl reload` says so, echod keeps running unchanged.
    (ROOT / "etc/echod/echod.conf").write_text("no_such_key = 1;\n")
    p = s.box.systemctl("reload", "echod.service", check=False)
    assert p.returncode != 0, "reload of a bad file reported success"
    assert s.state() == "active/running" and s.main_pid() == pid
    with s.client() as c:
        c.ping()


def test_reloading_and_ready_drive_systemd_state(fresh):
    """With a bare SIGHUP (no ExecReload job), only echod's RELOADING=1 can
    put the unit in "reload", and only READY=1 bring it back: systemd logs
    its state changes at debug level."""
    s = fresh
    s.box.systemctl("start", "echod.service")
    s.box.systemctl("log-level", "debug")
    try:
        since = len(s.messages())
        s.box.systemctl("kill", "--kill-who=main", "-s", "HUP", "echod.service")
        i = s.wait_journal(r"Changed running -> reload", since)
        s.wait_journal(r"Changed reload -> running", i)
    finally:
        s.box.systemctl("log-level", "info")
    assert s.state() == "active/running"


def test_journal_has_echods_lines_with_priorities(fresh):
    s = fresh
    s.box.systemctl("start", "echod.service")
    since = len(s.messages())
    s.write_config(workers=3)          # restart-only: a reload warns about it
    s.box.systemctl("reload", "echod.service")
    s.wait_journal(r"workers changed", since)
    entries = [e for e in s.journal() if e.get("SYSLOG_IDENTIFIER") == "echod"]
    by_msg = {e["MESSAGE"]: e for e in entries}
    ready = [m for m in by_msg if re.search(r"echod \S+ ready", m)]
    warn = [m for m in by_msg if "workers changed" in m]
    assert ready and warn, list(by_msg)
    assert by_msg[ready[0]]["PRIORITY"] == "6"
    assert by_msg[warn[0]]["PRIORITY"] == "4"
    assert not any(m.startswith("<") for m in by_msg), "priority prefix left in the message"
    # journalctl -p warning: the warning, not the info lines.
    warnings = s.messages("-p", "warning")
    assert any("workers changed" in m for m in warnings)
    assert not any(re.search(r"echod \S+ ready", m) for m in warnings)


def test_stop_drains_and_exits_0(fresh):
    s = fresh
    s.box.systemctl("start", "echod.service")
    c = s.client()
    c.ping()
    since = len(s.messages())
    assert s.stop_service() == "code=exited, status=0/SUCCESS"
    # The idle connection is closed cleanly (FIN at a frame boundary, no reset).
    c.expect_eof(timeout=10)
    c.close()
    st = s.show("ActiveState", "Result")
    assert st["ActiveState"] == "inactive" and st["Result"] == "success", st
    s.wait_journal(r"SIGTERM: shutting down", since)
    s.wait_journal(r"^stopped$", since)


def test_socket_activation_starts_the_service(fresh):
    s = fresh
    s.box.systemctl("start", "echod.socket")
    assert s.state() == "inactive/dead"
    assert s.state("echod.socket") == "active/listening"
    with s.client(s.socket_port, timeout=30) as c:   # this connection starts echod
        c.ping()
        assert c.request("E", b"activated") == ("E", b"activated")
    assert s.state() == "active/running", s.log_text()
    unix = "unix:" + s.box.path("/run/echod.sock")
    with Client.connect(unix) as c:
        c.ping()
    msgs = "\n".join(s.messages())
    assert re.search(rf"listening on 127\.0\.0\.1:{s.socket_port} \(inherited", msgs), msgs
    assert re.search(r"listening on unix:/run/echod\.sock \(inherited", msgs), msgs
    # The config's own address is not bound: the inherited sockets replace it.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", s.port), timeout=2).close()
    # A reload keeps the inherited sockets.
    s.box.systemctl("reload", "echod.service")
    wait_until("active/running after reload", lambda: s.state() == "active/running")
    for addr in (f"127.0.0.1:{s.socket_port}", unix):
        with Client.connect(addr) as c:
            c.ping()


def wait_restart(s, old_pid, old_restarts):
    def restarted():
        st = s.show("MainPID", "NRestarts", "ActiveState", "SubState")
        return (int(st["NRestarts"]) > old_restarts and int(st["MainPID"]) not in (0, old_pid)
                and st["ActiveState"] == "active" and st["SubState"] == "running")
    wait_until("a restart by the watchdog", restarted, timeout=STATE_TIMEOUT + 4 * TEST_WATCHDOG_S)


def test_watchdog_restarts_a_stopped_echod(fresh):
    s = fresh
    s.dropin("echod.service", f"[Service]\nWatchdogSec={TEST_WATCHDOG_S}s\n")
    s.box.systemctl("start", "echod.service")
    pid, restarts = s.main_pid(), int(s.show("NRestarts")["NRestarts"])
    since = len(s.messages())
    os.kill(s.host_pid(), signal.SIGSTOP)
    wait_restart(s, pid, restarts)
    s.wait_journal(r"Watchdog timeout", since)
    with s.client() as c:
        c.ping()


def test_watchdog_restarts_echod_when_a_worker_hangs(fresh):
    s = fresh
    s.dropin("echod.service", f"[Service]\nWatchdogSec={TEST_WATCHDOG_S}s\n"
             "Environment=ECHOD_DEBUG_STALL_WORKER=1\n")
    s.box.systemctl("start", "echod.service")
    pid, restarts = s.main_pid(), int(s.show("NRestarts")["NRestarts"])
    since = len(s.messages())
    s.wait_journal(r"stalling on purpose", since)
    # The process is alive and the other threads fine; only the pings stop.
    s.wait_journal(r"not making progress", since)
    wait_restart(s, pid, restarts)
    s.wait_journal(r"Watchdog timeout", since)


def proc_status(pid):
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.split()
    return out


def in_service(pid, *argv):
    """Run a command (as root) in the service's mount namespace."""
    return subprocess.run(["nsenter", "-t", str(pid), "-m", *argv], capture_output=True,
                          text=True, timeout=30)


# systemd's range for DynamicUser= ids.
DYNAMIC_UIDS = range(61184, 65520)


def test_sandbox_is_in_force(fresh):
    s = fresh
    s.box.systemctl("start", "echod.service")
    pid = s.host_pid()
    st = proc_status(pid)
    # Its own user, allocated by systemd.
    uid = int(st["Uid"][0])
    assert st["Uid"] == [str(uid)] * 4 and uid in DYNAMIC_UIDS, st["Uid"]
    assert st["Gid"][0] == st["Gid"][1] and int(st["Gid"][0]) in DYNAMIC_UIDS, st["Gid"]
    assert s.show("DynamicUser")["DynamicUser"] == "yes"
    # No capabilities, not even in the bounding set; no way to gain any.
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(st[cap][0], 16) == 0, (cap, st[cap])
    assert st["NoNewPrivs"] == ["1"]
    assert st["Seccomp"] == ["2"], "no seccomp filter (SystemCallFilter=)"
    # PrivateUsers: a user namespace mapping only root and the service user.
    uid_map = Path(f"/proc/{pid}/uid_map").read_text().split()
    assert uid_map != ["0", "0", "4294967295"], uid_map
    # Read-only /usr and /etc (ProtectSystem=strict), writable runtime dir.
    for d in ("/usr", "/etc", "/var"):
        p = in_service(pid, "touch", f"{d}/echod-e2e-write")
        assert p.returncode != 0 and "Read-only file system" in p.stderr, (d, p.stderr)
    p = in_service(pid, "touch", "/run/echod/echod-e2e-write")
    assert p.returncode == 0, p.stderr
    in_service(pid, "rm", "-f", "/run/echod/echod-e2e-write")
    # Private /tmp, hidden /home (the root's markers are not seen).
    for marker in ("/tmp/echod-e2e-marker", "/home/echod-e2e-marker"):
        assert in_service(pid, "test", "-e", marker).returncode != 0, marker
    # PrivateDevices: a /dev of its own with no block devices.
    mounts = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
    dev = [m.split() for m in mounts if m.split()[4] == "/dev"]
    assert dev, "no private /dev mount"
    assert in_service(pid, "sh", "-c", "ls -l /dev | grep -q '^b'").returncode != 0
    # Kernel tunables (/sys) and cgroups read-only; /proc shows only its
    # own processes (ProtectProc=invisible, ProcSubset=pid: no /proc/sys).
    fields = {m.split()[4]: (m.split()[5], m.split(" - ")[1]) for m in mounts}
    for point in ("/sys", "/sys/fs/cgroup", "/home", "/root"):
        assert point in fields and "ro" in fields[point][0].split(","), (point, fields.get(point))
    assert re.search(r"hidepid=invisible.*subset=pid", fields["/proc"][1]), fields["/proc"]
    # And all that leaves it serving.
    with s.client() as c:
        c.ping()
    # systemd's own view of the loaded unit agrees with the offline score.
    out = s.box.run("systemd-analyze", "security", "echod.service", check=False).stdout
    m = re.search(r"Overall exposure level for echod\.service: (\d+\.\d)", out)
    assert m and float(m.group(1)) <= 1.5, out[-500:]
    print(f"systemd-analyze security (live, in the test system): {m.group(1)}")


def test_stop_under_load_still_exits_0(fresh):
    """Clients busy at `systemctl stop`: every one is answered or closed at
    a frame boundary, and the exit is clean."""
    s = fresh
    s.box.systemctl("start", "echod.service")
    clients = [s.client() for _ in range(4)]
    stop = threading.Event()
    errors = []

    def busy(c):
        try:
            while not stop.is_set():
                c.send_frame("E", b"load")
                t, payload = c.read_frame()
                if (t, payload) != ("E", b"load"):
                    errors.append((t, payload))
                    return
        except AssertionError as e:      # EOF at a frame boundary: expected at stop
            if "EOF after 0 of" not in str(e):
                errors.append(str(e))
        except OSError:
            pass                          # a send after the server closed

    threads = [threading.Thread(target=busy, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    time.sleep(0.5)
    status = s.stop_service()
    stop.set()
    for t in threads:
        t.join(10)
    for c in clients:
        c.close()
    assert not errors, errors
    assert status == "code=exited, status=0/SUCCESS"


# -- the template: one instance per configuration file

def write_instance_config(name, **settings):
    full = {"workers": 1, "drain_timeout": 2}
    full.update(settings)
    path = ROOT / f"etc/echod/{name}.conf"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(config_text(full))
    os.replace(tmp, path)


def instance_pid(s, name):
    return int(s.show("MainPID", unit=f"echod@{name}.service")["MainPID"])


def test_template_runs_two_instances_from_two_files(fresh):
    s = fresh
    ports = {"a": free_port(), "b": free_port()}
    for name, port in ports.items():
        write_instance_config(name, listen=[f"127.0.0.1:{port}"])
    s.box.systemctl("start", "echod@a.service", "echod@b.service")
    for name, port in ports.items():
        unit = f"echod@{name}.service"
        assert s.state(unit) == "active/running", s.box.systemctl("status", unit, check=False).stdout
        assert f"127.0.0.1:{port}" in s.show("StatusText", unit=unit)["StatusText"]
        with s.client(port) as c:
            assert c.request("E", name.encode()) == ("E", name.encode())
        msgs = "\n".join(s.messages(unit=unit))
        assert f"listening on 127.0.0.1:{port}" in msgs, msgs
        # Its own runtime directory.
        assert os.path.isdir(s.box.path(f"/run/echod-{name}"))
    pids = {n: instance_pid(s, n) for n in ports}
    assert pids["a"] != pids["b"]
    # One shared dynamic user (User=echod): what lets instances share a port.
    uids = {n: proc_status(s.box.host_pid(p))["Uid"] for n, p in pids.items()}
    assert uids["a"] == uids["b"] and int(uids["a"][0]) in DYNAMIC_UIDS, uids

    # Reload one: its file applies to it alone, through `echod -t` and the
    # shell's kill (the root has no /bin/kill).
    since = len(s.messages(unit="echod@a.service"))
    write_instance_config("a", listen=[f"127.0.0.1:{ports['a']}"], max_frame_size=100)
    s.box.systemctl("reload", "echod@a.service")
    s.wait_journal(r"configuration reloaded", since, unit="echod@a.service")
    wait_until("a active after reload", lambda: s.state("echod@a.service") == "active/running")
    assert s.show("ReloadResult", unit="echod@a.service")["ReloadResult"] == "success"
    with s.client(ports["a"]) as c:
        c.send_frame("E", b"x" * 200)
        assert c.read_error().startswith("413")
    with s.client(ports["b"]) as c:
        assert c.request("E", b"x" * 200) == ("E", b"x" * 200)
    # A bad file fails its instance's reload and nothing else.
    (ROOT / "etc/echod/b.conf").write_text("no_such_key = 1;\n")
    assert s.box.systemctl("reload", "echod@b.service", check=False).returncode != 0
    assert {n: instance_pid(s, n) for n in ports} == pids, "a reload restarted an instance"

    # Stop one: the other goes on.
    s.box.systemctl("stop", "echod@a.service")
    assert s.state("echod@a.service") == "inactive/dead"
    assert s.show("Result", unit="echod@a.service")["Result"] == "success"
    with s.client(ports["b"]) as c:
        c.ping()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", ports["a"]), timeout=2).close()


def test_template_instances_share_one_port_with_reuse_port(fresh):
    s = fresh
    port = free_port()
    for name in ("a", "b"):
        write_instance_config(name, listen=[f"127.0.0.1:{port}"], reuse_port=True)
    s.box.systemctl("start", "echod@a.service", "echod@b.service")
    for name in ("a", "b"):
        assert s.state(f"echod@{name}.service") == "active/running"
    clients = [s.client(port) for _ in range(32)]
    for c in clients:
        c.ping()
    # Each instance's STATUS line counts the connections it holds.
    def counts():
        out = []
        for name in ("a", "b"):
            m = re.match(r"(\d+) connections?", s.show("StatusText", unit=f"echod@{name}.service")["StatusText"])
            out.append(int(m.group(1)))
        return out if sum(out) == 32 else None
    held = wait_until("STATUS counting all 32 connections", counts, timeout=20)
    print(f"32 connections over echod@a and echod@b on one port: {held}")
    assert held[0] > 0 and held[1] > 0, held
    # Stopping one leaves the port served by the other.
    s.box.systemctl("stop", "echod@a.service")
    for _ in range(16):
        with s.client(port) as c:
            c.ping()
    for c in clients:
        c.close()


def test_template_socket_activation_starts_its_instance(fresh):
    s = fresh
    port = free_port()
    write_instance_config("c", listen=[f"127.0.0.1:{free_port()}"])
    s.dropin("echod@c.socket", f"[Socket]\nListenStream=\nListenStream=127.0.0.1:{port}\n"
             "ListenStream=/run/echod-c.sock\n")
    s.box.systemctl("start", "echod@c.socket")
    assert s.state("echod@c.service") == "inactive/dead"
    with s.client(port, timeout=30) as c:
        c.ping()
    assert s.state("echod@c.service") == "active/running"
    with Client.connect("unix:" + s.box.path("/run/echod-c.sock")) as c:
        c.ping()
    msgs = "\n".join(s.messages(unit="echod@c.service"))
    assert re.search(rf"listening on 127\.0\.0\.1:{port} \(inherited", msgs), msgs
    s.box.systemctl("reload", "echod@c.service")
    wait_until("c active after reload", lambda: s.state("echod@c.service") == "active/running")
    with s.client(port) as c:
        c.ping()
