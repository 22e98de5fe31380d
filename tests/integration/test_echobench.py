"""echobench against a real echod and against deliberately wrong servers:
its counts agree with the server's STATS, --json has the documented fields,
-R holds the asked rate, --oneshot and --proto raw work, corrupted replies
are counted as mismatches and never as successes, a stalling server shows as
a latency tail (from intended send times in open loop), error frames are
counted by code, and it holds 10,000 connections.
"""

import csv
import json
import re
import signal
import subprocess

import pytest

from client_tools import ECHOBENCH, FaultyServer, echobench_json, run, target_args
from conftest import bound, free_port, ipv6_available, raise_nofile

DOCUMENTED_FIELDS = {
    "tool": str, "version": str, "target": str, "proto": str, "mode": str, "oneshot": bool,
    "threads": int, "connections": int, "pipeline": int, "size_min": int, "size_max": int,
    "ping_ratio": float, "warmup_s": float, "duration_s": float, "requests": int,
    "requests_per_s": float, "payload_bytes": int, "mb_per_s": float, "latency_us": dict,
    "errors": dict, "totals": dict, "stalled": bool, "client_cpu_s": float,
    "client_wall_s": float,
    # null unless they apply:
    "rate_target": (float, type(None)), "connections_per_s": (float, type(None)),
    "connect_us": (dict, type(None)), "send_lag_us": (dict, type(None)),
}
LATENCY_FIELDS = ("count", "min", "p50", "p90", "p99", "p99_9", "p99_99", "max", "mean",
                  "stdev")
ERROR_FIELDS = ("total", "connect_refused", "connect_timeout", "connect_other",
                "ports_exhausted", "reset", "closed", "timeout", "mismatch", "error_frames")
TOTALS_FIELDS = ("issued", "ok", "bytes_out", "bytes_in", "connections_opened",
                 "connections_max_open")
US_PER_MS = 1000.0


def check_latency(lat):
    for k in LATENCY_FIELDS:
        assert isinstance(lat[k], (int, float)), k
    order = [lat[k] for k in ("min", "p50", "p90", "p99", "p99_9", "p99_99", "max")]
    assert order == sorted(order), lat


def test_request_counts_agree_with_server_stats(echod):
    before = echod.stats()
    r = echobench_json(echod.addr, "-t", "2", "-c", "8", "-P", "4", "-n", "20000",
                       "-s", "0-300", "--mix", "3:1")
    after = echod.stats()
    assert r["errors"]["total"] == 0, r["errors"]
    assert r["requests"] == 20000
    assert r["totals"]["issued"] == r["totals"]["ok"] == 20000
    assert r["latency_us"]["count"] == 20000
    # The second STATS counts itself; its own 5 bytes may or may not be in it.
    assert after["requests_total"] - before["requests_total"] == 20000 + 1
    extra = after["bytes_in"] - before["bytes_in"] - r["totals"]["bytes_out"]
    assert 0 <= extra <= 5, extra
    assert after["connections_total"] - before["connections_total"] == 8 + 1
    # A quarter PING (no payload): ECHO bytes are below the all-ECHO figure.
    assert 0 < r["payload_bytes"] < 20000 * 300


def test_json_has_the_documented_fields(echod):
    r = echobench_json(echod.addr, "-c", "4", "-n", "2000")
    for key, typ in DOCUMENTED_FIELDS.items():
        assert key in r, key
        assert isinstance(r[key], typ), (key, r[key])
    for k in ERROR_FIELDS:
        assert k in r["errors"], k
    for k in TOTALS_FIELDS:
        assert isinstance(r["totals"][k], int), k
    check_latency(r["latency_us"])
    assert r["latency_us"]["count"] == r["requests"] == 2000
    assert r["latency_us"]["min"] > 0
    assert (r["tool"], r["proto"], r["mode"], r["oneshot"]) == ("echobench", "framed",
                                                                "closed", False)
    assert r["rate_target"] is None and r["connect_us"] is None
    assert r["target"] == echod.addr


def test_open_loop_holds_the_asked_rate(echod):
    rate = 2000
    r = echobench_json(echod.addr, "-c", "8", "-R", str(rate), "-d", "3", "-w", "0.5")
    assert r["mode"] == "open" and r["rate_target"] == rate
    check_latency(r["send_lag_us"])
    assert r["errors"]["total"] == 0
    assert abs(r["requests_per_s"] - rate) <= 0.05 * rate, r["requests_per_s"]
    assert abs(r["requests"] - 3 * rate) <= 0.05 * 3 * rate, r["requests"]


