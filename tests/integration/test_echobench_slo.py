"""echobench's --slo exit status (0 met, 4 missed, 2 for a bad spec), the
staircase (-R START:END:STEP and --steps: a line per step, the knee, the
stop at the first missed step), and the words it prints about itself (client
CPU per request, fewer connections than asked, a rate it could not reach).

Verdicts are made deliberately certain (p99 below 1 ns cannot be met; a
stalling server cannot meet a 100 ms p99), never dependent on the machine's
speed.
"""

import json

from client_tools import ECHOBENCH, FaultyServer, echobench_json, run, target_args
from conftest import bound, free_port


def test_slo_met_exits_0(echod):
    r = echobench_json(echod.addr, "-c", "4", "-n", "2000",
                       "--slo", "p99<10s,p99.9<=10s,mean<10s,max<60s,errors<0.1%,errors<=0,"
                                "rate>=1")
    assert r["slo"]["met"] is True
    assert [t["met"] for t in r["slo"]["terms"]] == [True] * 7
    assert r["slo"]["terms"][0]["term"] == "p99<10s"
    assert r["slo"]["terms"][0]["value"] == r["latency_us"]["p99"]


def test_slo_missed_exits_4(echod):
    r = echobench_json(echod.addr, "-c", "2", "-n", "500", "--slo", "p99<1ns,errors<1",
                       expect_rc=4)
    assert r["slo"]["met"] is False
    assert [t["met"] for t in r["slo"]["terms"]] == [False, True]
    assert r["errors"]["total"] == 0    # the requests were fine: only the SLO failed


def test_slo_errors_share_decides_not_the_errors():
    # 1 reply in 50 corrupted: 2% errors. Without --slo that is exit 1; with an
    # SLO that tolerates it, 0; with one that does not, 4.
    with FaultyServer("--corrupt-every", "50") as srv:
        r = echobench_json(srv.addr, "-c", "1", "-n", "1000", expect_rc=1)
        assert r["errors"]["mismatch"] == 20
        r = echobench_json(srv.addr, "-c", "1", "-n", "1000", "--slo", "errors<3%")
        assert abs(r["slo"]["terms"][0]["value"] - 2.0) < 1e-9
        r = echobench_json(srv.addr, "-c", "1", "-n", "1000", "--slo", "errors<1%",
                           expect_rc=4)


def test_slo_rate_relative_to_target(echod):
    r = echobench_json(echod.addr, "-c", "4", "-R", "500", "-d", "1", "--slo", "rate>=90%")
    assert r["slo"]["met"] is True
    assert 90 <= r["slo"]["terms"][0]["value"] <= 110
    # A relative rate needs -R: without it the term cannot be met.
    r = echobench_json(echod.addr, "-c", "2", "-n", "100", "--slo", "rate>=90%", expect_rc=4)
    assert r["slo"]["terms"][0]["value"] is None


def test_slo_usage_errors_exit_2():
    for spec in ("p99", "p99<", "p100<1ms", "p99<1parsec", "latency<1ms", "errors<1x",
                 "p99<1ms,"):
        p = run(ECHOBENCH, ["--slo", spec], timeout=bound(10))
        assert p.returncode == 2, (spec, p.returncode, p.stderr)


def test_staircase_reports_each_step_and_the_knee(echod):
    r = echobench_json(echod.addr, "-c", "4", "-R", "200:600:200", "-d", "0.5",
                       "--slo", "p99<10s,errors<=0")
    assert [s["rate_target"] for s in r["steps"]] == [200, 400, 600]
    assert all(s["met"] for s in r["steps"])
    for s in r["steps"]:
        assert abs(s["requests"] - s["rate_target"] / 2) <= 0.1 * s["rate_target"], s
    assert r["knee_rate"] == 600
    assert r["rate_target"] == 600      # the top-level figures are the last step's


def test_staircase_stops_at_the_first_missed_step():
    # Every 20th reply stalls 300 ms: each step misses p99<100ms.
    with FaultyServer("--stall-every", "20", "--stall-ms", "300") as srv:
        r = echobench_json(srv.addr, "-c", "2", "--steps", "100,200,300", "-d", "0.5",
                           "--slo", "p99<100ms", expect_rc=4)
    assert len(r["steps"]) == 1 and r["steps"][0]["met"] is False
    assert r["knee_rate"] is None


def test_staircase_text_has_a_line_per_step(echod):
    p = run(ECHOBENCH, target_args(echod.addr) +
            ["-c", "2", "--steps", "100,300", "-d", "0.3", "--no-progress"])
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().splitlines()
    assert lines[0].split()[:2] == ["target/s", "achieved/s"]
    assert lines[1].split()[0] == "100" and lines[2].split()[0] == "300"
    assert "knee" in p.stdout.decode()


def test_staircase_usage_errors():
    for args in (["-R", "10:5:1"], ["-R", "1:2"], ["-R", "1:2:3", "-n", "5"],
                 ["--steps", ""], ["--steps", "1,x"]):
        p = run(ECHOBENCH, args, timeout=bound(10))
        assert p.returncode == 2, (args, p.returncode, p.stderr)


def test_report_gives_client_cpu_per_request(echod):
    r = echobench_json(echod.addr, "-c", "2", "-n", "5000")
    assert r["client_cpu_us_per_request"] > 0
    assert abs(r["client_cpu_us_per_request"] -
               r["client_cpu_s"] * 1e6 / r["totals"]["ok"]) <= 0.0006e6 / r["totals"]["ok"]
    assert 0 <= r["client_busy_max"] <= 1.5
    assert isinstance(r["notes"], list)


def test_notes_say_when_connections_were_refused():
    port = free_port()
    p = run(ECHOBENCH, ["-p", str(port), "-c", "3", "-d", "0.3", "--json", "--no-progress"],
            timeout=bound(20))
    assert p.returncode == 3
    r = json.loads(p.stdout)
    assert any("only 0 of the 3 connections" in n and "connect_refused" in n
               for n in r["notes"]), r["notes"]


def test_notes_say_when_the_rate_fell_short():
    # One connection, every reply held 200 ms: 20 req/s cannot be reached
    # (10 requests, the last answered 2 s in: well within any reply timeout).
    with FaultyServer("--stall-every", "1", "--stall-ms", "200") as srv:
        r = echobench_json(srv.addr, "-c", "1", "-R", "20", "-d", "0.5")
    assert any("fell short of -R" in n for n in r["notes"]), r["notes"]
