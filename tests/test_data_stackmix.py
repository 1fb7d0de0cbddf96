"""STACK-MIX (Taimeskhanov et al., Eq. 6): exact rows from exactly two images of the same class."""

import pytest
import torch

from lib.data.stackmix import stack_mix


def numbered(n=12, c=3, h=224, w=5):
    # every pixel encodes (image, row): the mix can be checked value by value
    img = torch.arange(n)[:, None, None, None] * 1000 + torch.arange(h)[None, None, :, None]
    return img.expand(n, c, h, w).float(), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 3, 4])[:n]


def test_paper_split_170_rows_over_54():
    x, y = numbered()
    s = stack_mix(x, y, dead_rows=54, seed=0)
    assert s.split_row == 170
    assert s.labels.tolist() == [0, 1, 2, 3]  # class 4 has one image only, left out
    for i in range(len(s)):
        a, b = int(s.upper[i]), int(s.lower[i])
        assert a != b and y[a] == y[b] == s.labels[i]
        col = s.images[i, 0, :, 0]
        assert torch.equal(col[:170], a * 1000 + torch.arange(170).float())
        assert torch.equal(col[170:], b * 1000 + torch.arange(170, 224).float())
        assert torch.equal(s.images[i, 2], s.images[i, 0])


def test_split_row_given_and_2d_images():
    x = torch.arange(4 * 6 * 2).reshape(4, 6, 2)
    y = torch.tensor([7, 7, 8, 8])
    s = stack_mix(x, y, split_row=2, seed=1)
    for i in range(2):
        expect = torch.cat([x[s.upper[i], :2], x[s.lower[i], 2:]])
        assert torch.equal(s.images[i], expect)
    assert stack_mix(x, y, split_row=2, seed=1).upper.tolist() == s.upper.tolist()


def test_seed_and_n_per_class():
    x, y = numbered()
    a = stack_mix(x, y, split_row=100, n_per_class=3, classes=[0, 1], seed=0)
    b = stack_mix(x, y, split_row=100, n_per_class=3, classes=[0, 1], seed=0)
    assert a.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.equal(a.images, b.images)
    pairs = {(int(u), int(v)) for u, v in zip(a.upper, a.lower)}
    others = [
        set(
            zip(
                stack_mix(
                    x, y, split_row=100, n_per_class=3, classes=[0, 1], seed=s
                ).upper.tolist(),
                stack_mix(
                    x, y, split_row=100, n_per_class=3, classes=[0, 1], seed=s
                ).lower.tolist(),
            )
        )
        for s in range(1, 6)
    ]
    assert any(o != pairs for o in others)


def test_errors():
    x, y = numbered()
    with pytest.raises(ValueError, match="exactly one"):
        stack_mix(x, y)
    with pytest.raises(ValueError, match="strictly between"):
        stack_mix(x, y, split_row=224)
    with pytest.raises(ValueError, match="class 4 has 1 image"):
        stack_mix(x, y, split_row=170, classes=[4])
