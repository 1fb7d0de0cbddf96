"""ImageNet 2012 validation images with their boxes (full profile; Nagy et al. Tables 1-2).

Boxes come from the per-image PASCAL-VOC XML files of ``ILSVRC2012_bbox_val_v3`` or from Kaggle's
``LOC_val_solution.csv`` (``ImageId,PredictionString`` = "wnid xmin ymin xmax ymax ..."). Class
indices follow torchvision's order, which is the sorted list of the 1000 wnids shipped in
``data/imagenet_wnids.txt`` (copied from timm's ``imagenet_synsets.txt``). Images and boxes are
resized to 256 x 256 and centre-cropped to 224, as Nagy et al. did (``mode="shorter"`` gives
torchvision's shorter-side resize instead).

Boxes must be finite and inside the image; ILSVRC's boxes may reach a pixel or two past it, so a
box that passes the edge by up to ``EDGE_TOLERANCE`` px is clipped and counted in ``report``;
farther is an error naming the file and line (of the CSV row, or of the XML ``<object>``).
``LOC_val_solution.csv`` follows ``lib.data.errors``' conventions (BOM, blank lines skipped).
"""

from __future__ import annotations

import csv
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..paths import DATA_DIR
from .boxes import EDGE_TOLERANCE, EDGE_WARNING, box_overhang, rescale_boxes
from .errors import CSV_ENCODING, DataFormatError, DataMissingError, LoadReport, is_blank
from .images import array_to_tensor, find_image, image_size, load_rgb, normalize_imagenet

__all__ = [
    "load_wnids",
    "parse_voc_xml",
    "parse_loc_solution",
    "ImageNetVal",
    "collate",
    "imagenet_root",
    "WHERE",
]

WHERE = (
    "the ILSVRC2012 validation images (ILSVRC2012_img_val.tar, 50,000 JPEGs) and boxes "
    "(ILSVRC2012_bbox_val_v3.tgz) from https://image-net.org/download (registration), or the "
    "Kaggle 'ImageNet Object Localization Challenge' (ILSVRC/Data/CLS-LOC/val/ and "
    "LOC_val_solution.csv); put them under DATA_ROOT/imagenet/ and pass data_root=DATA_ROOT"
)
WNIDS_FILE = DATA_DIR / "imagenet_wnids.txt"
IMAGE_DIRS = ("ILSVRC2012_img_val", "val", "images", "ILSVRC/Data/CLS-LOC/val", ".")
XML_DIRS = (
    "ILSVRC2012_bbox_val_v3/val",
    "ILSVRC2012_bbox_val_v3",
    "bbox_val",
    "val",
    "Annotations",
    "ILSVRC/Annotations/CLS-LOC/val",
    ".",
)


def imagenet_root(data_root: str | Path) -> Path:
    """``data_root/imagenet`` if it exists, else ``data_root`` itself."""
    r = Path(data_root)
    return r / "imagenet" if (r / "imagenet").is_dir() else r


def load_wnids(data_root: str | Path | None = None) -> list[str]:
    """The 1000 wnids in torchvision's class order (sorted), from data/ or LOC_synset_mapping.txt."""
    if WNIDS_FILE.is_file():
        wnids = WNIDS_FILE.read_text().split()
    else:
        mapping = imagenet_root(data_root) / "LOC_synset_mapping.txt" if data_root else None
        if mapping is None or not mapping.is_file():
            raise DataMissingError(
                "ImageNet class list",
                [WNIDS_FILE, "LOC_synset_mapping.txt"],
                "restore data/imagenet_wnids.txt from the repository, or put "
                "Kaggle's LOC_synset_mapping.txt in the data root",
            )
        wnids = [line.split()[0] for line in mapping.read_text().splitlines() if line.strip()]
    if len(wnids) != 1000 or wnids != sorted(wnids):
        raise DataFormatError(
            WNIDS_FILE,
            f"{len(wnids)} wnids (sorted: {wnids == sorted(wnids)}); "
            "expected the 1000 ImageNet wnids in sorted order",
        )
    return wnids


@dataclass
class ImageBoxes:
    """Boxes of one image in its original pixels: rows (wnid, x_min, y_min, x_max, y_max), and
    the line of the file each box is on (None where unknown)."""

    width: int | None
    height: int | None
    boxes: list[tuple[str, float, float, float, float]]
    lines: list[int | None] | None = None

    def line(self, k: int) -> int | None:
        return self.lines[k] if self.lines else None


def _check_box(src, x0, y0, x1, y1, line=None):
    if not all(map(math.isfinite, (x0, y0, x1, y1))):
        raise DataFormatError(src, f"box ({x0}, {y0}, {x1}, {y1}) is not finite", line)
    if not (x1 > x0 and y1 > y0):
        raise DataFormatError(src, f"box ({x0}, {y0}, {x1}, {y1}) is empty or negative", line)
    if box_overhang((x0, y0, x1, y1)) > EDGE_TOLERANCE:
        raise DataFormatError(
            src,
            f"box ({x0}, {y0}, {x1}, {y1}) starts more than "
            f"{EDGE_TOLERANCE:g} px left of or above the image",
            line,
        )


