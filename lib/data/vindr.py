"""VinDr-CXR (full profile; Santos et al.): Kaggle's ``train.csv`` of radiologists' boxes.

``train.csv`` columns: image_id, class_name, class_id, rad_id, x_min, y_min, x_max, y_max. Each
image was read by three radiologists; "No finding" rows (class_id 14) have empty boxes. A finding
is a label of the image when a majority of the radiologists who read it marked it (Santos et al.).
Boxes of a positive finding are fused across radiologists (default ``fusion="mean"``: boxes of the
same finding that overlap with IoU >= 0.4 form a cluster whose coordinates are averaged; clusters
marked by a majority of readers are kept, or all clusters of that finding if none reaches a
majority). Images are DICOM (``train/<image_id>.dicom``) or PNG/JPEG; for resized PNGs give a
``meta`` CSV (image_id, dim0 = original height, dim1 = original width) so boxes can be rescaled.

Boxes must be finite and inside the image: a reader's box that passes the border by up to
``EDGE_TOLERANCE`` px is clipped and counted in ``report`` (as the images are loaded, once per
image: the image size is known only then); farther is an error naming the ``train.csv`` line.
CSVs follow ``lib.data.errors``' conventions (BOM, blank lines skipped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .boxes import EDGE_TOLERANCE, EDGE_WARNING, box_overhang, rescale_boxes
from .errors import DataFormatError, DataMissingError, LoadReport, named_rows
from .images import array_to_tensor, find_image, load_rgb, normalize_imagenet

__all__ = [
    "FINDINGS",
    "read_vindr_csv",
    "fuse_annotations",
    "read_dicom",
    "VinDrCXR",
    "WHERE",
    "vindr_root",
]

FINDINGS = (
    "Aortic enlargement",
    "Atelectasis",
    "Calcification",
    "Cardiomegaly",
    "Consolidation",
    "ILD",
    "Infiltration",
    "Lung Opacity",
    "Nodule/Mass",
    "Other lesion",
    "Pleural effusion",
    "Pleural thickening",
    "Pneumothorax",
    "Pulmonary fibrosis",
)
NO_FINDING = 14
COLUMNS = ("image_id", "class_name", "class_id", "rad_id", "x_min", "y_min", "x_max", "y_max")
WHERE = (
    "VinDr-CXR from https://physionet.org/content/vindr-cxr/ (credentialed access) or the "
    "Kaggle competition 'vinbigdata-chest-xray-abnormalities-detection' (train.csv and "
    "train/*.dicom); put them under DATA_ROOT/vindr-cxr/ and pass data_root=DATA_ROOT"
)
IMAGE_EXTS = (".dicom", ".dcm", ".png", ".PNG", ".jpg", ".jpeg")


def vindr_root(data_root: str | Path) -> Path:
    r = Path(data_root)
    for sub in ("vindr-cxr", "vindr"):
        if (r / sub).is_dir():
            return r / sub
    return r


@dataclass
class Row:
    image_id: str
    class_id: int
    rad_id: str
    box: tuple[float, float, float, float] | None
    line: int


def read_vindr_csv(path: str | Path) -> list[Row]:
    """Parse and check ``train.csv``; a malformed row raises DataFormatError with its line."""
    path = Path(path)
    if not path.is_file():
        raise DataMissingError("VinDr-CXR", [path], WHERE)
    rows = []
    required = [c for c in COLUMNS if c != "rad_id"]
    for line, r, col in named_rows(path, required, optional=("rad_id",)):
        try:
            cid = int(r[col["class_id"]])
        except ValueError:
            raise DataFormatError(
                path, f"class_id {r[col['class_id']]!r} is not an integer", line
            ) from None
        if not 0 <= cid <= NO_FINDING:
            raise DataFormatError(path, f"class_id {cid} outside 0..14", line)
        name = r[col["class_name"]].strip()
        expect = "No finding" if cid == NO_FINDING else FINDINGS[cid]
        if name != expect:
            raise DataFormatError(
                path, f"class_name {name!r} does not match class_id {cid} ({expect!r})", line
            )
        coords = [r[col[c]].strip() for c in ("x_min", "y_min", "x_max", "y_max")]
        if cid == NO_FINDING:
            if any(c not in ("", "nan", "NaN") for c in coords):
                raise DataFormatError(path, "a 'No finding' row with a box", line)
            box = None
        else:
            try:
                box = tuple(float(c) for c in coords)
            except ValueError:
                raise DataFormatError(
                    path, f"box {coords} is missing or not numeric", line
                ) from None
            if not all(map(math.isfinite, box)):
                raise DataFormatError(path, f"box {box} is not finite", line)
            if not (box[2] > box[0] and box[3] > box[1]):
                raise DataFormatError(
                    path, f"box {box} is empty (x_max <= x_min or y_max <= y_min)", line
                )
            if box_overhang(box) > EDGE_TOLERANCE:
                raise DataFormatError(
                    path,
                    f"box x_min={box[0]:g}, y_min={box[1]:g} starts more than "
                    f"{EDGE_TOLERANCE:g} px left of or above the image",
                    line,
                )
        rad = r[col["rad_id"]].strip() if "rad_id" in col else "consensus"
        rows.append(Row(r[col["image_id"]].strip(), cid, rad, box, line))
    return rows


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Annotation:
    """Per image: 14 majority-vote labels, fused boxes (K, 5) in original pixels, reader count."""

    labels: np.ndarray
    boxes: np.ndarray
    n_readers: int
    votes: np.ndarray = field(default_factory=lambda: np.zeros(14, np.int64))


def fuse_annotations(
    rows: list[Row], fusion: str = "mean", iou_threshold: float = 0.4
) -> dict[str, Annotation]:
    """Majority-vote labels and fused boxes per image.

    ``fusion``: "mean" (cluster overlapping boxes of a finding, average them; see module doc),
    "union" (same clusters, the enclosing box), "none" (every reader's box of a positive finding).
    """
    if fusion not in ("mean", "union", "none"):
        raise ValueError(f"fusion must be 'mean', 'union' or 'none', not {fusion!r}")
    by_image: dict[str, list[Row]] = {}
    for r in rows:
        by_image.setdefault(r.image_id, []).append(r)
    out = {}
    for image_id, rs in by_image.items():
        readers = {r.rad_id for r in rs}
        n = len(readers)
        votes = np.zeros(len(FINDINGS), np.int64)
        for c in range(len(FINDINGS)):
            votes[c] = len({r.rad_id for r in rs if r.class_id == c})
        labels = (2 * votes > n).astype(np.float32)
        boxes = []
        for c in np.flatnonzero(labels):
            cand = [(r.box, r.rad_id) for r in rs if r.class_id == c]
            if fusion == "none":
                boxes += [(*b, c) for b, _ in cand]
                continue
            clusters: list[list] = []
            for b, rad in cand:
                for cl in clusters:
                    if max(_iou(b, o) for o, _ in cl) >= iou_threshold:
                        cl.append((b, rad))
                        break
                else:
                    clusters.append([(b, rad)])
            major = [cl for cl in clusters if 2 * len({rad for _, rad in cl}) > n] or clusters
            for cl in major:
                arr = np.array([b for b, _ in cl])
                fused = (
                    arr.mean(0) if fusion == "mean" else np.r_[arr[:, :2].min(0), arr[:, 2:].max(0)]
                )
                boxes.append((*fused, c))
        out[image_id] = Annotation(labels, np.array(boxes, np.float64).reshape(-1, 5), n, votes)
    return out


def read_dicom(path: str | Path) -> np.ndarray:
    """A DICOM radiograph as an (H, W) float array in [0, 1] (VOI LUT applied, MONOCHROME1 inverted)."""
    # lazy: pydicom is needed only for VinDr-CXR's DICOM files
    import pydicom
    from pydicom.pixels import apply_voi_lut

    try:
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array
    except Exception as e:
        raise DataFormatError(
            path,
            f"cannot decode the DICOM pixels ({e}); compressed VinDr files "
            "need `pip install pylibjpeg pylibjpeg-openjpeg`",
        ) from e
    arr = apply_voi_lut(arr, ds).astype(np.float32)
    if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
        arr = arr.max() - arr
    lo, hi = float(arr.min()), float(arr.max())
    return (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)


def _read_meta(path: Path) -> dict[str, tuple[int, int]]:
    """{image_id: (original width, original height)} from a CSV of image_id, dim0, dim1."""
    out: dict[str, tuple[int, int]] = {}
    first_line: dict[str, int] = {}
    for line, r, col in named_rows(path, ("image_id", "dim0", "dim1")):
        image_id = r[col["image_id"]].strip()
        if image_id in first_line:
            raise DataFormatError(
                path,
                f"image {image_id!r} appears twice (first on line {first_line[image_id]})",
                line,
            )
        try:
            w, h = int(r[col["dim1"]]), int(r[col["dim0"]])
        except ValueError:
            raise DataFormatError(
                path,
                f"dim0/dim1 {r[col['dim0']]!r}, {r[col['dim1']]!r} are not whole numbers",
                line,
            ) from None
        if w <= 0 or h <= 0:
            raise DataFormatError(path, f"image size {w}x{h} is not positive", line)
        first_line[image_id] = line
        out[image_id] = (w, h)
    return out


class VinDrCXR(Dataset):
    """VinDr-CXR images with majority-vote labels and fused boxes.

    ``ds[i]`` = (image (channels, size, size) in [0, 1] (ImageNet-normalised if ``normalize``),
    labels float (14,), boxes (K, 5) rows (x_min, y_min, x_max, y_max, finding) in input pixels).
    The image is resized to ``size x size`` (no crop, so no box is lost).
    """

    def __init__(
        self,
        data_root: str | Path,
        csv_name: str = "train.csv",
        image_dir: str = "train",
        size: int = 224,
        fusion: str = "mean",
        iou_threshold: float = 0.4,
        channels: int = 3,
        normalize: bool = False,
        only_abnormal: bool = False,
        meta: str | Path | None = None,
        limit: int | None = None,
    ):
        if data_root is None:
            raise DataMissingError("VinDr-CXR", ["data_root"], WHERE)
        self.root = vindr_root(data_root)
        self.size, self.channels, self.normalize = size, channels, normalize
        self.csv_path = self.root / csv_name
        rows = read_vindr_csv(self.csv_path)
        ann = fuse_annotations(rows, fusion, iou_threshold)
        self._rows: dict[str, list[Row]] = {}
        for r in rows:
            if r.box is not None:
                self._rows.setdefault(r.image_id, []).append(r)
        self._edge_checked: set[str] = set()
        meta_path = (
            Path(meta)
            if meta
            else next(
                (p for p in (self.root / "train_meta.csv", self.root / "meta.csv") if p.is_file()),
                None,
            )
        )
        self.original_size = _read_meta(meta_path) if meta_path else {}
        dirs = [self.root / image_dir, self.root]
        self.report = LoadReport("VinDr-CXR")
        self.samples = []
        for image_id in sorted(ann):
            a = ann[image_id]
            if only_abnormal and not a.labels.any():
                self.report.drop("no finding (only_abnormal=True)")
                continue
            path = find_image(dirs, image_id, IMAGE_EXTS)
            if path is None:
                self.report.drop("no image", image_id)
                continue
            self.samples.append((image_id, path, a))
            if limit is not None and len(self.samples) >= limit:
                break
        if not self.samples:
            raise DataMissingError(
                "VinDr-CXR",
                [f"images for the {len(ann)} image_ids of {csv_name}"],
                WHERE,
                searched=dirs,
            )
        self.report.kept = len(self.samples)
        self.report.log()

    def __len__(self) -> int:
        return len(self.samples)

    def load_array(self, i: int) -> tuple[np.ndarray, int, int]:
        """(pixels in [0, 1], original width, original height) of sample ``i``."""
        image_id, path, a = self.samples[i]
        if path.suffix.lower() in (".dicom", ".dcm"):
            arr = read_dicom(path)
            h, w = arr.shape[:2]
        else:
            arr = load_rgb(path)
            h, w = arr.shape[:2]
            w, h = self.original_size.get(image_id, (w, h))
        self._check_edges(image_id, path, w, h)
        return arr, w, h

    def _check_edges(self, image_id: str, path: Path, w: int, h: int) -> None:
        """Readers' boxes past the image: an error naming the csv row beyond EDGE_TOLERANCE, else
        clipped later by rescale_boxes and counted once per image."""
        if image_id in self._edge_checked:
            return
        clipped = 0
        for r in self._rows.get(image_id, []):
            over = box_overhang(r.box, w, h)
            if over > EDGE_TOLERANCE:
                hint = (
                    "; this image is a PNG without its original size: pass meta= (a CSV of "
                    "image_id, dim0, dim1) if it was resized"
                    if path.suffix.lower() not in (".dicom", ".dcm")
                    and image_id not in self.original_size
                    else ""
                )
                x0, y0, x1, y1 = r.box
                raise DataFormatError(
                    self.csv_path,
                    f"box x_min={x0:g}, y_min={y0:g}, x_max={x1:g}, "
                    f"y_max={y1:g} of {image_id} passes the edge of its {w}x{h} "
                    f"image ({path.name}) by {over:g} px{hint}",
                    r.line,
                )
            clipped += over > 0
        if clipped:
            self.report.warn(EDGE_WARNING, image_id, n=clipped)
        self._edge_checked.add(image_id)

    def __getitem__(self, i):
        image_id, path, a = self.samples[i]
        arr, w, h = self.load_array(i)
        x = array_to_tensor(arr, self.size, None, "square", self.channels)
        if self.normalize:
            x = normalize_imagenet(x)
        boxes, _ = rescale_boxes(a.boxes, w, h, self.size, None, min_size=0.0)
        return x, torch.from_numpy(a.labels), boxes
