"""Scenes: exact boxes and masks, reproducible, train and test splits never mixed."""

import cv2
import numpy as np
import pytest
import torch
from idx_files import write_idx

import lib.data.fashion_mnist as fm
from lib.data.scenes import make_scenes


def fake_split(n=200, value=200, seed=0):
    """Items that are solid rectangles of ``value`` of random size, labels 0..9 in turn."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        h, w = rng.integers(8, 27, size=2)
        y0, x0 = rng.integers(0, 28 - h), rng.integers(0, 28 - w)
        x[i, y0 : y0 + h, x0 : x0 + w] = value
    return torch.from_numpy(x), torch.arange(n) % 10


def test_boxes_and_masks_exact():
    src = fake_split()
    s = make_scenes(
        40, size=64, n_objects=(1, 2), n_distractors=(0, 2), scale=(0.3, 0.45), source=src, seed=3
    )
    img = s.images[:, 0]
    for i in range(len(s)):
        m = s.masks(i)
        assert m.shape[0] == s.boxes[i].shape[0] >= 1
        assert not (m.sum(0) > 1).any()  # masks never overlap
        union = m.any(0)
        # the background is exactly 0 (no clutter): every lit pixel belongs to one item's mask
        assert torch.equal(union, img[i] > 0.1)
        for k, (x0, y0, x1, y1, c) in enumerate(s.boxes[i].tolist()):
            ys, xs = torch.nonzero(m[k], as_tuple=True)
            # the box is the tight box of the mask (x_max/y_max exclusive)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1)
            assert s.multilabels[i, c] == 1
        lab = int(s.labels[i])
        assert (s.boxes[i][:, 4] == lab).sum() >= 1
        assert s.multilabels[i].sum() == len(set(s.boxes[i][:, 4].tolist()))
        assert torch.equal(s.target_mask(i), m[s.boxes[i][:, 4] == lab].any(0))
    assert s.labels.bincount(minlength=10).tolist() == [4] * 10  # balanced classes


def test_item_pixels_are_the_resized_source_item():
    src = fake_split()
    s = make_scenes(10, size=96, n_distractors=0, scale=0.5, source=src, seed=1)
    for i in range(len(s)):
        (x0, y0, x1, y1, c), j = s.boxes[i][0].tolist(), int(s.items[i][0])
        assert c == int(src[1][j]) == int(s.labels[i])
        patch = cv2.resize(src[0][j].numpy(), (48, 48), interpolation=cv2.INTER_LINEAR) / 255.0
        on = patch > 0.1
        r, q = np.flatnonzero(on.any(1)), np.flatnonzero(on.any(0))
        crop = patch[r[0] : r[-1] + 1, q[0] : q[-1] + 1]
        np.testing.assert_allclose(s.images[i, 0, y0:y1, x0:x1].numpy(), crop, atol=1e-6)


def test_deterministic_and_seed_dependent():
    src = fake_split()
    a = make_scenes(12, source=src, seed=5, clutter=0.2, channels=3)
    b = make_scenes(12, source=src, seed=5, clutter=0.2, channels=3)
    c = make_scenes(12, source=src, seed=6, clutter=0.2, channels=3)
    assert torch.equal(a.images, b.images) and all(
        torch.equal(p, q) for p, q in zip(a.boxes, b.boxes)
    )
    assert not torch.equal(a.images, c.images)
    assert a.images.shape == (12, 3, 64, 64) and torch.equal(a.images[:, 0], a.images[:, 2])
    assert 0 <= a.images.min() and a.images.max() <= 1
    ds = a.tensors(multilabel=True)
    assert torch.equal(ds[3][1], a.multilabels[3])


def test_train_and_test_come_from_their_own_split(tmp_path, monkeypatch):
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "none")
    # train items are drawn with pixel value 200, test items with 100: a mixed scene would show both
    for split, value in (("train", 200), ("test", 100)):
        x, y = fake_split(100, value=value, seed=value)
        write_idx(tmp_path / (fm.FILES[split][0] + ".gz"), x.numpy())
        write_idx(tmp_path / (fm.FILES[split][1] + ".gz"), y.numpy())
    tr = make_scenes(30, "train", data_root=tmp_path, scale=0.4)
    te = make_scenes(30, "test", data_root=tmp_path, scale=0.4)
    assert tr.split == "train" and te.split == "test"
    assert (
        abs(tr.images.max().item() - 200 / 255) < 1e-6
        and abs(te.images.max().item() - 100 / 255) < 1e-6
    )
    # every single item reaches its split's value: no test item in a train scene, and vice versa
    for scenes, value in ((tr, 200), (te, 100)):
        for i in range(len(scenes)):
            for k in range(scenes.boxes[i].shape[0]):
                peak = scenes.images[i, 0][scenes.instance_map[i] == k + 1].max().item()
                assert abs(peak - value / 255) < 1e-6


@pytest.mark.skipif(
    fm.find_fashion_mnist(None, "test") is None, reason="Fashion-MNIST not installed"
)
def test_real_test_scenes_use_test_items():
    xt, yt = fm.load_fashion_mnist("test")
    s = make_scenes(20, "test", size=64, n_distractors=1, seed=0)
    for i in range(len(s)):
        for (x0, y0, x1, y1, c), j in zip(s.boxes[i].tolist(), s.items[i].tolist()):
            assert int(yt[j]) == c
    # the same generator on the train split draws other items
    tr = make_scenes(20, "train", size=64, n_distractors=1, seed=0)
    assert not torch.equal(tr.images, s.images)


def test_bad_arguments():
    src = fake_split()
    with pytest.raises(ValueError, match="cannot place"):
        make_scenes(2, size=32, n_objects=6, scale=0.6, source=src)
    with pytest.raises(ValueError, match="split must be"):
        make_scenes(2, split="val", source=src)
    with pytest.raises(ValueError, match="channels"):
        make_scenes(2, channels=2, source=src)
