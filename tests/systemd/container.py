"""A throwaway Debian 12 system run by its own, real systemd, for the
end-to-end tests of echod's units.

The root file system is made once with debootstrap (minbase + systemd and
libconfig9, nothing else: the smallest system echod's units must work on, with
no procps and so no /bin/kill, no dbus) and cached under build/systemd-root;
later runs reuse it.
Booting it:

    setsid unshare --fork --pid --mount sh -c '
        mount --make-rprivate /; mount --bind ROOT ROOT; mount -t proc proc ROOT/proc
        cd ROOT; pivot_root . .oldroot; cd /; umount -l /.oldroot
        exec env container=other /lib/systemd/systemd --system'

pivot_root rather than chroot: the kernel refuses new user namespaces to a
chrooted process, and echod.service asks for one (PrivateUsers=yes), so a
chroot would make the hardened unit fail where a real machine runs it. The
system shares the host's network (tests reach echod on 127.0.0.1) but has its
own PID and mount namespaces, so it sees nothing of the host's processes and
its mounts vanish with it. It is stopped by killing that systemd (PID 1 of the
namespace, so the kernel kills everything in it).

Only one system runs on a root at a time: a lock file serializes concurrent
test runs. Everything is bounded in time. Needs root, debootstrap, unshare,
nsenter and pivot_root (util-linux).

For a shell in it, by hand:   /usr/bin/python3 tests/systemd/container.py shell
"""

import errno
import fcntl
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_ROOT = REPO / "build" / "systemd-root"
SUITE = "bookworm"
# Only what echod needs: a unit that relies on anything more (procps's
# /bin/kill, once) must fail here as it would on a minimal image.
INCLUDE = "systemd,libconfig9"
# Marks a finished root; holds the debootstrap arguments it was made with.
STAMP = ".echod-test-root"
FALLBACK_MIRROR = "http://deb.debian.org/debian"

# debootstrap downloads ~60 MB and unpacks ~250 MB: half a minute here, many
# minutes on a slow mirror. Generous, and paid once (the root is cached).
DEBOOTSTRAP_TIMEOUT = float(os.environ.get("ECHOD_DEBOOTSTRAP_TIMEOUT", 1800))
# Waiting for another test run that holds the root.
LOCK_TIMEOUT = float(os.environ.get("ECHOD_SYSTEMD_LOCK_TIMEOUT", 900))
# From exec of systemd to "running" (or "degraded"): a few seconds normally.
BOOT_TIMEOUT = 90.0
# Any single command run inside.
COMMAND_TIMEOUT = 60.0


class ContainerError(Exception):
    pass


