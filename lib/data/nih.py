"""NIH ChestX-ray14 (full profile; Nagy et al. Table 5): labels and the 984 hand-drawn boxes.

``Data_Entry_2017.csv``: Image Index, Finding Labels ("A|B" or "No Finding"), Follow-up #, Patient
ID, Patient Age, Patient Gender, View Position, OriginalImage[Width,Height],
OriginalImagePixelSpacing[x,y] - the bracketed headers each span two fields, so a row has 11 fields
(12 with the release's trailing comma). ``BBox_List_2017.csv``: header
``Image Index,Finding Label,Bbox [x,y,w,h],,,`` - x, y, w, h sit in fields 3-6 whatever the header
says, followed by empty fields. Both are read by position. The box list says "Infiltrate" where the
labels say "Infiltration". Boxes are in the pixels of the released 1024 x 1024 PNGs; one that passes
the image edge by up to ``EDGE_TOLERANCE`` px is clipped and counted in ``report``, farther is an
error naming its line. CSVs follow ``lib.data.errors``' conventions (BOM, blank lines skipped).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .boxes import EDGE_TOLERANCE, EDGE_WARNING, box_overhang, rescale_boxes
from .errors import CSV_ENCODING, DataFormatError, DataMissingError, LoadReport, is_blank
from .images import array_to_tensor, find_image, image_size, load_rgb, normalize_imagenet

__all__ = ["FINDINGS", "read_data_entry", "read_bbox_list", "NIHChestXray", "WHERE", "nih_root"]

FINDINGS = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)
ALIASES = {"Infiltrate": "Infiltration"}
WHERE = (
    "NIH ChestX-ray14 from https://nihcc.app.box.com/v/ChestXray-NIHCC (Data_Entry_2017.csv, "
    "BBox_List_2017.csv and images_*.tar.gz) or Kaggle 'nih-chest-xrays/data'; put them under "
    "DATA_ROOT/chestxray14/ and pass data_root=DATA_ROOT"
)


def nih_root(data_root: str | Path) -> Path:
    r = Path(data_root)
    for sub in ("chestxray14", "nih", "ChestX-ray14"):
        if (r / sub).is_dir():
            return r / sub
    return r


def _finding_index(path, name: str, line: int) -> int:
    name = ALIASES.get(name.strip(), name.strip())
    if name not in FINDINGS:
        raise DataFormatError(path, f"unknown finding {name!r}; expected one of {FINDINGS}", line)
    return FINDINGS.index(name)


def read_data_entry(path: str | Path) -> dict[str, dict]:
    """{image: {"labels": float (14,), "width", "height"}} from Data_Entry_2017.csv.

    width/height are the original radiograph's (before NIH resized it to the 1024 px PNG).
    """
    path = Path(path)
    if not path.is_file():
        raise DataMissingError("NIH ChestX-ray14", [path], WHERE)
    out = {}
    first_line: dict[str, int] = {}
    with open(path, newline="", encoding=CSV_ENCODING) as f:
        reader = csv.reader(f)
        header = next(reader, [])
        if (
            len(header) < 2
            or header[0].strip() != "Image Index"
            or header[1].strip() != "Finding Labels"
        ):
            raise DataFormatError(
                path, f"header starts {header[:2]}, expected Image Index,Finding Labels", 1
            )
        for r in reader:
            line = reader.line_num
            if is_blank(r):
                continue
            fields = r[:-1] if len(r) == 12 and r[-1] == "" else r
            if len(fields) < 2 or len(fields) not in (2, 11):
                raise DataFormatError(
                    path,
                    f"{len(r)} fields, expected 11 (the bracketed headers span two fields each)",
                    line,
                )
            name = fields[0].strip()
            if name in first_line:
                raise DataFormatError(
                    path, f"image {name!r} appears twice (first on line {first_line[name]})", line
                )
            labels = np.zeros(len(FINDINGS), np.float32)
            if fields[1].strip() != "No Finding":
                for finding in fields[1].split("|"):
                    labels[_finding_index(path, finding, line)] = 1.0
            w = h = None
            if len(fields) == 11:
                try:
                    w, h = int(float(fields[7])), int(float(fields[8]))
                except (ValueError, OverflowError):
                    raise DataFormatError(
                        path, f"OriginalImage width/height {fields[7:9]} not numbers", line
                    ) from None
            first_line[name] = line
            out[name] = {"labels": labels, "width": w, "height": h}
    return out


def read_bbox_list(path: str | Path) -> list[tuple[str, int, float, float, float, float]]:
    """Rows (image, finding index, x, y, w, h) of BBox_List_2017.csv, read by position."""
    return [row for row, _ in _read_bbox_rows(path)]


def _read_bbox_rows(
    path: str | Path,
) -> list[tuple[tuple[str, int, float, float, float, float], int]]:
    """(row, line) pairs of BBox_List_2017.csv; see ``read_bbox_list``."""
    path = Path(path)
    if not path.is_file():
        raise DataMissingError("NIH ChestX-ray14 boxes", [path], WHERE)
    rows = []
    with open(path, newline="", encoding=CSV_ENCODING) as f:
        reader = csv.reader(f)
        header = next(reader, [])
        if (
            len(header) < 3
            or header[0].strip() != "Image Index"
            or not header[2].startswith("Bbox")
        ):
            raise DataFormatError(
                path, f"header {header}, expected 'Image Index,Finding Label,Bbox [x,y,w,h],,,'", 1
            )
        for r in reader:
            line = reader.line_num
            if is_blank(r):
                continue
            if len(r) < 6 or any(v.strip() for v in r[6:]):
                raise DataFormatError(
                    path,
                    f"{len(r)} fields {r}: expected image, finding, x, y, w, h "
                    "(then only empty fields)",
                    line,
                )
            try:
                x, y, w, h = (float(v) for v in r[2:6])
            except ValueError:
                raise DataFormatError(path, f"x, y, w, h {r[2:6]} are not numbers", line) from None
            if not all(map(math.isfinite, (x, y, w, h))):
                raise DataFormatError(
                    path, f"box x, y, w, h = {x}, {y}, {w}, {h} is not finite", line
                )
            if not (w > 0 and h > 0):
                raise DataFormatError(path, f"box of width {w} and height {h}", line)
            rows.append(((r[0].strip(), _finding_index(path, r[1], line), x, y, w, h), line))
    return rows


class NIHChestXray(Dataset):
    """ChestX-ray14 images with their 14 labels and boxes.

    ``ds[i]`` = (image (channels, size, size) in [0, 1], labels float (14,), boxes (K, 5) rows
    (x_min, y_min, x_max, y_max, finding) in input pixels, resized with the image; no crop).
    ``boxed_only`` (default) keeps the images that have a box (the 984 boxes on 880 images).
    """

    def __init__(
        self,
        data_root: str | Path,
        size: int = 224,
        boxed_only: bool = True,
        channels: int = 3,
        normalize: bool = False,
        limit: int | None = None,
    ):
        if data_root is None:
            raise DataMissingError("NIH ChestX-ray14", ["data_root"], WHERE)
        self.root = nih_root(data_root)
        self.size, self.channels, self.normalize = size, channels, normalize
        entries = read_data_entry(self.root / "Data_Entry_2017.csv")
        bbox_path = self.root / "BBox_List_2017.csv"
        boxes: dict[str, list] = {}
        lines: dict[str, list[int]] = {}
        if bbox_path.is_file() or boxed_only:
            for (img, c, x, y, w, h), line in _read_bbox_rows(bbox_path):
                boxes.setdefault(img, []).append((x, y, x + w, y + h, c))
                lines.setdefault(img, []).append(line)
        self.report = LoadReport("NIH ChestX-ray14")
        dirs = [self.root / "images", self.root] + sorted(self.root.glob("images_*/images"))
        names = sorted(boxes) if boxed_only else sorted(entries)
        self.samples = []
        for name in names:
            if name not in entries:
                raise DataFormatError(
                    bbox_path, f"image {name} has a box but no row in Data_Entry_2017.csv"
                )
            path = find_image(dirs, name)
            if path is None:
                self.report.drop("no image", name)
                continue
            e = entries[name]
            b = np.array(boxes.get(name, []), np.float64).reshape(-1, 5)
            if len(b):
                self._check_boxes(bbox_path, name, b, lines[name], *image_size(path))
            self.samples.append((name, path, e, b))
            if limit is not None and len(self.samples) >= limit:
                break
        if not self.samples:
            raise DataMissingError(
                "NIH ChestX-ray14", [f"the images named in {bbox_path.name}"], WHERE, searched=dirs
            )
        self.report.kept = len(self.samples)
        self.report.log()

    def _check_boxes(self, src, name, boxes, lines, width, height) -> None:
        """Boxes past the image edge: clipped and counted up to EDGE_TOLERANCE, else an error."""
        over = [box_overhang(b, width, height) for b in boxes]
        for b, o, line in zip(boxes, over, lines):
            if o > EDGE_TOLERANCE:
                raise DataFormatError(
                    src,
                    f"box of {name} from x={b[0]:g}, y={b[1]:g} to "
                    f"x={b[2]:g}, y={b[3]:g} passes the edge of its {width}x{height} "
                    f"image by {o:g} px (more than {EDGE_TOLERANCE:g})",
                    line,
                )
        if max(over) > 0:
            self.report.warn(EDGE_WARNING, name, n=sum(o > 0 for o in over))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i):
        name, path, e, b = self.samples[i]
        arr = load_rgb(path)
        # the box list is in the pixels of the released 1024 x 1024 PNGs, not of the original
        # radiographs whose size Data_Entry gives (OriginalImage[Width,Height])
        h, w = arr.shape[:2]
        x = array_to_tensor(arr, self.size, None, "square", self.channels)
        if self.normalize:
            x = normalize_imagenet(x)
        boxes, _ = rescale_boxes(b, w, h, self.size, None, min_size=0.0)
        return x, torch.from_numpy(e["labels"]), boxes
