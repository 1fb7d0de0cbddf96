"""The full profile rehearsed: every chapter runs with ``profile="full"`` top to bottom, on a
miniature data root in the papers' own formats (tests/rehearsal_data.py), with randomly
initialised stand-ins for torchvision's ImageNet weights (``GRADCAM_BOOK_REHEARSAL=1``) and the
smoke profile's sizes where the full ones would run for hours (``GRADCAM_BOOK_SIZES``, read by
``lib.notebook.setup`` only in the rehearsal).

What it fails on: a chapter whose full branch crashes, reads a path that is not under
``data_root``, or asks for a file the data root has in the release's layout; a page that does not
say it is the rehearsal; a claim record that lands where a summary page reads it. Nothing it
computes is a result: the weights are random and the data a handful of images.

A chapter that cannot run ``full`` here is listed in ``NOT_HERE`` with the step and the reason,
and its test fails if that step starts to pass (so the list cannot go stale).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

#: per chapter: the sizes that differ from the smoke profile's in the rehearsal (what makes the
#: full branch run at all: ImageNet images, the ImageNet networks, the fine-tuning epochs)
OVERRIDES = {
    "01_methods_tour": ("methods_tour", {}),
    "02_gradcam_fundamentals": (
        "gradcam_fundamentals",
        {"photos": None, "step_photo": None, "n_imagenet": 2, "compete_ratio": 0.05},
    ),  # random weights: no two classes compete at the paper's ratio (and with 0.05 every
    # counterfactual map is empty: the removal claim is undecided with no case)
    "02b_gradcam_design_choices": (
        "gradcam_fundamentals:SIZES_DESIGN",
        {"photos": None, "n_imagenet": 2},
    ),
    "03_receptive_fields": ("receptive_fields", {"epochs": 1, "n_eval": 3}),
    "04_walls_theory": ("walls_theory", {}),
    "05_walls_experiments": ("walls_experiments", {}),
    "06_unet_resolution": ("unet_resolution", {"n_images": 2}),
    "07_gradcam_localization": ("gradcam_localization", {"imagenet_limit": 2, "batch_size": 2}),
    "08_gradcam_faithfulness": (
        "gradcam_faithfulness",
        {
            # the smallest attack and SHAP; CIFAR-10's half (4 min here) is rehearsed on its own,
            # on miniature batches, by tests/test_cifar10_table7.py
            "n_scene_attacks": 0,
            "n_photo_attacks": 0,
            "n_imagenet_attacks": 1,
            "n_cifar": 0,
            "photo_de": [2, 1],
            "shap_samples": 10,
        },
    ),
    "09_explanation_cost": ("explanation_cost", {}),
    "10_sanity_checks": (
        "sanity_checks",
        {"imagenet_archs": ["resnet50"], "n_imagenet": 2},
    ),  # an interval needs two images
}
#: per chapter: parameters beyond ``profile`` and ``data_root`` (paths under the data root) that
#: its full branch needs to run at all
PARAMETERS = {
    "07_gradcam_localization": {"chexnet_checkpoint": "chexnet/model.pth.tar"},
}
#: per chapter: text that only a full-only branch writes on the page (the branch ran, not
#: skipped: chapter 07 shows Table 5 on NIH only with a checkpoint)
SHOWS = {
    "07_gradcam_localization": "share in box (mean)",
}
#: chapter -> (step, why) for a chapter whose full run cannot finish here
NOT_HERE: dict[str, tuple[str, str]] = {}


def rehearsal_sizes(stem: str) -> dict:
    """The smoke sizes of ``stem``'s chapter with the chapter's overrides (JSON-ready)."""
    import importlib

    module, over = OVERRIDES[stem]
    module, _, name = module.partition(":")  # "module:NAME": a page's own sizes (default SIZES)
    sizes = getattr(importlib.import_module(f"lib.chapters.{module}"), name or "SIZES")
    out = {k: v["smoke"] for k, v in sizes.items()}
    out.update(over)
    return json.loads(json.dumps(out, default=list))


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    from rehearsal_data import write_data_root

    base = tmp_path_factory.mktemp("rehearsal")
    root = write_data_root(base / "data")
    return {
        "root": root,
        "cache": base / "cache",
        "torch": base / "torch",
        "out": base / "out",
        "times": {},
    }


def _env(monkeypatch, r, stem):
    monkeypatch.setenv("GRADCAM_BOOK_REHEARSAL", "1")
    monkeypatch.setenv("GRADCAM_BOOK_SIZES", json.dumps(rehearsal_sizes(stem)))
    monkeypatch.setenv("GRADCAM_BOOK_CACHE", str(r["cache"]))  # nothing reaches data/cache
    monkeypatch.setenv("TORCH_HOME", str(r["torch"]))  # no hub weights: the stand-ins only
    monkeypatch.setenv("GRADCAM_BOOK_ALLOW_DOWNLOAD", "0")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _run(stem, r, parameters):
    import papermill
    from papermill.exceptions import PapermillExecutionError

    r["out"].mkdir(exist_ok=True)
    out = r["out"] / f"{stem}.ipynb"
    t0 = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(NOTEBOOKS / f"{stem}.ipynb"),
            str(out),
            parameters=parameters,
            cwd=str(NOTEBOOKS),
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
        )
    except PapermillExecutionError as e:
        return None, f"cell {e.exec_count}: {e.ename}: {e.evalue}".strip()[:2000]
    finally:
        r["times"][stem] = time.perf_counter() - t0
        print(f"rehearsal {stem}: {r['times'][stem]:.0f} s")
    return json.loads(out.read_text()), None


def _text(nb) -> str:
    parts = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            parts += o.get("text", []) if isinstance(o.get("text"), list) else [o.get("text", "")]
            for v in o.get("data", {}).values():
                parts += v if isinstance(v, list) else [str(v)]
    return "".join(parts)


@pytest.mark.parametrize("stem", list(OVERRIDES))
def test_chapter_runs_full_on_the_miniature_data_root(stem, rehearsal, monkeypatch):
    from lib.notebook import REHEARSAL_NOTE

    _env(monkeypatch, rehearsal, stem)
    extra = {k: str(rehearsal["root"] / v) for k, v in PARAMETERS.get(stem, {}).items()}
    parameters = {"profile": "full", "data_root": str(rehearsal["root"]), **extra}
    nb, error = _run(stem, rehearsal, parameters)
    if stem in NOT_HERE:
        step, why = NOT_HERE[stem]
        assert error is not None, f"{stem} now runs full: drop it from NOT_HERE ({step})"
        pytest.xfail(f"{stem} cannot run full here: {step}: {why} (it stopped at {error})")
    assert error is None, f"{stem} on the full profile: {error}"
    assert REHEARSAL_NOTE in _text(nb), f"{stem}: the page does not say it is the rehearsal"
    if stem in SHOWS:
        assert SHOWS[stem] in _text(nb), f"{stem}: the full-only branch did not run ({SHOWS[stem]})"
    record = rehearsal["cache"] / "claims" / "rehearsal" / "full" / f"{stem}.json"
    assert record.is_file(), f"{stem}: no claim record in the rehearsal's folder {record.parent}"
    assert json.loads(record.read_text())["chapter"] == stem
    assert not (rehearsal["cache"] / "claims" / "full").exists(), (
        "a rehearsal record reached the full profile's folder, which the summary page reads"
    )


def test_rehearsal_sizes_are_refused_outside_the_rehearsal(monkeypatch):
    """A size override outside the rehearsal (a typo in a real run) is an error, not hours."""
    from lib import notebook

    monkeypatch.setenv("GRADCAM_BOOK_SIZES", '{"n_images": 1}')
    monkeypatch.delenv("GRADCAM_BOOK_REHEARSAL", raising=False)
    with pytest.raises(RuntimeError, match="not the rehearsal"):
        notebook.setup("smoke", "cpu", sizes={"n_images": {"smoke": 2}})
    monkeypatch.setenv("GRADCAM_BOOK_REHEARSAL", "1")
    with pytest.raises(ValueError, match=r"\['n_images'\]"):
        notebook.setup("smoke", "cpu", sizes={"n_eval": {"smoke": 2}})
    assert notebook.setup("smoke", "cpu", sizes={"n_images": {"smoke": 2}}).n_images == 1
