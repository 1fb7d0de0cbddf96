"""The trainer: deterministic, cached by configuration, resumable bit for bit."""

from __future__ import annotations

import dataclasses
import time

import pytest
import torch
from torch import nn

import lib.train as T
from lib.train import DataBundle, TrainConfig, config_key, evaluate, load_or_train, train

SMALL_VGG = dict(
    num_classes=10, width=1 / 8, input_size=32, masked_rows=0, hidden=16, in_channels=1, cfg="S"
)  # has dropout: the resume test must restore the RNG


def _bundle(seed: int = 0, n: int = 96, size: int = 28) -> DataBundle:
    """Learnable random data: the class is which quadrant holds a bright square."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n + 32,), generator=g)
    x = torch.rand(n + 32, size, size, generator=g) * 0.2
    h = size // 2
    for i, c in enumerate(y.tolist()):
        r, col = divmod(c, 2)
        x[i, r * h : r * h + h, col * h : col * h + h] += 0.7
    x = (x.clamp(0, 1) * 255).to(torch.uint8)
    return DataBundle(x[:n], y[:n], x[n:], y[n:])


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _run(tmp, **kw):
    args = dict(
        model_fn="mnist_net",
        model_kwargs={"num_classes": 4},
        data=_bundle,
        data_key="quadrants-v1",
        epochs=1,
        lr=3e-3,
        batch_size=16,
        seed=0,
        cache_dir=tmp,
        models_dir=tmp,
        progress=False,
        verbose=False,
    )
    args.update(kw)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in args.items() if k in fields})
    return train(config, **{k: v for k, v in args.items() if k not in fields})


def test_two_runs_give_bit_identical_weights_and_seed_matters(tmp_path):
    m1, h1 = _run(tmp_path / "a")
    m2, h2 = _run(tmp_path / "b")
    m3, _ = _run(tmp_path / "c", seed=1)
    assert _same(_weights(m1), _weights(m2))
    assert h1["epochs"][0]["train_loss"] == h2["epochs"][0]["train_loss"]
    assert not _same(_weights(m1), _weights(m3))


def test_training_learns_and_history_is_consistent(tmp_path):
    model, hist = _run(tmp_path, epochs=3)
    assert [e["epoch"] for e in hist["epochs"]] == [1, 2, 3]
    assert hist["test_acc"] == hist["epochs"][-1]["test_acc"]
    assert hist["test_acc"] == evaluate(model, _bundle())  # recomputed independently
    assert hist["test_acc"] >= 0.9  # the quadrant task is easy
    assert hist["epochs"][-1]["train_loss"] < hist["epochs"][0]["train_loss"]


def test_cache_hit_returns_same_weights_without_training(tmp_path, monkeypatch):
    config = TrainConfig(
        "mnist_net",
        {"num_classes": 4},
        _bundle,
        data_key="quadrants-v1",
        epochs=1,
        lr=3e-3,
        batch_size=16,
    )
    kw = dict(cache_dir=tmp_path, models_dir=tmp_path, progress=False, verbose=False)
    m1, h1 = load_or_train(config, **kw)
    assert (tmp_path / "models").is_dir() and not list((tmp_path / "checkpoints").glob("*.ckpt"))
    monkeypatch.setattr(T, "train", lambda *a, **k: pytest.fail("trained instead of loading"))
    t0 = time.perf_counter()
    m2, h2 = load_or_train(config, **kw)
    assert time.perf_counter() - t0 < 1.0
    assert _same(_weights(m1), _weights(m2)) and h2["key"] == h1["key"]
    assert not m2.training
    # any change of the configuration is a miss (here: the learning rate)
    with pytest.raises(pytest.fail.Exception, match="trained instead"):
        load_or_train(dataclasses.replace(config, lr=1e-3), **kw)


def test_config_key_covers_every_field():
    config = TrainConfig("masked_vgg", {"masked_rows": 5}, "fashion_mnist", epochs=2)
    base = config.cache_config()
    k0 = config_key(base)
    assert config.key == k0
    assert k0 == config_key(dict(reversed(list(base.items()))))  # order-free
    for field, value in [
        ("model_kwargs", {"masked_rows": 4}),
        ("data", "fashion_mnist@64"),
        ("epochs", 3),
        ("lr", 2e-3),
        ("batch_size", 64),
        ("seed", 1),
        ("n_train", 100),
        ("optimizer", "sgd"),
        ("weight_decay", 1e-4),
        ("schedule", "constant"),
        ("loss", "bce"),
        ("model", "gap_net"),
    ]:
        assert config_key({**base, field: value}) != k0, field


def test_train_config_is_frozen_and_keys_as_the_committed_files_do():
    """The key hashes the same JSON as before the configuration became a dataclass (written out
    by hand here), so that committed weights keep their file names."""
    config = TrainConfig(
        "gap_net",
        {"channels": [16, 32, 64]},
        "fashion_mnist",
        epochs=5,
        lr=2e-3,
        batch_size=128,
        seed=0,
    )
    by_hand = {
        "format": 1,
        "model": "gap_net",
        "model_kwargs": {"channels": [16, 32, 64]},
        "data": "fashion_mnist",
        "n_train": None,
        "n_test": None,
        "epochs": 5,
        "lr": 2e-3,
        "batch_size": 128,
        "seed": 0,
        "optimizer": "adam",
        "weight_decay": 0.0,
        "schedule": "cosine",
        "loss": "ce",
    }
    assert config.cache_config() == by_hand and config.key == config_key(by_hand)
    assert T.recipe_path("gap_net").name == f"gap_net-{config.key}.pt"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.lr = 1.0
    assert TrainConfig(**config.as_dict()) == config
    with pytest.raises(ValueError, match="must be > 0"):
        TrainConfig("gap_net", epochs=0)
    with pytest.raises(TypeError, match="takes a lib.train.TrainConfig"):
        train("gap_net")
    with pytest.raises(TypeError, match="takes a lib.train.TrainConfig"):
        load_or_train("gap_net")


def test_interrupted_run_resumes_to_identical_weights(tmp_path):
    kw = dict(
        model_fn="masked_vgg",
        model_kwargs=SMALL_VGG,
        epochs=3,
        data=lambda: _bundle(size=32),
        data_key="quadrants32-v1",
    )
    ref, ref_hist = _run(tmp_path / "ref", **kw)

    def stop(epoch, history):
        if epoch == 1:
            raise KeyboardInterrupt("simulated interruption")

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "run", callback=stop, **kw)
    ckpts = list((tmp_path / "run" / "checkpoints").glob("*.ckpt"))
    assert len(ckpts) == 1 and not list((tmp_path / "run").rglob("*.tmp"))
    assert torch.load(ckpts[0], weights_only=False)["epoch"] == 1
    resumed, hist = _run(tmp_path / "run", **kw)
    assert _same(_weights(ref), _weights(resumed))
    assert [e["train_loss"] for e in hist["epochs"]] == [
        e["train_loss"] for e in ref_hist["epochs"]
    ]
    assert not list((tmp_path / "run" / "checkpoints").glob("*.ckpt"))  # removed when done


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path):
    def stop(epoch, history):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, epochs=2, callback=stop)
    ckpt = next((tmp_path / "checkpoints").glob("*.ckpt"))
    saved = torch.load(ckpt, weights_only=False)
    saved["config"]["lr"] = 123.0
    torch.save(saved, ckpt)
    with pytest.raises(RuntimeError, match="another configuration"):
        _run(tmp_path, epochs=2)


def test_multilabel_bce_and_evaluate_by_hand(tmp_path):
    class Fixed(nn.Module):
        def forward(self, x):  # logits +1, -1, +1 for every image
            return torch.tensor([[1.0, -1.0, 1.0]]).expand(len(x), 3)

    y = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    b = DataBundle(torch.zeros(2, 1, 4, 4), y, torch.zeros(2, 1, 4, 4), y)
    # decisions (1, 0, 1): image 1 gets 2 of 3 right, image 2 gets 2 of 3: 4 / 6
    assert evaluate(Fixed(), b, loss="bce") == pytest.approx(4 / 6)
    b_ce = DataBundle(b.x_train, torch.tensor([0, 2]), b.x_test, torch.tensor([0, 2]))
    assert evaluate(Fixed(), b_ce, loss="ce") == 0.5  # argmax is class 0 for both

    def multi():
        d = _bundle()
        return DataBundle(
            d.x_train,
            nn.functional.one_hot(d.y_train, 4).float(),
            d.x_test,
            nn.functional.one_hot(d.y_test, 4).float(),
        )

    model, hist = _run(tmp_path, data=multi, data_key="quadrants-multi", loss="bce", epochs=3)
    assert hist["test_acc"] == evaluate(model, multi(), loss="bce") and hist["test_acc"] > 0.8


def test_bad_input_errors(tmp_path):
    with pytest.raises(ValueError, match="data_key"):
        _run(tmp_path, data_key=None)
    with pytest.raises(ValueError, match="unknown data spec"):
        _run(tmp_path, data="mnist", data_key=None)
    with pytest.raises(ValueError, match="loss must be"):
        _run(tmp_path, loss="mse")
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        DataBundle(torch.zeros(3, 4, 4), torch.zeros(2), torch.zeros(1, 4, 4), torch.zeros(1))
    with pytest.raises(FloatingPointError, match="lower lr"):
        _run(tmp_path, lr=1e12, epochs=1, optimizer="sgd")
    with pytest.raises(ValueError, match="no recipe"):
        T.load_trained("resnet9000")


def test_commit_refuses_weights_over_5_mb(tmp_path):
    big = dict(SMALL_VGG, hidden=1200)  # 1200 x 1200 dense layer: 5.8 MB of float32
    with pytest.raises(ValueError, match="over the 5 MB limit"):
        _run(
            tmp_path,
            model_fn="masked_vgg",
            model_kwargs=big,
            data=lambda: _bundle(n=16, size=32),
            data_key="q32",
            commit=True,
        )
    assert not list(tmp_path.rglob("masked_vgg-*.pt"))


@pytest.mark.parametrize("name", ["mnist_net", "gap_net", "gmp_net"])
def test_committed_fashion_mnist_models_reach_88_percent(name):
    # recomputed on the real Fashion-MNIST test set, not read from the stored history
    path = T.recipe_path(name)
    if not path.is_file():
        pytest.skip(f"{path} not trained yet: run lib.train.load_trained({name!r})")
    assert path.stat().st_size < T.MAX_COMMIT_BYTES
    t0 = time.perf_counter()
    model, hist = T.load_trained(name, verbose=False)
    assert time.perf_counter() - t0 < 1.0
    acc = evaluate(model, T.load_data("fashion_mnist"))
    assert acc == hist["test_acc"] and acc >= 0.88, (name, acc)


def test_committed_masked_vgg_keeps_its_dead_zone():
    path = T.recipe_path("masked_vgg_fmnist64")
    if not path.is_file():
        pytest.skip(f"{path} not trained yet")
    model, _ = T.load_trained("masked_vgg_fmnist64", verbose=False)
    lin = model.classifier[0]
    assert torch.all(lin.weight[:, lin.mask == 0] == 0)
    x = torch.rand(4, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[:, :, 47:] = torch.rand(4, 1, 17, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model(x), model(y))  # rows 47..63 are unseen (see test_models)


def test_scenes_spec_trains_multilabel(tmp_path):
    spec = {
        "name": "scenes",
        "n_train": 48,
        "n_test": 16,
        "size": 32,
        "multilabel": True,
        "scale": [0.4, 0.6],
    }
    b = T.load_data(spec)
    assert b.x_train.shape == (48, 1, 32, 32) and b.y_train.shape == (48, 10)
    # every scene's label set holds its own class (scenes.labels) plus its distractors'
    single = T.load_data({**spec, "multilabel": False})
    assert torch.all(b.y_train[torch.arange(48), single.y_train] == 1)
    model, hist = _run(
        tmp_path,
        model_fn="gap_net",
        model_kwargs={"channels": [4, 8]},
        data=spec,
        data_key=None,
        loss="bce",
        epochs=1,
    )
    assert 0 <= hist["test_acc"] <= 1 and hist["config"]["data"] == spec


# ------------------------------------------------------------------------------------------
# Stable weights: the cache key holds the model's zoo name, never a class's module
# ------------------------------------------------------------------------------------------


def test_every_committed_weights_file_is_named_by_its_own_configuration():
    """A file whose stored configuration no longer hashes to its name is an orphan: the trainer
    would never find it and would retrain."""
    import torch

    from lib import paths

    files = sorted(paths.MODELS_DIR.glob("*.pt"))
    assert files
    for f in files:
        saved = torch.load(f, map_location="cpu", weights_only=False)
        name, key = f.stem.rsplit("-", 1)
        assert saved["config"]["model"] == name, f.name
        assert config_key(saved["config"]) == key, f"{f.name}: its configuration hashes elsewhere"


def test_moving_a_model_class_does_not_orphan_its_weights(monkeypatch, request):
    """The linear probes of the receptive-fields chapter are committed; if LinearProbe moved to
    another module (or was renamed), load_or_train must still find them without training."""
    import lib.train as T
    from lib.models.heads import LinearProbe

    where = LinearProbe.__module__, LinearProbe.__qualname__
    LinearProbe.__module__, LinearProbe.__qualname__ = "somewhere.else", "MovedProbe"
    request.addfinalizer(
        lambda: (
            setattr(LinearProbe, "__module__", where[0])
            or setattr(LinearProbe, "__qualname__", where[1])
        )
    )

    def no_training(*a, **k):
        raise AssertionError("retrained: the committed weights were orphaned")

    monkeypatch.setattr(T, "train", no_training)
    import torch

    from lib import paths

    f = sorted(paths.MODELS_DIR.glob("linear_probe-*.pt"))[0]
    cfg = torch.load(f, map_location="cpu", weights_only=False)["config"]
    model, hist = load_or_train(
        TrainConfig(
            cfg["model"],
            cfg["model_kwargs"],
            lambda: None,
            cfg["epochs"],
            cfg["lr"],
            cfg["batch_size"],
            cfg["seed"],
            loss=cfg["loss"],
            data_key=cfg["data"],
        ),
        verbose=False,
    )
    assert isinstance(model, LinearProbe) and hist["path"] == str(f)


def test_a_callable_model_is_refused_with_the_fix():
    from lib.models.heads import LinearProbe

    with pytest.raises(TypeError, match="lib.models.zoo.PROJECT"):
        load_or_train(TrainConfig(LinearProbe, {}, "fashion_mnist"))
    with pytest.raises(ValueError, match="unknown model 'no_such_net'"):
        load_or_train(TrainConfig("no_such_net", {}, "fashion_mnist"))
