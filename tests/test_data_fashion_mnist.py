"""Fashion-MNIST IDX reader: exact round trip on files written here, clear errors, the real set."""

import numpy as np
import pytest
import torch
from idx_files import write_idx

import lib.data.fashion_mnist as fm
from lib.data import DataFormatError, DataMissingError


def write_split(root, split, n, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    y = (np.arange(n) % 10).astype(np.uint8)
    ext = ".gz" if gz else ""
    write_idx(root / (fm.FILES[split][0] + ext), x)
    write_idx(root / (fm.FILES[split][1] + ext), y)
    return x, y


@pytest.fixture
def no_system_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(fm, "CACHE_DIR", tmp_path / "no-cache")
    monkeypatch.delenv("GRADCAM_BOOK_ALLOW_DOWNLOAD", raising=False)


@pytest.mark.parametrize("gz", [True, False])
def test_round_trip_exact(tmp_path, no_system_copy, gz):
    x, y = write_split(tmp_path, "test", 23, gz=gz)
    images, labels = fm.load_fashion_mnist("test", data_root=tmp_path)
    assert images.dtype == torch.uint8 and labels.dtype == torch.int64
    assert np.array_equal(images.numpy(), x) and np.array_equal(labels.numpy(), y)
    # callers get their own copy: editing it does not change the next load
    images[0] = 0
    again, _ = fm.load_fashion_mnist("test", data_root=tmp_path)
    assert np.array_equal(again.numpy(), x)


def test_header_fields_hand_computed(tmp_path):
    p = write_idx(tmp_path / "lab", [3, 1, 4])
    assert p.read_bytes()[:8] == bytes([0, 0, 8, 1, 0, 0, 0, 3])  # 2049, N = 3
    assert fm.read_idx(p, "labels").tolist() == [3, 1, 4]


def test_wrong_magic_names_file(tmp_path):
    p = write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 28, 28)), magic=2049)
    with pytest.raises(
        DataFormatError, match="train-images-idx3-ubyte.*magic number 2049, expected 2051"
    ):
        fm.read_idx(p, "images")


def test_wrong_dims(tmp_path):
    p = write_idx(tmp_path / "img", np.zeros((2, 27, 28)))
    with pytest.raises(DataFormatError, match=r"dimensions \[2, 27, 28\]"):
        fm.read_idx(p, "images")


def test_truncated_file_names_file(tmp_path, no_system_copy):
    write_split(tmp_path, "train", 5, gz=False)
    p = tmp_path / fm.FILES["train"][0]
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(DataFormatError, match=r"train-images-idx3-ubyte: 3926 bytes but .* 3936"):
        fm.load_fashion_mnist("train", data_root=tmp_path)


def test_truncated_gzip(tmp_path):
    p = write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(10))
    p.write_bytes(p.read_bytes()[:-8])
    with pytest.raises(DataFormatError, match="t10k-labels-idx1-ubyte.gz"):
        fm.read_idx(p, "labels")


def test_label_count_mismatch(tmp_path, no_system_copy):
    write_split(tmp_path, "test", 4)
    write_idx(tmp_path / (fm.FILES["test"][1] + ".gz"), [1, 2, 3])
    with pytest.raises(DataFormatError, match="3 labels for 4 images"):
        fm.load_fashion_mnist("test", data_root=tmp_path)


def test_missing_files_message(tmp_path, no_system_copy):
    write_idx(tmp_path / (fm.FILES["train"][0] + ".gz"), np.zeros((1, 28, 28)))  # labels absent
    with pytest.raises(DataMissingError) as e:
        fm.load_fashion_mnist("train", data_root=tmp_path)
    msg = str(e.value)
    for part in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "apt-get install dataset-fashion-mnist",
        "zalandoresearch/fashion-mnist",
        "data_root",
        "Every profile",
        "Colab",
        "GRADCAM_BOOK_ALLOW_DOWNLOAD=1",
        str(tmp_path),
    ]:
        assert part in msg, part
    # no advice in a circle: the default profile needs these files too
    assert "profile='default'" not in msg and "`default` profile runs offline" not in msg
    assert fm.fashion_mnist_sizes(tmp_path) == {"train": None, "test": None}


real = (
    fm.find_fashion_mnist(None, "test") is not None
    and fm.find_fashion_mnist(None, "train") is not None
)


@pytest.mark.skipif(
    not real, reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)"
)
def test_real_fashion_mnist_published_facts():
    x, y = fm.load_fashion_mnist("train")
    xt, yt = fm.load_fashion_mnist("test")
    assert tuple(x.shape) == (60000, 28, 28) and tuple(xt.shape) == (10000, 28, 28)
    # the published training file starts with labels 9 0 0 3 0 2 7 2 5 5 (ankle boot, T-shirt, ...)
    assert y[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert y.bincount().tolist() == [6000] * 10 and yt.bincount().tolist() == [1000] * 10
    assert fm.fashion_mnist_sizes() == {"train": 60000, "test": 10000}
    assert fm.CLASSES[9] == "Ankle boot"
