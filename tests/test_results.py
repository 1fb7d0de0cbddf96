"""ResultsStore: atomic saves, resume after SIGKILL recomputes only what is missing."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from lib.paths import REPO_ROOT
from lib.results import IncompleteResultsError, ResultsStore, config_hash

SCRIPT = textwrap.dedent("""
    import sys, time
    from lib.results import ResultsStore
    root, log, sleep = sys.argv[1], sys.argv[2], float(sys.argv[3])
    store = ResultsStore("nb", "smoke", {"a": 1}, root=root)
    def fn(i):
        with open(log, "a") as f:
            f.write(f"{i}\\n")
        time.sleep(sleep)
        return {"sq": i * i, "half": i / 2}
    store.run(range(40), fn, save_every=3)
""")


def square(i):
    return {"sq": i * i, "half": i / 2}


def test_config_hash_is_order_free():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_killed_run_resumes_and_equals_clean_run(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    log = tmp_path / "calls.txt"
    root = tmp_path / "store"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen([sys.executable, str(script), str(root), str(log), "0.05"], env=env)
    t0 = time.time()
    while (not log.exists() or len(log.read_text().split()) < 12) and time.time() - t0 < 60:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    computed_before = [int(v) for v in log.read_text().split()]
    assert 12 <= len(computed_before) < 40  # killed half-way

    store = ResultsStore("nb", "smoke", {"a": 1}, root=root)
    saved = len(store)
    assert 0 < saved <= len(computed_before) and not store.complete
    with pytest.raises(IncompleteResultsError, match="has not finished"):
        store.records()
    saved_keys = {int(k) for k in store._records}
    calls = []

    def counted(i):
        calls.append(i)
        return square(i)
    df = store.run(range(40), counted)
    assert sorted(calls) == sorted(set(range(40)) - saved_keys)  # only the missing items
    assert len(df) == 40 and store.complete
    clean = ResultsStore("nb", "smoke", {"a": 2}, root=root).run(range(40), square)
    pd.testing.assert_frame_equal(df.drop(columns="key"), clean.drop(columns="key"))
    assert df["key"].tolist() == [str(i) for i in range(40)]
    # the resumed store file on disk is valid JSON with every key
    on_disk = json.loads((store.path / "records.json").read_text())
    assert sorted(map(int, on_disk)) == list(range(40))


def test_resume_after_exception_recomputes_only_missing(tmp_path):
    calls, fail = [], [True]

    def flaky(i):
        calls.append(i)
        if i == 7 and fail[0]:
            raise RuntimeError("boom")
        return {"v": i + 0.5}

    s = ResultsStore("nb", "default", {"x": 1}, root=tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        s.run(range(10), flaky, save_every=100)
    assert calls == list(range(8))
    s2 = ResultsStore("nb", "default", {"x": 1}, root=tmp_path)  # fresh object: read from disk
    assert len(s2) == 7 and not s2.complete
    assert s2.records(allow_incomplete=True)["v"].tolist() == [i + 0.5 for i in range(7)]
    calls.clear()
    fail[0] = False
    df = s2.run(range(10), flaky)
    assert calls == [7, 8, 9]
    assert df["v"].tolist() == [i + 0.5 for i in range(10)]
    calls.clear()
    ResultsStore("nb", "default", {"x": 1}, root=tmp_path).run(range(10), flaky)
    assert calls == []  # a finished run is not recomputed


def test_more_items_make_the_run_incomplete_again(tmp_path):
    s = ResultsStore("nb", "default", {}, root=tmp_path)
    s.run(range(3), square)
    assert s.complete
    s.put(99, {"sq": 0, "half": 0})  # an item the finished run did not expect
    assert not s.complete
    with pytest.raises(IncompleteResultsError):
        s.records()


def test_crash_during_write_leaves_previous_file(tmp_path, monkeypatch):
    s = ResultsStore("nb", "default", {}, root=tmp_path)
    s.put("a", {"v": 1})
    before = (s.path / "records.json").read_bytes()

    def broken_dump(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(json, "dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        s.put("b", {"v": 2})
    assert (s.path / "records.json").read_bytes() == before
    assert [p.name for p in s.path.iterdir() if p.suffix == ".tmp"] == []


def test_bad_record_and_duplicate_keys(tmp_path):
    s = ResultsStore("nb", "default", {}, root=tmp_path)
    with pytest.raises(TypeError, match="must be a dict"):
        s.put(1, 3.0)
    with pytest.raises(ValueError, match="same key"):
        s.run([1, 1], square)
