"""The papers' models: shapes worked out by hand, second implementations, the masked VGG's dead
zone (Taimeskhanov et al.: 54 rows of a 224 px input) and the authors'-weights key mapping."""

from __future__ import annotations

import re
import warnings

import pytest
import torch
import torchvision
from torch import nn

from lib.layers import resolve_layer
from lib.models import zoo
from lib.models.masked_vgg import MaskedVGG, load_authors_weights, map_state_dict_keys, masked_vgg16
from lib.models.small import MnistNet, PooledCNN
from lib.models.unet import UNetClassifier
from lib.train import DataBundle, TrainConfig, train


def _capture(model, layer, x):
    out = {}
    h = resolve_layer(model, layer).register_forward_hook(lambda m, i, o: out.__setitem__("a", o))
    try:
        logits = model(x)
    finally:
        h.remove()
    return logits, out["a"]


# ---------------------------------------------------------------- Nagy et al.: the MNIST net


def test_mnist_net_shapes_by_hand_and_second_implementation():
    torch.manual_seed(0)
    m = MnistNet().eval()
    # conv 28-5+1 = 24, pool 12: 20 * 12 * 12 = 2880 features; params 20*25+20, 2880*50+50, 50*10+10
    assert m.fc1.in_features == 2880
    assert sum(p.numel() for p in m.parameters()) == 520 + 144_050 + 510
    x = torch.rand(3, 1, 28, 28)
    logits, act = _capture(m, m.target_layer, x)
    assert act.shape == (3, 20, 12, 12)
    ref = nn.Sequential(
        nn.Conv2d(1, 20, 5),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(2880, 50),
        nn.ReLU(),
        nn.Linear(50, 10),
    ).eval()
    ref[0].load_state_dict(m.conv1.state_dict())
    ref[4].load_state_dict(m.fc1.state_dict())
    ref[6].load_state_dict(m.fc2.state_dict())
    torch.testing.assert_close(logits, ref(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="input_size - 4 even"):
        MnistNet(input_size=27)


# ---------------------------------------------------------------- Selvaraju et al.: GAP and GMP heads


@pytest.mark.parametrize("pool", ["avg", "max"])
def test_pooled_cnn_head_is_global_pool_then_linear(pool):
    torch.manual_seed(0)
    m = PooledCNN(pool=pool).eval()
    x = torch.rand(2, 1, 28, 28)
    logits, a = _capture(m, m.target_layer, x)
    assert a.shape == (2, 128, 7, 7)  # two 2x2 pools: 28 -> 14 -> 7
    pooled = a.mean((2, 3)) if pool == "avg" else a.amax((2, 3))
    torch.testing.assert_close(logits, pooled @ m.fc.weight.T + m.fc.bias, rtol=1e-5, atol=1e-6)


def test_gap_net_gradient_is_cam_weight_over_Z():
    # Selvaraju et al., Eq. 7-8: on GAP + linear, dY^c/dA_ij^k = w_k^c / Z at every (i, j)
    torch.manual_seed(1)
    m = zoo.build("gap_net").eval()
    x = torch.rand(1, 1, 28, 28)
    _, a = _capture(m, m.target_layer, x)
    a = a.detach().requires_grad_(True)
    y = m.fc(m.flatten(m.pool(a)))
    (grad,) = torch.autograd.grad(y[0, 3], a)
    Z = a.shape[-1] * a.shape[-2]
    expected = (m.fc.weight[3] / Z)[:, None, None].expand_as(grad[0])
    torch.testing.assert_close(grad[0], expected, rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------- Taimeskhanov et al.: the masked VGG


def test_masked_vgg16_is_torchvision_vgg16_minus_last_pool():
    with torch.device("meta"):
        ours = masked_vgg16()
        tv = torchvision.models.vgg16()
    assert len(ours.features) == 30 and ours.target_layer == "features.29"
    for i in range(30):
        a, b = ours.features[i], tv.features[i]
        assert type(a) is type(b), i
        if isinstance(a, nn.Conv2d):
            expected_out = 256 if i == 28 else b.out_channels  # the paper's 512 -> 256 conv
            assert (a.in_channels, a.out_channels, a.kernel_size, a.padding) == (
                b.in_channels,
                expected_out,
                b.kernel_size,
                b.padding,
            ), i
    assert isinstance(tv.features[30], nn.MaxPool2d)  # the pool the paper removes
    lin = ours.classifier[0]
    assert (lin.in_features, lin.out_features) == (256 * 14 * 14, 4096)
    assert ours.feature_size == 14 and ours.masked_rows == 9
    # W[:, :, -9:, :] = 0: 256 channels x 9 rows x 14 columns of the 50176 inputs are masked
    mask = lin.mask.to("cpu") if lin.mask.device.type != "meta" else None
    assert mask is None or int((mask == 0).sum()) == 256 * 9 * 14
    assert [type(c).__name__ for c in ours.classifier] == [
        "MaskedLinear",
        "ReLU",
        "Dropout",
        "Linear",
        "ReLU",
        "Dropout",
        "Linear",
    ]


def test_mask_layout_matches_paper_indexing():
    m = MaskedVGG(num_classes=3, width=1 / 16, masked_rows=9, hidden=8)
    mask = m.classifier[0].mask.reshape(m.feature_channels, 14, 14)
    assert torch.all(mask[:, :5, :] == 1) and torch.all(mask[:, -9:, :] == 0)
    w = m.classifier[0].weight.reshape(8, m.feature_channels, 14, 14)
    assert torch.all(w[:, :, -9:, :] == 0) and torch.all(w[:, :, :5, :] != 0)


def _train_few_steps(model_kwargs, size, optimizer, tmp_path, in_channels):
    g = torch.Generator().manual_seed(0)
    bundle = DataBundle(
        torch.rand(24, in_channels, size, size, generator=g),
        torch.randint(0, 3, (24,), generator=g),
        torch.rand(8, in_channels, size, size, generator=g),
        torch.randint(0, 3, (8,), generator=g),
    )
    config = TrainConfig(
        "masked_vgg",
        model_kwargs,
        lambda: bundle,
        epochs=1,
        lr=1e-2,
        batch_size=8,
        optimizer=optimizer,
        weight_decay=0.1,
        data_key="rand",
    )
    model, _ = train(config, cache_dir=tmp_path, models_dir=tmp_path, progress=False, verbose=False)
    return model


@pytest.mark.parametrize(
    "case",
    [
        # paper geometry: VGG16 features.29 has RF 196, jump 16, unit 0 centred at 7.5; the last
        # visible row (4 of 0..13) reaches 7.5 + 16 * 4 + 97.5 = 169, so rows 170..223 are dead.
        dict(
            kw=dict(width=1 / 16, input_size=224, masked_rows=9, hidden=16, cfg="D"),
            size=224,
            last_seen=169,
            optimizer="sgd",
        ),
        # scaled "S" stack at 64 px: RF 54, jump 8, centre 3.5; visible rows 0..2 reach
        # 3.5 + 16 + 26.5 = 46, so rows 47..63 (17 rows) are dead.
        dict(
            kw=dict(width=1 / 8, input_size=64, masked_rows=5, hidden=32, cfg="S", in_channels=1),
            size=64,
            last_seen=46,
            optimizer="adam",
        ),
    ],
)
def test_mask_survives_training_and_dead_zone_is_invisible(case, tmp_path):
    kw = dict(num_classes=3, **case["kw"])
    c = kw.get("in_channels", 3)
    model = _train_few_steps(kw, case["size"], case["optimizer"], tmp_path, c)
    lin = model.classifier[0]
    assert torch.all(lin.weight[:, lin.mask == 0] == 0)  # stored weights still exactly 0
    assert torch.any(lin.weight[:, lin.mask == 1] != 0)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, c, case["size"], case["size"], generator=g)
    with torch.no_grad():
        base = model(x)
        dead = x.clone()
        dead[:, :, case["last_seen"] + 1 :, :] = (
            torch.rand(dead[:, :, case["last_seen"] + 1 :, :].shape, generator=g) * 5
        )
        assert torch.equal(model(dead), base)  # bit-identical logits
        seen = x.clone()
        seen[:, :, case["last_seen"], :] += 5.0  # the last visible row does matter
        assert not torch.equal(model(seen), base)
    # dead rows in the paper's 224 case: 224 - 170 = 54 (24 % of the image)
    if case["size"] == 224:
        assert case["size"] - (case["last_seen"] + 1) == 54


def test_masked_vgg_errors():
    with pytest.raises(ValueError, match="multiple of 16"):
        MaskedVGG(input_size=100)
    with pytest.raises(ValueError, match="masked_rows"):
        MaskedVGG(width=1 / 16, hidden=8, masked_rows=14)
    m = MaskedVGG(width=1 / 8, input_size=64, masked_rows=5, hidden=8, cfg="S", in_channels=1)
    with pytest.raises(ValueError, match="built for 64x64"):
        m(torch.rand(1, 1, 32, 32))


def _authors_sequential(width: float, hidden: int, num_classes: int, masked: bool) -> nn.Sequential:
    """The authors' recipe (their vgg16_training.py), at a reduced width."""
    torch.manual_seed(3)
    c = lambda v: int(round(v * width))  # noqa: E731
    layers, c_in = [], 3
    for v in [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        "M",
    ]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c_in, c(v), 3, padding=1), nn.ReLU(inplace=True)]
            c_in = c(v)
    layers = layers[:30] + layers[31:]  # remove the last max-pool
    classifier = nn.Sequential(
        nn.Linear(c(256) * 14 * 14, hidden),
        nn.ReLU(True),
        nn.Dropout(),
        nn.Linear(hidden, hidden),
        nn.ReLU(True),
        nn.Dropout(),
        nn.Linear(hidden, num_classes),
    )
    model = nn.Sequential(*layers, nn.Flatten(1), classifier)
    model[28] = nn.Conv2d(c(512), c(256), 3, padding=1)
    for p in model.parameters():  # non-zero biases so that a swapped tensor shows
        nn.init.normal_(p, 0, 0.05)
    if masked:
        with torch.no_grad():
            m = torch.ones(14, 14)
            m[-9:, :] = 0
            model[-1][0].weight *= m.expand(c(256), 14, 14).reshape(1, -1)
    return model.eval()


