"""One small, seeded, resumable trainer for the book's CPU-sized models, with a cache by config.

``load_or_train(...)`` returns a trained model in under a second once its weights exist (in
``MODELS_DIR``, committed, or ``CACHE_DIR/models``); otherwise it trains, checkpointing every
epoch to ``CACHE_DIR/checkpoints`` (atomic writes) so an interrupted run resumes where it
stopped, and gives bit-identical weights to an uninterrupted one.

The committed models (``RECIPES``) load with ``load_trained("gap_net")``; each is re-created by
``load_trained(name, retrain=True)`` (all of them: ``python -m lib.train``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from . import paths
from .data.fashion_mnist import load_fashion_mnist

__all__ = [
    "TrainConfig",
    "train",
    "load_or_train",
    "load_trained",
    "recipe_path",
    "RECIPES",
    "config_key",
    "load_data",
    "evaluate",
    "DataBundle",
    "MAX_COMMIT_BYTES",
    "STAND_INS",
    "stand_in_recipe",
]

#: committed weights must stay below this size
MAX_COMMIT_BYTES = 5 * 1024 * 1024
_FORMAT = 1  # bump when the training loop changes in a way that changes the weights


@dataclass
class DataBundle:
    """Train and test tensors; ``transform`` maps a stored batch to the model's float input."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __post_init__(self):
        for a, b, split in (
            (self.x_train, self.y_train, "train"),
            (self.x_test, self.y_test, "test"),
        ):
            if len(a) != len(b):
                raise ValueError(f"{split}: {len(a)} images but {len(b)} labels")
            if len(a) == 0:
                raise ValueError(f"{split}: no images")

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        if self.transform is not None:
            return self.transform(x)
        if x.dtype == torch.uint8:
            x = x.float() / 255
        return x.unsqueeze(1) if x.dim() == 3 else x


def _fashion_mnist_transform(size: int | None):
    def transform(x: torch.Tensor) -> torch.Tensor:
        x = (x.float() / 255).unsqueeze(1)
        if size is not None and size != x.shape[-1]:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return x

    return transform


def load_data(data: str | dict | Callable[[], DataBundle], data_root=None) -> DataBundle:
    """The data set a spec names.

    - ``"fashion_mnist"``: the real Fashion-MNIST, 1 x 28 x 28 in [0, 1];
      ``"fashion_mnist@64"``: the same items bilinearly resized to 64 x 64.
    - ``{"name": "scenes", "n_train": ..., "n_test": ..., **make_scenes kwargs}``: Fashion-MNIST
      scenes (``lib.data.scenes.make_scenes``; train scenes from the train split, test scenes from
      the test split); ``"multilabel": True`` gives the multi-hot labels (for ``loss="bce"``).
    - a callable returning a ``DataBundle`` (pass ``data_key`` to the trainer for the cache).
    """
    if callable(data):
        bundle = data()
        if not isinstance(bundle, DataBundle):
            raise TypeError(
                f"a data callable must return a lib.train.DataBundle, got {type(bundle).__name__}"
            )
        return bundle
    if isinstance(data, str):
        name, _, size = data.partition("@")
        if name != "fashion_mnist":
            raise ValueError(
                f"unknown data spec {data!r}: use 'fashion_mnist', "
                "'fashion_mnist@<size>', a {'name': 'scenes', ...} dict or a callable"
            )
        xtr, ytr = load_fashion_mnist("train", data_root)
        xte, yte = load_fashion_mnist("test", data_root)
        return DataBundle(xtr, ytr, xte, yte, _fashion_mnist_transform(int(size) if size else None))
    if isinstance(data, dict) and data.get("name") == "scenes":
        from .data.scenes import make_scenes  # lazy: the scenes import OpenCV; only they need it

        kw = {k: v for k, v in data.items() if k not in ("name", "n_train", "n_test", "multilabel")}
        if "n_train" not in data or "n_test" not in data:
            raise ValueError(
                "a scenes spec needs 'n_train' and 'n_test', e.g. "
                "{'name': 'scenes', 'n_train': 5000, 'n_test': 1000, 'size': 64}"
            )
        tr = make_scenes(data["n_train"], "train", data_root=data_root, **kw)
        te = make_scenes(data["n_test"], "test", data_root=data_root, **kw)
        ml = bool(data.get("multilabel", False))
        return DataBundle(
            tr.images,
            tr.multilabels if ml else tr.labels,
            te.images,
            te.multilabels if ml else te.labels,
        )
    raise ValueError(f"unknown data spec {data!r}")


