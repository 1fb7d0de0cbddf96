"""The U-Net resolution chapter's full-profile folder: images and masks written here, their
geometry worked out by hand, and every malformed input named."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from lib.data import DataFormatError, DataMissingError
from lib.data.unet_folder import list_unet_folder, load_unet_folder, unet_folder_dir


def save_image(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def square_mask(h, w, y0, y1, x0, x1, on=255):
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = on
    return m


def make_folder(root, h=16, w=16):
    """train: 2 classes x 1 image; test: cat/a (mask rows 4..7, cols 2..9), dog/b (all but row 0)."""
    base = root / "unet_resolution"
    save_image(base / "train" / "images" / "cat" / "t1.png", rgb(h, w, 1))
    save_image(base / "train" / "images" / "dog" / "t2.jpg", rgb(h, w, 2))
    save_image(base / "test" / "images" / "cat" / "a.png", rgb(h, w, 3))
    save_image(base / "test" / "images" / "dog" / "b.png", rgb(h, w, 4))
    save_image(base / "test" / "masks" / "cat" / "a.png", square_mask(h, w, 4, 8, 2, 10))
    save_image(base / "test" / "masks" / "dog" / "b.png", square_mask(h, w, 1, h, 0, w, on=1))
    return base


def test_reads_images_labels_and_masks_exactly(tmp_path):
    base = make_folder(tmp_path)
    d = load_unet_folder(tmp_path, "test", size=16, channels=3)
    assert d.classes == ("cat", "dog") and d.labels.tolist() == [0, 1]
    assert d.names == ["cat/a.png", "dog/b.png"]
    # at the file's own size nothing is resampled: the pixels come back exactly
    assert torch.equal(d.images[0], torch.from_numpy(rgb(16, 16, 3)).permute(2, 0, 1))
    assert d.images.dtype == torch.uint8 and d.float_images().max() <= 1
    assert torch.equal(d.masks[0], torch.from_numpy(square_mask(16, 16, 4, 8, 2, 10) > 0))
    assert int(d.masks[1].sum()) == 15 * 16  # mask values 0/1 read as well as 0/255
    assert d.root == base and d.report.kept == 2 and d.report.n_dropped == 0


def test_train_split_has_no_masks_by_default_and_grey_images(tmp_path):
    make_folder(tmp_path)
    d = load_unet_folder(tmp_path, "train", size=16, channels=1)
    assert d.masks is None and d.images.shape == (2, 1, 16, 16)
    expected = np.asarray(Image.fromarray(rgb(16, 16, 1)).convert("L"))
    assert torch.equal(d.images[0, 0], torch.from_numpy(expected.copy()))


def test_resize_shorter_side_then_centre_crop(tmp_path):
    """A 20 x 40 (w x h) image at size 10: resized to 10 x 20, rows 5..14 kept. A mask of rows
    20..39 (the lower half) becomes rows 10..19 of the resized mask, i.e. rows 5..9 of the crop."""
    base = tmp_path / "unet_resolution"
    img = np.zeros((40, 20, 3), np.uint8)
    img[20:] = 200
    save_image(base / "test" / "images" / "c" / "x.png", img)
    save_image(base / "test" / "masks" / "c" / "x.png", square_mask(40, 20, 20, 40, 0, 20))
    d = load_unet_folder(tmp_path, "test", size=10, channels=1)
    want = torch.zeros(10, 10, dtype=torch.bool)
    want[5:] = True
    assert torch.equal(d.masks[0], want)
    assert (d.images[0, 0, :4] == 0).all() and (d.images[0, 0, 6:] == 200).all()


def test_folder_may_be_data_root_itself(tmp_path):
    base = make_folder(tmp_path)
    assert unet_folder_dir(base) == base
    assert len(load_unet_folder(base, "test", size=16)) == 2


def test_classes_txt_sets_the_order(tmp_path):
    base = make_folder(tmp_path)
    (base / "classes.txt").write_text("\ufeffdog\n\nbird\ncat\n")  # BOM and a blank line
    d = load_unet_folder(tmp_path, "test", size=16)
    assert d.classes == ("dog", "bird", "cat") and d.labels.tolist() == [2, 0]


@pytest.mark.parametrize(
    "text, match",
    [
        ("dog\ncat\ndog\n", r"classes.txt, line 3: class 'dog' is listed twice \(lines 1 and 3\)"),
        ("dog\nbig cat\n", r"classes.txt, line 2: 'big cat' is not a class folder name"),
        ("\n\n", r"classes.txt: lists no class"),
    ],
)
def test_malformed_classes_txt_names_file_and_line(tmp_path, text, match):
    base = make_folder(tmp_path)
    (base / "classes.txt").write_text(text)
    with pytest.raises(DataFormatError, match=match):
        load_unet_folder(tmp_path, "test", size=16)


def test_class_folder_not_listed(tmp_path):
    base = make_folder(tmp_path)
    (base / "classes.txt").write_text("cat\n")
    with pytest.raises(
        DataFormatError, match=r"test/images/dog: class folder 'dog' is not in classes.txt"
    ):
        load_unet_folder(tmp_path, "test", size=16)


def test_absent_folder_and_none_raise_data_missing(tmp_path):
    with pytest.raises(DataMissingError, match=r"(?s)data_root is None.*`default` profile"):
        load_unet_folder(None, "test")
    with pytest.raises(DataMissingError, match=r"(?s)unet_resolution/train/images/.*Looked in"):
        load_unet_folder(tmp_path, "test")


def test_missing_split_and_missing_masks_are_named(tmp_path):
    base = make_folder(tmp_path)
    (base / "test" / "masks" / "dog" / "b.png").unlink()
    with pytest.raises(DataMissingError, match=r"masks/dog/b\.png"):
        load_unet_folder(tmp_path, "test", size=16)
    # the train split without masks is still readable; asked with masks it names them all
    assert len(load_unet_folder(tmp_path, "train", size=16)) == 2
    with pytest.raises(
        DataMissingError, match=r"(?s)train/masks/cat/t1\.png.*train/masks/dog/t2\.png"
    ):
        list_unet_folder(tmp_path, "train", masks=True)
    import shutil

    shutil.rmtree(base / "test")
    with pytest.raises(DataMissingError, match=r"test/images/<class>"):
        load_unet_folder(tmp_path, "test", size=16)


@pytest.mark.parametrize(
    "mask, match",
    [
        (np.full((16, 16), 7, np.uint8), r"mask values \{7\}: a mask holds 0"),
        (
            square_mask(16, 16, 0, 4, 0, 4) + square_mask(16, 16, 8, 9, 8, 9, on=1),
            r"mask values \{0, 1, 255\}",
        ),
        (np.zeros((16, 16), np.uint8), "the mask marks no object pixel"),
        (np.zeros((8, 16), np.uint8), r"the mask is 16x8 px but its image a.png is 16x16"),
        (
            np.dstack(
                [
                    square_mask(16, 16, 0, 4, 0, 4),
                    np.zeros((16, 16), np.uint8),
                    np.zeros((16, 16), np.uint8),
                ]
            ),
            "a colour mask",
        ),
    ],
)
def test_malformed_mask_names_the_file(tmp_path, mask, match):
    base = make_folder(tmp_path)
    save_image(base / "test" / "masks" / "cat" / "a.png", mask)
    with pytest.raises(DataFormatError, match=r"masks/cat/a\.png: " + match):
        load_unet_folder(tmp_path, "test", size=16)


def test_grey_mask_saved_as_rgb_is_accepted(tmp_path):
    base = make_folder(tmp_path)
    m = square_mask(16, 16, 4, 8, 2, 10)
    save_image(base / "test" / "masks" / "cat" / "a.png", np.dstack([m, m, m]))
    assert int(load_unet_folder(tmp_path, "test", size=16).masks[0].sum()) == 4 * 8


def test_object_that_vanishes_when_resized(tmp_path):
    base = make_folder(tmp_path, h=64, w=64)
    save_image(base / "test" / "masks" / "cat" / "a.png", square_mask(64, 64, 1, 2, 1, 2))
    with pytest.raises(DataFormatError, match=r"masks/cat/a\.png: the object \(1 px\) vanishes"):
        load_unet_folder(tmp_path, "test", size=8)


def test_unreadable_image_names_the_file(tmp_path):
    base = make_folder(tmp_path)
    (base / "test" / "images" / "cat" / "a.png").write_bytes(b"not a png")
    with pytest.raises(DataFormatError, match=r"images/cat/a\.png: not a readable image"):
        load_unet_folder(tmp_path, "test", size=16)


def test_other_files_are_dropped_and_counted(tmp_path, caplog):
    base = make_folder(tmp_path)
    (base / "test" / "images" / "cat" / "notes.txt").write_text("x")
    (base / "test" / "images" / "cat" / ".DS_Store").write_bytes(b"\0")
    save_image(base / "test" / "masks" / "cat" / "orphan.png", square_mask(16, 16, 0, 2, 0, 2))
    with caplog.at_level(logging.WARNING, logger="lib.data"):
        d = load_unet_folder(tmp_path, "test", size=16)
    assert len(d) == 2 and d.report.n_dropped == 2
    assert d.report.warned["mask without an image"] == 1
    assert "dropped 2" in caplog.text and "cat/notes.txt" in caplog.text


def test_n_keeps_the_first_images(tmp_path):
    make_folder(tmp_path)
    d = load_unet_folder(tmp_path, "test", size=16, n=1)
    assert d.names == ["cat/a.png"] and d.masks.shape == (1, 16, 16)


def test_bad_arguments(tmp_path):
    make_folder(tmp_path)
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        load_unet_folder(tmp_path, "val")
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        load_unet_folder(tmp_path, "test", channels=2)
