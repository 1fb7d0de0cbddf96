"""The notebooks' contract with Jupytext, papermill, nbval and the book.

The committed ``notebooks/*.ipynb`` are the source a reader opens; each is paired with a MyST
Markdown text form (``notebooks/*.md``, Jupytext, ``[tool.jupytext]`` in pyproject.toml). nbval
runs every notebook on the `smoke` profile (``make test``); these tests check what nbval cannot:
the pairing, clean storage, stable cell ids, no code definitions in cells, the parameters cell,
the table of contents, and one papermill run on another profile.
"""

import ast
import json
import shutil
import subprocess
from pathlib import Path

import jupytext
import pytest
import yaml
from jupytext.combine import combine_inputs_with_outputs

from lib.paths import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
TEXT_FORMAT = "md:myst"


def _inputs(nb):
    """What a reader edits: per cell its type, source and tags."""
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", ()))) for c in nb.cells]


def _text_form(path: Path) -> Path:
    return path.with_suffix(".md")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_and_its_text_form_agree(path):
    text = _text_form(path)
    assert text.is_file(), (
        f"{path.name} has no text form: run `jupytext --set-formats ipynb,{TEXT_FORMAT} {path}`"
    )
    assert _inputs(jupytext.read(path)) == _inputs(jupytext.read(text)), (
        f"{path.name} and {text.name} disagree: after editing one, run `jupytext --sync {text}`"
    )


def test_every_text_form_has_its_notebook():
    for text in (REPO_ROOT / "notebooks").glob("*.md"):
        assert text.with_suffix(".ipynb").is_file(), (
            f"{text.name} has no notebook: run `jupytext --sync {text}`"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_syncing_keeps_the_cell_ids(path):
    """Re-pairing the text form with the notebook (what `jupytext --sync` writes) changes no id."""
    nb = jupytext.read(path)
    synced = combine_inputs_with_outputs(jupytext.read(_text_form(path)), nb, fmt=TEXT_FORMAT)
    assert [c.get("id") for c in synced.cells] == [c.get("id") for c in nb.cells]
    ids = [c.get("id") for c in nb.cells]
    assert all(ids) and len(set(ids)) == len(ids), f"{path.name}: missing or repeated cell ids"


def _git_notebook(rev: str, path: Path):
    rel = path.relative_to(REPO_ROOT).as_posix()
    out = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "show", f"{rev}:{rel}"], capture_output=True, text=True
    )
    return jupytext.reads(out.stdout, fmt="ipynb") if out.returncode == 0 else None


def changed_ids(old, new) -> list[str]:
    """Cells whose content is the same in ``old`` and ``new`` but whose id changed."""
    before = {}
    for c in old.cells:
        before.setdefault((c.cell_type, c.source), set()).add(c.get("id"))
    return [
        c.source.splitlines()[0][:60] if c.source else "<empty cell>"
        for c in new.cells
        if (c.cell_type, c.source) in before and c.get("id") not in before[c.cell_type, c.source]
    ]


def test_changed_ids_sees_a_regenerated_notebook():
    nb = jupytext.read(NOTEBOOKS[0])
    regenerated = jupytext.reads(jupytext.writes(nb, fmt=TEXT_FORMAT), fmt=TEXT_FORMAT)
    assert changed_ids(nb, regenerated), "new ids for unchanged cells must be caught"
    assert changed_ids(nb, nb) == []


