"""The benchmark CLI: its last line is one JSON object, both libraries' maps agree, and the
repeats are interleaved and paired."""

import json
import subprocess
import sys

import pytest

from lib import bench
from lib.paths import REPO_ROOT


def test_bench_prints_json_with_agreeing_maps():
    cmd = [
        sys.executable,
        "-m",
        "lib.bench",
        "--model",
        "resnet18",
        "--layer",
        "layer4",
        "--batch",
        "1",
        "--size",
        "64",
        "--repeats",
        "2",
        "--device",
        "cpu",
        "--methods",
        "gradcam,hirescam,ablationcam,eigencam,scorecam",
        "--cam-batch",
        "512",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["forward_ms"] > 0 and result["repeats"] == 2
    for method in ("gradcam", "hirescam", "ablationcam", "eigencam", "scorecam"):
        row = result[method]
        assert row["lib_ms"] > 0 and row["pgc_ms"] > 0
        assert row["max_abs_diff"] < 1e-4, (method, row)
        # each ratio is the median of the ratios of the same rounds, not a ratio of medians
        assert len(row["speedups"]) == len(row["over_forwards_each"]) == 2
        assert row["speedup"] == pytest.approx(sum(row["speedups"]) / 2)
        lo, hi = row["speedup_range"]
        assert lo == min(row["speedups"]) and hi == max(row["speedups"])
        assert row["lib_ms_range"][0] <= row["lib_ms"] <= row["lib_ms_range"][1]
    sc = result["scorecam"]
    assert sc["forwards_ms"] > 0 and len(sc["forwards_before_after_ms"]) == 2
    assert sc["over_forwards"] > 0
    assert result["all_gradient_methods"] == ["gradcam", "hirescam"]
    assert "speed-up" in out.stderr  # the human-readable table goes to stderr


def test_bench_rejects_an_unknown_method():
    out = subprocess.run(
        [sys.executable, "-m", "lib.bench", "--methods", "gradcam,nope"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert out.returncode == 2 and "unknown method(s) ['nope']" in out.stderr


def test_interleave_runs_rounds_in_turn_and_alternates_the_order():
    calls = []
    tasks = {name: (lambda name=name: calls.append(name)) for name in "fabgh"}
    ticks = iter(range(100))

    def timed(fn):  # a fake clock: the n-th call takes n ms
        fn()
        return float(next(ticks)), None

    out = bench.interleave([["f", "a", "b"], ["f", "g", "h"]], tasks, 3, timed)
    assert calls == (
        ["f", "a", "b", "f", "g", "h"]
        + ["f", "b", "a", "f", "h", "g"]
        + ["f", "a", "b", "f", "g", "h"]
    )
    assert out[0] == {"f": [0.0, 6.0, 12.0], "a": [1.0, 8.0, 13.0], "b": [2.0, 7.0, 14.0]}
    assert out[1] == {"f": [3.0, 9.0, 15.0], "g": [4.0, 11.0, 16.0], "h": [5.0, 10.0, 17.0]}


def test_paired_ratios_by_hand():
    # a load spike in round 2 slows both: the paired ratio stays 2, the ratio of medians not
    ours, ref = [10.0, 40.0, 11.0], [20.0, 80.0, 22.0]
    r = bench.paired(ref, ours)
    assert r["each"] == [2.0, 2.0, 2.0] and r["median"] == 2.0 and r["range"] == [2.0, 2.0]
    assert bench.paired([3.0, 1.0], [1.0, 1.0])["median"] == 2.0
    with pytest.raises(ValueError, match="same rounds"):
        bench.paired([1.0], [1.0, 2.0])


def test_cpu_clock_counts_cpu_time_not_sleep():
    import time

    import torch

    wall = bench.clock(torch.device("cpu"), "wall")(lambda: time.sleep(0.05))[0]
    cpu = bench.clock(torch.device("cpu"), "cpu")(lambda: time.sleep(0.05))[0]
    assert wall >= 45 and cpu < 20
    with pytest.raises(ValueError, match="'wall' or 'cpu'"):
        bench.clock(torch.device("cpu"), "gpu")