@pytest.mark.parametrize("wrap", ["plain", "wrapped"])
def test_load_authors_weights_reproduces_their_sequential(tmp_path, wrap):
    ref = _authors_sequential(1 / 16, 16, 7, masked=True)
    sd = ref.state_dict()
    assert "31.0.weight" in sd and "28.weight" in sd and "29.weight" not in sd
    if wrap == "wrapped":  # DataParallel prefix, a training checkpoint, keys in another order
        sd = {
            "model_state_dict": {f"module.{k}": v for k, v in reversed(list(sd.items()))},
            "epoch": 90,
        }
    path = tmp_path / "params_vgg16_masked.pt"
    torch.save(sd, path)
    ours = load_authors_weights(path)
    assert (ours.masked_rows, ours.feature_size, ours.input_size) == (9, 14, 224)
    assert ours.classifier[-1].out_features == 7
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ours.features[28].weight, ref[28].weight, rtol=0, atol=0)


def test_load_authors_baseline_warns_when_masked_and_loads_unmasked(tmp_path):
    ref = _authors_sequential(1 / 16, 16, 5, masked=False)
    path = tmp_path / "params_vgg16_baseline.pt"
    torch.save(ref.state_dict(), path)
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        base = load_authors_weights(path, masked_rows=0)
    with torch.no_grad():
        torch.testing.assert_close(base(x), ref(x), rtol=1e-6, atol=1e-6)
    with pytest.warns(UserWarning, match="unmasked baseline"):
        masked = load_authors_weights(path)
    assert torch.all(masked.classifier[0].weight[:, masked.classifier[0].mask == 0] == 0)


