"""A folder of class-labelled images with one object mask per test image: the data of the U-Net
resolution chapter's ``full`` profile (Mascolini et al. explain ImageNet validation images; any
data set with per-image object masks, e.g. ImageNet-S, fits this layout).

Layout under ``data_root`` (the folder may also be ``data_root`` itself)::

    DATA_ROOT/unet_resolution/
        classes.txt                         optional: one class folder name per line, in class
                                            index order (line k = class k - 1); blank lines
                                            skipped. Without it: the sorted folder names of
                                            train/images.
        train/images/<class>/<stem>.png|.jpg|.jpeg
        test/images/<class>/<stem>.png|.jpg|.jpeg
        test/masks/<class>/<stem>.png       one mask per test image, the image's size: 0 for
                                            background, 1 or 255 for the object (one value)

Masks are read where ``masks=True`` (the default for the test split; a train split may have
them too). Images are resized so that the shorter side is ``size`` and centre-cropped to
``size`` x ``size`` (bilinear with antialiasing), their masks through the same geometry with
nearest-neighbour interpolation. Files that are not images (another extension, hidden files)
are dropped and counted in the ``LoadReport``; a mask without an image is counted as a warning.
Anything malformed raises ``DataFormatError`` naming the file (and, for ``classes.txt``, the
line); missing files raise ``DataMissingError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .errors import CSV_ENCODING, DataFormatError, DataMissingError, LoadReport

__all__ = [
    "UNetFolder",
    "load_unet_folder",
    "unet_folder_dir",
    "list_unet_folder",
    "WHERE",
    "FOLDER",
    "IMAGE_EXTS",
]

FOLDER = "unet_resolution"
IMAGE_EXTS = (".png", ".jpg", ".jpeg")
WHERE = (
    "any images with one binary object mask per test image, laid out as "
    "DATA_ROOT/unet_resolution/{train,test}/images/<class>/<stem>.png|jpg and "
    "DATA_ROOT/unet_resolution/test/masks/<class>/<stem>.png (see lib/data/unet_folder.py); "
    "e.g. ImageNet-S (github.com/LUSSeg/ImageNet-S) for ImageNet validation images with masks"
)
_CLASS_NAME = re.compile(r"^[^\s/\\]+$")


@dataclass
class UNetFolder:
    """One split of the folder.

    images: uint8 (N, C, size, size); labels: int64 (N,) class indices into ``classes``;
    masks: bool (N, size, size) or None (split read without masks); names: each image's path
    relative to the split's ``images`` folder ("<class>/<file>"); report: what was dropped.
    """

    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor | None
    names: list[str]
    classes: tuple[str, ...]
    root: Path
    split: str
    report: LoadReport

    def __len__(self) -> int:
        return self.images.shape[0]

    def float_images(self) -> torch.Tensor:
        """The images as float (N, C, size, size) in [0, 1]."""
        return self.images.float() / 255


def unet_folder_dir(data_root: str | Path | None) -> Path:
    """The folder under ``data_root``: ``data_root/unet_resolution``, or ``data_root`` itself
    when it directly holds ``train/`` or ``test/``. DataMissingError when there is none."""
    if data_root is None:
        raise DataMissingError(
            "U-Net resolution folder (images and masks)",
            [f"DATA_ROOT/{FOLDER}/ (data_root is None)"],
            WHERE,
        )
    root = Path(data_root)
    for cand in (root / FOLDER, root):
        if (cand / "train").is_dir() or (cand / "test").is_dir():
            return cand
    raise DataMissingError(
        "U-Net resolution folder (images and masks)",
        [f"{root / FOLDER}/train/images/", f"{root / FOLDER}/test/images/"],
        WHERE,
        searched=[root / FOLDER, root],
    )


def _read_classes(path: Path) -> tuple[str, ...]:
    names: dict[str, int] = {}
    try:
        text = path.read_text(encoding=CSV_ENCODING)
    except UnicodeDecodeError as e:
        raise DataFormatError(path, f"not UTF-8 text ({e})") from None
    for line_no, line in enumerate(text.splitlines(), start=1):
        name = line.strip()
        if not name:
            continue
        if not _CLASS_NAME.match(name):
            raise DataFormatError(
                path,
                f"{name!r} is not a class folder name (one name per line, no spaces or slashes)",
                line=line_no,
            )
        if name in names:
            raise DataFormatError(
                path,
                f"class {name!r} is listed twice (lines {names[name]} and {line_no})",
                line=line_no,
            )
        names[name] = line_no
    if not names:
        raise DataFormatError(
            path, "lists no class; delete it to use the folder names of train/images"
        )
    return tuple(names)


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _classes(root: Path) -> tuple[str, ...]:
    listed = root / "classes.txt"
    if listed.is_file():
        return _read_classes(listed)
    train = root / "train" / "images"
    source = train if train.is_dir() else root / "test" / "images"
    if not source.is_dir():
        raise DataMissingError(
            "U-Net resolution folder (images and masks)", [f"{train}/<class>/*.png|jpg"], WHERE
        )
    names = tuple(p.name for p in _class_dirs(source))
    if not names:
        raise DataMissingError(
            "U-Net resolution folder (images and masks)",
            [f"{source}/<class>/*.png|jpg (no class folder)"],
            WHERE,
        )
    return names


def list_unet_folder(
    data_root, split: str, masks: bool | None = None
) -> tuple[Path, tuple[str, ...], list[tuple[Path, int, Path | None]], LoadReport]:
    """The files of ``split`` without reading pixels: (folder, classes, [(image, label, mask or
    None)], report). Raises DataMissingError for a missing split or missing masks (all of them
    named), DataFormatError for a class folder that ``classes.txt`` does not list."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    masks = (split == "test") if masks is None else masks
    root = unet_folder_dir(data_root)
    classes = _classes(root)
    index = {c: k for k, c in enumerate(classes)}
    img_dir, mask_dir = root / split / "images", root / split / "masks"
    if not img_dir.is_dir():
        raise DataMissingError(
            f"U-Net resolution folder, {split} split", [f"{img_dir}/<class>/*.png|jpg"], WHERE
        )
    report = LoadReport(f"unet_resolution/{split}")
    items: list[tuple[Path, int, Path | None]] = []
    missing_masks: list[str] = []
    for d in _class_dirs(img_dir):
        if d.name not in index:
            where = (
                "classes.txt"
                if (root / "classes.txt").is_file()
                else "the class folders of train/images"
            )
            raise DataFormatError(
                d,
                f"class folder {d.name!r} is not in {where} "
                f"({len(classes)} classes: {', '.join(classes[:5])}"
                f"{' ...' if len(classes) > 5 else ''})",
            )
        for f in sorted(d.iterdir()):
            if f.is_dir():
                report.drop("sub-folder inside a class folder", f.relative_to(img_dir))
                continue
            if f.name.startswith(".") or f.suffix.lower() not in IMAGE_EXTS:
                report.drop(f"not a {'/'.join(IMAGE_EXTS)} file", f.relative_to(img_dir))
                continue
            m = None
            if masks:
                m = mask_dir / d.name / (f.stem + ".png")
                if not m.is_file():
                    missing_masks.append(str(m))
            items.append((f, index[d.name], m))
    if missing_masks:
        raise DataMissingError(
            f"U-Net resolution folder, masks of the {split} split",
            missing_masks[:10]
            + ([f"... {len(missing_masks) - 10} more"] if len(missing_masks) > 10 else []),
            f"one mask per image, {mask_dir}/<class>/<image stem>.png; " + WHERE,
        )
    if not items:
        raise DataMissingError(
            f"U-Net resolution folder, {split} split",
            [f"{img_dir}/<class>/*.png|jpg (no image found)"],
            WHERE,
        )
    if masks and mask_dir.is_dir():
        wanted = {m for _, _, m in items}
        for m in sorted(mask_dir.rglob("*")):
            if m.is_file() and m not in wanted:
                report.warn("mask without an image", m.relative_to(mask_dir))
    report.kept = len(items)
    return root, classes, items, report


