"""Put the chapters' executed notebooks (with their outputs) into the built book, beside its pages,
so that a reader can open a chapter in Colab with its figures already there.

    python book/_ext/executed_notebooks.py EXECUTED_DIR HTML_DIR

EXECUTED_DIR holds the executed ``NN_name.ipynb`` (Jupyter Book's ``_build/jupyter_execute/
notebooks`` after ``make book``; papermill's output folder for the smoke book). Every chapter of
``_toc.yml`` must be there; each is copied to ``HTML_DIR/_static/executed/`` (linked, never
embedded: the introduction's Colab steps link them), papermill's injected-parameters cell dropped.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[2]


def chapters() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [Path(c["file"]).name for c in toc["chapters"] if c["file"].startswith("notebooks/")]


def copy(executed: Path, html: Path) -> list[Path]:
    missing = [c for c in chapters() if not (executed / f"{c}.ipynb").is_file()]
    if missing:
        sys.exit(f"no executed notebook for {missing} in {executed}: build the book first")
    dest = html / "_static" / "executed"
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for c in chapters():
        nb = nbformat.read(executed / f"{c}.ipynb", as_version=4)
        nb.cells = [cell for cell in nb.cells
                    if "injected-parameters" not in cell.metadata.get("tags", [])]
        nbformat.write(nb, dest / f"{c}.ipynb")
        out.append(dest / f"{c}.ipynb")
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(f"{len(copy(Path(sys.argv[1]), Path(sys.argv[2])))} executed notebooks in "
          f"{Path(sys.argv[2]) / '_static' / 'executed'}")
