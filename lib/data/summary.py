"""What data is on this machine: one row per data set, for the book's introduction and the CLI."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import fashion_mnist, imagenet, nih, stack_folders, vindr

__all__ = ["summary", "format_summary"]

COLUMNS = ["name", "profile", "status", "size", "where"]
#: one-line sources; each loader's DataMissingError gives the full instructions
SHORT = {
    "fashion": "apt-get install dataset-fashion-mnist, or data_root= with the Zalando *-ubyte.gz files",
    "imagenet": "ILSVRC2012 val images + ILSVRC2012_bbox_val_v3 (image-net.org or Kaggle) -> DATA_ROOT/imagenet/",
    "vindr": "VinDr-CXR train.csv + train/*.dicom (PhysioNet or Kaggle) -> DATA_ROOT/vindr-cxr/",
    "nih": "ChestX-ray14 Data_Entry_2017.csv, BBox_List_2017.csv, images/ (NIH box.com or Kaggle) -> DATA_ROOT/chestxray14/",
    "stack": "datasets.zip from github.com/MagamedT/cam-can-see-through-walls -> DATA_ROOT/stack/{stackmix,stackgen}/",
}


def _count(d: Path, patterns) -> int:
    return sum(1 for pat in patterns for _ in d.glob(pat)) if d.is_dir() else 0


def _fashion(data_root):
    sizes = fashion_mnist.fashion_mnist_sizes(data_root)
    files = fashion_mnist.find_fashion_mnist(
        data_root, "train"
    ) or fashion_mnist.find_fashion_mnist(data_root, "test")
    if sizes["train"] and sizes["test"]:
        return "present", f"{sizes['train']} train / {sizes['test']} test", str(files[0].parent)
    have = ", ".join(f"{n} {s}" for s, n in sizes.items() if n) or "no split"
    return "missing", have, SHORT["fashion"]


def _photos(_):
    try:
        from . import photos

        names = photos.list_photos()
    except ImportError:
        return "missing", "", "lib.data.photos is not installed in this checkout"
    except Exception as e:  # a broken photographs module must not hide the other rows
        return "missing", "", f"lib.data.photos failed: {type(e).__name__}: {e}"
    return (
        ("present" if names else "missing"),
        f"{len(names)} photographs",
        "scikit-image / scikit-learn bundled images, boxes in data/photos_boxes.csv",
    )


def _full(data_root, fn):
    if data_root is None:
        return (
            "missing",
            "",
            "full profile only, not looked for (no data folder given): " + fn(None)[1],
        )
    return fn(Path(data_root))


def _imagenet(root):
    if root is None:
        return None, SHORT["imagenet"]
    r = imagenet.imagenet_root(root)
    n_img = sum(
        _count(r / d, ["ILSVRC2012_val_*.JPEG", "ILSVRC2012_val_*.jpg"])
        for d in imagenet.IMAGE_DIRS
    )
    n_xml = max([_count(r / d, ["*.xml"]) for d in imagenet.XML_DIRS] + [0])
    csv_ok = (r / "LOC_val_solution.csv").is_file()
    ok = n_img > 0 and (n_xml > 0 or csv_ok)
    size = f"{n_img} images, " + (
        f"{n_xml} box XMLs" if n_xml else ("LOC_val_solution.csv" if csv_ok else "no boxes")
    )
    return ("present" if ok else "missing"), size, (str(r) if ok else SHORT["imagenet"])


def _vindr(root):
    if root is None:
        return None, SHORT["vindr"]
    r = vindr.vindr_root(root)
    n = _count(r / "train", ["*.dicom", "*.dcm", "*.png", "*.jpg"])
    ok = (r / "train.csv").is_file() and n > 0
    size = f"{n} images" + (", train.csv" if (r / "train.csv").is_file() else ", no train.csv")
    return ("present" if ok else "missing"), size, (str(r) if ok else SHORT["vindr"])


def _nih(root):
    if root is None:
        return None, SHORT["nih"]
    r = nih.nih_root(root)
    n = _count(r, ["images/*.png", "images_*/images/*.png"])
    ok = (r / "Data_Entry_2017.csv").is_file() and (r / "BBox_List_2017.csv").is_file() and n > 0
    return ("present" if ok else "missing"), f"{n} images", (str(r) if ok else SHORT["nih"])


def _stack(kind):
    def fn(root):
        if root is None:
            return None, SHORT["stack"]
        d = stack_folders.stack_folder_dir(root, kind)
        n = (
            sum(1 for p in d.rglob("*") if p.suffix.lower() in stack_folders.EXTS)
            if d.is_dir()
            else 0
        )
        return ("present" if n else "missing"), f"{n} images", (str(d) if n else SHORT["stack"])

    return fn


def summary(data_root: str | Path | None = None) -> pd.DataFrame:
    """One row per data set: name, profile, status (present/missing), size, where (path or source)."""
    rows = [
        ("Fashion-MNIST", "default", *_fashion(data_root)),
        ("photographs", "default", *_photos(data_root)),
    ]
    for name, fn in (
        ("ImageNet 2012 val + boxes", _imagenet),
        ("VinDr-CXR", _vindr),
        ("NIH ChestX-ray14", _nih),
        ("STACK-MIX (Taimeskhanov et al.)", _stack("stackmix")),
        ("STACK-GEN (Taimeskhanov et al.)", _stack("stackgen")),
    ):
        rows.append((name, "full", *_full(data_root, fn)))
    return pd.DataFrame(rows, columns=COLUMNS)


def format_summary(df: pd.DataFrame) -> str:
    """One line per data set: name, profile, present with its size, or missing with the source."""
    lines = []
    for r in df.itertuples():
        if r.status == "present":
            lines.append(f"{r.name:28s} {r.profile:8s} present  {r.size}  ({r.where})")
        else:
            lines.append(
                f"{r.name:28s} {r.profile:8s} missing  {('(' + r.size + ') ') if r.size else ''}-> {r.where}"
            )
    return "\n".join(lines)
