"""The `user` key: started as root, echod binds, then becomes that user for
good (every uid and gid, no supplementary group, no capability,
no_new_privs) and still serves on what it bound; started as root without
`user` it warns; an unknown user, or a switch asked of a non-root echod,
stops the start with an error. Root only (skipped otherwise)."""

import os
import pwd
import re
import shutil
import subprocess

import pytest

from conftest import ECHOD, bound

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="privilege drop needs root")

# An unprivileged account every Debian system has.
USER = "nobody"


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def test_drops_to_the_configured_user_for_good(echod_factory):
    pw = pwd.getpwnam(USER)
    d = echod_factory(listen=["127.0.0.1", "unix"], user=USER)
    st = proc_status(d.pid)
    assert st["Uid"] == [str(pw.pw_uid)] * 4, st["Uid"]         # real, effective, saved, fs
    assert st["Gid"] == [str(pw.pw_gid)] * 4, st["Gid"]
    assert st["Groups"] in ([], [str(pw.pw_gid)]), st["Groups"]
    for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(st[cap][0], 16) == 0, (cap, st[cap])
    assert st["NoNewPrivs"] == ["1"]
    # Every thread, not just the main one.
    for tid in os.listdir(f"/proc/{d.pid}/task"):
        assert proc_status(f"{d.pid}/task/{tid}")["Uid"] == [str(pw.pw_uid)] * 4, tid
    assert f"running as user '{USER}'" in d.log()
    # The sockets bound as root still serve.
    for addr in d.listen:
        with d.connect(addr) as c:
            c.ping()


def test_root_without_user_warns_loudly(echod_factory):
    d = echod_factory()
    d.wait_log(r"<4>RUNNING AS ROOT")


def test_unknown_user_stops_the_start(echod_factory):
    d = echod_factory(user="no-such-user-echod", wait=False)
    d.expected_returncode = 1
    assert d.wait_exit(bound(10)) == 1
    # The config check already knows (FILE:LINE), or the drop does.
    assert re.search(r"no such user|does not exist", d.log()), d.log()
    assert "no-such-user-echod" in d.log(), d.log()


SETPRIV = shutil.which("setpriv")


@pytest.mark.skipif(SETPRIV is None, reason="setpriv (util-linux) not installed")
def test_a_non_root_echod_cannot_switch_users(echod_factory):
    pw = pwd.getpwnam(USER)
    d = echod_factory(user="root", wait=False, argv=["true"])   # only for its directory
    d.proc.wait()
    os.chmod(d.dir, 0o755)
    d.write_config()
    p = subprocess.run([SETPRIV, f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups",
                        str(ECHOD), "-c", str(d.config_path)],
                       capture_output=True, text=True, timeout=bound(10))
    assert p.returncode == 1, p.stderr
    assert "needs root" in p.stderr, p.stderr
