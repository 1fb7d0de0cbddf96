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


# -- issue #9, item 6: fingerprint of the code, weights and data that produced the records --------
def test_edited_lib_code_recomputes(tmp_path, monkeypatch):
    import lib.results as results

    calls = []

    def fn(i):
        calls.append(i)
        return {"v": i}

    ResultsStore("nb", "default", {"m": "a"}, root=tmp_path).run(range(3), fn)
    ResultsStore("nb", "default", {"m": "a"}, root=tmp_path).run(range(3), fn)
    assert calls == [0, 1, 2]  # same code, same inputs: reused
    monkeypatch.setattr(results, "code_fingerprint", lambda: "lib-after-an-edit")
    s = ResultsStore("nb", "default", {"m": "a"}, root=tmp_path)
    s.run(range(3), fn)
    assert calls == [0, 1, 2, 0, 1, 2] and len(s) == 3
    assert (
        json.loads((s.path / "meta.json").read_text())["fingerprint"]["code"] == "lib-after-an-edit"
    )
    # code=False leaves the library out of the key
    a = ResultsStore("nb", "default", {"m": "a"}, root=tmp_path, code=False)
    monkeypatch.setattr(results, "code_fingerprint", lambda: "another edit")
    assert ResultsStore("nb", "default", {"m": "a"}, root=tmp_path, code=False).path == a.path


def test_code_fingerprint_hashes_every_source_file(tmp_path):
    from lib.results import code_fingerprint

    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "b.py").write_text("y = 2\n")
    (pkg / "notes.txt").write_text("not code")
    h0 = code_fingerprint(pkg)
    assert code_fingerprint(pkg) == h0
    (pkg / "notes.txt").write_text("still not code")
    code_fingerprint.cache_clear()
    assert code_fingerprint(pkg) == h0
    (pkg / "sub" / "b.py").write_text("y = 3\n")
    assert code_fingerprint(pkg) == h0  # read once per process
    code_fingerprint.cache_clear()
    assert code_fingerprint(pkg) != h0
    # the default is the lib package itself, and it is the same in a second process
    from lib.paths import REPO_ROOT

    code_fingerprint.cache_clear()  # this process's value, read now like the second process's
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from lib.results import code_fingerprint; print(code_fingerprint())",
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        check=True,
    ).stdout.strip()
    assert out == code_fingerprint() == code_fingerprint(REPO_ROOT / "lib")


def test_changed_weights_file_recomputes(tmp_path):
    import hashlib

    from lib.results import file_digest

    w = tmp_path / "model.pt"
    w.write_bytes(b"\x00" * 1000)
    assert file_digest(w) == hashlib.sha256(b"\x00" * 1000).hexdigest()
    calls = []

    def fn(i):
        calls.append(i)
        return {"v": i}

    kw = dict(root=tmp_path / "store", weights=[w], data={"files": ["a", "b"]})
    ResultsStore("nb", "full", {"model": "vgg"}, **kw).run(range(2), fn)
    ResultsStore("nb", "full", {"model": "vgg"}, **kw).run(range(2), fn)
    assert calls == [0, 1]  # same weights, same data: reused
    st = w.stat()
    w.write_bytes(b"\x01" * 1000)  # retrained: same size, new bytes
    os.utime(w, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert file_digest(w) == hashlib.sha256(b"\x01" * 1000).hexdigest()
    s = ResultsStore("nb", "full", {"model": "vgg"}, **kw)
    s.run(range(2), fn)
    assert calls == [0, 1, 0, 1]
    meta = json.loads((s.path / "meta.json").read_text())
    assert meta["fingerprint"]["weights"] == [{"file": "model.pt", "sha256": file_digest(w)}]
    assert meta["fingerprint"]["data"] == {"files": ["a", "b"]}
    ResultsStore("nb", "full", {"model": "vgg"}, **{**kw, "data": {"files": ["a", "c"]}}).run(
        range(2), fn
    )
    assert calls == [0, 1, 0, 1, 0, 1]  # other data: recomputed
    assert len(str(s)) < 80
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        ResultsStore("nb", "full", {}, root=tmp_path, weights=[tmp_path / "missing.pt"])


def test_file_digest_is_cached_by_size_and_mtime(tmp_path, monkeypatch):
    import lib.results as results

    w = tmp_path / "w.bin"
    w.write_bytes(b"abc")
    d = results.file_digest(w)
    opened = []
    real_open = open

    def counting_open(p, *a, **k):
        opened.append(str(p))
        return real_open(p, *a, **k)

    monkeypatch.setattr("builtins.open", counting_open)
    assert results.file_digest(w) == d and opened == []  # not re-read
    w.write_bytes(b"abcd")
    assert results.file_digest(w) != d and opened == [str(w)]


# -- item 7 ---------------------------------------------------------------------------------------
def test_set_valued_config_hash_is_the_same_in_every_process():
    code = (
        "from lib.results import config_hash; "
        "print(config_hash({'methods': {'gradcam', 'gradcam++', 'scorecam', 'xgradcam', 'hirescam'}, "
        "'f': frozenset({'x1', 'y2', 'z3'})}))"
    )
    outs = set()
    for seed in ("1", "2", "3"):
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONHASHSEED=seed)
        outs.add(
            subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            ).stdout.strip()
        )
    assert len(outs) == 1
    assert config_hash({"m": {"b", "a"}}) == config_hash({"m": ["a", "b"]})