def _geometry(w: int, h: int, size: int) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """Resized (w, h) with the shorter side ``size``, and the centre crop box."""
    s = size / min(w, h)
    rw, rh = max(size, int(round(w * s))), max(size, int(round(h * s)))
    left, top = (rw - size) // 2, (rh - size) // 2
    return (rw, rh), (left, top, left + size, top + size)


def _open(path: Path) -> Image.Image:
    try:
        im = Image.open(path)
        im.load()
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DataFormatError(path, f"not a readable image ({type(e).__name__}: {e})") from None
    return im


def _read_image(path: Path, size: int, channels: int) -> tuple[np.ndarray, tuple[int, int]]:
    with _open(path) as im:
        src_size = im.size
        im = im.convert("RGB" if channels == 3 else "L")
        new, box = _geometry(*src_size, size)
        arr = np.asarray(
            im.resize(new, Image.BILINEAR, reducing_gap=None).crop(box), dtype=np.uint8
        )
    return (arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)), src_size


def _read_mask(path: Path, image: Path, image_size: tuple[int, int], size: int) -> np.ndarray:
    with _open(path) as im:
        if im.size != image_size:
            raise DataFormatError(
                path,
                f"the mask is {im.size[0]}x{im.size[1]} px but its image "
                f"{image.name} is {image_size[0]}x{image_size[1]}; a mask must "
                "have its image's size",
            )
        arr = np.asarray(im)
    if arr.ndim == 3:  # a grey mask saved as RGB(A) is fine; colours are not
        if not (arr[..., :3] == arr[..., :1]).all():
            raise DataFormatError(
                path,
                "a colour mask; a mask holds 0 (background) and one "
                "value for the object (1 or 255) in a single channel",
            )
        arr = arr[..., 0]
    values = np.unique(arr)
    if arr.dtype == bool:
        values = values.astype(np.uint8)
    if not (set(values.tolist()) <= {0, 1} or set(values.tolist()) <= {0, 255}):
        shown = ", ".join(str(v) for v in values[:8]) + (" ..." if len(values) > 8 else "")
        raise DataFormatError(
            path,
            f"mask values {{{shown}}}: a mask holds 0 (background) and "
            "one value for the object, 1 or 255",
        )
    on = arr > 0
    if not on.any():
        raise DataFormatError(
            path,
            "the mask marks no object pixel; the share of a map inside "
            "an empty mask is 0 by construction. Remove the image or fix its mask",
        )
    new, box = _geometry(*image_size, size)
    small = Image.fromarray(on.astype(np.uint8) * 255).resize(new, Image.NEAREST).crop(box)
    out = np.asarray(small) > 0
    if not out.any():
        raise DataFormatError(
            path,
            f"the object ({int(on.sum())} px) vanishes when the image is "
            f"resized and cropped to {size} px; use a larger size or drop the image",
        )
    return out


