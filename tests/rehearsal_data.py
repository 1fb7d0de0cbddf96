"""Test helper: a miniature data root in the papers' own formats, for the full-profile rehearsal.

Every folder is laid out as its release is (the layouts ``lib.data`` documents), with a handful
of small images each:

- ``imagenet/``: ILSVRC 2012 validation JPEGs (``ILSVRC2012_img_val/``) with one VOC XML box
  file each (``ILSVRC2012_bbox_val_v3/val/``), classes from torchvision's wnid list;
- ``chestxray14/``: NIH ChestX-ray14's ``Data_Entry_2017.csv``, ``BBox_List_2017.csv`` and PNGs
  under ``images_001/images/``;
- ``vindr-cxr/``: VinDr-CXR's ``train.csv`` (one row per radiologist and finding) and its images,
  DICOM and PNG (with ``train_meta.csv`` for the PNG's original size);
- ``chexnet/model.pth.tar``: a DenseNet121 checkpoint in CheXNet's own layout (arnoweng/CheXNet:
  ``state_dict`` with ``module.densenet121.`` prefixes, old ``norm.1`` names, a Linear + Sigmoid
  classifier), randomly initialised, for chapter 07's Table 5 on NIH;
- ``stack/``: Taimeskhanov et al.'s masked VGG16 checkpoint in their own layout
  (``Sequential(features, Flatten, classifier)`` keys, a narrow width) and STACK-MIX /
  STACK-GEN folders of PNGs named by wnid;
- ``unet_resolution/``: train and test images per class folder, one binary mask per test image;
- ``mnist/``: MNIST's four IDX files; ``cifar-10/cifar-10-batches-py/``: CIFAR-10's pickled
  batches (torchvision's format);
- ``fashion-mnist/``: links to Debian's Fashion-MNIST files where they are installed (the
  stand-ins the chapters train were trained on the real set).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from idx_files import write_idx
from PIL import Image
from torch import nn

XML = (
    "<annotation><folder>val</folder><filename>{name}</filename><size><width>{w}</width>"
    "<height>{h}</height><depth>3</depth></size>{objects}</annotation>"
)
OBJ = (
    "<object><name>{wnid}</name><pose>Unspecified</pose><truncated>0</truncated>"
    "<difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax>"
    "<ymax>{y1}</ymax></bndbox></object>"
)
VINDR_HEADER = "image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max"
VINDR_FINDINGS = ("Aortic enlargement", "Cardiomegaly", "Pleural effusion", "Nodule/Mass")
NIH_ENTRY = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
    "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n"
)
NIH_FINDINGS = ("Cardiomegaly", "Effusion", "Mass", "Nodule")


def _rgb(rng, h, w, box=None):
    img = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
    if box is not None:
        x0, y0, x1, y1 = box
        img[y0:y1, x0:x1] = rng.integers(150, 256, (y1 - y0, x1 - x0, 3), dtype=np.uint8)
    return img


def _save(path: Path, arr) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def write_imagenet(root: Path, n: int, rng) -> None:
    from lib.data.imagenet import load_wnids

    wnids = load_wnids()
    for i in range(1, n + 1):
        name = f"ILSVRC2012_val_{i:08d}"
        h, w = 96 + 8 * i, 128
        box = (10 + i, 12, 90 + i, 70 + i)
        _save(root / "ILSVRC2012_img_val" / f"{name}.JPEG", _rgb(rng, h, w, box))
        obj = OBJ.format(wnid=wnids[(37 * i) % 1000], x0=box[0], y0=box[1], x1=box[2], y1=box[3])
        boxes = root / "ILSVRC2012_bbox_val_v3" / "val"
        boxes.mkdir(parents=True, exist_ok=True)
        (boxes / f"{name}.xml").write_text(XML.format(name=name, w=w, h=h, objects=obj))


def write_nih(root: Path, n: int, rng) -> None:
    entry, boxes = [NIH_ENTRY], ["Image Index,Finding Label,Bbox [x,y,w,h],,,\n"]
    for i in range(1, n + 1):
        name = f"{i:08d}_000.png"
        finding = NIH_FINDINGS[i % len(NIH_FINDINGS)]
        _save(
            root / "images_001" / "images" / name, rng.integers(0, 256, (256, 256), dtype=np.uint8)
        )
        entry.append(f"{name},{finding},0,{i},50,M,PA,256,256,0.143,0.143,\n")
        boxes.append(f"{name},{finding},{20 + 10 * i},40,80,60,,,\n")
    (root / "Data_Entry_2017.csv").write_text("".join(entry))
    (root / "BBox_List_2017.csv").write_text("".join(boxes))


def write_dicom(path: Path, arr) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.set_pixel_data(arr.astype(np.uint16), "MONOCHROME2", 12)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def write_vindr(root: Path, n: int, rng) -> None:
    """``n`` images, every other one a DICOM (the rest PNGs at another size, as Kaggle's resized
    copies, with ``train_meta.csv``); each finding marked by two of three readers, every fifth
    image "No finding" by all three (so that chapter 03's split 0 of 10 images has two test
    images with boxes: the fewest a paired bootstrap takes)."""
    from lib.data.vindr import FINDINGS

    rows, meta = [VINDR_HEADER], ["image_id,dim0,dim1"]
    for i in range(n):
        image_id = f"{i:032x}"
        h, w = 160, 128
        if i % 2 == 0:
            write_dicom(
                root / "train" / f"{image_id}.dicom",
                rng.integers(0, 4096, (h, w)).astype(np.uint16),
            )
        else:
            _save(
                root / "train" / f"{image_id}.png",
                rng.integers(0, 256, (h // 2, w // 2), dtype=np.uint8),
            )
            meta.append(f"{image_id},{h},{w}")
        if i % 5 == 4:
            rows += [f"{image_id},No finding,14,R{r},,,," for r in (1, 2, 3)]
            continue
        k = i % len(VINDR_FINDINGS)
        cls = FINDINGS.index(VINDR_FINDINGS[k])
        for r, d in ((1, 0), (2, 3)):
            rows.append(
                f"{image_id},{VINDR_FINDINGS[k]},{cls},R{r},{20 + d},{30 + d},{80 + d},{100 + d}"
            )
        rows.append(f"{image_id},No finding,14,R3,,,,")
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    (root / "train_meta.csv").write_text("\n".join(meta) + "\n")


def write_chexnet(path: Path, seed: int = 0) -> Path:
    """A randomly initialised torchvision DenseNet121 with 14 outputs, saved as CheXNet's
    ``model.pth.tar`` stores it (the layout ``lib.chapters.gradcam_localization.load_chexnet``
    reads)."""
    import re

    import torchvision

    torch.manual_seed(seed)
    model = torchvision.models.densenet121(num_classes=14)
    state = {}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):  # PyTorch 0.3's checkpoint has none
            continue
        if "denselayer" in k:  # the dense layers' names in their torchvision (norm.1, conv.2)
            k = re.sub(r"\.(norm|conv)(\d)\.", r".\1.\2.", k)
        k = k.replace("classifier.", "classifier.0.")  # Sequential(Linear, Sigmoid)
        state[f"module.densenet121.{k}"] = v
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 0, "state_dict": state}, path)
    return path


def authors_vgg16_sequential(
    width: float = 1 / 16, hidden: int = 16, classes: int = 1000, seed: int = 0
) -> nn.Sequential:
    """Taimeskhanov et al.'s masked VGG16 as their checkpoint stores it, narrow:
    ``Sequential(features[0..29], Flatten, classifier)`` at 224 px (a 14 x 14 last map of 256
    channels at full width), the
    last 9 rows of the first dense layer's input masked to zero."""
    torch.manual_seed(seed)
    c = lambda v: max(1, int(round(v * width)))  # noqa: E731
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
    layers, c_in = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c_in, c(v), 3, padding=1), nn.ReLU(inplace=True)]
            c_in = c(v)
    layers[28] = nn.Conv2d(c(512), c(256), 3, padding=1)  # their last convolution: 256 maps
    classifier = nn.Sequential(
        nn.Linear(c(256) * 14 * 14, hidden),
        nn.ReLU(True),
        nn.Dropout(),
        nn.Linear(hidden, hidden),
        nn.ReLU(True),
        nn.Dropout(),
        nn.Linear(hidden, classes),
    )
    model = nn.Sequential(*layers, nn.Flatten(1), classifier)
    with torch.no_grad():
        m = torch.ones(14, 14)
        m[-9:, :] = 0
        classifier[0].weight *= m.expand(c(256), 14, 14).reshape(1, -1)
    return model.eval()