def _model_name(model_fn) -> str:
    """The model's part of the cache key: its ``lib.models.zoo`` name. A name, not a callable's
    module and qualname, so that moving a class never orphans its trained weights."""
    if isinstance(model_fn, str):
        # lazy: the zoo imports timm and torchvision's builders (~2 s); lib.train stays light for
        # data and configurations
        from .models.zoo import PROJECT, TORCHVISION

        if model_fn not in PROJECT and model_fn not in TORCHVISION:
            raise ValueError(
                f"unknown model {model_fn!r}: the trainer builds models by their "
                f"lib.models.zoo name; choose from {sorted(PROJECT) + list(TORCHVISION)}"
            )
        return model_fn
    raise TypeError(
        f"model_fn must be a lib.models.zoo name, got {model_fn!r}: register the "
        "constructor in lib.models.zoo.PROJECT under a stable name (the cache key holds "
        "the name, so weights survive a class moving to another module)"
    )


def _build(model_fn: str, model_kwargs: dict) -> nn.Module:
    from .models.zoo import build  # lazy: see _model_name

    return build(model_fn, **model_kwargs)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a trained model's weights, and nothing else: the cache key.

    ``model_fn`` is a ``lib.models.zoo`` name, built with ``model_kwargs``; ``data`` a spec of
    :func:`load_data` (a callable needs ``data_key`` naming its content); ``n_train`` / ``n_test``
    keep the first items; ``optimizer`` ``"adam"`` or ``"sgd"`` (momentum 0.9); ``schedule``
    ``"cosine"`` (per step, to 0) or ``"constant"``; ``loss`` ``"ce"`` (single label) or ``"bce"``
    (multi-label). Where the weights go, the device, threads and progress output are options of
    :func:`train`, not part of the configuration. Change a field with ``dataclasses.replace``.
    """

    model_fn: str
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    data: str | dict | Callable[[], DataBundle] = "fashion_mnist"
    epochs: int = 1
    lr: float = 1e-3
    batch_size: int = 128
    seed: int = 0
    n_train: int | None = None
    n_test: int | None = None
    optimizer: str = "adam"
    weight_decay: float = 0.0
    schedule: str = "cosine"
    loss: str = "ce"
    data_key: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "model_kwargs", dict(self.model_kwargs or {}))
        if self.loss not in ("ce", "bce"):
            raise ValueError(
                f"loss must be 'ce' (single label) or 'bce' (multi-label), got {self.loss!r}"
            )
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(
                f"epochs ({self.epochs}), batch_size ({self.batch_size}) and lr "
                f"({self.lr}) must be > 0"
            )

    def cache_config(self) -> dict[str, Any]:
        """The configuration as the cache key hashes it (the data callable by its ``data_key``)."""
        if not isinstance(self.data, (str, dict)) and not self.data_key:
            raise ValueError(
                "a data callable needs data_key='...' naming its content (it is part "
                "of the cache key: change it whenever the data change)"
            )
        return {
            "format": _FORMAT,
            "model": _model_name(self.model_fn),
            "model_kwargs": self.model_kwargs,
            "data": self.data_key or self.data,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "epochs": self.epochs,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "optimizer": self.optimizer,
            "weight_decay": self.weight_decay,
            "schedule": self.schedule,
            "loss": self.loss,
        }

    @property
    def key(self) -> str:
        """16 hex digits naming the weights' files (:func:`config_key` of :meth:`cache_config`)."""
        return config_key(self.cache_config())

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (``TrainConfig(**config.as_dict())`` gives it back)."""
        return asdict(self)


def config_key(config: dict) -> str:
    """16 hex digits of the SHA-256 of the configuration's canonical JSON."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; committed weights must be readable by all
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def _deterministic():
    prev, prev_warn = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev, warn_only=prev_warn)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """torch's intra-op CPU threads set to ``n`` for the block (None: unchanged), restored after."""
    prev = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def _loss_and_correct(out: torch.Tensor, y: torch.Tensor, loss: str):
    if loss == "ce":
        return F.cross_entropy(out, y), (out.argmax(1) == y).sum().item(), y.numel()
    if y.dim() == 1:  # class indices -> one-hot for the multi-label loss
        y = F.one_hot(y, out.shape[1]).to(out.dtype)
    return (
        F.binary_cross_entropy_with_logits(out, y.to(out.dtype)),
        ((out > 0) == (y > 0.5)).sum().item(),
        y.numel(),
    )


