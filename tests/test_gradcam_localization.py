"""The localisation chapter's protocol (lib.chapters.gradcam_localization) on inputs whose
Grad-CAM maps, boxes and scores are known by hand."""
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from lib import metrics
from lib.chapters import gradcam_localization as gl
from lib.data.nih import FINDINGS


def _linear_model(weights, biases) -> nn.Module:
    """GAP + linear on the input itself: the Grad-CAM map of class c at ``features`` is
    ReLU(w_c / (H W) * x), i.e. proportional to x where w_c > 0 and zero where w_c < 0."""
    fc = nn.Linear(1, len(weights))
    with torch.no_grad():
        fc.weight[:, 0] = torch.tensor(weights, dtype=torch.float32)
        fc.bias[:] = torch.tensor(biases, dtype=torch.float32)
    return nn.Sequential(OrderedDict(features=nn.Identity(), pool=nn.AdaptiveAvgPool2d(1),
                                     flatten=nn.Flatten(), fc=fc)).eval()


def _blob_image() -> torch.Tensor:
    x = torch.full((1, 1, 16, 16), 0.01)
    x[0, 0, 4:8, 2:6] = 1.0  # the object: columns 2..5, rows 4..7
    return x


def test_inclusive_boxes():
    b = torch.tensor([[10.0, 20.0, 30.0, 40.0, 7], [10.4, 20.6, 29.2, 39.9, 3]])
    assert gl.inclusive(b).tolist() == [[10, 20, 29, 39, 7], [10, 20, 29, 39, 3]]


#: logits c0 = mean, c1 = -mean + 5, c2 = 2 mean - 5, c3..c5 = -mean - 10, -11, -12: the
#: ranking is 1, 0, 2, 3, 4, 5 (the blob image's mean is about 0.07)
WEIGHTS, BIASES = [1.0, -1.0, 2.0, -1.0, -1.0, -1.0], [0.0, 5.0, -5.0, -10.0, -11.0, -12.0]


def test_score_images_by_hand():
    model = _linear_model(WEIGHTS, BIASES)
    x = _blob_image()
    gt = [torch.tensor([[2, 4, 5, 7, 0]])]
    s = gl.score_images(model, x, "features", gt, torch.tensor([0]), k=5, tolerances=(0, 4))
    assert s.classes.tolist() == [[1, 0, 2, 3, 4]]
    # negative weights give ReLU(negative x) = 0: no box; classes 0 and 2 box the blob exactly
    none = [-1, -1, -1, -1]
    assert s.boxes.tolist() == [[none, [2, 4, 5, 7], [2, 4, 5, 7], none, none]]
    assert s.cls_hits.tolist() == [[0.0, 1.0, 0.0, 0.0, 0.0]]
    assert s.loc_hits.tolist() == [[0.0, 1.0, 0.0, 0.0, 0.0]]  # class 2: right box, wrong class
    assert s.point_hits.tolist() == [[0.0, 1.0, 0.0, 0.0, 0.0]]
    assert s.gt_point.tolist() == [[1.0, 1.0]]
    # the label's map is the image: above 1 % of the max only the blob, a hit at every threshold
    assert s.gt_loc.tolist() == [[1.0] * len(gl.SWEEP)]
    # peaks before min-max: w_c / (16 * 16) x 1.0
    assert s.peaks[0].tolist() == pytest.approx([0.0, 1 / 256, 2 / 256, 0.0, 0.0])
    t1, t2 = gl.table1_rows(s), gl.table2_rows(s)
    assert t1["cls top-1"] == 100 and t1["loc top-1"] == 100 and t1["loc top-5"] == 0
    assert t1["maps without a box"] == 3
    # recall: the four wrong classes have peaks < .5 (they score); the right one hits but its
    # peak 1/256 < .5 (it does not): 4 / 5
    assert t2["recall, authors' code"] == pytest.approx(4 / 5)
    assert t2["accuracy, authors' code"] == 0.0 and t2["accuracy (tolerance 0 px)"] == 1.0


