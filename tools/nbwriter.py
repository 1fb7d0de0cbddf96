"""Shared by the tools/make_nb_*.py scripts: build a notebook cell by cell, write it clean."""
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


class Notebook:
    """Cells in order; ``md`` and ``code`` strip surrounding blank lines."""

    def __init__(self):
        self.cells = []

    def md(self, text):
        self.cells.append(new_markdown_cell(text.strip("\n")))

    def code(self, text, tags=None):
        cell = new_code_cell(text.strip("\n"))
        if tags:
            cell.metadata["tags"] = list(tags)
        self.cells.append(cell)

    def write(self, name):
        """Write notebooks/<name> without outputs (the book and the tests run it)."""
        nb = new_notebook(cells=self.cells, metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"}})
        out = NOTEBOOKS / name
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
        print(f"wrote {out}")
        return out