@torch.no_grad()
def evaluate(
    model: nn.Module,
    bundle: DataBundle,
    loss: str = "ce",
    device="cpu",
    batch_size: int = 500,
    n: int | None = None,
) -> float:
    """Test accuracy (multi-label: the fraction of correct (image, class) decisions at p=0.5)."""
    was_training = model.training
    model.eval()
    correct = total = 0
    x_all, y_all = bundle.x_test[:n], bundle.y_test[:n]
    for i in range(0, len(x_all), batch_size):
        x = bundle.prepare(x_all[i : i + batch_size]).to(device)
        _, c, t = _loss_and_correct(model(x), y_all[i : i + batch_size].to(device), loss)
        correct, total = correct + c, total + t
    model.train(was_training)
    return correct / total


def _paths(name: str, key: str, cache_dir, models_dir) -> tuple[Path, Path, Path]:
    cache_dir = Path(cache_dir) if cache_dir is not None else paths.CACHE_DIR
    models_dir = Path(models_dir) if models_dir is not None else paths.MODELS_DIR
    stem = re.sub(r"[^\w.-]", "_", f"{name.rsplit('.', 1)[-1]}-{key}")
    return (
        models_dir / f"{stem}.pt",
        cache_dir / "models" / f"{stem}.pt",
        cache_dir / "checkpoints" / f"{stem}.ckpt",
    )


def _make_optimizer(model, optimizer, lr, weight_decay):
    if optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    if optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")


def _make_schedule(opt, schedule, total_steps):
    if schedule == "cosine":  # per step, to 0 at the end
        return torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps))
        )
    if schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")


def _load_final(path: Path, model_fn, model_kwargs, device) -> tuple[nn.Module, dict]:
    saved = torch.load(path, map_location="cpu", weights_only=False)
    model = _build(model_fn, model_kwargs)
    model.load_state_dict(saved["state_dict"])
    history = dict(saved["history"], path=str(path))  # where it was loaded from, not trained to
    return model.to(device).eval(), history