def test_key_map_on_full_size_authors_layout():
    # the exact published layout (built on the meta device: no memory): every key maps by shape
    with torch.device("meta"):
        tv = torchvision.models.vgg16()
        feats = list(tv.features.children())[:30]
        authors = nn.Sequential(*feats, nn.Flatten(1), tv.classifier)
        authors[28] = nn.Conv2d(512, 256, 3, padding=1)
        authors[-1][0] = nn.Linear(256 * 14 * 14, 4096)
        ours = masked_vgg16()
    pairs = map_state_dict_keys(authors.state_dict(), ours.state_dict())
    assert len(pairs) == 32  # 13 convs + 3 dense layers, weight and bias each
    assert pairs["28.weight"] == "features.28.weight"
    assert pairs["31.0.weight"] == "classifier.0.weight"
    assert pairs["31.6.bias"] == "classifier.6.bias"
    assert pairs["2.weight"] == "features.2.weight"
    broken = dict(authors.state_dict())
    broken["31.3.weight"] = torch.empty(10, 4096, device="meta")
    with pytest.raises(ValueError, match="shape mismatch: 31.3.weight"):
        map_state_dict_keys(broken, ours.state_dict())


def test_load_authors_weights_missing_file_says_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="cam-can-see-through-walls.*'default' profile"):
        load_authors_weights(tmp_path / "params_vgg16_masked.pt")


