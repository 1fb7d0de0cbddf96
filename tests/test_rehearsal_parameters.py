"""A reader's papermill reads every chapter's parameters cell: each assignment is a parameter it
infers (a comment papermill cannot parse drops the name with 'Unable to parse line ...')."""

import re

import pytest
from papermill.inspection import _infer_parameters
from papermill.iorw import load_notebook_node

from lib.paths import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem.split("_")[0])
def test_papermill_infers_every_parameter(path, caplog):
    nb = load_notebook_node(str(path))  # as papermill reads it
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assigned = re.findall(r"^(\w+)\s*=", cell.source, re.M)
    inferred = [p.name for p in _infer_parameters(nb)]
    assert inferred == assigned, f"papermill cannot read {sorted(set(assigned) - set(inferred))}"
    assert "Unable to parse" not in caplog.text, caplog.text