def train(
    config: TrainConfig,
    *,
    device: str | torch.device = "cpu",
    data_root=None,
    cache_dir=None,
    models_dir=None,
    commit: bool = False,
    progress: bool = True,
    callback: Callable[[int, dict], None] | None = None,
    verbose: bool = True,
    threads: int | None = 1,
) -> tuple[nn.Module, dict]:
    """Train ``lib.models.zoo.build(config.model_fn, **config.model_kwargs)`` and save it.

    Seeded and deterministic on the CPU: the model is initialised after ``torch.manual_seed(seed)``,
    epoch e shuffles with a generator seeded by (seed, e), and the per-epoch checkpoint keeps the
    RNG state, so a resumed run equals an uninterrupted one bit for bit. ``n_train`` / ``n_test``
    keep the first items. ``loss="bce"`` trains a multi-label classifier. The weights go to
    ``MODELS_DIR`` when ``commit`` (refused above 5 MB), else to ``CACHE_DIR/models``.
    ``callback(epoch, history)`` runs after each epoch's checkpoint. ``threads`` (default 1)
    sets torch's intra-op threads while training: one thread keeps the weights independent of
    the core count and is faster than two on a shared 2-core machine. Returns the model in eval mode
    and the history: per-epoch ``train_loss``, ``train_acc``, ``test_acc``, ``time_s`` (wall),
    ``cpu_time_s`` (this process, all threads), and the final ``test_acc``, ``train_time_s``,
    ``cpu_time_s``, ``config``, ``key``, ``path``.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(
            f"train takes a lib.train.TrainConfig, got {type(config).__name__}: "
            "e.g. train(TrainConfig('mnist_net', epochs=2))"
        )
    model_fn, model_kwargs, data = config.model_fn, dict(config.model_kwargs), config.data
    epochs, lr, batch_size, seed = config.epochs, config.lr, config.batch_size, config.seed
    n_train, n_test, loss = config.n_train, config.n_test, config.loss
    key_config = config.cache_config()
    key = config_key(key_config)
    name = _model_name(model_fn)
    committed, cached, ckpt_path = _paths(name, key, cache_dir, models_dir)
    out_path = committed if commit else cached
    device = torch.device(device)

    bundle = load_data(data, data_root)
    x_train, y_train = bundle.x_train[:n_train], bundle.y_train[:n_train]
    n = len(x_train)
    steps_per_epoch = -(-n // batch_size)

    torch.manual_seed(seed)
    model = _build(model_fn, model_kwargs).to(device)
    opt = _make_optimizer(model, config.optimizer, lr, config.weight_decay)
    sched = _make_schedule(opt, config.schedule, epochs * steps_per_epoch)
    history: dict[str, Any] = {"epochs": [], "config": key_config, "key": key}
    start_epoch, elapsed = 0, 0.0
    if ckpt_path.is_file():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ck["config"] != key_config:
            raise RuntimeError(
                f"checkpoint {ckpt_path} belongs to another configuration; delete it to start again"
            )
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        torch.set_rng_state(ck["rng"])
        history, start_epoch, elapsed = ck["history"], ck["epoch"], ck["elapsed"]
        if verbose:
            print(f"{name}: resuming {key} after epoch {start_epoch}/{epochs}")

    bar = tqdm(
        total=(epochs - start_epoch) * steps_per_epoch,
        disable=not progress,
        desc=f"train {name.rsplit('.', 1)[-1]}",
    )
    with _deterministic(), torch_threads(threads), bar:
        for epoch in range(start_epoch, epochs):
            t0, c0 = time.perf_counter(), time.process_time()
            model.train()
            g = torch.Generator().manual_seed(seed * 100_003 + epoch)
            perm = torch.randperm(n, generator=g)
            tot_loss = correct = total = 0.0
            for i in range(0, n, batch_size):
                idx = perm[i : i + batch_size]
                x = bundle.prepare(x_train[idx]).to(device)
                y = y_train[idx].to(device)
                out = model(x)
                batch_loss, c, t = _loss_and_correct(out, y, loss)
                if not torch.isfinite(batch_loss):
                    raise FloatingPointError(
                        f"{name}: loss became {batch_loss.item()} in epoch "
                        f"{epoch + 1}; lower lr (now {lr})"
                    )
                opt.zero_grad(set_to_none=True)
                batch_loss.backward()
                opt.step()
                sched.step()
                tot_loss += batch_loss.item() * len(idx)
                correct, total = correct + c, total + t
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{tot_loss / (i + len(idx)):.3f}")
            test_acc = evaluate(model, bundle, loss, device, n=n_test)
            elapsed += time.perf_counter() - t0
            history["epochs"].append(
                {
                    "epoch": epoch + 1,
                    "train_loss": tot_loss / n,
                    "train_acc": correct / total,
                    "test_acc": test_acc,
                    "time_s": time.perf_counter() - t0,
                    "cpu_time_s": time.process_time() - c0,
                }
            )
            if verbose:
                print(
                    f"{name} epoch {epoch + 1}/{epochs}: loss {tot_loss / n:.4f}, "
                    f"train acc {correct / total:.4f}, test acc {test_acc:.4f}"
                )
            _atomic_save(
                {
                    "config": key_config,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "rng": torch.get_rng_state(),
                    "history": history,
                    "epoch": epoch + 1,
                    "elapsed": elapsed,
                },
                ckpt_path,
            )
            if callback is not None:
                callback(epoch + 1, history)

    history.update(
        test_acc=history["epochs"][-1]["test_acc"],
        train_time_s=elapsed,
        cpu_time_s=sum(e["cpu_time_s"] for e in history["epochs"]),
        threads=threads if threads is not None else torch.get_num_threads(),
        path=str(out_path),
        torch_version=torch.__version__,
    )
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    final = {"config": key_config, "state_dict": state, "history": history}
    if commit:
        size = sum(v.numel() * v.element_size() for v in state.values())
        if size > MAX_COMMIT_BYTES:
            raise ValueError(
                f"{name}: {size / 2**20:.1f} MB of weights is over the 5 MB limit for "
                "committed models; train with commit=False (kept in CACHE_DIR)"
            )
    _atomic_save(final, out_path)
    ckpt_path.unlink(missing_ok=True)
    if verbose:
        print(
            f"{name}: test accuracy {history['test_acc']:.4f} after {epochs} epochs "
            f"({elapsed:.0f} s); saved {out_path}"
        )
    return model.eval(), history


def load_or_train(
    config: TrainConfig, *, retrain: bool = False, device: str | torch.device = "cpu", **kwargs
) -> tuple[nn.Module, dict]:
    """The model trained with this exact configuration: loaded from ``MODELS_DIR`` or
    ``CACHE_DIR/models`` when there, else trained by ``train(config, device=device, **kwargs)``.

    The cache key is the hash of the full configuration (:meth:`TrainConfig.cache_config`);
    ``device``, ``data_root`` and the output options are not part of it.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(
            f"load_or_train takes a lib.train.TrainConfig, got "
            f"{type(config).__name__}: e.g. load_or_train(TrainConfig('mnist_net'))"
        )
    name = _model_name(config.model_fn)
    committed, cached, _ = _paths(
        name, config.key, kwargs.get("cache_dir"), kwargs.get("models_dir")
    )
    if not retrain:
        for path in (committed, cached):
            if path.is_file():
                model, history = _load_final(
                    path, config.model_fn, dict(config.model_kwargs), device
                )
                if kwargs.get("verbose", True):
                    print(
                        f"{name}: loaded {path.name} (test accuracy "
                        f"{history['test_acc']:.4f}, trained in {history['train_time_s']:.0f} s)"
                    )
                return model, history
    return train(config, device=device, **kwargs)