def write_stack(root: Path, n: int, rng) -> None:
    from lib.data.imagenet import load_wnids

    torch.save(authors_vgg16_sequential().state_dict(), root / "params_vgg16_masked.pt")
    wnids = load_wnids()
    for i in range(n):
        wnid = wnids[(113 * i) % 1000]
        _save(root / "stackmix" / f"{wnid}_{i}.png", _rgb(rng, 224, 224, (0, 0, 224, 90)))
        _save(root / "stackgen" / wnid / f"{i}.png", _rgb(rng, 200, 260, (40, 20, 160, 120)))


def write_unet_folder(root: Path, n: int, rng, classes=("cat", "dog")) -> None:
    for k, cls in enumerate(classes):
        for i in range(n):
            for split in ("train", "test"):
                y0, x0 = 8 + 4 * i, 10 + 6 * k
                box = (x0, y0, x0 + 40, y0 + 36)
                _save(root / split / "images" / cls / f"{split}{i}.png", _rgb(rng, 96, 112, box))
                if split == "test":
                    mask = np.zeros((96, 112), np.uint8)
                    mask[box[1] : box[3], box[0] : box[2]] = 255
                    _save(root / "test" / "masks" / cls / f"test{i}.png", mask)


def write_mnist(root: Path, n: int, rng) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for split, m in (("train", n), ("t10k", n)):
        write_idx(
            root / f"{split}-images-idx3-ubyte.gz",
            rng.integers(0, 256, (m, 28, 28), dtype=np.uint8),
        )
        write_idx(root / f"{split}-labels-idx1-ubyte.gz", np.arange(m) % 10)