def test_config_with_a_memory_address_is_rejected():
    class Thing:
        pass

    with pytest.raises(TypeError, match=r"config\['model'\].*Thing"):
        config_hash({"model": Thing()})


def test_two_stores_on_one_config_keep_both_records(tmp_path):
    a = ResultsStore("nb", "default", {"x": 1}, root=tmp_path)
    b = ResultsStore("nb", "default", {"x": 1}, root=tmp_path)
    a.put("a0", {"v": 0})
    b.put("b0", {"v": 1})
    a.put("a1", {"v": 2})
    c = ResultsStore("nb", "default", {"x": 1}, root=tmp_path)
    assert sorted(c._records) == ["a0", "a1", "b0"]
    assert c.get("b0") == {"v": 1}


WRITER = textwrap.dedent("""
    import os, sys, time
    from lib.results import ResultsStore
    root, tag, go = sys.argv[1], sys.argv[2], sys.argv[3]
    store = ResultsStore("nb", "smoke", {"shared": True}, root=root)
    while not os.path.exists(go):
        time.sleep(0.005)
    for i in range(30):
        store.put(f"{tag}{i}", {"i": i})
""")


def test_two_writer_processes_keep_both_records(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    go = tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    procs = [
        subprocess.Popen([sys.executable, str(script), str(tmp_path / "s"), tag, str(go)], env=env)
        for tag in ("a", "b")
    ]
    time.sleep(0.5)
    go.touch()
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    s = ResultsStore("nb", "smoke", {"shared": True}, root=tmp_path / "s")
    assert sorted(s._records) == sorted([f"a{i}" for i in range(30)] + [f"b{i}" for i in range(30)])


@pytest.mark.parametrize("name", ["records.json", "meta.json"])
@pytest.mark.parametrize("content", ["", '{"0": {"v": 0}, "1": {"v"', "\x00\x00\x00", "[1, 2]"])
def test_corrupt_file_is_moved_aside_and_the_run_recomputes(tmp_path, name, content):
    s = ResultsStore("nb", "default", {}, root=tmp_path)
    s.run(range(3), square)
    (s.path / name).write_text(content)
    with pytest.warns(UserWarning, match=rf"(?s){name}.*moved it to .*{name}\.corrupt-.*recompute"):
        s2 = ResultsStore("nb", "default", {}, root=tmp_path)
    aside = [p for p in s2.path.iterdir() if p.name.startswith(name + ".corrupt-")]
    assert len(aside) == 1 and aside[0].read_text() == content
    calls = []

    def counted(i):
        calls.append(i)
        return square(i)

    df = s2.run(range(3), counted)
    assert calls == ([0, 1, 2] if name == "records.json" else [])
    assert df["sq"].tolist() == [0, 1, 4] and s2.complete
    assert ResultsStore("nb", "default", {}, root=tmp_path).complete


def test_unserialisable_value_is_rejected_and_earlier_records_kept(tmp_path):
    s = ResultsStore("nb", "default", {}, root=tmp_path)
    s.put("a", {"v": 1.5})
    with pytest.raises(TypeError, match=r"key 'b'.*field 'extra\.model'.*object"):
        s.put("b", {"v": 2, "extra": {"model": object()}})
    with pytest.raises(TypeError, match=r"key 'c'.*field 'rows\[1\]'.*bytes"):
        s.put("c", {"rows": [1, b"x"]})
    assert not s.done("b") and not s.done("c")
    s.put("d", {"v": 3})  # the store still works
    s2 = ResultsStore("nb", "default", {}, root=tmp_path)
    assert sorted(s2._records) == ["a", "d"] and s2.get("a") == {"v": 1.5}
