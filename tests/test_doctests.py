"""The examples in the docstrings of lib.metrics, lib.rf, lib.resample, lib.cam and lib.outputs
run, and give the values worked by hand beside them; every public function of those modules has
one, with its Args and Returns."""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest

#: the modules whose public functions carry a runnable example (lib.rf's functions live in its
#: submodules; doctest finds a function only in the module that defines it)
MODULES = [
    "lib.metrics",
    "lib.resample",
    "lib.rf.fields",
    "lib.rf.erf",
    "lib.rf.dead_zone",
    "lib.cam.api",
    "lib.cam.postprocess",
    "lib.outputs",
]
FLAGS = doctest.NORMALIZE_WHITESPACE


def _run(tests: list[doctest.DocTest]) -> tuple[doctest.TestResults, str]:
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for t in tests:
        runner.run(t, out=report.append)
    return runner.summarize(verbose=False), "".join(report)


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_give_their_values(name):
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder().find(module, name)
    result, report = _run(tests)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0, report


def _public_functions():
    for name in MODULES:
        module = importlib.import_module(name)
        names = getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")])
        for fn_name in names:
            fn = getattr(module, fn_name)
            if inspect.isfunction(fn) and fn.__module__ == name:
                yield f"{name}.{fn_name}", fn
    rf = importlib.import_module("lib.rf")
    for fn_name in rf.__all__:
        fn = getattr(rf, fn_name)
        if inspect.isfunction(fn):
            yield f"lib.rf.{fn_name}", fn


@pytest.mark.parametrize(
    "qualname,fn", list(_public_functions()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_public_function_documents_args_returns_and_an_example(qualname, fn):
    doc = inspect.getdoc(fn) or ""
    for section in ("Args:", "Returns:", "Example:", ">>> "):
        assert section in doc, f"{qualname}: no {section!r} in its docstring"


def test_a_wrong_expected_value_fails():
    """The harness is not a formality: an example whose printed value is off by one digit
    fails, and one that raises fails."""
    from lib import metrics

    parser = doctest.DocTestParser()
    wrong = parser.get_doctest(
        ">>> import torch\n"
        ">>> mass_in_mask(torch.tensor([[[1., 3.], [0., 0.]]]),\n"
        "...              torch.tensor([[[False, True], [False, False]]]))\n"
        "tensor([0.7400])\n",
        vars(metrics),
        "wrong",
        None,
        0,
    )
    raising = parser.get_doctest(">>> hit(None, None)\n0\n", vars(metrics), "raising", None, 0)
    right = parser.get_doctest(
        ">>> import torch\n"
        ">>> mass_in_mask(torch.tensor([[[1., 3.], [0., 0.]]]),\n"
        "...              torch.tensor([[[False, True], [False, False]]]))\n"
        "tensor([0.7500])\n",
        vars(metrics),
        "right",
        None,
        0,
    )
    assert _run([right])[0] == (0, 2)
    result, report = _run([wrong])
    assert result == (1, 2), report
    assert "Expected:\n    tensor([0.7400])\nGot:\n    tensor([0.7500])" in report
    result, report = _run([raising])
    assert result == (1, 1) and "Exception raised" in report, report