def test_the_ground_truth_map_is_computed_when_the_label_is_not_in_the_top_k():
    model = _linear_model(WEIGHTS, BIASES)
    gt = [torch.tensor([[2, 4, 5, 7, 2]])]  # the label is class 2, ranked third
    s = gl.score_images(model, _blob_image(), "features", gt, torch.tensor([2]), k=2)
    assert s.classes.tolist() == [[1, 0]]
    assert s.gt_point.tolist() == [[1.0]]  # class 2's own map peaks on the blob
    assert s.cls_hits.tolist() == [[0.0, 0.0]] and s.loc_hits.tolist() == [[0.0, 0.0]]


def test_baselines_by_hand():
    model = _linear_model(WEIGHTS, BIASES)
    gt = [torch.tensor([[2, 4, 5, 7, 0]])]
    s = gl.score_images(model, _blob_image(), "features", gt, torch.tensor([0]), k=5)
    b = gl.baselines(s, gt, 16)
    # the whole image: IoU 16 / 256 = 0.0625 < min(0.5, 16 / 196) = 0.082: a miss at every rank
    assert b["whole-image box: loc top-1"] == 100 and b["whole-image box: loc top-5"] == 100
    # a 4 x 4 box at the centre (columns and rows 6..9) does not touch the blob: a miss
    assert b["centre box of median size: loc top-5"] == 100
    # the same blob at the centre: the centre box is the object, a hit at rank 2 (class 0)
    x = torch.full((1, 1, 16, 16), 0.01)
    x[0, 0, 6:10, 6:10] = 1.0
    gt_c = [torch.tensor([[6, 6, 9, 9, 0]])]
    s_c = gl.score_images(model, x, "features", gt_c, torch.tensor([0]), k=5)
    b_c = gl.baselines(s_c, gt_c, 16)
    assert b_c["centre box of median size: loc top-1"] == 100  # rank 1 is class 1, wrong
    assert b_c["centre box of median size: loc top-5"] == 0
    assert b_c["centre point: pointing accuracy"] == 1.0  # (8, 8) is inside
    assert b["centre point: pointing accuracy"] == 0.0  # (8, 8) is outside
    assert b["box share of the image"] == pytest.approx(16 / 256)
    facts = gl.scale_facts(gt, 16, 10)
    assert facts["chance top-5 cls error (%)"] == 50 and facts["median box side (px)"] == 4
    assert facts["boxes under the size rule (%)"] == 100


def test_photo_geometries_by_hand():
    # rocket: 640 x 427, box x 303..342, y 125..415 (exclusive), classes 657 and 744
    for geometry, (x0, x1) in (("shorter", (101, 124)), ("square", (105, 120))):
        x, gt, classes = gl.photo_inputs(["rocket"], geometry)
        assert x.shape == (1, 3, 224, 224)
        # shorter: 383 x 256 (sx 383/640), crop offsets 80, 16; square: 256 x 256, offsets 16
        # y: 125 * 256/427 - 16 = 58.9 -> 58; 415 * 256/427 - 16 = 232.8 -> clipped to 223
        assert gt[0].tolist() == [[x0, 58, x1, 223, 657], [x0, 58, x1, 223, 744]]
        assert classes == [{657, 744}]
    _, gt, _ = gl.photo_inputs(["astronaut"], "square")
    assert set(gt[0][:, 4].tolist()) == {812, 518}  # the person has no ImageNet class: left out


def test_label_orders_are_permutations_of_nih():
    assert gl.NIH_ORDERS["chexnet"] == FINDINGS
    assert sorted(gl.NIH_ORDERS["covid"]) == sorted(FINDINGS)
    assert gl.NIH_ORDERS["covid"].index("Atelectasis") == 7  # the authors' label_to_index


