"""Taimeskhanov et al.'s STACK-MIX and STACK-GEN folders (full profile).

As published (github.com/MagamedT/cam-can-see-through-walls, ``figure_code/data/stackmix`` and
``.../stackgen``): flat folders of 100 PNG/JPEG images, one per class, read in sorted file-name
order. The authors' code uses STACK-MIX images as they are (224 x 224) and resizes STACK-GEN
images (shorter side 256, centre crop 224); this loader does the same to any image that is not
already 224 x 224. The paper scores the *predicted* class, so labels are optional. Assumed label
sources, first that applies: a ``labels.csv`` in the folder (``file,label``; label a wnid or a
class index), sub-folders named by wnid or class index (ImageFolder layout), or a wnid
(``n\\d{8}``) inside the file name. Otherwise the label is -1 and ``labels_known`` is False.
``labels.csv`` follows ``lib.data.errors``' conventions (BOM, blank lines skipped); a file listed
twice is an error naming both lines.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import CSV_ENCODING, DataFormatError, DataMissingError, LoadReport, is_blank
from .imagenet import load_wnids
from .images import array_to_tensor, load_rgb

__all__ = ["Stack003", "load_stack_folder", "stack_folder_dir", "WHERE"]

WHERE = (
    "the STACK-MIX / STACK-GEN images (datasets.zip) linked from "
    "https://github.com/MagamedT/cam-can-see-through-walls (Google Drive); unzip into "
    "DATA_ROOT/stack/ so that DATA_ROOT/stack/stackmix/ and .../stackgen/ exist"
)
EXTS = {".png", ".jpg", ".jpeg"}
WNID = re.compile(r"n\d{8}")


@dataclass
class Stack003:
    """images (N, 3, 224, 224) in [0, 1] (not normalised); labels (N,) int64, -1 if unknown."""

    images: torch.Tensor
    labels: torch.Tensor
    names: list[str]
    labels_known: bool
    report: LoadReport

    def __len__(self) -> int:
        return self.images.shape[0]


def stack_folder_dir(data_root: str | Path, kind: str) -> Path:
    """The folder of ``kind`` ("stackmix" or "stackgen") under a data root."""
    if kind not in ("stackmix", "stackgen"):
        raise ValueError(f"kind must be 'stackmix' or 'stackgen', not {kind!r}")
    r = Path(data_root)
    for cand in (r / "stack" / kind, r / kind, r / "stack" / "data" / kind):
        if cand.is_dir():
            return cand
    return r / "stack" / kind


def _label(token: str, index: dict[str, int], src, line=None) -> int:
    token = token.strip()
    if token in index:
        return index[token]
    if token.lstrip("-").isdigit() and 0 <= int(token) < 1000:
        return int(token)
    raise DataFormatError(src, f"label {token!r} is neither a wnid nor a class index 0..999", line)


def load_stack_folder(
    data_root: str | Path, kind: str = "stackmix", size: int = 224, limit: int | None = None
) -> Stack003:
    """Load STACK-MIX or STACK-GEN as a batch of [0, 1] images (see the module doc)."""
    if data_root is None:
        stack_folder_dir(".", kind)  # checks kind
        raise DataMissingError(
            f"STACK-{kind[5:].upper()} (Taimeskhanov et al.)", ["data_root"], WHERE
        )
    folder = stack_folder_dir(data_root, kind)
    files = (
        sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTS) if folder.is_dir() else []
    )
    if not files:
        raise DataMissingError(
            f"STACK-{kind[5:].upper()} (Taimeskhanov et al.)", [f"{folder}/*.png|jpg"], WHERE
        )
    if limit is not None:
        files = files[:limit]
    index = {w: i for i, w in enumerate(load_wnids())}
    labels_csv = folder / "labels.csv"
    table: dict[str, int] = {}
    first_line: dict[str, int] = {}
    if labels_csv.is_file():
        with open(labels_csv, newline="", encoding=CSV_ENCODING) as f:
            reader = csv.reader(f)
            header = next(reader, [])
            if [h.strip() for h in header[:2]] != ["file", "label"]:
                raise DataFormatError(labels_csv, f"header {header}, expected file,label", 1)
            for r in reader:
                line = reader.line_num
                if is_blank(r):
                    continue
                if len(r) != 2:
                    raise DataFormatError(labels_csv, f"{len(r)} fields, expected 2", line)
                name = r[0].strip()
                if name in first_line:
                    raise DataFormatError(
                        labels_csv, f"{name} appears twice (first on line {first_line[name]})", line
                    )
                first_line[name] = line
                table[name] = _label(r[1], index, labels_csv, line)
    report = LoadReport(f"STACK-{kind[5:].upper()}")
    images, labels, names = [], [], []
    for p in files:
        rel = p.relative_to(folder).as_posix()
        if table:
            if rel not in table:
                raise DataFormatError(labels_csv, f"no label for image {rel}")
            lab = table[rel]
        elif p.parent != folder:
            lab = _label(p.parent.name, index, p.parent)
        else:
            m = WNID.search(p.stem)
            lab = index.get(m.group(0), -1) if m else -1
        try:
            arr = load_rgb(p)
        except OSError as e:
            raise DataFormatError(p, f"not a readable image ({e})") from e
        square = arr.shape[0] == arr.shape[1] == size
        images.append(
            array_to_tensor(
                arr, None if square else 256 * size // 224, None if square else size, "shorter"
            )
        )
        labels.append(lab)
        names.append(rel)
    report.kept = len(images)
    report.log()
    lab_t = torch.tensor(labels, dtype=torch.int64)
    known = bool((lab_t >= 0).all())
    return Stack003(torch.stack(images), lab_t, names, known, report)