def test_warmup_is_not_counted(echod):
    r = echobench_json(echod.addr, "-c", "4", "-d", "1", "-w", "1")
    assert r["duration_s"] == pytest.approx(1.0)
    assert r["warmup_s"] == pytest.approx(1.0)
    assert 0 < r["requests"] < r["totals"]["ok"]


def test_oneshot_opens_a_connection_per_request(echod):
    before = echod.stats()
    r = echobench_json(echod.addr, "--oneshot", "-c", "4", "-n", "300")
    after = echod.stats()
    assert r["oneshot"] is True
    assert r["errors"]["total"] == 0, r["errors"]
    assert r["requests"] == 300
    assert r["connections_per_s"] > 0
    assert r["connect_us"]["count"] == 300
    check_latency(r["connect_us"])
    assert r["totals"]["connections_opened"] == 300
    assert after["connections_total"] - before["connections_total"] == 300 + 1
    assert after["requests_total"] - before["requests_total"] == 300 + 1


def test_raw_proto_against_a_plain_echo_server():
    with FaultyServer("--proto", "raw") as srv:
        r = echobench_json(srv.addr, "--proto", "raw", "-c", "4", "-P", "8", "-s", "1-3000",
                           "-n", "3000")
        assert r["proto"] == "raw"
        assert r["errors"]["total"] == 0, r["errors"]
        assert r["requests"] == 3000
        r = echobench_json(srv.addr, "--proto", "raw", "--oneshot", "-c", "2", "-n", "100")
        assert r["errors"]["total"] == 0, r["errors"]
        assert r["requests"] == 100


def test_corrupted_replies_are_mismatches_not_successes():
    # Every 50th reply has one byte flipped: 20 of 1000.
    with FaultyServer("--corrupt-every", "50") as srv:
        r = echobench_json(srv.addr, "-c", "2", "-n", "1000", "-s", "64", expect_rc=1)
    assert r["errors"]["mismatch"] == 20, r["errors"]
    assert r["errors"]["total"] == 20
    assert r["requests"] == 980
    assert r["totals"]["issued"] == 1000


def test_corrupted_raw_echo_is_caught():
    with FaultyServer("--proto", "raw", "--corrupt-every", "10") as srv:
        r = echobench_json(srv.addr, "--proto", "raw", "-c", "1", "-n", "200", expect_rc=1)
    assert r["errors"]["mismatch"] >= 1, r["errors"]
    assert r["requests"] + r["errors"]["total"] <= 200


def test_raw_pipelined_runs_checked_across_pattern_wraps():
    # Fixed sizes take the batch paths (one memcmp per run of replies); 1000 B
    # payloads wrap the pattern every 16 requests.
    with FaultyServer("--proto", "raw") as srv:
        r = echobench_json(srv.addr, "--proto", "raw", "-c", "3", "-P", "16", "-s", "1000",
                           "-n", "6000")
        assert r["errors"]["total"] == 0, r["errors"]
        assert r["requests"] == r["totals"]["issued"] == 6000
        assert r["payload_bytes"] == 6000 * 1000
    with FaultyServer("--proto", "raw", "--corrupt-every", "7") as srv:
        r = echobench_json(srv.addr, "--proto", "raw", "-c", "2", "-P", "16", "-s", "64",
                           "-n", "4000", expect_rc=1)
    assert r["errors"]["mismatch"] >= 1, r["errors"]
    # Every request is either a success or a mismatch, never both, never lost.
    assert r["requests"] + r["errors"]["total"] == r["totals"]["issued"] == 4000


def test_stalling_server_shows_a_latency_tail():
    stall_ms = 500
    with FaultyServer("--stall-every", "100", "--stall-ms", str(stall_ms)) as srv:
        closed = echobench_json(srv.addr, "-c", "1", "-n", "300")
        opened = echobench_json(srv.addr, "-c", "1", "-R", "100", "-d", "3")
    for r in (closed, opened):
        assert r["errors"]["total"] == 0, r["errors"]
        assert r["latency_us"]["max"] >= 0.9 * stall_ms * US_PER_MS, r["latency_us"]
    # Open loop counts from the intended send time: every request due during
    # a stall waits for it, so a stall shows far beyond one sample.
    assert opened["latency_us"]["p90"] >= 100 * US_PER_MS, opened["latency_us"]
    assert closed["latency_us"]["p90"] < opened["latency_us"]["p90"]


