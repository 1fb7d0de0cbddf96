"""Taimeskhanov et al.'s STACK-MIX / STACK-GEN folders: preprocessing as the authors' code, label sources."""

import numpy as np
import pytest
import torch
from PIL import Image

from lib.data import DataFormatError, DataMissingError
from lib.data.stack_folders import load_stack_folder


def save(path, h, w, value=None, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arr = (
        rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        if value is None
        else np.full((h, w, 3), value, np.uint8)
    )
    Image.fromarray(arr).save(path)
    return arr


def test_stackmix_as_is_and_labels_from_wnid(tmp_path):
    a = save(tmp_path / "stack" / "stackmix" / "n01440764_tench.png", 224, 224)
    save(tmp_path / "stack" / "stackmix" / "n01443537_goldfish.png", 224, 224, seed=1)
    s = load_stack_folder(tmp_path, "stackmix")
    assert s.labels.tolist() == [0, 1] and s.labels_known and s.names[0] == "n01440764_tench.png"
    assert torch.allclose(s.images[0], torch.from_numpy(a).permute(2, 0, 1).float() / 255)


def test_stackgen_resized_and_cropped_like_torchvision(tmp_path):
    import torchvision.transforms as T

    save(tmp_path / "stackgen" / "img_000.png", 300, 400, seed=2)
    s = load_stack_folder(tmp_path, "stackgen")
    ref = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor()])(
        Image.open(tmp_path / "stackgen" / "img_000.png").convert("RGB")
    )
    assert s.images.shape == (1, 3, 224, 224)
    # tensor vs PIL resizing differ slightly; the geometry must be the same
    assert (s.images[0] - ref).abs().mean() < 0.02
    assert s.labels.tolist() == [-1] and not s.labels_known


def test_labels_csv_and_subfolders(tmp_path):
    save(tmp_path / "stackmix" / "a.png", 224, 224)
    save(tmp_path / "stackmix" / "b.png", 224, 224)
    (tmp_path / "stackmix" / "labels.csv").write_text("file,label\na.png,n01751748\nb.png,281\n")
    assert load_stack_folder(tmp_path, "stackmix").labels.tolist() == [65, 281]
    (tmp_path / "stackmix" / "labels.csv").write_text("file,label\na.png,cat\nb.png,281\n")
    with pytest.raises(DataFormatError, match="labels.csv, line 2: label 'cat'"):
        load_stack_folder(tmp_path, "stackmix")
    save(tmp_path / "x" / "stackgen" / "n02123045" / "1.jpg", 224, 224)
    assert load_stack_folder(tmp_path / "x", "stackgen").labels.tolist() == [281]


def test_missing_folder(tmp_path):
    with pytest.raises(
        DataMissingError,
        match=r"(?s)stackmix.*MagamedT/cam-can-see-through-walls.*`default` profile",
    ):
        load_stack_folder(tmp_path, "stackmix")


# -- issue #9, item 14 -----------------------------------------------------------------------------
def test_duplicate_labels_row_is_an_error(tmp_path):
    save(tmp_path / "stackmix" / "a.png", 224, 224)
    (tmp_path / "stackmix" / "labels.csv").write_text("file,label\na.png,n01751748\n a.png,281\n")
    with pytest.raises(
        DataFormatError, match=r"labels.csv, line 3: a.png appears twice \(first on line 2\)"
    ):
        load_stack_folder(tmp_path, "stackmix")


def test_labels_bom_and_blank_lines(tmp_path):
    save(tmp_path / "stackmix" / "a.png", 224, 224)
    save(tmp_path / "stackmix" / "b.png", 224, 224)
    (tmp_path / "stackmix" / "labels.csv").write_text(
        "\ufefffile,label\na.png,n01751748\n\nb.png,281\n \n\n", encoding="utf-8"
    )
    assert load_stack_folder(tmp_path, "stackmix").labels.tolist() == [65, 281]


def test_no_data_root_is_data_missing():
    with pytest.raises(DataMissingError, match=r"(?s)STACK-MIX.*data_root.*MagamedT"):
        load_stack_folder(None, "stackmix")
