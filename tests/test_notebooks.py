"""The notebooks' contract with papermill, nbval and the book.

nbval runs every notebook on the `smoke` profile (``make test``); these tests check what nbval
cannot: the parameters cell, the table of contents, and one papermill run on another profile.
"""
import ast
import json
from pathlib import Path

import pytest
import yaml

from lib.paths import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))


def _cells(path):
    return json.loads(Path(path).read_text())["cells"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell(path):
    cells = _cells(path)
    tagged = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters' (papermill)"
    assert cells.index(tagged[0]) <= 2, "the parameters cell comes first, after the title"
    tree = ast.parse("".join(tagged[0]["source"]))
    names = {}
    for node in tree.body:
        assert isinstance(node, ast.Assign), "the parameters cell holds plain assignments only"
        names[node.targets[0].id] = ast.literal_eval(node.value)
    assert names.get("profile") == "default", "the book renders the default profile"
    for required in ("data_root", "device", "seed"):
        assert required in names, f"parameters cell lacks {required!r}"
    assert names["device"] == "auto"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_without_outputs(path):
    for cell in _cells(path):
        if cell["cell_type"] == "code":
            assert not cell["outputs"] and cell["execution_count"] is None, \
                "notebooks are stored clean; regenerate with tools/make_nb_*.py"


def test_every_notebook_is_a_chapter_of_the_book():
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    files = {c["file"] for c in toc["chapters"]}
    for path in NOTEBOOKS:
        assert f"notebooks/{path.stem}" in files, f"{path.name} is not in _toc.yml"
    for f in files:
        assert any((REPO_ROOT / f).with_suffix(s).exists() for s in (".ipynb", ".md")), f


def test_papermill_runs_a_notebook_on_the_default_profile(tmp_path):
    """Once, a notebook on another profile than smoke, through papermill as a reader runs it:
    the walls-theory chapter on `default` (one V instead of three, to keep the suite short)."""
    import papermill

    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(REPO_ROOT / "notebooks" / "03_walls_theory.ipynb"), str(out),
                               parameters={"profile": "default", "n_filters": [64]},
                               cwd=str(REPO_ROOT / "notebooks"), kernel_name="python3",
                               progress_bar=False)
    cells = json.loads(out.read_text())["cells"]
    injected = [c for c in cells if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and 'profile = "default"' in "".join(injected[0]["source"])
    errors = [o for c in cells if c["cell_type"] == "code" for o in c["outputs"]
              if o["output_type"] == "error"]
    assert not errors
