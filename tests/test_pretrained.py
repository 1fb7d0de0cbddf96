"""EfficientNet-Lite0's ImageNet weights, loaded offline by name."""

import pytest
import torch

from lib.data.photos import load_photo
from lib.models import pretrained


@pytest.fixture(scope="module")
def model():
    return pretrained.efficientnet_lite0()


def test_name_mapping_is_complete_and_by_name():
    import timm

    source = torch.load(pretrained.weights_path(), map_location="cpu", weights_only=True)
    target = timm.create_model("efficientnet_lite0", pretrained=False)
    mapped = pretrained.map_lite0_names(source, target)
    assert set(mapped) == set(target.state_dict())  # every parameter and buffer
    assert len(mapped) == len(source) == 296  # and nothing left over
    # by name, not by position: block 3 is stage 2's first block; its expansion conv is conv_pw
    assert torch.equal(mapped["blocks.2.0.conv_pw.weight"], source["_blocks.3._expand_conv.weight"])
    assert torch.equal(mapped["classifier.bias"], source["_fc.bias"])
    # a renamed or truncated source is refused with the offending name
    broken = dict(source)
    broken["_blocks.3._bogus.weight"] = broken.pop("_blocks.3._expand_conv.weight")
    with pytest.raises(KeyError, match="_bogus"):
        pretrained.map_lite0_names(broken, target)
    del source["_fc.bias"]
    with pytest.raises(KeyError, match="got no weights.*classifier.bias"):
        pretrained.map_lite0_names(source, target)


def test_real_photographs_are_recognised(model):
    cats = pretrained.imagenet_categories()
    assert len(cats) == 1000 and cats[967] == "espresso"
    x = pretrained.preprocess([load_photo("chelsea"), load_photo("coffee")])
    with torch.no_grad():
        top3 = model(x).topk(3, dim=1).indices
    assert set(top3[0].tolist()) == {281, 282, 285}  # tabby, tiger cat, Egyptian cat
    assert cats[top3[1, 0]] == "espresso"