def load_unet_folder(
    data_root,
    split: str = "test",
    size: int = 128,
    channels: int = 3,
    masks: bool | None = None,
    n: int | None = None,
) -> UNetFolder:
    """Read ``split`` of the folder (layout in the module docstring) at ``size`` px, ``channels``
    1 (grey) or 3 (RGB); ``masks`` (default: for the test split only) reads one mask per image;
    ``n`` keeps the first n images in (class, file name) order."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    if size < 8:
        raise ValueError(f"size={size}: give the side in pixels (>= 8) of the images to load")
    root, classes, items, report = list_unet_folder(data_root, split, masks)
    items = items[:n]
    images = np.empty((len(items), channels, size, size), np.uint8)
    mask_arr = np.empty((len(items), size, size), bool) if items and items[0][2] else None
    for i, (f, _, m) in enumerate(items):
        images[i], src_size = _read_image(f, size, channels)
        if mask_arr is not None:
            mask_arr[i] = _read_mask(m, f, src_size, size)
    img_dir = root / split / "images"
    report.kept = len(items)
    report.log()
    return UNetFolder(
        torch.from_numpy(images),
        torch.tensor([k for _, k, _ in items], dtype=torch.int64),
        torch.from_numpy(mask_arr) if mask_arr is not None else None,
        [str(f.relative_to(img_dir)) for f, _, _ in items],
        classes,
        root,
        split,
        report,
    )