@pytest.mark.slow
def test_load_chexnet_renames_the_old_densenet_keys(tmp_path):
    import torchvision

    torch.manual_seed(0)
    ref = torchvision.models.densenet121(num_classes=14).eval()
    old = {}
    for k, v in ref.state_dict().items():  # CheXNet's layout: DataParallel, a wrapper, norm.1
        for new, legacy in (("norm1", "norm.1"), ("norm2", "norm.2"), ("conv1", "conv.1"),
                            ("conv2", "conv.2")):
            if "denselayer" in k:
                k = k.replace(f".{new}.", f".{legacy}.")
        k = k.replace("classifier.", "classifier.0.")
        old[f"module.densenet121.{k}"] = v
    path = tmp_path / "model.pth.tar"
    torch.save({"state_dict": old, "epoch": 1}, path)
    model = gl.load_chexnet(path, "chexnet")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), ref(x))
    with pytest.raises(ValueError, match="order"):
        gl.load_chexnet(path, "alphabetical")


def test_input_maps_are_grey_then_relu():
    attr = torch.tensor([1.0, 1.0, 1.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2).clone()
    attr[0, :, 1, 1] = -1.0
    grey = gl._input_map(attr)
    assert grey[0, 0, 0].item() == pytest.approx(0.2989 + 0.5870 + 0.1140)
    assert grey[0, 1, 1].item() == 0.0


def test_table5_scores_the_blob_by_hand():
    """Grad-CAM of the linear model is the image itself: every pixel above 0.85 after min-max
    is the blob, so the share in the blob's box is 1 and 0 in a box beside it."""
    model = _linear_model([1.0, 2.0], [0.0, 0.0])
    x = _blob_image().expand(2, 1, 16, 16)
    maps = gl.table5_maps(model, x, torch.tensor([0, 1]), "features", ["gradcam"])
    masks = torch.zeros(2, 16, 16, dtype=torch.bool)
    masks[0, 4:8, 2:6] = True
    masks[1, 4:8, 8:12] = True
    s = metrics.share_above_in_mask(maps["gradcam"], masks)
    assert s.tolist() == [1.0, 0.0]


@pytest.mark.slow
def test_imagenet_run_on_a_tiny_fake_validation_set_resumes(tmp_path, monkeypatch):
    """The full profile's driver end to end on three JPEGs and a Kaggle-style box file, with a
    random AlexNet: it scores, stores each batch, and a second call reads the store back."""
    import torchvision
    from PIL import Image

    from lib.data.imagenet import load_wnids

    root = tmp_path / "imagenet"
    (root / "val").mkdir(parents=True)
    wnids = load_wnids()
    rng = np.random.default_rng(0)
    lines = ["ImageId,PredictionString"]
    for i, (w, h) in enumerate(((300, 200), (256, 256), (200, 320))):
        name = f"ILSVRC2012_val_{i + 1:08d}"
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(
            root / "val" / f"{name}.JPEG")
        lines.append(f"{name},{wnids[i]} 10 20 {w - 30} {h - 10}")
    (root / "LOC_val_solution.csv").write_text("\n".join(lines) + "\n")
    torch.manual_seed(0)
    model = torchvision.models.alexnet(weights=None).eval()
    kw = dict(batch_size=2, num_workers=0, model=model, progress=False,
              store_root=tmp_path / "results")
    first = gl.imagenet_run(tmp_path, "alexnet", "square", "cpu", **kw)
    assert first["images"] == 3
    assert 0 <= first["loc top-1"] <= 100 and first["cls top-5"] >= first["cls top-1"] - 100
    monkeypatch.setattr(gl, "score_images", lambda *a, **k: pytest.fail("recomputed"))
    assert gl.imagenet_run(tmp_path, "alexnet", "square", "cpu", **kw) == first


@pytest.mark.parametrize("net", list(gl.STAND_INS))
def test_the_shared_forward_pass_gives_the_same_scores(net):
    """score_images splits a stand-in at its layer to share the pass below it between the top-5
    maps: the same classes, boxes, peaks and hits as running the whole model for each."""
    from lib.models import zoo

    arch, kwargs, layer, _ = gl.STAND_INS[net]
    torch.manual_seed(0)
    model = zoo.build(arch, **kwargs).eval()
    scenes = gl.scene_test_set(6)
    gt, labels = gl.scene_ground_truth(scenes)
    a = gl.score_images(model, scenes.images, layer, gt, labels, tolerances=(0, 4), split=True)
    b = gl.score_images(model, scenes.images, layer, gt, labels, tolerances=(0, 4), split=False)
    assert gl.split_at(model, layer) is not None
    assert torch.equal(a.classes, b.classes) and torch.equal(a.boxes, b.boxes)
    assert torch.allclose(a.peaks, b.peaks, rtol=1e-4, atol=1e-7)
    for f in ("loc_hits", "point_hits", "gt_point", "gt_loc"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f


@pytest.mark.parametrize("arch,kwargs,layer,side", [
    ("small_alexnet", {}, "features.11", 8), ("small_alexnet", {"batch_norm": True},
                                              "features.16", 8),
    ("small_vgg", {}, "features.29", 8), ("small_vgg", {"batch_norm": True}, "features.42", 8),
    ("small_googlenet", {}, "inception5b", 4)])
def test_stand_ins_keep_the_papers_layer_as_the_last_relu(arch, kwargs, layer, side):
    """The paper's layer is each network's last ReLU (or last block): on the stand-ins at 64 px
    it is ``side`` x ``side``, and nothing after it but pooling and the classifier."""
    from lib.layers import resolve_layer
    from lib.models import zoo

    torch.manual_seed(0)
    m = zoo.build(arch, **kwargs).eval()
    got = {}
    resolve_layer(m, layer).register_forward_hook(lambda mod, i, o: got.update(s=o.shape))
    assert m(torch.rand(2, 1, 64, 64)).shape == (2, 10)
    assert got["s"][-2:] == (side, side)
    if arch != "small_googlenet":
        after = list(m.features)[int(layer.split(".")[1]) + 1:]
        assert isinstance(resolve_layer(m, layer), nn.ReLU)
        assert all(isinstance(a, (nn.MaxPool2d, nn.Identity)) for a in after)
    # the zoo labels each stand-in's layer with its paper network's name for it
    paper = {"small_alexnet": "features.11", "small_vgg": "features.29",
             "small_googlenet": "inception5b"}[arch]
    assert list(zoo.paper_layers(arch)) == [paper]


@pytest.mark.slow
def test_nih_run_maps_each_finding_by_name_to_the_checkpoints_output(tmp_path, monkeypatch):
    """Table 5's full-profile driver on two fake radiographs: each box is explained with the
    checkpoint's own output for its finding (the COVID project's order here: Cardiomegaly is
    output 0, Effusion output 2, Mass output 5), scored, and stored."""
    import torchvision
    from PIL import Image

    root = tmp_path / "chestxray14"
    (root / "images").mkdir(parents=True)
    for name in ("00000001_000.png", "00000002_000.png"):
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256), np.uint8)).save(
            root / "images" / name)
    (root / "Data_Entry_2017.csv").write_text(
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
        "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n"
        "00000001_000.png,Cardiomegaly|Effusion,0,1,58,M,PA,2682,2749,0.143,0.143,\n"
        "00000002_000.png,Mass,0,2,81,M,PA,2500,2048,0.171,0.171,\n")
    (root / "BBox_List_2017.csv").write_text(
        "Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
        "00000001_000.png,Cardiomegaly,20,40,100,80,,,\n"
        "00000001_000.png,Effusion,150,100,60,60,,,\n"
        "00000002_000.png,Mass,10,10,50,50,,,\n")
    torch.manual_seed(0)
    path = tmp_path / "covid.pt"
    torch.save(torchvision.models.densenet121(num_classes=14).state_dict(), path)
    seen = []
    real = gl.table5_maps
    monkeypatch.setattr(gl, "table5_maps", lambda model, x, targets, *a, **k:
                        seen.append(targets.tolist()) or real(model, x, targets, *a, **k))
    rows = gl.nih_run(tmp_path, path, "covid", "cpu", methods=["gradcam"], progress=False,
                      store_root=tmp_path / "results")
    assert sorted(seen) == [[0, 2], [5]]
    assert sorted(rows.finding) == ["Cardiomegaly", "Effusion", "Mass"]
    ok = rows.score.dropna()
    assert ((ok >= 0) & (ok <= 1)).all()
