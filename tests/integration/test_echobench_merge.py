"""echobench across several load hosts: the per-second series in --json, the
--hdr-log file in HdrHistogram's interval log format (decoded here from its
base64 / zlib / ZigZag LEB128 V2 encoding, independently of echobench's C),
`echobench merge` (exact: one run's histogram split in two merges back to
the same percentiles; three runs started together with --start-at add up),
and the refusals (different options, windows that do not overlap).
"""

import base64
import copy
import json
import struct
import subprocess
import time
import zlib

import pytest

from client_tools import ECHOBENCH, echobench_json, run
from conftest import bound

HDR_COMPRESSED_COOKIE = 0x1c849314
HDR_COOKIE = 0x1c849313
SUB_HALF = 128      # HdrHistogram, 2 significant digits: 256 sub-buckets, half 128


def zigzag_leb128(data, pos):
    """HdrHistogram's ZigZag LEB128-64b9B: (value, next position)."""
    value, shift = 0, 0
    for k in range(9):
        b = data[pos]
        pos += 1
        if k == 8:
            value |= b << shift
            break
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return (value >> 1) ^ -(value & 1), pos


def decode_hdr(text):
    """Counts array {index: count} of one Interval_Compressed_Histogram."""
    raw = base64.b64decode(text)
    cookie, length = struct.unpack_from(">II", raw, 0)
    assert cookie == HDR_COMPRESSED_COOKIE
    body = zlib.decompress(raw[8:8 + length])
    cookie, payload, offset, digits, lowest, highest, ratio = struct.unpack_from(">IIiIqqd",
                                                                                body, 0)
    assert (cookie, offset, digits, lowest, ratio) == (HDR_COOKIE, 0, 2, 1, 1.0)
    assert highest == 2 ** 36 - 1
    assert len(body) == 40 + payload
    counts, pos, index = {}, 40, 0
    while pos < len(body):
        v, pos = zigzag_leb128(body, pos)
        if v < 0:
            index += -v
        else:
            if v:
                counts[index] = v
            index += 1
    return counts


def hdr_value_range(index):
    """[low, high) of HdrHistogram's counts index (2 digits, unit 1)."""
    bucket = (index >> 7) - 1
    sub = (index & (SUB_HALF - 1)) + SUB_HALF
    if bucket < 0:
        bucket, sub = 0, sub - SUB_HALF
    return sub << bucket, (sub + 1) << bucket


def read_hdr_log(path):
    lines = path.read_text().splitlines()
    assert lines[0] == "#[Histogram log format version 1.3]"
    assert lines[1].startswith("#[StartTime: ") and "(seconds since epoch)" in lines[1]
    assert lines[2].startswith("#[BaseTime: ")
    assert lines[3] == ('"StartTimestamp","Interval_Length","Interval_Max",'
                        '"Interval_Compressed_Histogram"')
    intervals = []
    for line in lines[4:]:
        start, length, mx, text = line.split(",")
        intervals.append((float(start), float(length), float(mx), decode_hdr(text)))
    return intervals


def test_hdr_log_parses_back_to_the_json_histogram(echod, tmp_path):
    log = tmp_path / "lat.hlog"
    r = echobench_json(echod.addr, "-c", "4", "-d", "2.5", "-w", "0.5", "--hdr-log", str(log))
    intervals = read_hdr_log(log)
    assert len(intervals) == len(r["series"]) >= 3
    total = {}
    for (start, length, mx, counts), sec in zip(intervals, r["series"]):
        assert sum(counts.values()) == sec["requests"]
        assert length == pytest.approx(sec["length_s"], abs=1e-3)
        if counts:
            assert mx == pytest.approx(sec["max_us"] / 1000, abs=1e-3)
        for i, c in counts.items():
            total[i] = total.get(i, 0) + c
    # Intervals follow each other from the end of the warm-up.
    assert [round(i[0], 3) for i in intervals] == [round(0.5 + k, 3)
                                                   for k in range(len(intervals))]
    h = r["histograms"]["latency"]
    assert total == {i: c for i, c in h["buckets"]}
    assert sum(total.values()) == r["requests"] == h["count"]
    # The layout is HdrHistogram's: the exact min and max lie in their buckets.
    lo_index, hi_index = min(total), max(total)
    low, high = hdr_value_range(lo_index)
    assert low <= h["min"] < high
    low, high = hdr_value_range(hi_index)
    assert low <= h["max"] < high


def test_series_adds_up_to_the_run(echod):
    r = echobench_json(echod.addr, "-c", "2", "-R", "400", "-d", "3")
    s = r["series"]
    assert [e["t"] for e in s] == list(range(len(s)))
    assert 3 <= len(s) <= 4
    assert sum(e["requests"] for e in s) == r["requests"]
    assert all(e["errors"] == 0 for e in s)
    for e in s[:3]:
        assert e["length_s"] == 1.0 and e["requests"] > 0, e
        assert 0 < e["p50_us"] <= e["p99_us"] <= e["max_us"]
    # Open loop: what fell due in a second is answered in it, or just after.
    assert abs(sum(e["requests"] for e in s[:3]) - 1200) <= 0.1 * 1200, s


