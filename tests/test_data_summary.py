"""``python -m lib.data summary``: present data with its size, missing data with its source."""

import numpy as np
from idx_files import write_idx
from PIL import Image

import lib.data.fashion_mnist as fm
from lib.data import summary
from lib.data.__main__ import main


def write_split(root, split, n):
    write_idx(root / (fm.FILES[split][0] + ".gz"), np.zeros((n, 28, 28)))
    write_idx(root / (fm.FILES[split][1] + ".gz"), np.arange(n) % 10)


def save(path, h, w):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(path)


def test_summary_counts_what_is_there(tmp_path, monkeypatch):
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "none")
    monkeypatch.setattr(fm, "CACHE_DIR", tmp_path / "none")
    root = tmp_path / "data"
    root.mkdir()
    write_split(root, "train", 30)
    write_split(root, "test", 7)
    for i in range(3):
        save(root / "stack" / "stackmix" / f"{i}.png", 8, 8)
    df = summary(root).set_index("name")
    assert df.loc["Fashion-MNIST", "status"] == "present"
    assert df.loc["Fashion-MNIST", "size"] == "30 train / 7 test"
    assert df.loc["STACK-MIX (Taimeskhanov et al.)", ["status", "size"]].tolist() == [
        "present",
        "3 images",
    ]
    assert df.loc["STACK-GEN (Taimeskhanov et al.)", "status"] == "missing"
    assert df.loc["VinDr-CXR", "profile"] == "full" and "photographs" in df.index


def test_cli_prints_one_line_per_data_set(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "none")
    monkeypatch.setattr(fm, "CACHE_DIR", tmp_path / "none")
    assert main(["summary", "--data-root", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(summary(tmp_path))
    fm_line = next(line for line in lines if line.startswith("Fashion-MNIST"))
    assert "missing" in fm_line and "apt-get install dataset-fashion-mnist" in fm_line


def test_photographs_row_uses_the_photos_module(monkeypatch):
    import sys
    import types

    stub = types.ModuleType("lib.data.photos")
    stub.list_photos = lambda: ["chelsea", "coffee", "rocket"]
    monkeypatch.setitem(sys.modules, "lib.data.photos", stub)
    import lib.data

    monkeypatch.setattr(lib.data, "photos", stub, raising=False)  # `from . import photos`
    row = summary().set_index("name").loc["photographs"]
    assert row["status"] == "present" and row["size"] == "3 photographs"
    stub.list_photos = lambda: 1 / 0  # a broken module must not hide the other rows
    row = summary().set_index("name").loc["photographs"]
    assert row["status"] == "missing" and "ZeroDivisionError" in row["where"]
