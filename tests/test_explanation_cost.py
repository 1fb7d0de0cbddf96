"""The cost chapter's protocol: passes counted with hooks against counts worked out by hand,
FLOPs by hand, the summary and the engine's targets from hand-made tables."""
import math

import pandas as pd
import pytest
import torch
from torch import nn

from lib import cam
from lib.chapters import explanation_cost as cost


class Net(nn.Module):
    """conv(3 -> K, 3x3) -> ReLU -> GAP -> linear(K -> 4), on 8 x 8 images."""

    def __init__(self, k=6):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, k, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(k, 4)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


def test_count_passes_by_hand():
    torch.manual_seed(0)
    model = Net()

    def work():
        with torch.no_grad():
            model(torch.randn(3, 3, 8, 8))
        model(torch.randn(2, 3, 8, 8)).sum().backward()  # one backward pass from the output
        with torch.no_grad():
            model.fc(torch.randn(4, 6))  # the head alone: 4 images above the layer

    n = cost.count_passes(model, work)
    assert n == {"forward_calls": 2, "forward_images": 5, "head_images": 9, "backward_calls": 1}
    assert not model._forward_hooks and not model._forward_pre_hooks  # hooks removed
    with pytest.raises(ValueError, match="no nn.Linear"):
        cost.count_passes(nn.Sequential(nn.Conv2d(3, 3, 1)), lambda: None)


def test_engine_passes_by_hand():
    """Grad-CAM: one forward, one backward. Ablation-CAM: one forward (N images), then the head
    alone: N (the check of the split) + N * K ablations. Score-CAM: one forward, the fast
    path's check (N), one pass per live channel and one all-zero mask per image with dead
    channels (GAP + linear after the layer, nothing to fold, so the check is the model)."""
    torch.manual_seed(1)
    model = Net(k=6).eval()
    with torch.no_grad():
        model.features[0].bias[:2] = -100.0  # two dead channels
    x = torch.randn(2, 3, 8, 8)
    live = int((model.features(x).flatten(2).amax(2) > 0).sum())
    assert live == 8  # 4 per image

    def passes(method):
        return cost.count_passes(model, lambda: cam.compute(model, x, "features", method))

    assert passes("gradcam") == {"forward_calls": 1, "forward_images": 2, "head_images": 2,
                                 "backward_calls": 1}
    ab = passes("ablationcam")
    assert ab["forward_images"] == 2 and ab["head_images"] == 2 + 2 + 2 * 6
    sc = passes("scorecam")
    assert sc["forward_images"] == 2 + 2 + live + 2 and sc["backward_calls"] == 0
    with cam.fast_path(False, False, False, None, False):  # no copy, so no check
        assert passes("scorecam")["forward_images"] == 2 + live + 2


def test_pytorch_grad_cam_passes_by_hand():
    """pytorch-grad-cam runs the whole model for every mask (Score-CAM: 1 + K passes per image)
    and every ablation (Ablation-CAM: 2 + K, its own first pass repeated to cache the
    activations)."""
    from pytorch_grad_cam import AblationCAM, ScoreCAM

    torch.manual_seed(2)
    model = Net(k=6).eval()
    x = torch.randn(2, 3, 8, 8)
    for cls, per_image in ((AblationCAM, 2 + 6), (ScoreCAM, 1 + 6)):
        def call():
            with cls(model=model, target_layers=[model.features]) as c:
                c.batch_size = 4
                c(x, targets=None)
        n = cost.count_passes(model, call)
        assert n["forward_images"] == n["head_images"] == 2 * per_image, cls


def test_flops_by_hand():
    model = Net(k=6).eval()
    x = torch.randn(1, 3, 8, 8)
    f = cost.flops(model, x, "features")
    conv = 2 * 6 * 3 * 3 * 3 * 8 * 8   # 2 x multiply-adds of the convolution
    linear = 2 * 6 * 4                 # of the linear layer (the mean is not counted)
    assert f["full"] == conv + linear
    assert f["above"] == linear


def test_layer_channels_counts_live_channels():
    torch.manual_seed(3)
    model = Net(k=6).eval()
    with torch.no_grad():
        model.features[0].bias[:3] = -100.0
    got = cost.layer_channels(model, torch.randn(2, 3, 8, 8), "features")
    assert got == {"K": 6, "live": 3.0, "hw": "8 x 8"}


