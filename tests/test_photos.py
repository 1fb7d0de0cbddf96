"""The hand-boxed photographs and the geometry that keeps boxes aligned with the model's input."""

import pytest
import torch

from lib.data import DataFormatError, photos
from lib.models.pretrained import preprocess


def test_every_photo_loads_with_its_boxes():
    names = photos.list_photos()
    assert {"chelsea", "coffee", "astronaut", "rocket", "camera", "china", "flower"} <= set(names)
    for name in names:
        img = photos.load_photo(name)
        assert img.dtype.name == "uint8" and img.ndim == 3 and img.shape[2] == 3
        objs, coords = photos.photo_boxes(name)
        assert len(objs) == len(coords) >= 1
        assert (coords[:, 2] > coords[:, 0]).all() and (coords[:, 3] <= 224).all()


def test_box_geometry_follows_the_preprocessing():
    """A white box painted on the photo lands exactly on the rescaled box after preprocess."""
    img = photos.load_photo("coffee").copy()  # 600 x 400: shorter side 400 -> 256, crop 224
    img[:] = 0
    img[100:300, 200:400] = 255
    box = torch.tensor([[200.0, 100.0, 400.0, 300.0]])
    from lib.data.boxes import rescale_boxes

    scaled, _ = rescale_boxes(box, 600, 400, 256, 224, mode="shorter")
    # by hand: scale 0.64 -> x 128..256 (width 384), y 64..192; crop offsets (384-224)/2=80, 16
    assert torch.allclose(scaled, torch.tensor([[48.0, 48.0, 176.0, 176.0]]))
    x = preprocess(img, mean=(0, 0, 0), std=(1, 1, 1))[0, 0]
    inside = x[50:174, 50:174]
    assert inside.min() > 0.99 and x[:46].max() < 0.01 and x[178:].max() < 0.01


def test_malformed_rows_name_the_file_and_line(tmp_path):
    good = "photo,object,x_min,y_min,x_max,y_max,imagenet_classes\n"
    bad = tmp_path / "boxes.csv"
    bad.write_text("# comment\n" + good + "coffee,cup,1,2,3\n")
    with pytest.raises(DataFormatError, match=r"boxes.csv, line 3: expected 7 fields"):
        photos.load_boxes(bad)
    bad.write_text(good + "coffee,cup,10,10,9999,20,967\n")
    with pytest.raises(DataFormatError, match=r"line 2: box .* outside the 600x400 image"):
        photos.load_boxes(bad)
    bad.write_text(good + "kitten,cat,0,0,1,1,\n")
    with pytest.raises(DataFormatError, match="line 2: unknown photograph 'kitten'"):
        photos.load_boxes(bad)
    bad.write_text(good + "coffee,cup,0,0,10,10,967;abc\n")
    with pytest.raises(DataFormatError, match="line 2: coordinates and classes must be integers"):
        photos.load_boxes(bad)


def test_bom_blank_lines_and_line_numbers_like_every_loader(tmp_path):
    """A byte-order mark and blank or whitespace-only lines are read as the other loaders read
    them; the line number of a bad row still counts every line of the file."""
    f = tmp_path / "boxes.csv"
    f.write_bytes(
        (
            "\ufeffphoto,object,x_min,y_min,x_max,y_max,imagenet_classes\n\n   \n"
            "coffee,cup,10,10,100,100,967\n\n"
        ).encode("utf-8")
    )
    (box,) = photos.load_boxes(f)
    assert (box.photo, box.x_min, box.y_max, box.imagenet_classes) == ("coffee", 10, 100, (967,))
    g = tmp_path / "bad.csv"  # load_boxes caches by path
    g.write_text("photo,object,x_min,y_min,x_max,y_max,imagenet_classes\n\n\ncoffee,cup,1,2\n")
    with pytest.raises(DataFormatError, match=r"line 4: expected 7 fields"):
        photos.load_boxes(g)
