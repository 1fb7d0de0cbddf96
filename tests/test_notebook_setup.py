"""setup(): says at the start what the profile will run on, and warns before hours on a CPU."""

import warnings

import pytest
import torch

import lib.notebook as nb
from lib.notebook import setup

COST = {"smoke": "seconds", "default": "~2 min on a 2-core CPU", "full": "~1 h on one GPU"}


def test_full_on_cpu_warns_and_names_the_device(capsys):
    with pytest.warns(nb.ProfileCostWarning) as rec:
        cfg = setup("full", "cpu", cost=COST)
    msg = str(rec[0].message)
    assert len(rec) == 1 and rec[0].category is nb.ProfileCostWarning
    for part in (
        "'full'",
        "needs a GPU",
        "hours",
        "CPU (",
        "-p profile default",
        "~1 h on one GPU",
    ):
        assert part in msg, (part, msg)
    out = capsys.readouterr().err
    assert out.startswith("profile 'full' on CPU (") and "~1 h on one GPU" in out
    assert len(out.splitlines()) <= 2
    assert cfg.device == torch.device("cpu") and cfg.device_name in out


@pytest.mark.parametrize("profile", ["smoke", "default"])
def test_smaller_profiles_on_cpu_do_not_warn(capsys, profile):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = setup(profile, "cpu", cost=COST)
    captured = capsys.readouterr()
    out = captured.err
    assert out == f"profile '{profile}' on {cfg.device_name}: {COST[profile]}\n"
    # stdout reaches the book's pages (stderr does not): a machine's run time is no part of one
    assert captured.out == ""
    assert cfg.device_name.startswith("CPU (") and "core" in cfg.device_name


def test_full_on_a_gpu_names_it_and_does_not_warn(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = setup("full", torch.device("cuda"), cost=COST)
    assert (
        capsys.readouterr().err
        == "profile 'full' on NVIDIA H100 80GB HBM3 (cuda): ~1 h on one GPU\n"
    )
    assert cfg.device_name == "NVIDIA H100 80GB HBM3 (cuda)"


def test_without_cost_and_short_repr(capsys):
    with pytest.warns(nb.ProfileCostWarning, match="hours"):
        cfg = setup("full", "cpu", sizes={"n": {"smoke": 1, "default": 2, "full": 3}})
    assert capsys.readouterr().err.startswith("profile 'full' on CPU (")
    assert repr(cfg) == "Setup(profile='full', device=device(type='cpu'), seed=0, sizes={'n': 3})"
    with pytest.raises(ValueError, match="cost.*'ful'"):
        setup("default", "cpu", cost={"ful": "x"})
