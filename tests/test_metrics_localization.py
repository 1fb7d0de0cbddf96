"""Nagy et al.'s localisation protocol in lib.metrics (boxes from maps, Eq. 3's hit rule, top-k
errors, the pointing game and its recall, Table 5's score), against values worked out by hand,
scikit-image's labelling and the authors' own formulas."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lib import metrics
from lib.metrics import NO_BOX


def _two_blobs() -> torch.Tensor:
    m = torch.zeros(12, 16)
    m[1:5, 1:5] = 1.0  # the bright blob: 16 px, a 4 x 4 = 16 rectangle
    for k in range(6):  # a dim diagonal: 6 px, 8-connected, a 6 x 6 rectangle
        m[6 + k, 6 + k] = 0.3
    m[0, 6:16] = 0.15  # exactly 15 % of the max: NOT above the threshold
    m[0:12, 15] = 0.15  # (its 10 x 12 rectangle would win with >=)
    return m


def test_boxes_keep_the_largest_rectangle_not_the_brightest_or_biggest_blob():
    boxes = metrics.gradcam_boxes(_two_blobs()[None])
    # the diagonal's rectangle: columns 6..11, rows 6..11, inclusive
    assert boxes.tolist() == [[6, 6, 11, 11]]
    # with the ramp just above 15 % the L-shape's 10 x 12 rectangle wins
    m = _two_blobs()
    m[m == 0.15] = 0.151
    assert metrics.gradcam_boxes(m[None]).tolist() == [[6, 0, 15, 11]]
    # a higher threshold drops the dim diagonal: the bright square is left
    assert metrics.gradcam_boxes(_two_blobs()[None], threshold=0.5).tolist() == [[1, 1, 4, 4]]


def test_boxes_agree_with_scikit_image_labelling():
    from skimage.measure import label, regionprops

    g = torch.Generator().manual_seed(0)
    low = torch.rand(300, 1, 9, 9, generator=g) ** 3  # peaky: several blobs per map
    maps = F.interpolate(low, size=(96, 112), mode="bilinear", align_corners=False)[:, 0]
    maps[:20] += 0.2 * torch.rand(20, 96, 112, generator=g)  # noisy maps: many small blobs
    boxes = metrics.gradcam_boxes(maps)
    unique = 0
    for m, b in zip(maps.numpy(), boxes.tolist()):
        regions = regionprops(label(m > 0.15 * m.max(), connectivity=2))
        areas = [(r.bbox[2] - r.bbox[0]) * (r.bbox[3] - r.bbox[1]) for r in regions]
        best = max(areas)
        assert (b[2] - b[0] + 1) * (b[3] - b[1] + 1) == best
        winners = [r.bbox for r, a in zip(regions, areas) if a == best]
        if len(winners) == 1:  # OpenCV and scikit-image order ties differently
            r0, c0, r1, c1 = winners[0]
            assert b == [c0, r0, c1 - 1, r1 - 1]
            unique += 1
    assert unique > 250


def test_an_empty_map_is_a_counted_miss_not_an_exception():
    maps = torch.zeros(3, 8, 8)
    maps[0, 2:4, 3:6] = 1.0
    maps[2, 7, 7] = 2.0
    boxes = metrics.gradcam_boxes(maps)
    assert boxes.tolist() == [[3, 2, 5, 3], [NO_BOX] * 4, [7, 7, 7, 7]]
    assert int((boxes[:, 0] == NO_BOX).sum()) == 1
    gt = torch.tensor([[3, 2, 5, 3]] * 3)
    assert metrics.localization_hit(boxes, gt).tolist() == [1.0, 0.0, 0.0]


def test_boxes_refuse_bad_maps():
    with pytest.raises(ValueError, match="non-negative"):
        metrics.gradcam_boxes(-torch.ones(1, 4, 4))
    with pytest.raises(ValueError, match="NaN"):
        metrics.gradcam_boxes(torch.full((1, 4, 4), float("nan")))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        metrics.gradcam_boxes(torch.ones(4, 4))
    with pytest.raises(ValueError, match="0.15"):
        metrics.gradcam_boxes(torch.ones(1, 4, 4), threshold=15)


def test_hit_rule_size_rule_versus_one_half():
    gt = torch.tensor([[0, 0, 9, 9]])  # 10 x 10 px: min(0.5, 100 / 400) = 0.25
    assert metrics.iou_threshold(gt).item() == 0.25
    narrow = torch.tensor([[0, 0, 2, 9]])  # 30 px inside the box: IoU 30 / 100 = 0.3
    assert metrics.box_iou(narrow, gt).item() == pytest.approx(0.3)
    assert metrics.localization_hit(narrow, gt).item() == 1.0  # a plain 0.5 rule would miss
    assert metrics.localization_hit(torch.tensor([[0, 0, 1, 9]]), gt).item() == 0.0  # 0.2
    big = torch.tensor([[0, 0, 99, 99]])  # min(0.5, 10000 / 12100) = 0.5
    assert metrics.iou_threshold(big).item() == 0.5
    assert metrics.localization_hit(torch.tensor([[0, 0, 48, 99]]), big).item() == 0.0  # 0.49
    assert metrics.localization_hit(torch.tensor([[0, 0, 49, 99]]), big).item() == 1.0  # 0.50


def test_hit_rule_in_the_authors_arithmetic():
    # their GT numbers are polygon corners (a 9 x 9 square for (0, 0, 9, 9)) and their predicted
    # box is OpenCV's (x, y, x + w, y + h): (0, 0, 3, 10) for the pixels 0..2 x 0..9
    gt, pred = torch.tensor([[0, 0, 9, 9]]), torch.tensor([[0, 0, 2, 9]])
    assert metrics.iou_threshold(gt, "authors").item() == pytest.approx(81 / 361)
    # intersection 3 x 9 = 27; union 30 + 81 - 27 = 84
    assert metrics.box_iou(pred, gt, "authors").item() == pytest.approx(27 / 84)
    # the same box in both arithmetics disagrees: IoU 1 with pixels, 81 / 100 for the authors
    assert metrics.box_iou(gt, gt, "authors").item() == pytest.approx(0.81)
    with pytest.raises(ValueError, match="convention"):
        metrics.box_iou(pred, gt, "voc")
    with pytest.raises(ValueError, match="x_max < x_min"):
        metrics.localization_hit(pred, torch.tensor([[5, 0, 4, 9]]))


def test_topk_localisation_and_classification_errors_by_hand():
    gt = [torch.tensor([[0, 0, 9, 9, 3]]), torch.tensor([[10, 10, 19, 19, 1], [30, 30, 39, 39, 1]])]
    classes = torch.tensor([[5, 3], [1, 2]])
    boxes = torch.tensor(
        [
            [[0, 0, 9, 9], [0, 0, 4, 9]],  # right box, wrong class; hit
            [[30, 30, 39, 39], [10, 10, 19, 19]],
        ]
    )  # the 2nd box; wrong class
    hits = metrics.topk_localization_hits(boxes, classes, gt)
    assert hits.tolist() == [[0.0, 1.0], [1.0, 0.0]]
    assert metrics.topk_error(hits, 1) == 0.5 and metrics.topk_error(hits, 2) == 0.0
    cls_hits = metrics.topk_class_hits(classes, [{3}, {1}])
    assert cls_hits.tolist() == [[0.0, 1.0], [1.0, 0.0]]
    # a right class whose map gives no box is a miss
    boxes[1, 0] = NO_BOX
    assert metrics.topk_localization_hits(boxes, classes, gt)[1].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="entries for 2 images"):
        metrics.topk_localization_hits(boxes, classes, gt[:1])


def test_pointing_game_edges_and_tolerance():
    gt = [torch.tensor([[10, 10, 19, 19, 0]])]
    mask = metrics.class_box_masks(gt, [0], 40, 40)
    assert mask.sum() == 100 and mask[0, 10, 10] and mask[0, 19, 19] and not mask[0, 20, 19]
    assert metrics.class_box_masks(gt, [7], 40, 40).sum() == 0  # no box of that class

    def point(r, c):
        m = torch.zeros(1, 40, 40)
        m[0, r, c] = 1.0
        return m

    assert metrics.hit(point(15, 19), mask).item() == 1.0  # on the edge: inside
    assert metrics.hit(point(15, 20), mask).item() == 0.0
    # Zhang et al.'s 15 px tolerance, straight right of the box
    assert metrics.hit(point(15, 33), mask, tolerance=15).item() == 1.0  # 14 px away
    assert metrics.hit(point(15, 35), mask, tolerance=15).item() == 0.0  # 16 px away
    assert metrics.hit(point(15, 33), mask).item() == 0.0  # Nagy et al.: none
    # diagonally off the corner (19, 19): (30, 30) is 11 * sqrt(2) = 15.6 px away, outside the
    # 15 px disc although both offsets are under 15; (29, 29) is 14.1 px away, inside
    assert metrics.hit(point(30, 30), mask, tolerance=15).item() == 0.0
    assert metrics.hit(point(29, 29), mask, tolerance=15).item() == 1.0


def test_pointing_recall_as_the_authors_code():
    hits = torch.tensor([[1, 0], [0, 0], [1, 0]])
    correct = torch.tensor([[1, 0], [1, 0], [1, 1]])
    peaks = torch.tensor([[0.9, 0.2], [0.8, 0.7], [0.4, 0.1]])
    # (0,0) hit & peak >= .5: yes; (0,1) wrong & peak < .5: yes; (1,0) right, miss: no;
    # (1,1) wrong but peak .7: no; (2,0) hit but peak .4: no; (2,1) right, miss: no -> 2 / 6
    assert metrics.pointing_recall(hits, correct, peaks) == pytest.approx(2 / 6)
    # their formula, written as their numpy code has it
    h, c, p = hits.numpy(), correct.numpy(), peaks.numpy()
    theirs = np.logical_or(np.logical_and(h, p >= 0.5), np.logical_and(np.logical_not(c), p < 0.5))
    assert metrics.pointing_recall(hits, correct, peaks) == pytest.approx(theirs.mean())
    # the threshold itself counts as a confident peak (>=), as in their code
    assert (
        metrics.pointing_recall(torch.tensor([[1]]), torch.tensor([[1]]), torch.tensor([[0.5]]))
        == 1.0
    )
    with pytest.raises(ValueError, match="wrong class"):
        metrics.pointing_recall(torch.tensor([[1]]), torch.tensor([[0]]), torch.tensor([[1.0]]))


def test_share_above_in_mask_by_hand():
    maps = torch.tensor(
        [
            [[0.0, 10.0, 9.0, 2.0], [1.0, 9.6, 8.0, 9.9]],
            [[3.0, 3.0, 3.0, 3.0], [3.0, 3.0, 3.0, 3.0]],
        ]
    )
    masks = torch.zeros(2, 2, 4, dtype=torch.bool)
    masks[:, :, :2] = True
    # min-max: 10 -> 1, 9.9 -> .99, 9.6 -> .96, 9 -> .9, 8 -> .8: four pixels above 0.85, two
    # of them (10 and 9.6) in the left half; the constant map has none
    s = metrics.share_above_in_mask(maps, masks, empty="nan")
    assert s[0].item() == pytest.approx(0.5) and s[1].isnan()
    with pytest.raises(ValueError, match="zero everywhere"):
        metrics.share_above_in_mask(maps, masks)
    # a pixel exactly at 0.85 after min-max (17 of 0..20) is not above it
    edge = torch.tensor([[[0.0, 20.0, 17.0, 17.0]]])
    inside = torch.tensor([[[False, True, False, False]]])
    assert metrics.share_above_in_mask(edge, inside).item() == 1.0
    # above 0.95: 10, 9.9 and 9.6; inside: 10 and 9.6
    assert metrics.share_above_in_mask(maps[:1], masks[:1], threshold=0.95).item() == pytest.approx(
        2 / 3
    )


def test_share_above_in_mask_scores_an_empty_map_zero_as_the_authors():
    """Nagy et al.'s code scores an all-zero (or constant) map 0 and keeps it in the mean."""
    maps = torch.tensor(
        [
            [[0.0, 10.0, 9.0, 2.0], [1.0, 9.6, 8.0, 9.9]],
            [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]],
        ]
    )
    masks = torch.zeros(2, 2, 4, dtype=torch.bool)
    masks[:, :, :2] = True
    s = metrics.share_above_in_mask(maps, masks, empty="zero")
    assert s.tolist() == pytest.approx([0.5, 0.0])
    assert s.mean().item() == pytest.approx(0.25)  # the empty map pulls the mean down
    assert torch.nanmean(metrics.share_above_in_mask(maps, masks, empty="nan")).item() == 0.5