# ---------------------------------------------------------------- Mascolini et al.: U-Net classifier


def _unet_by_hand(m: UNetClassifier, x):
    e1 = m.enc1(x)
    e2 = m.enc2(m.down1(e1))
    e3 = m.enc3(m.down2(e2))
    b = m.bottleneck(m.down3(e3))
    d = b
    for i, e in ((3, e3), (2, e2), (1, e1)):
        u = getattr(m, f"up{i}")(d)
        dh, dw = e.shape[-2] - u.shape[-2], e.shape[-1] - u.shape[-1]
        u = nn.functional.pad(u, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
        d = getattr(m, f"dec{i}")(torch.cat([u, e], 1) if m.skips else u)
    return m.fc(d.mean((2, 3))), d


@pytest.mark.parametrize("size", [28, 64])
def test_unet_with_and_without_skips(size):
    torch.manual_seed(0)
    full, ablated = UNetClassifier(skips=True).eval(), UNetClassifier(skips=False).eval()
    names = lambda m: [n for n, _ in m.named_modules()]  # noqa: E731
    assert names(full) == names(ablated)
    assert full.dec1[0].in_channels == 16 and ablated.dec1[0].in_channels == 8
    x = torch.rand(2, 1, size, size)
    for m in (full, ablated):
        logits, act = _capture(m, m.target_layer, x)
        ref_logits, ref_act = _unet_by_hand(m, x)
        assert act.shape == (2, 8, size, size)  # full input resolution at the target layer
        torch.testing.assert_close(logits, ref_logits, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(act, ref_act, rtol=0, atol=0)


def test_unet_ablated_decoder_sees_input_only_through_bottleneck():
    # without skips, dec1 is a function of the bottleneck: equal bottleneck -> equal map
    torch.manual_seed(0)
    m = UNetClassifier(skips=False).eval()
    x = torch.rand(1, 1, 32, 32)
    acts = {}
    hooks = [
        m.bottleneck.register_forward_hook(lambda mod, i, o: torch.zeros_like(o)),
        m.dec1.register_forward_hook(lambda mod, i, o: acts.setdefault(len(acts), o)),
    ]
    m(x), m(torch.rand(1, 1, 32, 32))
    for h in hooks:
        h.remove()
    torch.testing.assert_close(acts[0], acts[1], rtol=0, atol=0)
    full = UNetClassifier(skips=True).eval()
    acts.clear()
    h1 = full.bottleneck.register_forward_hook(lambda mod, i, o: torch.zeros_like(o))
    h2 = full.dec1.register_forward_hook(lambda mod, i, o: acts.setdefault(len(acts), o))
    full(x), full(torch.rand(1, 1, 32, 32))
    h1.remove(), h2.remove()
    assert not torch.equal(acts[0], acts[1])  # the skips carry the input past the bottleneck


# ---------------------------------------------------------------- the zoo


def test_paper_layers_resolve_on_torchvision_models():
    assert zoo.paper_layers("resnet50") == {
        "layer4": "layer4",
        "layer3": "layer3",
        "layer2": "layer2",
    }
    assert zoo.paper_layers("densenet121")["transition3"] == "features.transition3"
    eff = zoo.paper_layers("efficientnet_b0")
    assert list(eff) == ["features[-1]", "features[-2]", "features[-3]", "features[-4]"]
    with torch.device("meta"):
        m = zoo.build("efficientnet_b0")
    assert len(m.features) == 9 and resolve_layer(m, eff["features[-1]"]) is m.features[8]
    assert resolve_layer(m, eff["features[-4]"]) is m.features[5]
    assert zoo.paper_layers("vgg16") == {"features.29": "features.29"}
    with torch.device("meta"):
        vgg, alex, goog = zoo.build("vgg16"), zoo.build("alexnet"), zoo.build("googlenet")
    # the last conv's ReLU of each network, the layer Nagy et al. uses
    assert isinstance(vgg.features[29], nn.ReLU) and isinstance(vgg.features[28], nn.Conv2d)
    assert isinstance(alex.features[11], nn.ReLU) and isinstance(alex.features[10], nn.Conv2d)
    assert type(goog.inception5b).__name__ == "Inception"
    with pytest.raises(ValueError, match="unknown model"):
        zoo.paper_layers("resnet51")


def test_imagenet_weights_missing_gives_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    path, url = zoo.imagenet_weights_file("resnet50")
    assert path == tmp_path / "checkpoints" / "resnet50-0676ba61.pth"
    with pytest.raises(
        FileNotFoundError,
        match=r"resnet50-0676ba61\.pth.*download.*'default' "
        r"profile runs offline",
    ):
        zoo.build("resnet50", weights="imagenet")


@pytest.mark.parametrize(
    "name,shapes",
    [
        ("small_resnet", {"layer4": 4, "layer3": 8, "layer2": 16}),
        (
            "small_densenet",
            {"denseblock4": 4, "transition3": 4, "denseblock3": 8, "transition2": 8},
        ),
        (
            "small_efficientnet",
            {"features[-1]": 4, "features[-2]": 4, "features[-3]": 4, "features[-4]": 8},
        ),
    ],
)
def test_small_analogues_have_paper_layer_names(name, shapes):
    torch.manual_seed(0)
    m = zoo.build(name).eval()
    layers = zoo.paper_layers(name)
    assert list(layers) == list(shapes)
    got = {}
    hooks = [
        resolve_layer(m, d).register_forward_hook(
            lambda mod, i, o, k=k: got.__setitem__(k, o.shape[-1])
        )
        for k, d in layers.items()
    ]
    assert m(torch.rand(2, 1, 64, 64)).shape == (2, 10)
    for h in hooks:
        h.remove()
    assert got == shapes  # total stride 16: the last maps are 4x4 on 64 px


def test_build_loads_trainer_file_and_refuses_imagenet_for_project_models(tmp_path):
    torch.manual_seed(0)
    m = zoo.build("mnist_net")
    torch.save({"state_dict": m.state_dict(), "history": {}}, tmp_path / "w.pt")
    m2 = zoo.build("mnist_net", weights=tmp_path / "w.pt")
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), m2.state_dict().values()))
    with pytest.raises(ValueError, match="no ImageNet weights"):
        zoo.build("gap_net", weights="imagenet")


def test_zoo_falls_back_to_torchvision_and_timm_by_their_own_names():
    """Names the zoo does not list are torchvision's or timm's own (``python -m lib.rf resnet18``
    traced any torchvision model before the zoo existed); an unknown name says where to look."""
    import subprocess
    import sys

    assert type(zoo.build("resnet18")).__name__ == "ResNet"
    assert type(zoo.build("resnet26d")).__module__ == "timm.models.resnet"
    with pytest.raises(ValueError, match="torchvision.models.list_models"):
        zoo.build("resnet51")
    out = subprocess.run(
        [sys.executable, "-m", "lib.rf", "resnet18"], capture_output=True, text=True, check=True
    ).stdout
    # ResNet-18's last 3 x 3 convolution sees 435 px (a known value: 1 + 2 * (sum of the
    # strides' products times the kernels' reach) over its 17 convolutions and the max-pool)
    assert re.search(r"^layer4\.1\.conv2 435 435 32$", out, re.M)