def test_error_frames_are_counted_by_code(echod_factory):
    d = echod_factory(max_frame_size=100)
    r = echobench_json(d.addr, "-c", "1", "-n", "20", "-s", "200", expect_rc=1)
    assert r["requests"] == 0
    assert r["errors"]["error_frames"] == {"413": 20}, r["errors"]
    assert r["errors"]["total"] == 20


def test_connection_refused_stops_and_exits_3():
    port = free_port()
    p = run(ECHOBENCH, ["-p", str(port), "-n", "10", "-T", "1", "--json", "--no-progress"],
            timeout=bound(20))
    assert p.returncode == 3, p.stderr
    r = json.loads(p.stdout)
    assert r["errors"]["connect_refused"] >= 1
    assert r["requests"] == 0
    assert r["stalled"] is True


def test_unix_socket_target(echod_factory):
    d = echod_factory(listen=["unix"])
    r = echobench_json(d.addr, "-c", "4", "-P", "4", "-n", "2000")
    assert r["errors"]["total"] == 0 and r["requests"] == 2000
    assert r["target"] == d.addr


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
def test_ipv6_target(echod_factory):
    d = echod_factory(listen=["[::1]"])
    r = echobench_json(d.addr, "-c", "2", "-n", "500")
    assert r["errors"]["total"] == 0 and r["requests"] == 500


def test_ten_thousand_connections(echod_factory):
    conns = 10000
    if not raise_nofile(conns + 2000):
        pytest.skip("the descriptor limit cannot be raised for 10,000 connections")
    d = echod_factory(max_connections=conns + 100, backlog=4096)
    before = d.stats()
    # Held long enough for all of them to be open even on a loaded machine.
    r = echobench_json(d.addr, "--idle", "-t", "2", "-c", str(conns), "-d", str(bound(3)),
                       timeout=bound(120))
    assert r["mode"] == "idle"
    assert r["errors"]["total"] == 0, r["errors"]
    assert r["totals"]["connections_max_open"] == conns
    after = d.stats()
    assert after["connections_total"] - before["connections_total"] == conns + 1


def test_latency_csv(echod, tmp_path):
    path = tmp_path / "lat.csv"
    echobench_json(echod.addr, "-c", "2", "-n", "3000", "--latency-csv", str(path))
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["percentile", "latency_us", "inverse_tail"]
    pcts = [float(r[0]) for r in rows[1:]]
    lats = [float(r[1]) for r in rows[1:]]
    assert pcts[0] == 0 and pcts[-1] == 100
    assert pcts == sorted(pcts) and lats == sorted(lats)
    assert len(rows) > 20


def test_progress_lines_on_request(echod):
    p = run(ECHOBENCH, target_args(echod.addr) + ["-c", "2", "-d", "2.5", "--progress"])
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stderr.decode().splitlines()
             if re.search(r"req/s\s+p99 [0-9.]+ us\s+errors 0", ln)]
    assert len(lines) >= 2, p.stderr


def test_text_report(echod):
    p = run(ECHOBENCH, target_args(echod.addr) + ["-c", "2", "-n", "500", "--no-progress"])
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert re.search(r"requests\s+500 ok", out), out
    assert "p99.9" in out and "errors        0" in out


def test_usage_errors_exit_2():
    for args in (["-s", "5-1"], ["--proto", "raw", "--mix", "1:1"], ["-d", "1", "-n", "5"],
                 ["--idle", "-R", "5"], ["-c", "0"], ["--proto", "udp"], ["-R", "fast"],
                 ["stray"]):
        p = run(ECHOBENCH, args, timeout=bound(10))
        assert p.returncode == 2, (args, p.returncode, p.stderr)


def test_help_documents_schema_and_exit_codes():
    p = run(ECHOBENCH, ["-h"], timeout=bound(10))
    assert p.returncode == 0
    text = p.stdout.decode()
    for word in ("--json", "requests_per_s", "latency_us", "p99_99", "exit status",
                 "--oneshot", "--proto", "-R RATE"):
        assert word in text, word


def test_bench_stops_on_sigint(echod):
    proc = subprocess.Popen([str(ECHOBENCH)] + target_args(echod.addr) +
                            ["-c", "2", "-d", "60", "--json", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        echod.wait_stats(lambda st: st["requests_total"] > 1000, what="load")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=bound(15))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    r = json.loads(out)
    assert proc.returncode == 0, err
    assert r["requests"] > 0 and r["errors"]["total"] == 0
    assert r["duration_s"] < 60
