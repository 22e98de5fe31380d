"""Helpers for the echoc and echobench tests: running the binaries with a
bound, and starting tests/integration/faulty_echo_server.py.

Every run has a timeout; every server started here is stopped by PID.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import REPO, bound

ECHOC = Path(os.environ.get("ECHOC", str(REPO / "build" / "echoc")))
ECHOBENCH = Path(os.environ.get("ECHOBENCH", str(REPO / "build" / "echobench")))
FAULTY = Path(__file__).resolve().parent / "faulty_echo_server.py"

# Longest any single client run may take before the test fails.
RUN_TIMEOUT = 60.0


def target_args(addr):
    """echod address text -> echoc/echobench target options."""
    if addr.startswith("unix:"):
        return ["-U", addr[len("unix:"):]]
    if addr.startswith("["):
        host, port = addr[1:].split("]:")
        return ["-H", host, "-p", port]
    host, port = addr.rsplit(":", 1)
    return ["-H", host, "-p", port]


def run(binary, args, stdin=b"", timeout=None):
    """Run a client binary; returns the CompletedProcess (bytes output)."""
    if not os.access(binary, os.X_OK):
        raise AssertionError(f"{binary} is not built (run make)")
    return subprocess.run([str(binary)] + [str(a) for a in args], input=stdin,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout or bound(RUN_TIMEOUT))


def echoc(addr, *args, stdin=b"", timeout=None):
    return run(ECHOC, target_args(addr) + list(args), stdin=stdin, timeout=timeout)


def echobench_json(addr, *args, expect_rc=0, timeout=None):
    """Run echobench --json; check its exit code; return the parsed object."""
    p = run(ECHOBENCH, target_args(addr) + ["--json", "--no-progress"] + list(args),
            timeout=timeout)
    out = p.stdout.decode()
    assert p.returncode == expect_rc, (
        f"echobench exited {p.returncode}, expected {expect_rc}\n"
        f"stdout: {out}\nstderr: {p.stderr.decode()}")
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, f"--json must print exactly one line, got: {out!r}"
    return json.loads(lines[0])


class FaultyServer:
    """faulty_echo_server.py in a child process; .addr is "127.0.0.1:PORT"."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, str(FAULTY)] + list(args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("port "):
            self.stop()
            raise AssertionError(f"fixture server did not start: {line!r} "
                                 f"{self.proc.stderr.read().decode()}")
        self.addr = f"127.0.0.1:{int(line.split()[1])}"

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(bound(10))
        self.proc.stdout.close()
        self.proc.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
