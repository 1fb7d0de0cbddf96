"""Lay out the smoke book for `make smoke-book`: the book's sources with the notebooks papermill
already ran on the smoke profile, so that Jupyter Book renders them without running them again.

    python book/_ext/stage_smoke_book.py EXECUTED_DIR DEST

DEST gets _config.yml, _toc.yml and book/ from the repository root, and EXECUTED_DIR/*.ipynb as
notebooks/. In DEST's _config.yml the notebooks are excluded from execution (only the
introduction's small cell runs); papermill's injected-parameters cells are tagged remove-cell, so
the pages look like the real book's.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[2]


def stage(executed: Path, dest: Path) -> None:
    notebooks = sorted(executed.glob("*.ipynb"))
    if not notebooks:
        sys.exit(f"no executed notebooks in {executed}: run `make smoke-notebooks` first")
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "notebooks").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "book", dest / "book", ignore=shutil.ignore_patterns("__pycache__"))
    config = yaml.safe_load((dest / "_config.yml").read_text())
    config.setdefault("execute", {})["exclude_patterns"] = ["notebooks/*"]
    (dest / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            tags = cell.metadata.setdefault("tags", [])
            if "injected-parameters" in tags and "remove-cell" not in tags:
                tags.append("remove-cell")
        nbformat.write(nb, dest / "notebooks" / path.name)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    stage(Path(sys.argv[1]), Path(sys.argv[2]))