_VGG64 = dict(
    num_classes=10, width=0.125, input_size=64, hidden=256, in_channels=1, cfg="S", dropout=0.3
)
#: the committed models: ``load_trained(name)`` returns each (training it, minutes, if its file
#: in MODELS_DIR is missing); every recipe is the full configuration, so the file name's hash
#: changes with any change here.
RECIPES: dict[str, TrainConfig] = {
    # Nagy et al.'s MNIST net, on Fashion-MNIST
    "mnist_net": TrainConfig(
        model_fn="mnist_net",
        model_kwargs={},
        data="fashion_mnist",
        epochs=6,
        lr=1e-3,
        batch_size=128,
        seed=0,
    ),
    # Selvaraju et al.'s GAP / GMP comparison: the same network, only the pooling differs
    "gap_net": TrainConfig(
        model_fn="gap_net",
        model_kwargs={"channels": [16, 32, 64]},
        data="fashion_mnist",
        epochs=5,
        lr=2e-3,
        batch_size=128,
        seed=0,
    ),
    "gmp_net": TrainConfig(
        model_fn="gmp_net",
        model_kwargs={"channels": [16, 32, 64]},
        data="fashion_mnist",
        epochs=5,
        lr=2e-3,
        batch_size=128,
        seed=0,
    ),
    # the same two recipes with training seeds 1 to 4: the GAP / GMP verdicts of chapter
    # "Grad-CAM fundamentals" rest on five seeds per pooling
    **{
        f"{pool}_net_seed{s}": TrainConfig(
            model_fn=f"{pool}_net",
            model_kwargs={"channels": [16, 32, 64]},
            data="fashion_mnist",
            epochs=5,
            lr=2e-3,
            batch_size=128,
            seed=s,
        )
        for s in (1, 2, 3, 4)
        for pool in ("gap", "gmp")
    },
    # Taimeskhanov et al.'s masked VGG, scaled to 64 px Fashion-MNIST (5 of 8 feature rows masked: dead
    # zone rows 47..63), and its unmasked twin
    "masked_vgg_fmnist64": TrainConfig(
        model_fn="masked_vgg",
        model_kwargs=dict(_VGG64, masked_rows=5),
        data="fashion_mnist@64",
        epochs=3,
        lr=2e-3,
        batch_size=128,
        seed=0,
    ),
    "unmasked_vgg_fmnist64": TrainConfig(
        model_fn="masked_vgg",
        model_kwargs=dict(_VGG64, masked_rows=0),
        data="fashion_mnist@64",
        epochs=3,
        lr=2e-3,
        batch_size=128,
        seed=0,
    ),
    # Mascolini et al.'s U-Net classifier and its ablation without skip connections (fully
    # convolutional + GAP: trained on 28 px items, they run on scenes of any size)
    "unet": TrainConfig(
        model_fn="unet",
        model_kwargs={"base": 8, "depth": 3, "skips": True},
        data="fashion_mnist",
        epochs=2,
        lr=2e-3,
        batch_size=128,
        seed=0,
    ),
    "unet_ablated": TrainConfig(
        model_fn="unet",
        model_kwargs={"base": 8, "depth": 3, "skips": False},
        data="fashion_mnist",
        epochs=2,
        lr=2e-3,
        batch_size=128,
        seed=0,
    ),
    # Nagy et al.'s AlexNet, GoogLeNet and VGG16, stood in for by 64 px networks of the same
    # layouts (with batch norm), trained on single-label localisation scenes (one object of the
    # scene's class, large as ILSVRC's are, and 0-1 of another class), three seeds each (the
    # seed also draws the training scenes)
    **{
        f"gradcam_loc_{arch}_seed{s}": TrainConfig(
            model_fn=arch,
            model_kwargs=kwargs,
            epochs=epochs,
            lr=2e-3,
            batch_size=64,
            seed=s,
            data={
                "name": "scenes",
                "n_train": 5000,
                "n_test": 1000,
                "size": 64,
                "n_objects": 1,
                "n_distractors": [0, 1],
                "scale": [0.45, 0.7],
                "seed": s,
            },
        )
        for arch, kwargs, epochs in (
            ("small_alexnet", {"batch_norm": True, "dropout": 0.3}, 8),
            ("small_googlenet", {}, 6),
            ("small_vgg", {"batch_norm": True, "dropout": 0.3}, 6),
        )
        for s in (0, 1, 2)
    },
}