def _tables():
    times = pd.DataFrame([
        {"method": "gradcam", "ours / forward": 1.1, "pytorch-grad-cam / ours": 3.0},
        {"method": "hirescam", "ours / forward": 1.25, "pytorch-grad-cam / ours": 2.6},
        {"method": "scorecam", "ours / forward": 300.0, "pytorch-grad-cam / ours": 1.6,
         "pytorch-grad-cam max |diff|": 2e-6},
        {"method": "ablationcam", "ours / forward": 2.0, "pytorch-grad-cam / ours": 150.0,
         "pytorch-grad-cam max |diff|": 1e-6},
        {"method": "occlusion", "ours / forward": 40.0, "Captum / ours": 1.8},
    ])
    rows = []
    for m, lib, f, a, b in [("gradcam", "ours", 1, 0, 1), ("hirescam", "ours", 1, 0, 1),
                            ("scorecam", "ours", 515, 0, 0),
                            ("scorecam", "pytorch-grad-cam", 513, 0, 0),
                            ("ablationcam", "ours", 1, 513, 0),
                            ("ablationcam", "pytorch-grad-cam", 513, 0, 0),
                            ("occlusion", "ours", 228, 0, 0)]:
        rows.append({"method": m, "library": lib, "forward passes": f,
                     "passes above the layer": a, "backward passes": b})
    return times, pd.DataFrame(rows)


def test_summary_and_targets_from_hand_made_tables():
    times, passes = _tables()
    s = cost.summary(times, passes, {"median": 8.0, "range": [7, 9]},
                     {"K": 512, "live": 511.0, "hw": "4 x 4"}, {"full": 4.5e8, "above": 1.0e6})
    assert s["grad-worst"] == 1.25 and s["grad-worst-method"] == "hirescam"
    assert s["grad-best"] == 1.1 and s["grad-pgc-min"] == 2.6 and s["grad-one-pass"]
    assert s["scorecam-passes"] == 515 and s["ablation-above"] == 513
    assert s["above-share"] == pytest.approx(1e6 / 4.5e8)
    assert s["ablation-predicted"] == pytest.approx(1 + 512 / 450)
    t = cost.targets(s)
    assert t["holds"].tolist() == [True, True, True, True, True]
    times.loc[times["method"] == "scorecam", "pytorch-grad-cam / ours"] = 1.4
    times.loc[times["method"] == "hirescam", "ours / forward"] = 1.31
    t = cost.targets(cost.summary(times, passes, {"median": 8.0, "range": [7, 9]},
                                  {"K": 512, "live": 511.0, "hw": "4 x 4"},
                                  {"full": 4.5e8, "above": 1.0e6}))
    assert t["holds"].tolist() == [False, True, False, True, True]
    with pytest.raises(KeyError, match="no row for 'scorecam'"):
        cost.summary(times[times["method"] != "scorecam"], passes, {"median": 1.0}, {"K": 1,
                     "live": 1.0, "hw": "1 x 1"}, {"full": 1.0, "above": 1.0})


def test_passes_view_reads_per_library():
    _, passes = _tables()
    view = cost.passes_view(passes)
    row = view[view["method"] == "Ablation-CAM"].iloc[0]
    assert row["ours"] == "1 fwd + 513 above" and row["pytorch-grad-cam"] == "513 fwd"
    assert view[view["method"] == "Grad-CAM"].iloc[0]["ours"] == "1 fwd + 1 bwd"
    assert view[view["method"] == "Occlusion"].iloc[0]["pytorch-grad-cam"] == "—"


@pytest.mark.slow
def test_measure_on_a_small_network_agrees_with_the_references():
    torch.manual_seed(4)
    model = Net(k=6).eval()
    x = torch.randn(1, 3, 16, 16)
    methods = ["gradcam", "scorecam", "ablationcam", "occlusion", "guidedbackprop"]
    times, passes, fwd = cost.measure(model, x, "features", methods, 2, 64, 4)
    assert fwd["median"] > 0 and list(times["method"]) == methods
    for col in ("pytorch-grad-cam max |diff|", "Captum max |diff|"):
        assert (times[col].dropna() < 1e-4).all(), times[col]
    assert math.isnan(times.set_index("method").loc["guidedbackprop", "pytorch-grad-cam (ms)"])
    p = passes.set_index(["method", "library"])
    assert p.loc[("scorecam", "pytorch-grad-cam"), "forward passes"] == 1 + 6
    for lib in ("ours", "pytorch-grad-cam", "Captum"):  # Captum's target is not a pass
        assert p.loc[("gradcam", lib), "backward passes"] == 1, lib
        assert p.loc[("gradcam", lib), "forward passes"] == 1, lib
    # Guided Backprop alone: its guided pass is the only forward, as Captum's
    for lib in ("ours", "Captum"):
        assert p.loc[("guidedbackprop", lib), "forward passes"] == 1, lib
        assert p.loc[("guidedbackprop", lib), "backward passes"] == 1, lib