def _object_lines(path: Path, n: int) -> list[int | None]:
    """Line of each ``<object>`` in an XML file (ElementTree keeps no line numbers)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return [None] * n
    starts = [m.start() for m in re.finditer(r"<object[\s>]", text)]
    if len(starts) != n:  # e.g. "<object" inside a comment: give no line rather than a wrong one
        return [None] * n
    return [text.count("\n", 0, i) + 1 for i in starts]


def parse_voc_xml(path: str | Path) -> ImageBoxes:
    """Parse one PASCAL-VOC XML file (``<size>``, ``<object><name><bndbox>``)."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise DataFormatError(path, f"not valid XML ({e})", e.position[0]) from e
    size = root.find("size")
    try:
        w = int(size.findtext("width")) if size is not None else None
        h = int(size.findtext("height")) if size is not None else None
        boxes = []
        objects = list(root.iter("object"))
        lines = _object_lines(path, len(objects))
        for obj, line in zip(objects, lines):
            name = (obj.findtext("name") or "").strip()
            bb = obj.find("bndbox")
            if not name or bb is None:
                raise DataFormatError(path, "an <object> without <name> or <bndbox>", line)
            try:
                x0, y0, x1, y1 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            except (TypeError, ValueError) as e:
                raise DataFormatError(
                    path, f"a box coordinate is missing or not a number ({e})", line
                ) from e
            _check_box(path, x0, y0, x1, y1, line)
            boxes.append((name, x0, y0, x1, y1))
    except (TypeError, ValueError) as e:
        if isinstance(e, DataFormatError):
            raise
        raise DataFormatError(
            path, f"a size or box coordinate is missing or not a number ({e})"
        ) from e
    return ImageBoxes(w, h, boxes, lines)


def parse_loc_solution(path: str | Path) -> dict[str, ImageBoxes]:
    """Parse ``LOC_val_solution.csv``: ImageId,PredictionString of 5-tuples (wnid x0 y0 x1 y1)."""
    path = Path(path)
    out: dict[str, ImageBoxes] = {}
    first_line: dict[str, int] = {}
    with open(path, newline="", encoding=CSV_ENCODING) as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["ImageId", "PredictionString"]:
            raise DataFormatError(path, f"header {header}, expected ImageId,PredictionString", 1)
        for row in reader:
            line = reader.line_num
            if is_blank(row):
                continue
            if len(row) != 2:
                raise DataFormatError(path, f"{len(row)} fields, expected 2", line)
            parts = row[1].split()
            if not parts or len(parts) % 5:
                raise DataFormatError(
                    path,
                    f"PredictionString has {len(parts)} fields, not a "
                    "multiple of 5 (wnid xmin ymin xmax ymax)",
                    line,
                )
            boxes = []
            for k in range(0, len(parts), 5):
                try:
                    x0, y0, x1, y1 = map(float, parts[k + 1 : k + 5])
                except ValueError as e:
                    raise DataFormatError(
                        path, f"box {k // 5 + 1}: coordinate is not a number ({e})", line
                    ) from e
                _check_box(path, x0, y0, x1, y1, line)
                boxes.append((parts[k], x0, y0, x1, y1))
            name = row[0].strip()
            if name in first_line:
                raise DataFormatError(
                    path, f"image {name} appears twice (first on line {first_line[name]})", line
                )
            first_line[name] = line
            out[name] = ImageBoxes(None, None, boxes, [line] * len(boxes))
    return out


