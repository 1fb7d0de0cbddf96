"""Box geometry: hand-computed values, and boxes move exactly as the image pixels do."""

import numpy as np
import pytest
import torch

from lib.data.boxes import box_mask, rescale_boxes, resize_crop_geometry
from lib.data.images import array_to_tensor


def test_nagy_square_resize_then_crop_by_hand():
    b, kept = rescale_boxes([[100, 50, 300, 250, 7]], 500, 375, 256, 224, "square")
    # x' = x * 256/500 - 16, y' = y * 256/375 - 16
    np.testing.assert_allclose(
        b.numpy(), [[35.2, 50 * 256 / 375 - 16, 137.6, 250 * 256 / 375 - 16, 7]], rtol=1e-6
    )
    assert kept.tolist() == [True]


def test_shorter_side_and_crop_offsets_by_hand():
    sx, sy, ox, oy, ow, oh = resize_crop_geometry(500, 375, 256, 224, "shorter")
    assert (
        (sx, sy) == (341 / 500, 256 / 375) and (ox, oy) == (58.0, 16.0) and (ow, oh) == (224, 224)
    )


def test_boxes_outside_the_crop_are_reported():
    b, kept = rescale_boxes([[0, 0, 10, 10], [200, 100, 300, 200]], 500, 500, 256, 224)
    assert kept.tolist() == [False, True] and b.shape == (1, 4)


@pytest.mark.parametrize("mode", ["square", "shorter"])
def test_box_follows_the_pixels(mode):
    img = np.zeros((150, 240), np.float32)
    x0, y0, x1, y1 = 60, 30, 180, 110
    img[y0:y1, x0:x1] = 1.0
    out = array_to_tensor(img, 128, 112, mode, channels=1)[0]
    ys, xs = torch.nonzero(out > 0.5, as_tuple=True)
    b, _ = rescale_boxes([[x0, y0, x1, y1]], 240, 150, 128, 112, mode)
    got = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)
    assert torch.allclose(got, b[0], atol=1.0), (got, b)


def test_box_mask_rounds_outwards():
    m = box_mask([[1.5, 0, 3, 2.2]], 4, 5)
    assert m.int().tolist() == [[0, 1, 1, 0, 0], [0, 1, 1, 0, 0], [0, 1, 1, 0, 0], [0, 0, 0, 0, 0]]


def test_crop_offset_rounds_like_torchvision():
    # 283 - 224 = 59: torchvision's centre crop starts at int(round(29.5)) = 30, not 29
    assert resize_crop_geometry(283, 256, 256, 224, "shorter")[2] == 30.0
    img = np.zeros((256, 283), np.float32)
    img[:, 100] = 1.0
    out = array_to_tensor(img, 256, 224, "shorter", channels=1)[0]
    assert torch.nonzero(out[0] > 0.5).flatten().tolist() == [70]
    b, _ = rescale_boxes([[100, 0, 101, 256]], 283, 256, 256, 224, "shorter")
    assert b[0, 0].item() == 70.0