@pytest.mark.skipif(
    shutil.which("git") is None or not (REPO_ROOT / ".git").exists(), reason="no git history here"
)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_cell_ids_change_only_with_content(path):
    """Against the last commit (the working tree) and the commit before (the last change): a cell
    whose content did not change keeps its id, so diffs and review comments stay attached."""
    now = jupytext.read(path)
    head, parent = _git_notebook("HEAD", path), _git_notebook("HEAD~1", path)
    for old, new, what in ((head, now, "since HEAD"), (parent, head, "in HEAD")):
        if old is not None and new is not None:
            assert not changed_ids(old, new), (
                f"{path.name}: ids changed {what} for unchanged cells {changed_ids(old, new)}; "
                "edit the notebook or its text form and `jupytext --sync`, never regenerate it"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_definitions_in_code_cells(path):
    """Chapters tell the story, the library does the work: no def/class in a notebook."""
    for cell in jupytext.read(path).cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(
            "\n".join(
                line
                for line in cell.source.splitlines()
                if not line.lstrip().startswith(("%", "!"))
            )
        )
        defs = [
            n.name
            for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        ]
        assert not defs, f"{path.name} defines {defs} in a cell: move them to lib/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_typed_normalisation_constants(path):
    """ImageNet's mean and std come from the library, never typed into a chapter."""
    for cell in jupytext.read(path).cells:
        if cell.cell_type == "code":
            assert "0.485" not in cell.source and "0.229" not in cell.source, path.name


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
        # one line each: a reader (and Colab's rehearsal) replaces a parameter's line; a value
        # wrapped over lines by a formatter would leave its tail behind
        assert node.lineno == node.end_lineno, f"parameter on line {node.lineno} spans lines"
        names[node.targets[0].id] = ast.literal_eval(node.value)
    assert names.get("profile") == "default", "the book renders the default profile"
    for required in ("data_root", "device", "seed"):
        assert required in names, f"parameters cell lacks {required!r}"
    assert names["device"] == "auto"


@pytest.mark.parametrize(
    "path", [p for p in NOTEBOOKS if p.stem != "90_summary"], ids=lambda p: p.name
)
def test_colab_cell_comes_first(path):
    """A reader with only the rendered book runs any chapter on Colab: the first code cell is
    lib.colab.BOOTSTRAP_CELL, removed from the page. (The summary page only gathers the records
    the chapters wrote; it has nothing to run there.)"""
    from lib import colab

    code = [c for c in _cells(path) if c["cell_type"] == "code"]
    assert code and "".join(code[0]["source"]).strip() == colab.BOOTSTRAP_CELL.strip(), (
        f"{path.name}: the first code cell must be lib.colab.BOOTSTRAP_CELL (copy it from "
        "another chapter's text form, then `jupytext --sync`)"
    )
    assert "remove-cell" in code[0]["metadata"].get("tags", []), (
        f"{path.name}: tag the Colab cell remove-cell"
    )


@pytest.mark.parametrize(
    "path", [p for p in NOTEBOOKS if p.stem != "90_summary"], ids=lambda p: p.name
)
def test_plumbing_out_of_sight(path):
    """The reader sees the story, not the plumbing: the set-up cell (``setup(``) is collapsed or
    removed, the verdict cell (``verdict_box()``) shows its box without its code, glue and claim
    bookkeeping stay out of the cells on the page, and ``print`` appears only in cells removed
    from the page (numbers go into the prose with glue)."""
    for i, cell in enumerate(c for c in _cells(path) if c["cell_type"] == "code"):
        src, tags = "".join(cell["source"]), set(cell["metadata"].get("tags", []))
        hidden = {"remove-cell", "remove-input", "hide-input", "hide-cell"}
        if i == 0:  # the Colab cell, removed (test_colab_cell_comes_first)
            continue
        if "setup(" in src and "parameters" not in tags:
            assert tags & hidden, f"{path.name}: tag the set-up cell hide-input"
        if "verdict_box()" in src:
            assert tags & {"remove-input", "remove-cell"}, (
                f"{path.name}: tag the verdict cell remove-input"
            )
        if not tags & hidden and "parameters" not in tags:
            assert "report.glue(" not in src and "claims.add(" not in src, (
                f"{path.name}: glue or claim bookkeeping in a cell on the page ({src[:60]!r}): "
                "move it to a cell tagged remove-input (the reader sees only code worth changing)"
            )
        if "print(" in src:
            assert "remove-cell" in tags, (
                f"{path.name}: a print in a cell on the page ({src[:60]!r}); glue the number "
                "into the prose (lib.report.glue) instead"
            )


@pytest.mark.parametrize(
    "path", [p for p in NOTEBOOKS if p.stem != "90_summary"], ids=lambda p: p.name
)
def test_chapter_has_claims_verdict_and_try_it(path):
    """Coursework: every chapter states its claims, closes with a verdict box and ends with a
    "Try it" section (the parameters worth changing and what to expect)."""
    cells = _cells(path)
    headings = [
        line.strip()
        for c in cells
        if c["cell_type"] == "markdown"
        for line in "".join(c["source"]).splitlines()
        if line.startswith("#")
    ]
    assert "## Verdict" in headings, f"{path.name}: no '## Verdict' section"
    assert "## Try it" in headings, f"{path.name}: no '## Try it' section"
    assert headings.index("## Try it") > headings.index("## Verdict")
    assert any("verdict_box()" in "".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_without_outputs(path):
    for cell in _cells(path):
        if cell["cell_type"] == "code":
            assert not cell["outputs"] and cell["execution_count"] is None, (
                f"{path.name} is stored with outputs: clear them (Jupyter: Edit > Clear Outputs "
                "of All Cells; or `jupyter nbconvert --clear-output --inplace`)"
            )


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
    papermill.execute_notebook(
        str(REPO_ROOT / "notebooks" / "04_walls_theory.ipynb"),
        str(out),
        parameters={"profile": "default", "n_filters": [64]},
        cwd=str(REPO_ROOT / "notebooks"),
        kernel_name="python3",
        progress_bar=False,
    )
    cells = json.loads(out.read_text())["cells"]
    injected = [c for c in cells if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and 'profile = "default"' in "".join(injected[0]["source"])
    errors = [
        o
        for c in cells
        if c["cell_type"] == "code"
        for o in c["outputs"]
        if o["output_type"] == "error"
    ]
    assert not errors


@pytest.mark.parametrize(
    "path", [p for p in NOTEBOOKS if p.stem != "90_summary"], ids=lambda p: p.name
)
def test_chapter_module_is_imported_as_chapter(path):
    """Every chapter reads the same way: its module is ``chapter`` (``chapter.run_table7(...)``),
    and no chapter's notebook imports another chapter's module."""
    import re

    code = "\n".join("".join(c["source"]) for c in _cells(path) if c["cell_type"] == "code")
    imports = re.findall(r"^from lib\.chapters import (\w+)(?: as (\w+))?$", code, re.M)
    assert len(imports) == 1, f"{path.name}: one chapter module, imported once; got {imports}"
    assert imports[0][1] == "chapter", (
        f"{path.name}: import {imports[0][0]} as chapter, not as {imports[0][1] or imports[0][0]}"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_glued_value_is_read_by_the_prose(path):
    """A number glued into the notebook's records is there for its prose: a key no text reads
    is dead work (a timing, a count) that the page never shows."""
    import re

    cells = _cells(path)
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    prose = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    glued = set(re.findall(r'report\.glue\(\s*"([^"]+)"', code))
    read = set(re.findall(r"\{glue(?::text)?\}`([^`]+)`", prose))
    assert not glued - read, f"{path.name}: glued but never read: {sorted(glued - read)}"


#: chapters whose every figure goes through lib.plot.figure (a numbered, captioned {glue:figure})
FIGURES_THROUGH_THE_HELPER = (
    "01_",
    "02_",
    "02b_",
    "03_",
    "04_",
    "05_",
    "06_",
    "07_",
    "08_",
    "09_",
    "10_",
)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_figure_has_caption_alt_text_and_a_name(path):
    """A figure glued by ``plot.figure(fig, "fig-...")`` is placed by a ``{glue:figure}`` directive
    with a caption, ``:alt:`` words (not a file name) and ``:name:`` (lib.plot.check_figure_markup);
    in the chapters converted to the helper no figure reaches the page another way (``show(``,
    or a ``fig = ...`` that the inline backend would show). The verdict figure
    (``claims.show_figure()``, lib.report) is not yet one of them."""
    import re

    from lib import plot

    cells = _cells(path)
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    prose = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    glued = re.findall(r'"(fig-[a-z0-9-]+)"', code)
    assert len(glued) == len(set(glued)), f"{path.name}: a figure name used twice: {sorted(glued)}"
    problems = plot.check_figure_markup(prose, glued)
    assert not problems, f"{path.name}: " + "; ".join(problems)
    if path.name.startswith(FIGURES_THROUGH_THE_HELPER):
        # plot.show / plt.show / show(fig), or a figure left open for the inline backend to show
        shown = re.findall(r"^.*\bshow\(.*$|^\s*figs?(?:, \w+)* = .*$", code, re.M)
        assert not shown, (
            f"{path.name}: figures shown without plot.figure (no number, caption or "
            f"alt text): {shown}"
        )
