"""Localisation metrics for explanation maps, exactly as the papers define them.

All functions take maps (N, H, W) at the input's resolution (already post-processed, so
non-negative where a paper says so) and boolean masks (N, H, W) or a dead-zone row slice, and
return one value per image as a float tensor.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

__all__ = ["mass_in_mask", "hit", "iou_top_area", "dead_zone_ratio", "is_empty"]


def _check(maps: torch.Tensor, masks: torch.Tensor | None = None) -> None:
    if maps.dim() != 3:
        raise ValueError(f"maps must be (N, H, W), got {tuple(maps.shape)}")
    if masks is not None and masks.shape != maps.shape:
        raise ValueError(
            f"masks {tuple(masks.shape)} must match maps {tuple(maps.shape)}: "
            "up-sample the maps to the input size first (lib.cam.postprocess)"
        )
    if not torch.isfinite(maps).all():
        raise ValueError("maps hold NaN or Inf")


def mass_in_mask(maps: torch.Tensor, masks: torch.Tensor, *, empty: str = "raise") -> torch.Tensor:
    """sum(A * M) / sum(A): the share of a non-negative map's mass inside the mask (Mascolini et
    al.'s localisation score s).

    A map that is zero everywhere has no mass to place, so no score: ``empty="raise"`` (default)
    refuses such maps, naming them; ``empty="nan"`` gives NaN for them (count them with
    :func:`is_empty`, average the others with ``torch.nanmean``).

    Args:
        maps: (N, H, W) non-negative maps at the input's resolution.
        masks: (N, H, W) bool (or 0/1) masks, the same shape.
        empty: ``"raise"`` or ``"nan"``, for maps that are zero everywhere.

    Returns:
        (N,) tensor of the maps' dtype: the share in [0, 1] per image.

    Example:
        >>> import torch
        >>> from lib.metrics import mass_in_mask
        >>> maps = torch.tensor([[[1., 3.], [0., 0.]]])          # mass 4, of which 3 in the mask
        >>> masks = torch.tensor([[[False, True], [False, False]]])
        >>> mass_in_mask(maps, masks)
        tensor([0.7500])
    """
    _check(maps, masks)
    if (maps < 0).any():
        raise ValueError("mass_in_mask needs non-negative maps (apply ReLU / postprocess first)")
    total = maps.flatten(1).sum(1)
    _check_empty(total > 0, empty, "mass_in_mask")
    inside = (maps * masks).flatten(1).sum(1)
    return torch.where(
        total > 0, inside / total.clamp(min=torch.finfo(maps.dtype).tiny), float("nan")
    )


def hit(maps: torch.Tensor, masks: torch.Tensor, tolerance: int = 0) -> torch.Tensor:
    """1 if the map's arg-max pixel lies inside the mask, else 0 (Santos et al.'s hit rate; Nagy et
    al.'s pointing game).

    ``tolerance`` > 0 counts a hit when the arg-max lies within that Euclidean distance in pixels of
    a mask pixel (a disc, as in Zhang et al.'s pointing game with its 15 px); ties take the first
    arg-max in row-major order.

    Args:
        maps: (N, H, W) maps.
        masks: (N, H, W) bool masks, the same shape.
        tolerance: pixels (>= 0) the arg-max may lie away from the mask.

    Returns:
        (N,) float tensor of 0.0 / 1.0.

    Example:
        >>> import torch
        >>> from lib.metrics import hit
        >>> maps = torch.tensor([[[0., 2.], [1., 0.]]])          # arg-max at row 0, column 1
        >>> hit(maps, torch.tensor([[[False, True], [False, False]]]))
        tensor([1.])
        >>> corner = torch.tensor([[[False, False], [True, False]]])  # sqrt(2) px away
        >>> hit(maps, corner), hit(maps, corner, tolerance=2)
        (tensor([0.]), tensor([1.]))
    """
    _check(maps, masks)
    if tolerance < 0:
        raise ValueError(f"hit: tolerance must be >= 0 pixels, got {tolerance}")
    m = masks.bool()
    idx = maps.flatten(1).argmax(1)
    if tolerance == 0:
        return m.flatten(1).gather(1, idx[:, None])[:, 0].float()
    h, w = m.shape[-2:]
    r, c = (idx // w).view(-1, 1, 1), (idx % w).view(-1, 1, 1)
    rows = torch.arange(h, device=m.device).view(1, h, 1)
    cols = torch.arange(w, device=m.device).view(1, 1, w)
    d2 = (rows - r) ** 2 + (cols - c) ** 2
    near = (d2 <= tolerance**2) & m
    return near.flatten(1).any(1).float()


def iou_top_area(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """IoU between the mask and the map binarised to its top-A pixels, A = the mask's area (Santos
    et al., Section 2.4).

    Ties at the threshold are broken by pixel order (top-k).

    Args:
        maps: (N, H, W) maps.
        masks: (N, H, W) bool masks, none empty.

    Returns:
        (N,) float32 tensor of IoUs in [0, 1].

    Example:
        >>> import torch
        >>> from lib.metrics import iou_top_area
        >>> maps = torch.tensor([[[4., 3.], [2., 1.]]])          # top-2 pixels: the first row
        >>> masks = torch.tensor([[[True, False], [True, False]]])  # the first column
        >>> iou_top_area(maps, masks)                         # 1 pixel shared of 3
        tensor([0.3333])
    """
    _check(maps, masks)
    flat = maps.flatten(1)
    m = masks.flatten(1).bool()
    out = torch.empty(len(maps), dtype=torch.float32, device=maps.device)
    for i in range(len(maps)):
        area = int(m[i].sum())
        if area == 0:
            raise ValueError(f"mask {i} is empty: IoU with an empty box is undefined")
        top = torch.zeros_like(m[i])
        top[flat[i].topk(area).indices] = True
        out[i] = (top & m[i]).sum() / (top | m[i]).sum()
    return out


def dead_zone_ratio(maps: torch.Tensor, dead_rows: slice, *, empty: str = "raise") -> torch.Tensor:
    """mu (Taimeskhanov et al., Eq. 7): ||Lambda[dead rows, :]||_2 / ||Lambda||_2 of the up-sampled
    map.

    The paper reports 100 * mu. A map that is zero everywhere (e.g. a Grad-CAM map negative
    everywhere, after ReLU) has no mass to place, so no mu: ``empty="raise"`` (default) refuses
    such maps, naming them; ``empty="nan"`` gives NaN for them (count them with
    :func:`is_empty` and average the others: the authors' code would give NaN too, 0 / 0).

    Args:
        maps: (N, H, W) maps at the input's resolution.
        dead_rows: the dead rows, a slice of H (``lib.rf.DeadZone.as_slice()``).
        empty: ``"raise"`` or ``"nan"``, for maps that are zero everywhere.

    Returns:
        (N,) tensor of the maps' dtype: mu in [0, 1] per image.

    Example:
        >>> import torch
        >>> from lib.metrics import dead_zone_ratio
        >>> maps = torch.tensor([[[3., 0.], [4., 0.]]])          # norm 5, the second row's 4
        >>> dead_zone_ratio(maps, slice(1, 2))
        tensor([0.8000])
    """
    _check(maps)
    norm = maps.flatten(1).norm(dim=1)
    _check_empty(norm > 0, empty, "dead_zone_ratio")
    dead = maps[:, dead_rows].flatten(1).norm(dim=1)
    return torch.where(norm > 0, dead / norm.clamp(min=torch.finfo(maps.dtype).tiny), float("nan"))


def is_empty(maps: torch.Tensor) -> torch.Tensor:
    """Which maps are zero everywhere (no mass for a share-of-mass metric).

    Args:
        maps: (N, H, W) maps.

    Returns:
        (N,) bool tensor: True for a map that is zero everywhere.

    Example:
        >>> import torch
        >>> from lib.metrics import is_empty
        >>> is_empty(torch.tensor([[[0., 0.]], [[0., 1.]]]))
        tensor([ True, False])
    """
    _check(maps)
    return ~(maps.flatten(1) != 0).any(1)


def _check_empty(nonempty: torch.Tensor, empty: str, name: str) -> None:
    if empty not in ("raise", "nan"):
        raise ValueError(f"{name}: empty must be 'raise' or 'nan', got {empty!r}")
    if empty == "raise" and not bool(nonempty.all()):
        idx = torch.nonzero(~nonempty).flatten().tolist()
        raise ValueError(
            f"{name}: {len(idx)} of {len(nonempty)} maps are zero everywhere (maps "
            f"{idx[:10]}{' ...' if len(idx) > 10 else ''}), so they have no share "
            "to measure. Pass empty='nan' to get NaN for them, count them with "
            "lib.metrics.is_empty and average the others"
        )


# --------------------------------------------------------------------------------------------
# Nagy et al. (Nagy, Nimara, Qian): boxes from maps, top-k localisation error, the pointing game,
# Table 5's score. Boxes in this section are (x_min, y_min, x_max, y_max) INCLUSIVE pixel
# indices, x the column (the ILSVRC XML convention); lib.data's boxes are exclusive (x_max - 1).
# --------------------------------------------------------------------------------------------

__all__ += [
    "NO_BOX",
    "gradcam_boxes",
    "box_iou",
    "iou_threshold",
    "localization_hit",
    "topk_localization_hits",
    "topk_class_hits",
    "topk_error",
    "class_box_masks",
    "pointing_recall",
    "share_above_in_mask",
]

#: the row :func:`gradcam_boxes` gives a map with nothing above its threshold: no box, a miss
NO_BOX = -1
_CONVENTIONS = ("pixels", "authors")


def gradcam_boxes(maps: torch.Tensor, threshold: float = 0.15) -> torch.Tensor:
    """Nagy et al.'s weakly supervised box of each map (the boxes of Table 1's localisation error):
    (x_min, y_min, x_max, y_max) inclusive.

    As the authors' code does it, with OpenCV: the pixels strictly above ``threshold`` x the map's
    max; their external contours (``cv2.findContours``, RETR_EXTERNAL: 8-connected blobs, what
    lies in a blob's hole ignored); the bounding rectangle of largest area w x h (not the blob
    with most pixels, nor the brightest; the first in OpenCV's order on a tie). Maps must be
    non-negative; the authors min-max normalise each up-sampled map first
    (``lib.cam.postprocess``), which leaves the boxes of a map whose min is 0 unchanged. A map
    with no pixel above its threshold (zero everywhere) gets the row ``NO_BOX`` (-1, -1, -1, -1):
    no box, which :func:`localization_hit` counts as a miss (the authors' code raised an
    IndexError); count them with ``(boxes[:, 0] == NO_BOX).sum()``.

    Args:
        maps: (N, H, W) non-negative maps.
        threshold: a fraction of each map's max in [0, 1) (Nagy et al.: 0.15).

    Returns:
        (N, 4) int64 tensor of boxes, x the column; ``NO_BOX`` rows for maps without one.

    Example:
        >>> import torch
        >>> from lib.metrics import gradcam_boxes
        >>> maps = torch.zeros(2, 4, 5)
        >>> maps[0, 1:3, 2:5] = 1                             # rows 1-2, columns 2-4
        >>> gradcam_boxes(maps)                               # the second map: no box
        tensor([[ 2,  1,  4,  2],
                [-1, -1, -1, -1]])
    """
    if maps.dim() != 3:
        raise ValueError(f"maps must be (N, H, W), got {tuple(maps.shape)}")
    if not 0 <= threshold < 1:
        raise ValueError(
            f"threshold={threshold}: a fraction of the map's max in [0, 1) (Nagy et al.: 0.15)"
        )
    arr = maps.detach().cpu()
    arr = (arr if arr.dtype in (torch.float32, torch.float64) else arr.float()).contiguous().numpy()
    flat = arr.reshape(len(arr), -1)
    # max and min propagate NaN and show Inf: one pass instead of isfinite's (the full profile
    # boxes 250,000 maps: speed matters here)
    peak, low = flat.max(1, initial=-np.inf), flat.min(1, initial=np.inf)
    if len(arr) and not (np.isfinite(peak).all() and np.isfinite(low).all()):
        raise ValueError("maps hold NaN or Inf")
    if len(arr) and (low < 0).any():
        raise ValueError(
            "gradcam_boxes needs non-negative maps: ReLU them first "
            "(lib.cam.postprocess does, as the authors did)"
        )
    level = arr.dtype.type(threshold) * peak  # in the maps' precision, as torch and NumPy do
    out = np.full((len(arr), 4), NO_BOX, dtype=np.int64)
    for i in range(len(arr)):
        binary = cv2.compare(arr[i], float(level[i]), cv2.CMP_GT)  # uint8 255 where above
        contours = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[-2]
        best = 0
        for c in contours:
            x, y, w, h = cv2.boundingRect(c)
            if w * h > best:  # strictly larger: the first rectangle wins a tie, as theirs
                best = w * h
                out[i] = (x, y, x + w - 1, y + h - 1)
    return torch.from_numpy(out)


def _check_boxes(boxes: torch.Tensor, name: str, allow_missing: bool = False) -> torch.Tensor:
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(
            f"{name} must be (N, 4) rows (x_min, y_min, x_max, y_max), got {tuple(boxes.shape)}"
        )
    b = boxes.to(torch.float64)
    if not torch.isfinite(b).all():
        raise ValueError(f"{name} hold NaN or Inf")
    valid = b[:, 0] != NO_BOX if allow_missing else torch.ones(len(b), dtype=torch.bool)
    bad = valid & ((b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1]))
    if bad.any():
        i = int(torch.nonzero(bad)[0])
        raise ValueError(
            f"{name} row {i} {b[i].tolist()} has x_max < x_min or y_max < y_min "
            "(boxes here are inclusive pixel indices)"
        )
    return b


def _ends(b: torch.Tensor, convention: str, predicted: bool) -> torch.Tensor:
    if convention not in _CONVENTIONS:
        raise ValueError(f"convention must be one of {_CONVENTIONS}, got {convention!r}")
    # pixels: a box covers x_max - x_min + 1 columns. The authors' shapely polygons: the
    # predicted box is OpenCV's (x, y, x + w, y + h), one past the last pixel; the ground truth's
    # numbers are used as corners as they stand, so its far edge is not + 1.
    return b[:, 2:] + 1 if (predicted or convention == "pixels") else b[:, 2:]


def box_iou(
    pred_boxes: torch.Tensor, gt_boxes: torch.Tensor, convention: str = "pixels"
) -> torch.Tensor:
    """IoU of box pairs, boxes inclusive (Nagy et al., Eq. 3's IoU).

    ``convention="pixels"``: boxes are sets of pixels; ``"authors"``: Nagy et al.'s code (shapely
    polygons; see :func:`iou_threshold`). A ``NO_BOX`` prediction has IoU 0.

    Args:
        pred_boxes: (N, 4) predicted boxes (x_min, y_min, x_max, y_max), or ``NO_BOX`` rows.
        gt_boxes: (N, 4) ground-truth boxes.
        convention: ``"pixels"`` or ``"authors"``.

    Returns:
        (N,) float64 tensor of IoUs.

    Example:
        >>> import torch
        >>> from lib.metrics import box_iou
        >>> # 2 x 2 px boxes one column apart: 2 px shared of 6
        >>> box_iou(torch.tensor([[0, 0, 1, 1]]), torch.tensor([[1, 0, 2, 1]]))
        tensor([0.3333], dtype=torch.float64)
    """
    p = _check_boxes(pred_boxes, "pred_boxes", allow_missing=True)
    g = _check_boxes(gt_boxes, "gt_boxes")
    if len(p) != len(g):
        raise ValueError(f"{len(p)} predicted boxes but {len(g)} ground-truth boxes")
    pe, ge = _ends(p, convention, True), _ends(g, convention, False)
    inter = (torch.minimum(pe, ge) - torch.maximum(p[:, :2], g[:, :2])).clamp(min=0).prod(1)
    union = (pe - p[:, :2]).prod(1) + (ge - g[:, :2]).prod(1) - inter
    found = p[:, 0] != NO_BOX
    return torch.where(found & (union > 0), inter / union.clamp(min=1e-300), 0.0)


def iou_threshold(gt_boxes: torch.Tensor, convention: str = "pixels") -> torch.Tensor:
    """The IoU a box needs (Nagy et al., Eq. 3; ILSVRC's rule): min(0.5, wh / ((w + 10)(h + 10))).

    w and h are the ground-truth box's width and height: x_max - x_min + 1 pixels
    (``convention="pixels"``) or x_max - x_min as the authors' code takes them (``"authors"``).
    Below about 24 x 24 px the size rule is the lower one.

    Args:
        gt_boxes: (N, 4) ground-truth boxes (x_min, y_min, x_max, y_max), inclusive.
        convention: ``"pixels"`` or ``"authors"``.

    Returns:
        (N,) float64 tensor of thresholds in (0, 0.5].

    Example:
        >>> import torch
        >>> from lib.metrics import iou_threshold
        >>> # 10 x 10 px: 100 / (20 * 20) = 0.25; 40 x 40 px: 0.64, capped at 0.5
        >>> iou_threshold(torch.tensor([[0, 0, 9, 9], [0, 0, 39, 39]]))
        tensor([0.2500, 0.5000], dtype=torch.float64)
    """
    g = _check_boxes(gt_boxes, "gt_boxes")
    wh = _ends(g, convention, False) - g[:, :2]
    w, h = wh[:, 0], wh[:, 1]
    return torch.clamp(w * h / ((w + 10) * (h + 10)), max=0.5)


def localization_hit(
    pred_boxes: torch.Tensor, gt_boxes: torch.Tensor, convention: str = "pixels"
) -> torch.Tensor:
    """1.0 where IoU(predicted, ground truth) >= min(0.5, wh / ((w + 10)(h + 10))) (Nagy et al.,
    Eq. 3), else 0.0. A ``NO_BOX`` prediction is a miss.

    Args:
        pred_boxes: (N, 4) predicted boxes, inclusive, or ``NO_BOX`` rows.
        gt_boxes: (N, 4) ground-truth boxes.
        convention: ``"pixels"`` or ``"authors"`` (:func:`iou_threshold`).

    Returns:
        (N,) float tensor of 0.0 / 1.0.

    Example:
        >>> import torch
        >>> from lib.metrics import localization_hit
        >>> gt = torch.tensor([[0, 0, 9, 9]] * 2)               # 10 x 10 px: threshold 0.25
        >>> localization_hit(torch.tensor([[0, 0, 4, 9], [0, 0, 1, 9]]), gt)  # IoU 0.5 and 0.2
        tensor([1., 0.])
    """
    iou = box_iou(pred_boxes, gt_boxes, convention)
    return (iou >= iou_threshold(gt_boxes, convention)).float()


def _gt_rows(gt_boxes, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    if len(gt_boxes) != n:
        raise ValueError(
            f"gt_boxes has {len(gt_boxes)} entries for {n} images: one (K_i, 5) "
            "tensor of rows (x_min, y_min, x_max, y_max, class) per image"
        )
    rows = []
    for i, g in enumerate(gt_boxes):
        g = torch.as_tensor(g, dtype=torch.float64)
        if g.numel() == 0:
            g = g.reshape(0, 5)
        if g.dim() != 2 or g.shape[1] != 5:
            raise ValueError(
                f"gt_boxes[{i}] must be (K, 5) rows (x_min, y_min, x_max, y_max, "
                f"class), got {tuple(g.shape)}"
            )
        rows.append(g)
    counts = torch.tensor([len(g) for g in rows])
    return torch.cat(rows) if rows else torch.zeros(0, 5, dtype=torch.float64), counts


def topk_localization_hits(
    pred_boxes: torch.Tensor, pred_classes: torch.Tensor, gt_boxes, convention: str = "pixels"
) -> torch.Tensor:
    """Whether the map of each image's j-th predicted class localises a ground-truth box of that
    class (:func:`localization_hit`), as Nagy et al.'s code scores its top-k maps (Table 1).

    A wrong class is a miss; an object with several acceptable classes has one row per class.

    Args:
        pred_boxes: (N, k, 4) boxes of each predicted class's map (:func:`gradcam_boxes`).
        pred_classes: (N, k) predicted classes, best first.
        gt_boxes: N tensors (K_i, 5), rows (x_min, y_min, x_max, y_max, class), inclusive.
        convention: ``"pixels"`` or ``"authors"``.

    Returns:
        (N, k) float tensor of 0.0 / 1.0.

    Example:
        >>> import torch
        >>> from lib.metrics import topk_localization_hits
        >>> boxes = torch.tensor([[[0, 0, 9, 9], [0, 0, 9, 9]]])  # the same box for both classes
        >>> gt = [torch.tensor([[0, 0, 9, 9, 5]])]             # one object, class 5
        >>> topk_localization_hits(boxes, torch.tensor([[3, 5]]), gt)  # class 3 is wrong
        tensor([[0., 1.]])
    """
    if (
        pred_boxes.dim() != 3
        or pred_boxes.shape[2] != 4
        or pred_classes.shape != pred_boxes.shape[:2]
    ):
        raise ValueError(
            f"pred_boxes must be (N, k, 4) and pred_classes (N, k); got "
            f"{tuple(pred_boxes.shape)} and {tuple(pred_classes.shape)}"
        )
    n, k = pred_classes.shape
    g, counts = _gt_rows(gt_boxes, n)
    img = torch.repeat_interleave(torch.arange(n), counts)
    match = pred_classes[img].to(torch.float64) == g[:, 4:5]  # (M, k)
    hit_m = (
        localization_hit(
            pred_boxes[img].reshape(-1, 4),
            g[:, None, :4].expand(-1, k, -1).reshape(-1, 4),
            convention,
        ).view(-1, k)
        * match
    )
    out = torch.zeros(n, k)
    return out.scatter_reduce_(0, img[:, None].expand(-1, k), hit_m.float(), "amax")


def topk_class_hits(pred_classes: torch.Tensor, gt_classes) -> torch.Tensor:
    """Whether each image's j-th predicted class is one of its classes (top-k classification, Nagy
    et al., Table 1).

    Args:
        pred_classes: (N, k) predicted classes, best first.
        gt_classes: N collections of the image's classes.

    Returns:
        (N, k) float tensor of 0.0 / 1.0.

    Example:
        >>> import torch
        >>> from lib.metrics import topk_class_hits
        >>> topk_class_hits(torch.tensor([[3, 5]]), [{5}])
        tensor([[0., 1.]])
    """
    if pred_classes.dim() != 2 or len(gt_classes) != len(pred_classes):
        raise ValueError(
            f"pred_classes must be (N, k) with one set of classes per image; got "
            f"{tuple(pred_classes.shape)} and {len(gt_classes)} sets"
        )
    return torch.tensor(
        [
            [float(int(c) in {int(t) for t in truth}) for c in row]
            for row, truth in zip(pred_classes.tolist(), gt_classes)
        ]
    ).reshape(pred_classes.shape)


def topk_error(hits: torch.Tensor, k: int) -> float:
    """1 - the share of images with a hit among their first ``k`` columns: top-k classification or
    localisation error (Nagy et al., Table 1), as a fraction.

    Args:
        hits: (N, K) 0/1 hits, columns in prediction order (:func:`topk_class_hits`,
            :func:`topk_localization_hits`).
        k: how many columns count, 1 <= k <= K.

    Returns:
        The error, a float in [0, 1].

    Example:
        >>> import torch
        >>> from lib.metrics import topk_error
        >>> hits = torch.tensor([[0., 1.], [0., 0.]])          # image 0 is right at its 2nd guess
        >>> topk_error(hits, 1), topk_error(hits, 2)
        (1.0, 0.5)
    """
    if hits.dim() != 2 or not 1 <= k <= hits.shape[1]:
        raise ValueError(f"hits must be (N, K) with 1 <= k <= K, got {tuple(hits.shape)}, k={k}")
    if len(hits) == 0:
        raise ValueError("no images: an error rate over zero images is undefined")
    return 1.0 - hits[:, :k].amax(1).float().mean().item()


def class_box_masks(gt_boxes, classes, height: int, width: int) -> torch.Tensor:
    """Per image, the union of its ground-truth boxes of one class, as a mask: with :func:`hit` this
    is Nagy et al.'s pointing game (a point on the box's edge is inside).

    Args:
        gt_boxes: N tensors (K_i, 5), rows (x_min, y_min, x_max, y_max, class), inclusive.
        classes: N classes, one per image.
        height: H of the masks.
        width: W of the masks.

    Returns:
        (N, H, W) bool tensor; empty where an image has no box of its class.

    Example:
        >>> import torch
        >>> from lib.metrics import class_box_masks
        >>> class_box_masks([torch.tensor([[1, 0, 2, 1, 7]])], [7], 2, 4)  # columns 1-2, rows 0-1
        tensor([[[False,  True,  True, False],
                 [False,  True,  True, False]]])
    """
    g, counts = _gt_rows(gt_boxes, len(classes))
    out = torch.zeros(len(classes), height, width, dtype=torch.bool)
    start = 0
    for i, (c, cnt) in enumerate(zip(torch.as_tensor(classes).tolist(), counts.tolist())):
        for x0, y0, x1, y1, cls in g[start : start + cnt].tolist():
            if int(cls) == int(c):
                out[i, max(int(y0), 0) : int(y1) + 1, max(int(x0), 0) : int(x1) + 1] = True
        start += cnt
    return out


def pointing_recall(
    hits: torch.Tensor, correct: torch.Tensor, peaks: torch.Tensor, threshold: float = 0.5
) -> float:
    """The pointing game's recall over the top-k predictions, as Nagy et al.'s code computes it
    (Table 2).

    Over all N x k (image, predicted class) pairs, a pair scores when its map's peak is
    >= ``threshold`` and its arg-max lies in a box of that class (``hits``), or when the class
    is wrong (``correct`` 0) and the peak is < ``threshold`` (the map declines to point); every
    other pair is a miss. ``peaks`` are the maps' maxima as the authors took them: ReLU'd and
    up-sampled but not normalised, so the threshold depends on the network's scale.

    Args:
        hits: (N, k) 0/1: the map's arg-max lies in a box of its class (0 for a wrong class).
        correct: (N, k) 0/1: the predicted class is one of the image's.
        peaks: (N, k) the maps' maxima.
        threshold: the peak a map needs to point.

    Returns:
        The recall, a float in [0, 1].

    Example:
        >>> import torch
        >>> from lib.metrics import pointing_recall
        >>> hits, correct = torch.tensor([[1., 0.]]), torch.tensor([[1., 0.]])
        >>> pointing_recall(hits, correct, torch.tensor([[0.9, 0.2]]))  # both pairs score
        1.0
        >>> pointing_recall(hits, correct, torch.tensor([[0.9, 0.7]]))  # the wrong class points
        0.5
    """
    if not (hits.shape == correct.shape == peaks.shape) or hits.dim() != 2:
        raise ValueError(
            f"hits, correct and peaks must be (N, k) alike, got {tuple(hits.shape)}, "
            f"{tuple(correct.shape)}, {tuple(peaks.shape)}"
        )
    if not torch.isfinite(peaks).all():
        raise ValueError("peaks hold NaN or Inf")
    h, c = hits.bool(), correct.bool()
    if (h & ~c).any():
        raise ValueError("a hit for a wrong class: hits must be 0 where correct is 0")
    scored = (h & (peaks >= threshold)) | (~c & (peaks < threshold))
    return scored.float().mean().item()


def share_above_in_mask(
    maps: torch.Tensor, masks: torch.Tensor, threshold: float = 0.85, *, empty: str = "raise"
) -> torch.Tensor:
    """Of the map's pixels strictly above ``threshold`` after per-image min-max normalisation, the
    fraction that lie in the mask (Nagy et al., Table 5).

    A constant map (zero everywhere, say) has no pixel above any threshold, so no score:
    ``empty="raise"`` (default) refuses it, naming it; ``empty="nan"`` gives NaN for it
    (count those with :func:`is_empty`, average the others with ``torch.nanmean``);
    ``empty="zero"`` scores it 0 and keeps it in the mean, as the authors' code did.

    Args:
        maps: (N, H, W) maps.
        masks: (N, H, W) bool masks (the boxes).
        threshold: a level of the normalised map in [0, 1) (Nagy et al.: 0.85).
        empty: ``"raise"``, ``"nan"`` or ``"zero"``, for constant maps.

    Returns:
        (N,) float tensor of shares in [0, 1].

    Example:
        >>> import torch
        >>> from lib.metrics import share_above_in_mask
        >>> maps = torch.tensor([[[0., 9.], [10., 1.]]])         # normalised: 0, 0.9, 1, 0.1
        >>> masks = torch.tensor([[[False, True], [False, False]]])
        >>> share_above_in_mask(maps, masks)                  # 1 of the 2 pixels above 0.85
        tensor([0.5000])
    """
    if empty == "zero":
        s = share_above_in_mask(maps, masks, threshold, empty="nan")
        return torch.nan_to_num(s, nan=0.0)
    _check(maps, masks)
    if not 0 <= threshold < 1:
        raise ValueError(
            f"threshold={threshold}: a level of the min-max normalised map in "
            "[0, 1) (Nagy et al.: 0.85)"
        )
    flat = maps.flatten(1)
    lo, hi = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    spread = hi - lo
    above = ((flat - lo) / spread.clamp(min=torch.finfo(maps.dtype).tiny) > threshold) & (
        spread > 0
    )
    n_above = above.sum(1)
    _check_empty(n_above > 0, empty, "share_above_in_mask")
    inside = (above & masks.flatten(1).bool()).sum(1)
    return torch.where(n_above > 0, inside / n_above.clamp(min=1), float("nan"))


# --------------------------------------------------------------------------------------------
# Nagy et al. (Nagy, Nimara, Qian), Tables 3 and 7: rank correlation of two maps (correct, and as
# the authors computed it), maps binarised above a percentile of their positive values,
# fidelity and contrastivity.
# --------------------------------------------------------------------------------------------

__all__ += [
    "spearman",
    "spearman_of_argsorts",
    "above_positive_percentile",
    "fidelity",
    "mask_distance",
    "contrastivity",
]


def _pairs(a: torch.Tensor, b: torch.Tensor, name: str):
    if a.dim() != 3 or a.shape != b.shape:
        raise ValueError(
            f"{name}: maps must be two (N, H, W) tensors of one shape, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise ValueError(f"{name}: maps hold NaN or Inf")
    return (
        a.detach().flatten(1).cpu().double().numpy(),
        b.detach().flatten(1).cpu().double().numpy(),
    )


def spearman(a: torch.Tensor, b: torch.Tensor, *, constant: str = "raise") -> torch.Tensor:
    """Spearman's rank correlation of each pair of maps: Nagy et al.'s Table 3 comparison of a map
    with the occlusion map, computed correctly (``scipy.stats.spearmanr`` on the flattened maps;
    tied values share their average rank).

    A map that is constant (zero everywhere, say) has no ranking, so no correlation:
    ``constant="raise"`` (default) refuses it, naming it; ``constant="nan"`` gives NaN for it
    (count those and average the others with ``torch.nanmean``).

    Args:
        a: (N, H, W) maps.
        b: (N, H, W) maps, the same shape.
        constant: ``"raise"`` or ``"nan"``, for pairs holding a constant map.

    Returns:
        (N,) float64 tensor of correlations in [-1, 1].

    Example:
        >>> import torch
        >>> from lib.metrics import spearman
        >>> a = torch.tensor([[[1., 2.], [3., 4.]]])
        >>> b = torch.tensor([[[2., 1.], [4., 3.]]])           # rank differences 1: 1 - 6 * 4 / 60
        >>> spearman(a, b)
        tensor([0.6000], dtype=torch.float64)
    """
    # lazy: scipy.stats costs ~1 s to import; only the rank correlations need it
    from scipy.stats import spearmanr

    if constant not in ("raise", "nan"):
        raise ValueError(f"spearman: constant must be 'raise' or 'nan', got {constant!r}")
    x, y = _pairs(a, b, "spearman")
    flat = (x.max(1) == x.min(1)) | (y.max(1) == y.min(1))
    if constant == "raise" and flat.any():
        idx = flat.nonzero()[0].tolist()
        raise ValueError(
            f"spearman: {len(idx)} of {len(x)} pairs hold a constant map (pairs "
            f"{idx[:10]}{' ...' if len(idx) > 10 else ''}), which has no ranking. "
            "Pass constant='nan' to get NaN for them and count them"
        )
    out = [float("nan") if f else float(spearmanr(u, v).statistic) for u, v, f in zip(x, y, flat)]
    return torch.tensor(out, dtype=torch.float64)


def spearman_of_argsorts(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """What Nagy et al.'s authors computed for Table 3 (their ``get_rank``):
    ``spearmanr(np.argsort(a.ravel()), np.argsort(b.ravel()))`` per pair of maps.

    ``argsort`` lists the pixel indices from the smallest value to the largest: the inverse of
    the ranking, not the ranks. Spearman's coefficient of two inverse permutations is a
    different number from that of the permutations themselves, and it depends on how
    ``argsort`` orders tied values. This reproduces the authors' numbers; it is not a rank
    correlation of the maps.

    Args:
        a: (N, H, W) maps.
        b: (N, H, W) maps, the same shape.

    Returns:
        (N,) float64 tensor.

    Example:
        >>> import torch
        >>> from lib.metrics import spearman, spearman_of_argsorts
        >>> a = torch.tensor([[[2., 3.], [4., 1.]]])           # ranks (2, 3, 4, 1)
        >>> b = torch.tensor([[[1., 2.], [4., 3.]]])           # ranks (1, 2, 4, 3)
        >>> spearman_of_argsorts(a, b), spearman(a, b)
        (tensor([-0.4000], dtype=torch.float64), tensor([0.4000], dtype=torch.float64))
    """
    # lazy: scipy.stats costs ~1 s to import; only the rank correlations need it
    from scipy.stats import spearmanr

    x, y = _pairs(a, b, "spearman_of_argsorts")
    # NumPy's default argsort (quicksort), as theirs: it decides the order of tied values
    out = [float(spearmanr(np.argsort(u), np.argsort(v)).statistic) for u, v in zip(x, y)]
    return torch.tensor(out, dtype=torch.float64)


def above_positive_percentile(maps: torch.Tensor, p: float) -> torch.Tensor:
    """The pixels whose value is strictly above the ``p``-th percentile of the map's positive
    values (linear interpolation, NumPy's default), as Nagy et al. binarise maps for Table 7
    (p = 1 or 10: nearly all positive pixels).

    A map with no positive value has an empty mask (the authors leave such an image as it is);
    count those with ``~mask.flatten(1).any(1)``. Values tied at the threshold are not above it.

    Args:
        maps: (N, H, W) maps.
        p: the percentile, in [0, 100].

    Returns:
        (N, H, W) bool tensor.

    Example:
        >>> import torch
        >>> from lib.metrics import above_positive_percentile
        >>> maps = torch.tensor([[[0., 1.], [2., 3.]]])          # positive values 1, 2, 3: median 2
        >>> above_positive_percentile(maps, 50)
        tensor([[[False, False],
                 [False,  True]]])
    """
    _check(maps)
    if not 0 <= p <= 100:
        raise ValueError(f"p={p}: a percentile in [0, 100] (Nagy et al.: 1 or 10)")
    out = torch.zeros_like(maps, dtype=torch.bool)
    for i, m in enumerate(maps):
        pos = m[m > 0]
        if pos.numel():
            out[i] = m > torch.quantile(pos.double(), p / 100).to(m.dtype)
    return out


def fidelity(
    model: torch.nn.Module,
    x: torch.Tensor,
    masks: torch.Tensor,
    classes,
    fill: float = 0.0,
    batch_size: int = 256,
) -> torch.Tensor:
    """p_c(x) - p_c(x with the mask's pixels set to ``fill``), per image, p_c the softmax
    probability of class ``classes[i]``: Nagy et al.'s fidelity (Table 7) is its mean.

    Args:
        model: a classifier returning logits (N, K).
        x: (N, C, H, W) inputs as the model takes them.
        masks: (N, H, W) bool, applied to every channel.
        classes: N classes, one per image.
        fill: the value the masked pixels get.
        batch_size: images per forward pass.

    Returns:
        (N,) float64 tensor of probability drops in [-1, 1].

    Example:
        >>> import math, torch
        >>> from lib.metrics import fidelity
        >>> x = torch.tensor([[[[math.log(3), 0.]]]])          # logits (log 3, 0): p_0 = 3 / 4
        >>> mask = torch.tensor([[[True, False]]])              # zeroed: logits (0, 0), p_0 = 1 / 2
        >>> fidelity(torch.nn.Flatten(), x, mask, [0])
        tensor([0.2500], dtype=torch.float64)
    """
    if x.dim() != 4 or masks.shape != (x.shape[0], *x.shape[2:]):
        raise ValueError(
            f"fidelity: x must be (N, C, H, W) and masks (N, H, W) of the same N, H, "
            f"W; got {tuple(x.shape)} and {tuple(masks.shape)}"
        )
    classes = torch.as_tensor(classes, device=x.device).long().view(-1)
    if len(classes) != len(x):
        raise ValueError(f"fidelity: {len(classes)} classes for {len(x)} images")
    masked = torch.where(
        masks.bool().to(x.device)[:, None], torch.as_tensor(fill, dtype=x.dtype, device=x.device), x
    )
    drops = []
    with torch.no_grad():
        for lo in range(0, len(x), batch_size):
            sl = slice(lo, lo + batch_size)
            rows = torch.arange(len(x[sl]), device=x.device)
            before = model(x[sl]).softmax(1)[rows, classes[sl]]
            after = model(masked[sl]).softmax(1)[rows, classes[sl]]
            drops.append((before - after).double().cpu())
    return torch.cat(drops)


def mask_distance(a: torch.Tensor, b: torch.Tensor, *, empty: str = "raise") -> torch.Tensor:
    """|a xor b| / |a or b| per pair of bool masks (the Hamming distance over the union, = 1 - IoU):
    0 for identical masks, 1 for disjoint ones (Nagy et al., Table 7's contrastivity).

    Two empty masks have no union: ``empty="raise"`` (default) refuses them; ``"nan"`` gives
    NaN; ``"zero"`` gives 0, as Nagy et al.'s code does.

    Args:
        a: (..., H, W) bool masks.
        b: (..., H, W) bool masks, the same shape.
        empty: ``"raise"``, ``"nan"`` or ``"zero"``, for pairs of empty masks.

    Returns:
        (...) float64 tensor of distances in [0, 1].

    Example:
        >>> import torch
        >>> from lib.metrics import mask_distance
        >>> a = torch.tensor([[True, True], [False, False]])
        >>> b = torch.tensor([[True, False], [True, False]])   # 2 pixels differ of 3 in the union
        >>> mask_distance(a, b)
        tensor(0.6667, dtype=torch.float64)
    """
    if a.shape != b.shape or a.dim() < 2:
        raise ValueError(
            f"mask_distance: masks must be two (..., H, W) tensors of one shape, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    if empty not in ("raise", "nan", "zero"):
        raise ValueError(f"mask_distance: empty must be 'raise', 'nan' or 'zero', got {empty!r}")
    a, b = a.bool().flatten(-2), b.bool().flatten(-2)
    xor, union = (a ^ b).sum(-1), (a | b).sum(-1)
    if empty == "raise" and (union == 0).any():
        raise ValueError(
            f"mask_distance: {int((union == 0).sum())} pairs of masks are both empty "
            "(no union to divide by). Pass empty='nan' to get NaN for them, or "
            "empty='zero' for Nagy et al.'s convention (0)"
        )
    fallback = 0.0 if empty == "zero" else float("nan")
    return torch.where(union > 0, xor / union.clamp(min=1), fallback).double()


def contrastivity(masks: torch.Tensor, classes, *, empty: str = "raise") -> torch.Tensor:
    """Nagy et al.'s contrastivity (Table 7), per image: the mean over the classes j != c of
    :func:`mask_distance` (M_c, M_j), c = ``classes[i]``.

    Args:
        masks: (N, K, H, W) bool: each image's binarised maps of all K >= 2 classes.
        classes: N classes in 0..K-1, one per image.
        empty: as in :func:`mask_distance`.

    Returns:
        (N,) float64 tensor in [0, 1].

    Example:
        >>> import torch
        >>> from lib.metrics import contrastivity
        >>> masks = torch.tensor([[[[True, False]], [[True, False]], [[False, True]]]])
        >>> contrastivity(masks, [0])                         # distances 0 and 1 from class 0's
        tensor([0.5000], dtype=torch.float64)
    """
    if masks.dim() != 4 or masks.shape[1] < 2:
        raise ValueError(
            f"contrastivity: masks must be (N, K, H, W) with K >= 2 classes, got "
            f"{tuple(masks.shape)}"
        )
    n, k = masks.shape[:2]
    classes = torch.as_tensor(classes).long().view(-1).cpu()
    if len(classes) != n or ((classes < 0) | (classes >= k)).any():
        raise ValueError(
            f"contrastivity: need one class in 0..{k - 1} per image ({n}), got "
            f"{classes.tolist()[:10]}"
        )
    masks = masks.bool().cpu()
    others = torch.ones(n, k, dtype=torch.bool)
    others[torch.arange(n), classes] = False
    rest = masks[others].view(n, k - 1, *masks.shape[2:])
    own = masks[torch.arange(n), classes][:, None].expand_as(rest)
    return mask_distance(own, rest, empty=empty).mean(1)