def split_in_two(r):
    """Two reports whose sum is r: every bucket, count and rate split."""
    a, b = copy.deepcopy(r), copy.deepcopy(r)
    for name in ("latency", "connect", "send_lag"):
        h = r["histograms"][name]
        ha, hb = a["histograms"][name], b["histograms"][name]
        ha["buckets"] = [[i, c // 2] for i, c in h["buckets"] if c // 2]
        hb["buckets"] = [[i, c - c // 2] for i, c in h["buckets"]]
        ha["count"] = sum(c for _, c in ha["buckets"])
        hb["count"] = sum(c for _, c in hb["buckets"])
        ha["sum"], hb["sum"] = h["sum"] / 2, h["sum"] / 2
        ha["sum_sq"], hb["sum_sq"] = h["sum_sq"] / 2, h["sum_sq"] / 2
    for key in ("requests", "payload_bytes"):
        a[key], b[key] = r[key] // 2, r[key] - r[key] // 2
    a["requests_per_s"] = b["requests_per_s"] = r["requests_per_s"] / 2
    for key in r["totals"]:
        a["totals"][key] = r["totals"][key] // 2
        b["totals"][key] = r["totals"][key] - r["totals"][key] // 2
    a["connections"] = b["connections"] = r["connections"]
    return a, b


def test_merge_of_a_run_split_in_two_is_exact(echod, tmp_path):
    r = echobench_json(echod.addr, "-c", "4", "-P", "2", "-d", "1.5", "-s", "16-4000")
    a, b = split_in_two(r)
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    p = run(ECHOBENCH, ["merge", "--json", tmp_path / "a.json", tmp_path / "b.json"],
            timeout=bound(20))
    assert p.returncode == 0, p.stderr
    m = json.loads(p.stdout)
    assert m["merged_runs"] == 2
    assert m["latency_us"] == r["latency_us"]       # every percentile, min, max, mean
    assert m["histograms"]["latency"]["buckets"] == r["histograms"]["latency"]["buckets"]
    assert m["requests"] == r["requests"]
    assert m["requests_per_s"] == pytest.approx(r["requests_per_s"], rel=1e-6)
    assert m["totals"] == r["totals"]
    assert m["connections"] == 2 * r["connections"]
    assert m["errors"]["total"] == 0


def test_three_runs_started_together_merge(echod, tmp_path):
    start = time.time() + 1.5
    procs = [subprocess.Popen([str(ECHOBENCH), "-p", str(echod.port), "-c", "2", "-d", "1.5",
                               "--start-at", f"{start:.3f}", "--json", "--no-progress"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(3)]
    files = []
    for k, proc in enumerate(procs):
        out, err = proc.communicate(timeout=bound(30))
        assert proc.returncode == 0, err
        f = tmp_path / f"host{k}.json"
        f.write_bytes(out)
        files.append(f)
    runs = [json.loads(f.read_text()) for f in files]
    for r in runs:
        # Each began at the appointed second (within scheduling noise).
        assert abs(r["window_start_unix"] - start) < 0.25, r["window_start_unix"]
    p = run(ECHOBENCH, ["merge", "--json"] + files, timeout=bound(20))
    assert p.returncode == 0, p.stderr
    m = json.loads(p.stdout)
    assert m["requests"] == sum(r["requests"] for r in runs)
    assert m["requests_per_s"] == pytest.approx(sum(r["requests_per_s"] for r in runs),
                                                rel=1e-6)
    assert m["latency_us"]["count"] == sum(r["latency_us"]["count"] for r in runs)
    assert m["latency_us"]["min"] == min(r["latency_us"]["min"] for r in runs)
    assert m["latency_us"]["max"] == max(r["latency_us"]["max"] for r in runs)
    buckets = {}
    for r in runs:
        for i, c in r["histograms"]["latency"]["buckets"]:
            buckets[i] = buckets.get(i, 0) + c
    assert dict(map(tuple, m["histograms"]["latency"]["buckets"])) == buckets
    assert sum(e["requests"] for e in m["series"]) == m["requests"]
    assert m["threads"] == 3 and m["connections"] == 6
    text = run(ECHOBENCH, ["merge"] + files, timeout=bound(20)).stdout.decode()
    assert "merged from 3 runs" in text


def test_merge_refuses_different_loads(echod, tmp_path):
    a = echobench_json(echod.addr, "-c", "2", "-d", "0.5")
    b = dict(a, pipeline=4)
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    p = run(ECHOBENCH, ["merge", tmp_path / "a.json", tmp_path / "b.json"], timeout=bound(20))
    assert p.returncode == 2 and b"pipeline" in p.stderr
    c = dict(a, window_start_unix=a["window_end_unix"] + 10,
             window_end_unix=a["window_end_unix"] + 11)
    (tmp_path / "c.json").write_text(json.dumps(c))
    p = run(ECHOBENCH, ["merge", tmp_path / "a.json", tmp_path / "c.json"], timeout=bound(20))
    assert p.returncode == 2 and b"do not overlap" in p.stderr
    (tmp_path / "d.json").write_text("{not json")
    p = run(ECHOBENCH, ["merge", tmp_path / "a.json", tmp_path / "d.json"], timeout=bound(20))
    assert p.returncode == 2
    p = run(ECHOBENCH, ["merge"], timeout=bound(20))
    assert p.returncode == 2


def test_start_at_usage():
    for v in ("yesterday", "25:00", str(time.time() - 100), str(time.time() + 3 * 86400)):
        p = run(ECHOBENCH, ["--start-at", v], timeout=bound(10))
        assert p.returncode == 2, (v, p.stderr)