def apt_mirror():
    """The Debian mirror of this machine's apt sources (deb822 or one-line),
    else deb.debian.org. ECHOD_TEST_MIRROR overrides."""
    if os.environ.get("ECHOD_TEST_MIRROR"):
        return os.environ["ECHOD_TEST_MIRROR"]
    files = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*"))
    for name in files:
        try:
            text = Path(name).read_text(errors="replace")
        except OSError:
            continue
        # one-line format: deb [opts] URI SUITE COMPONENTS
        for m in re.finditer(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", text, re.M):
            if m.group(2) == SUITE and not m.group(1).rstrip("/").endswith("-security"):
                return m.group(1)
        # deb822: stanzas with URIs: and Suites:
        for stanza in re.split(r"\n\s*\n", text):
            uris = re.search(r"^URIs:\s*(.+)$", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites and SUITE in suites.group(1).split():
                uri = uris.group(1).split()[0]
                if not uri.rstrip("/").endswith("-security"):
                    return uri
    return FALLBACK_MIRROR


class RootLock:
    """An exclusive lock on the root, held while it is made or booted."""

    def __init__(self, root, timeout=LOCK_TIMEOUT):
        self.path = Path(str(root) + ".lock")
        self.timeout = timeout
        self.fd = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
            if time.monotonic() > deadline:
                os.close(self.fd)
                raise ContainerError(f"{self.path} still locked by another run after "
                                     f"{self.timeout:.0f} s")
            time.sleep(1)

    def __exit__(self, *exc):
        os.close(self.fd)


def ensure_root(root=DEFAULT_ROOT, log=None):
    """Make the root with debootstrap unless a finished one is cached.
    Call with the RootLock held. Returns how it went, as text."""
    root = Path(root)
    want = f"{SUITE} --variant=minbase --include={INCLUDE}\n"
    stamp = root / STAMP
    if stamp.exists() and stamp.read_text() == want:
        return f"cached root {root}"
    # A half-made root (interrupted run) or one made with other packages.
    for stale in [root] + [Path(p) for p in glob.glob(str(root) + ".tmp-*")]:
        if stale.exists():
            shutil.rmtree(stale)
    tmp = Path(f"{root}.tmp-{os.getpid()}")
    mirror = apt_mirror()
    argv = ["debootstrap", "--variant=minbase", f"--include={INCLUDE}", SUITE, str(tmp), mirror]
    out = open(log, "wb") if log else subprocess.DEVNULL
    started = time.monotonic()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            rc = proc.wait(DEBOOTSTRAP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise ContainerError(f"debootstrap from {mirror} took over {DEBOOTSTRAP_TIMEOUT:.0f} s "
                                 f"(ECHOD_DEBOOTSTRAP_TIMEOUT); log: {log}")
        if rc != 0:
            raise ContainerError(f"debootstrap from {mirror} failed ({rc}); log: {log}")
    finally:
        if log:
            out.close()
    (tmp / ".oldroot").mkdir(exist_ok=True)
    (tmp / STAMP).write_text(want)
    os.rename(tmp, root)
    return f"made {root} from {mirror} in {time.monotonic() - started:.0f} s"


def _start_time(pid):
    """A process's start time (clock ticks since boot): with the PID, it
    names one process for good, even after the PID is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _children(pid):
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _comm(pid):
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


class Container:
    """A booted system on root; use as a context manager (shuts down at exit)."""

    def __init__(self, root=DEFAULT_ROOT, console_log=None):
        self.root = Path(root)
        self.console_log = console_log
        # PID 1 of the running system, so a run that was killed before it
        # could shut its system down is cleaned up by the next one.
        self.pidfile = Path(str(root) + ".pid")
        self.unshare = None     # the unshare process (our child)
        self.pid1 = None        # its systemd, as seen from the host
        self.pidns = None

    # -- life cycle

    def kill_stale(self):
        """Kill the system a killed run left behind (recorded in the pid
        file; the lock guarantees no live run owns it)."""
        try:
            pid, started = self.pidfile.read_text().split()
        except (OSError, ValueError):
            return
        if _start_time(int(pid)) == started and _comm(int(pid)) == "systemd":
            os.kill(int(pid), signal.SIGKILL)
        self.pidfile.unlink()

    def boot(self, timeout=BOOT_TIMEOUT):
        self.kill_stale()
        # Volatile journal: each boot's log starts empty, so a test never
        # reads the previous run's lines.
        shutil.rmtree(self.root / "var/log/journal", ignore_errors=True)
        (self.root / ".oldroot").mkdir(exist_ok=True)
        r = str(self.root)
        script = (f"mount --make-rprivate / && mount --bind '{r}' '{r}' && "
                  f"mount -t proc proc '{r}/proc' && cd '{r}' && pivot_root . .oldroot && "
                  "cd / && umount -l /.oldroot && "
                  "exec env -i container=other PATH=/usr/sbin:/usr/bin:/sbin:/bin "
                  "/lib/systemd/systemd --system")
        out = open(self.console_log, "wb") if self.console_log else subprocess.DEVNULL
        try:
            self.unshare = subprocess.Popen(["unshare", "--fork", "--pid", "--mount", "sh", "-c", script],
                                            stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            if self.console_log:
                out.close()
        deadline = time.monotonic() + timeout
        try:
            while self.pid1 is None:
                for c in _children(self.unshare.pid):
                    if _comm(c) == "systemd":
                        self.pid1 = c
                if self.pid1 is None:
                    self._check_alive()
                    if time.monotonic() > deadline:
                        raise ContainerError("systemd did not start")
                    time.sleep(0.05)
            self.pidns = os.readlink(f"/proc/{self.pid1}/ns/pid")
            self.pidfile.write_text(f"{self.pid1} {_start_time(self.pid1)}\n")
            while True:
                state = self.run("systemctl", "is-system-running", check=False, timeout=10).stdout.strip()
                if state in ("running", "degraded"):
                    return state
                self._check_alive()
                if time.monotonic() > deadline:
                    raise ContainerError(f"system still '{state}' after {timeout:.0f} s")
                time.sleep(0.2)
        except BaseException:
            self.shutdown()
            raise

    def _check_alive(self):
        if self.unshare.poll() is not None:
            raise ContainerError(f"the namespace exited ({self.unshare.returncode}); "
                                 f"console: {self.console_log}")

    def shutdown(self, timeout=30.0):
        """Kill the namespace's PID 1 (the kernel then kills every process in
        it) and wait until none is left. Returns True when all are gone."""
        if self.pid1 is not None:
            try:
                os.kill(self.pid1, signal.SIGKILL)
            except ProcessLookupError:
                pass
        gone = True
        if self.unshare is not None:
            try:
                self.unshare.wait(timeout)
            except subprocess.TimeoutExpired:
                self.unshare.kill()
                self.unshare.wait()
        if self.pidns is not None:
            deadline = time.monotonic() + timeout
            while self.processes():
                if time.monotonic() > deadline:
                    gone = False
                    break
                time.sleep(0.05)
        self.pid1 = None
        if gone:
            self.pidfile.unlink(missing_ok=True)
        return gone

    def __enter__(self):
        self.boot()
        return self

    def __exit__(self, *exc):
        self.shutdown()

    # -- inside

    def run(self, *argv, check=True, timeout=COMMAND_TIMEOUT, input=None):
        """Run a command inside (its mount and PID namespaces, its root);
        returns the CompletedProcess (text). check=True fails on non-zero."""
        cmd = ["nsenter", "-t", str(self.pid1), "-m", "-p", "-r", "-w", *argv]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise ContainerError(f"{' '.join(argv)} -> {p.returncode}\n{p.stdout}{p.stderr}")
        return p

    def systemctl(self, *args, check=True, timeout=COMMAND_TIMEOUT):
        return self.run("systemctl", "--no-pager", *args, check=check, timeout=timeout)

    def show(self, unit, *props):
        """systemctl show as a dict."""
        args = [f"-p{p}" for p in props]
        out = self.systemctl("show", unit, *args).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def path(self, inside):
        """A path inside, as the host reaches it (through /proc/PID1/root:
        the system's /run, for one, is a tmpfs only it sees)."""
        return f"/proc/{self.pid1}/root{inside}"

    def host_pid(self, pid):
        """The host's PID of the process that is `pid` inside."""
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                if os.readlink(f"/proc/{d}/ns/pid") != self.pidns:
                    continue
                for line in Path(f"/proc/{d}/status").read_text().splitlines():
                    if line.startswith("NSpid:") and int(line.split()[-1]) == pid:
                        return int(d)
            except OSError:
                continue
        raise ContainerError(f"no process {pid} inside")

    def processes(self):
        """Host PIDs of the processes still in the namespace."""
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    if os.readlink(f"/proc/{d}/ns/pid") == self.pidns:
                        out.append(int(d))
                except OSError:
                    pass
        return out


def main(argv):
    if len(argv) != 2 or argv[1] not in ("shell", "make-root"):
        print(__doc__)
        print("usage: container.py shell|make-root")
        return 2
    with RootLock(DEFAULT_ROOT):
        print(ensure_root(DEFAULT_ROOT, log=str(DEFAULT_ROOT) + ".debootstrap.log"))
        if argv[1] == "make-root":
            return 0
        with Container(DEFAULT_ROOT, console_log=str(DEFAULT_ROOT) + ".console.log") as c:
            print(f"running; PID 1 is host PID {c.pid1}. Inside:\n"
                  f"    nsenter -t {c.pid1} -m -p -r -w bash\n"
                  "Ctrl-C here shuts it down.")
            try:
                c.unshare.wait()
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