# --------------------------------------------------------------------------------------------
# The multi-label scene classifiers of the receptive-fields chapter (Fashion-MNIST scenes
# standing in for VinDr-CXR), reused by the localisation and faithfulness chapters
# --------------------------------------------------------------------------------------------

#: the scenes (lib.data.scenes.make_scenes): one object of the scene's class and 1-2 distractors
#: of other classes, every one a finding with its exact box
MULTILABEL_SCENES: dict[str, Any] = dict(
    size=64, n_objects=1, n_distractors=(1, 2), scale=(0.3, 0.45)
)
#: per profile: train / test scenes per seed and epochs per architecture (2 CPU cores: each
#: default model trains in about 1.5-3 min with one thread)
_MULTILABEL_SIZES = {
    "smoke": dict(
        n_train=64,
        n_test=12,
        epochs={"small_resnet": 1, "small_densenet": 1, "small_efficientnet": 1},
    ),
    "default": dict(
        n_train=3000,
        n_test=300,
        epochs={"small_resnet": 5, "small_densenet": 6, "small_efficientnet": 3},
    ),
}
_MULTILABEL_LR = {"small_resnet": 3e-3, "small_densenet": 3e-3, "small_efficientnet": 3e-3}


def multilabel_scene_data(
    profile: str, seed: int, size: int | None = None, channels: int = 1
) -> dict:
    """The lib.train data spec of the multi-label scenes of ``profile`` and ``seed`` (the seed
    draws both the train scenes, from Fashion-MNIST's train split, and the test scenes, from its
    test split: one "split" of Table 2)."""
    if profile not in _MULTILABEL_SIZES:
        raise ValueError(
            f"the scene models exist for the 'smoke' and 'default' profiles, not "
            f"{profile!r} (the 'full' profile uses VinDr-CXR)"
        )
    s = _MULTILABEL_SIZES[profile]
    spec = dict(
        MULTILABEL_SCENES,
        name="scenes",
        n_train=s["n_train"],
        n_test=s["n_test"],
        seed=seed,
        multilabel=True,
        n_distractors=list(MULTILABEL_SCENES["n_distractors"]),
        scale=list(MULTILABEL_SCENES["scale"]),
    )
    if size is not None:
        spec["size"] = size
    if channels != 1:
        spec["channels"] = channels
    return spec


