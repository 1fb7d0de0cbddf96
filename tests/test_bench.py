"""The benchmark CLI: its last line is one JSON object, and both libraries' maps agree."""
import json
import subprocess
import sys

from lib.paths import REPO_ROOT


def test_bench_prints_json_with_agreeing_maps():
    cmd = [sys.executable, "-m", "lib.bench", "--model", "resnet18", "--layer", "layer4",
           "--batch", "1", "--size", "64", "--repeats", "1", "--device", "cpu",
           "--methods", "gradcam,hirescam,ablationcam,eigencam", "--cam-batch", "512"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["forward_ms"] > 0
    for method in ("gradcam", "hirescam", "ablationcam", "eigencam"):
        row = result[method]
        assert row["lib_ms"] > 0 and row["pgc_ms"] > 0
        assert row["max_abs_diff"] < 1e-4, (method, row)
    assert result["all_gradient_methods"] == ["gradcam", "hirescam"]
    assert "speed-up" in out.stderr  # the human-readable table goes to stderr


def test_bench_rejects_an_unknown_method():
    out = subprocess.run([sys.executable, "-m", "lib.bench", "--methods", "gradcam,nope"],
                         capture_output=True, text=True, cwd=REPO_ROOT)
    assert out.returncode == 2 and "unknown method(s) ['nope']" in out.stderr