def write_cifar10(root: Path, n: int, rng) -> None:
    from lib.data import cifar10

    folder = root / cifar10.FOLDER
    folder.mkdir(parents=True)
    for i in range(5):
        with open(folder / f"data_batch_{i + 1}", "wb") as f:
            pickle.dump(
                {
                    "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                    "labels": [int(v) for v in np.arange(n) % 10],
                },
                f,
            )
    with open(folder / "test_batch", "wb") as f:
        pickle.dump(
            {
                "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                "labels": [int(v) for v in np.arange(n) % 10],
            },
            f,
        )
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(cifar10.CLASSES)}, f)


def link_fashion_mnist(root: Path) -> None:
    from lib.data.fashion_mnist import DEBIAN_DIR

    if Path(DEBIAN_DIR).is_dir():
        root.mkdir(parents=True, exist_ok=True)
        for f in Path(DEBIAN_DIR).iterdir():
            (root / f.name).symlink_to(f)


def write_data_root(root: Path, n: int = 4, seed: int = 0) -> Path:
    """The whole miniature data root under ``root``; returns it."""
    rng = np.random.default_rng(seed)
    write_imagenet(root / "imagenet", n, rng)
    write_nih(root / "chestxray14", n, rng)
    write_chexnet(root / "chexnet" / "model.pth.tar", seed)
    write_vindr(root / "vindr-cxr", 2 * n + 2, rng)
    (root / "stack").mkdir(parents=True)
    write_stack(root / "stack", n, rng)
    write_unet_folder(root / "unet_resolution", 2, rng)
    write_mnist(root / "mnist", 20, rng)
    write_cifar10(root / "cifar-10", 4, rng)
    link_fashion_mnist(root / "fashion-mnist")
    return root