def multilabel_scene_test_set(
    profile: str, seed: int, n: int, size: int | None = None, channels: int = 1, data_root=None
):
    """``n`` scenes from Fashion-MNIST's TEST split, drawn like the training scenes of
    ``profile`` / ``seed`` (lib.data.scenes.Scenes: images in [0, 1], exact boxes)."""
    from .data.scenes import make_scenes  # lazy: OpenCV, as in load_data

    spec = multilabel_scene_data(profile, seed, size, channels)
    kw = {k: v for k, v in spec.items() if k not in ("name", "n_train", "n_test", "multilabel")}
    return make_scenes(n, "test", data_root=data_root, **kw)


def multilabel_scene_recipe(arch: str, profile: str, seed: int) -> TrainConfig:
    """The lib.train.load_or_train configuration of a small ``arch`` (``small_resnet``,
    ``small_densenet``, ``small_efficientnet``) on the scenes of ``profile`` and ``seed``."""
    if arch not in _MULTILABEL_LR:
        raise ValueError(
            f"unknown scene architecture {arch!r}; choose from {sorted(_MULTILABEL_LR)}"
        )
    return TrainConfig(
        model_fn=arch,
        model_kwargs={"num_classes": 10, "in_channels": 1},
        data=multilabel_scene_data(profile, seed),
        epochs=_MULTILABEL_SIZES[profile]["epochs"][arch],
        lr=_MULTILABEL_LR[arch],
        batch_size=32,
        seed=seed,
        loss="bce",
    )


def multilabel_scene_model(arch: str, profile: str, seed: int, device="cpu", **kwargs):
    """(model, history): ``arch`` trained on the scenes (lib.train: cached; the default profile's
    weights are committed to MODELS_DIR, smoke ones go to CACHE_DIR)."""
    return load_or_train(
        multilabel_scene_recipe(arch, profile, seed),
        device=device,
        commit=profile == "default",
        **kwargs,
    )