class ImageNetVal(Dataset):
    """ImageNet val images with boxes; ``ds[i]`` is (image (3, crop, crop), label, boxes (K, 5)).

    Boxes are rows (x_min, y_min, x_max, y_max, class index) in the model's input pixels. The label
    is the class of the image's boxes (one class per validation image). Images without boxes,
    annotations without images, and boxes that the centre crop removes entirely are dropped and
    counted in ``self.report`` (e.g. "kept 980, dropped 4 (no image)").
    """

    def __init__(
        self,
        data_root: str | Path,
        resize: int | None = 256,
        crop: int | None = 224,
        mode: str = "square",
        normalize: bool = True,
        limit: int | None = None,
        annotations: str | Path | None = None,
    ):
        if data_root is None:
            raise DataMissingError("ImageNet 2012 validation", ["data_root"], WHERE)
        self.root = imagenet_root(data_root)
        self.resize, self.crop, self.mode, self.normalize = resize, crop, mode, normalize
        self.wnids = load_wnids(self.root)
        self.index = {w: i for i, w in enumerate(self.wnids)}
        self.report = LoadReport("ImageNet val")
        ann = self._annotations(annotations)
        image_dirs = [self.root / d for d in IMAGE_DIRS if (self.root / d).is_dir()]
        self.samples: list[tuple[Path, int, ImageBoxes]] = []
        for name in sorted(ann):
            path = find_image(image_dirs, name)
            if path is None:
                self.report.drop("no image", name)
                continue
            ib = ann[name]
            if not ib.boxes:
                self.report.drop("no boxes", name)
                continue
            src = ann.source.get(name, name)
            classes = []
            for k, (wnid, *_) in enumerate(ib.boxes):
                if wnid not in self.index:
                    raise DataFormatError(
                        src,
                        f"unknown wnid {wnid!r} (not one of the 1000 ImageNet classes)",
                        ib.line(k),
                    )
                classes.append(self.index[wnid])
            label = max(set(classes), key=classes.count)
            w, h = (ib.width, ib.height) if ib.width is not None else image_size(path)
            self._check_edges(src, name, ib, w, h)
            _, kept = rescale_boxes([b[1:] for b in ib.boxes], w, h, resize, crop, mode)
            if not kept.all():
                self.report.drop("box outside the centre crop", name, n=int((~kept).sum()))
            if not kept.any():
                self.report.drop("no box left after the crop", name)
                continue
            self.samples.append((path, label, ib))
            if limit is not None and len(self.samples) >= limit:
                break
        if limit is None:
            seen = set(ann)
            for d in image_dirs:
                for p in d.glob("ILSVRC2012_val_*"):
                    if p.stem not in seen:
                        seen.add(p.stem)
                        self.report.drop("no boxes", p.name)
        if not self.samples:
            raise DataMissingError(
                "ImageNet 2012 validation",
                [f"images matching the {len(ann)} annotations"],
                WHERE,
                searched=image_dirs or [self.root],
            )
        self.report.kept = len(self.samples)
        self.report.log()

    def _check_edges(self, src, name: str, ib: ImageBoxes, w: int, h: int) -> None:
        """Boxes past the image: clipped and counted up to EDGE_TOLERANCE, else an error."""
        clipped = 0
        for k, (wnid, x0, y0, x1, y1) in enumerate(ib.boxes):
            over = box_overhang((x0, y0, x1, y1), w, h)
            if over > EDGE_TOLERANCE:
                raise DataFormatError(
                    src,
                    f"box xmin={x0:g}, ymin={y0:g}, xmax={x1:g}, ymax={y1:g} "
                    f"({wnid}) of {name} passes the edge of its {w}x{h} image by "
                    f"{over:g} px (more than {EDGE_TOLERANCE:g})",
                    ib.line(k),
                )
            clipped += over > 0
        if clipped:
            self.report.warn(EDGE_WARNING, name, n=clipped)

    def _annotations(self, annotations):
        ann: dict[str, ImageBoxes] = {}
        source: dict[str, Path] = {}
        csv_path = Path(annotations) if annotations else self.root / "LOC_val_solution.csv"
        if csv_path.is_file() and csv_path.suffix == ".csv":
            ann = parse_loc_solution(csv_path)
            source = {k: csv_path for k in ann}
        else:
            dirs = [Path(annotations)] if annotations else [self.root / d for d in XML_DIRS]
            for d in dirs:
                xmls = sorted(d.glob("*.xml")) if d.is_dir() else []
                if xmls:
                    for x in xmls:
                        ann[x.stem] = parse_voc_xml(x)
                        source[x.stem] = x
                    break
        if not ann:
            raise DataMissingError(
                "ImageNet 2012 validation boxes",
                ["LOC_val_solution.csv or ILSVRC2012_bbox_val_v3/val/*.xml"],
                WHERE,
                searched=[self.root],
            )
        ann = _Ann(ann)
        ann.source = source
        return ann

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i):
        path, label, ib = self.samples[i]
        w, h = image_size(path)
        if ib.width is not None and (ib.width, ib.height) != (w, h):
            raise DataFormatError(path, f"image is {w}x{h} but its XML says {ib.width}x{ib.height}")
        x = array_to_tensor(load_rgb(path), self.resize, self.crop, self.mode)
        if self.normalize:
            x = normalize_imagenet(x)
        raw = torch.tensor(
            [[x0, y0, x1, y1, self.index[wn]] for wn, x0, y0, x1, y1 in ib.boxes],
            dtype=torch.float64,
        )
        boxes, _ = rescale_boxes(raw, w, h, self.resize, self.crop, self.mode)
        return x, label, boxes

    @property
    def names(self) -> list[str]:
        return [p.stem for p, _, _ in self.samples]


class _Ann(dict):
    source: dict


def collate(batch):
    """DataLoader collate for (image, label, boxes): boxes stay a list (their count varies)."""
    xs, ys, bs = zip(*batch)
    return torch.stack(xs), torch.tensor(ys), list(bs)
