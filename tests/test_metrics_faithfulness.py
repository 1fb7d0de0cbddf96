"""Nagy et al.'s Table 3 and Table 7 metrics (lib.metrics), on tiny maps worked out by hand."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from lib import metrics


def _maps(*rows):
    return torch.tensor(rows, dtype=torch.float32).view(len(rows), 1, -1)


# ---------------------------------------------------------------- Table 3: rank correlations


def test_spearman_and_the_authors_argsort_differ_by_hand():
    # ranks (2, 3, 4, 1) and (1, 2, 4, 3): d = (1, 1, 0, -2), sum d^2 = 6, rho = 1 - 36/60 = 0.4.
    # argsort gives (3, 0, 1, 2) and (0, 1, 3, 2), ranked (4, 1, 2, 3) and (1, 2, 4, 3):
    # d = (3, -1, -2, 0), sum d^2 = 14, 1 - 84/60 = -0.4
    a = _maps([0.2, 0.3, 0.4, 0.1])
    b = _maps([0.1, 0.2, 0.4, 0.3])
    assert metrics.spearman(a, b).item() == pytest.approx(0.4)
    assert metrics.spearman_of_argsorts(a, b).item() == pytest.approx(-0.4)


def test_spearman_gives_ties_their_average_rank():
    # ranks (1.5, 1.5, 3, 4) against (1, 2, 3, 4): Pearson of the ranks = 4.5 / sqrt(4.5 * 5)
    a, b = _maps([0.0, 0.0, 1.0, 2.0]), _maps([1.0, 2.0, 3.0, 4.0])
    assert metrics.spearman(a, b).item() == pytest.approx(3 / math.sqrt(10))


def test_both_are_one_on_identical_maps_and_match_scipy_on_random_ones():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(5, 14, 14, generator=g), torch.rand(5, 14, 14, generator=g)
    assert torch.allclose(metrics.spearman(a, a), torch.ones(5, dtype=torch.float64))
    assert torch.allclose(metrics.spearman_of_argsorts(a, a), torch.ones(5, dtype=torch.float64))
    want = [spearmanr(u.ravel(), v.ravel()).statistic for u, v in zip(a.numpy(), b.numpy())]
    assert metrics.spearman(a, b).numpy() == pytest.approx(want)
    want = [
        spearmanr(np.argsort(u.ravel()), np.argsort(v.ravel())).statistic
        for u, v in zip(a.double().numpy(), b.double().numpy())
    ]
    assert metrics.spearman_of_argsorts(a, b).numpy() == pytest.approx(want)


def test_the_argsort_computation_loses_a_strong_correlation():
    # b is a increased monotonically plus a little noise: a real rank correlation near 1; the
    # argsort arrays (pixel indices in value order) of two such maps are nearly unrelated
    g = torch.Generator().manual_seed(1)
    a = torch.rand(20, 14, 14, generator=g)
    b = a**2 + 0.05 * torch.rand(20, 14, 14, generator=g)
    assert metrics.spearman(a, b).mean() > 0.95
    assert metrics.spearman_of_argsorts(a, b).abs().mean() < 0.5


def test_spearman_refuses_a_constant_map_unless_asked():
    a, flat = _maps([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]), _maps([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"1 of 2 pairs hold a constant map \(pairs \[1\]\)"):
        metrics.spearman(a, flat)
    out = metrics.spearman(a, flat, constant="nan")
    assert out[0].item() == pytest.approx(1.0) and math.isnan(out[1].item())


def test_rank_correlations_check_their_input():
    with pytest.raises(ValueError, match="one shape"):
        metrics.spearman(torch.rand(2, 3, 3), torch.rand(2, 3, 4))
    with pytest.raises(ValueError, match="NaN"):
        metrics.spearman_of_argsorts(torch.full((1, 2, 2), float("nan")), torch.rand(1, 2, 2))


# ---------------------------------------------------------------- Table 7: binarised maps


def test_percentile_of_the_positive_values_with_ties():
    # positives (1, 1, 1, 2): the 10th percentile lies between the first two 1s, so it is 1;
    # the three pixels tied at 1 are not above it, only the 2 is. 0 and -1 are not positive.
    m = _maps([-1.0, 0.0, 1.0, 1.0, 1.0, 2.0])
    for p in (1, 10):
        assert metrics.above_positive_percentile(m, p)[0, 0].tolist() == [False] * 5 + [True]


def test_percentile_interpolates_as_numpy():
    # positives 1..5: the 10th percentile is 1 + 0.4 * (2 - 1) = 1.4, so 2..5 are above it
    m = _maps([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    assert metrics.above_positive_percentile(m, 10)[0, 0].tolist() == [False, False] + [True] * 4
    g = torch.Generator().manual_seed(2)
    r = torch.randn(3, 8, 8, generator=g)
    for i in range(3):
        v = r[i].numpy()
        want = v > np.percentile(v[v > 0], 10)
        assert (metrics.above_positive_percentile(r, 10)[i].numpy() == want).all()


def test_a_map_without_positive_values_binarises_to_nothing():
    m = _maps([-1.0, 0.0, -3.0, 0.0])
    assert not metrics.above_positive_percentile(m, 1).any()
    with pytest.raises(ValueError, match="percentile in"):
        metrics.above_positive_percentile(m, 101)


def test_fidelity_by_hand():
    # logits (sum of the 4 pixels, 0): p_0 = sigmoid(sum). All ones: sigmoid(4); the top-left
    # pixel set to 0: sigmoid(3). Fidelity = sigmoid(4) - sigmoid(3) = 0.0294396632
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 1, 1, 1], [0, 0, 0, 0]]))
        model[1].bias.zero_()
    x = torch.ones(2, 1, 2, 2)
    masks = torch.tensor([[[True, False], [False, False]], [[False, False], [False, False]]])
    drop = metrics.fidelity(model, x, masks, [0, 0])
    assert drop[0].item() == pytest.approx(0.0294396632, abs=1e-7)  # float32 model
    assert drop[1].item() == 0.0  # nothing removed, nothing lost
    assert metrics.fidelity(model, x, masks, [0, 0], fill=1.0)[0].item() == 0.0
    with pytest.raises(ValueError, match="2 classes for 2 images|classes for"):
        metrics.fidelity(model, x, masks, [0])


def test_contrastivity_of_identical_and_disjoint_masks():
    a = torch.tensor([[True, True], [False, False]])
    same, disjoint = a.clone(), ~a
    overlap = torch.tensor([[False, True], [True, False]])  # xor {(0,0), (1,0)}, union 3
    assert metrics.mask_distance(a, same).item() == 0.0
    assert metrics.mask_distance(a, disjoint).item() == 1.0
    assert metrics.mask_distance(a, overlap).item() == pytest.approx(2 / 3)
    # class 0 against an identical (0) and a disjoint (1) mask: contrastivity 0.5
    masks = torch.stack([a, same, disjoint])[None]
    assert metrics.contrastivity(masks, [0]).item() == pytest.approx(0.5)
    # the target's own mask is left out: class 2 against (1, 1)
    assert metrics.contrastivity(masks, [2]).item() == pytest.approx(1.0)


def test_contrastivity_matches_the_authors_numpy_code():
    def theirs(pos, neg):  # Nagy et al.'s contrastivity_batch
        union = np.count_nonzero(np.logical_or(pos, neg))
        return 0 if union == 0 else np.count_nonzero(pos != neg) / union

    g = torch.Generator().manual_seed(3)
    masks = torch.rand(4, 10, 6, 6, generator=g) > 0.6
    masks[0, 3] = False
    masks[0, 7] = False  # one image: its class-7 mask is empty, the class-3 mask too
    classes = torch.tensor([7, 0, 9, 4])
    want = [
        np.mean([theirs(masks[i, c].numpy(), masks[i, j].numpy()) for j in range(10) if j != c])
        for i, c in enumerate(classes.tolist())
    ]
    assert metrics.contrastivity(masks, classes, empty="zero").numpy() == pytest.approx(want)


def test_two_empty_masks_have_no_contrastivity_unless_a_convention_is_chosen():
    empty = torch.zeros(1, 2, 2, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match="both empty"):
        metrics.contrastivity(empty, [0])
    assert metrics.contrastivity(empty, [0], empty="zero").item() == 0.0
    assert math.isnan(metrics.contrastivity(empty, [0], empty="nan").item())
    with pytest.raises(ValueError, match="one class in 0..1"):
        metrics.contrastivity(empty, [2])