#: the stand-ins for Nagy et al.'s networks (the ``gradcam_loc_*`` recipes above), shared by the
#: chapters "Reproducing Grad-CAM: localisation" and "Grad-CAM fundamentals": paper network ->
#: (lib.models.zoo name, model kwargs, the Grad-CAM layer analogous to the paper's, label)
STAND_INS = {
    "AlexNet": (
        "small_alexnet",
        {"batch_norm": True, "dropout": 0.3},
        "features.16",
        "AlexNet-style (batch norm), 64 px, trained here on scenes",
    ),
    "GoogLeNet": (
        "small_googlenet",
        {},
        "inception5b",
        "GoogLeNet-style (torchvision Inception modules), 64 px, trained here on scenes",
    ),
    "VGG16": (
        "small_vgg",
        {"batch_norm": True, "dropout": 0.3},
        "features.42",
        "VGG16-BN-style, 64 px, trained here on scenes",
    ),
}


#: the seed of the scenes on which the stand-ins are scored (Fashion-MNIST's test split), the
#: same in every chapter that scores them
STAND_IN_TEST_SEED = 1000


def stand_in_scene_spec() -> dict:
    """``lib.data.scenes.make_scenes`` keyword arguments of the stand-ins' scenes (those of their
    committed recipes): one object of the scene's class, large, and 0-1 of another class."""
    spec = RECIPES[stand_in_recipe("VGG16", 0)].data
    return {
        k: v
        for k, v in spec.items()
        if k not in ("name", "n_train", "n_test", "seed", "multilabel")
    }


def stand_in_test_scenes(n: int, data_root=None):
    """``n`` test scenes drawn like the stand-ins' training scenes, from Fashion-MNIST's test
    split with seed ``STAND_IN_TEST_SEED`` (``lib.data.scenes.Scenes``)."""
    from .data.scenes import make_scenes  # lazy: OpenCV, as in load_data

    return make_scenes(
        n, "test", seed=STAND_IN_TEST_SEED, data_root=data_root, **stand_in_scene_spec()
    )


def stand_in_recipe(paper_model: str, seed: int) -> str:
    """Name in ``RECIPES`` of the stand-in for ``paper_model`` (a key of ``STAND_INS``) trained
    with ``seed``."""
    if paper_model not in STAND_INS:
        raise ValueError(f"no stand-in for {paper_model!r}; choose from {list(STAND_INS)}")
    return f"gradcam_loc_{STAND_INS[paper_model][0]}_seed{seed}"


def recipe_path(name: str) -> Path:
    """Where the committed weights of recipe ``name`` live (``MODELS_DIR/<model>-<hash>.pt``)."""
    if name not in RECIPES:
        raise ValueError(f"no recipe {name!r}; choose from {sorted(RECIPES)}")
    r = RECIPES[name]
    return _paths(r.model_fn, r.key, None, None)[0]


def load_trained(name: str, device: str | torch.device = "cpu", **kwargs) -> tuple[nn.Module, dict]:
    """A committed model of ``RECIPES`` by name, e.g. ``load_trained("gap_net")``; trained
    (and written to MODELS_DIR) by the same call if its file is missing."""
    if name not in RECIPES:
        raise ValueError(f"no recipe {name!r}; choose from {sorted(RECIPES)}")
    return load_or_train(RECIPES[name], device=device, commit=True, **kwargs)


if __name__ == "__main__":  # re-train every committed model, one at a time
    for _name in RECIPES:
        _model, _hist = load_trained(_name, retrain=True)
        print(
            f"{_name}: test accuracy {_hist['test_acc']:.4f}, {_hist['train_time_s']:.0f} s wall, "
            f"{_hist['cpu_time_s']:.0f} s CPU"
        )
