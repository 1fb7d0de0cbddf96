"""lib.data.needs: a full run's needs asked all at once (one table, one error naming every
missing row), torchvision's weights downloaded where a network exists, and the localisation
chapter's set-up built on it."""

import pytest

from lib.chapters import gradcam_localization as loc
from lib.data.needs import (
    DOWNLOAD_VARIABLE,
    REHEARSAL_VARIABLE,
    FullProfileMissing,
    Need,
    download_allowed,
    require,
    weights_need,
)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.delenv(DOWNLOAD_VARIABLE, raising=False)
    monkeypatch.delenv(REHEARSAL_VARIABLE, raising=False)
    monkeypatch.setattr("torch.hub.get_dir", lambda: str(tmp_path / "hub"))  # an empty cache


def test_every_missing_row_in_one_error_after_one_table(tmp_path, offline):
    (tmp_path / "here.csv").write_text("x\n")
    shown = []
    needs = [
        Need.file("a table", tmp_path / "here.csv", "somewhere"),
        Need.file("the images", tmp_path / "images", "the authors' site", folder=True),
        Need.file("a checkpoint", None, "the checkpoint parameter"),
    ]
    with pytest.raises(FullProfileMissing) as err:
        require("chapter X", needs, show=shown.append)
    (table,) = shown
    assert list(table["status"]) == ["present", "MISSING", "MISSING"]
    msg = str(err.value)
    assert "the images" in msg and "a checkpoint" in msg and "a table" not in msg.split("\n")[0]
    assert "(data_root is None)" in msg and "the authors' site" in msg
    assert [n.what for n in err.value.rows] == ["the images", "a checkpoint"]


def test_downloads_allowed_by_the_variable_or_on_colab(monkeypatch):
    monkeypatch.delenv(DOWNLOAD_VARIABLE, raising=False)
    assert not download_allowed(modules={})
    assert download_allowed(modules={"google.colab": object()})
    monkeypatch.setenv(DOWNLOAD_VARIABLE, "0")  # the reader said no, even on Colab
    assert not download_allowed(modules={"google.colab": object()})
    monkeypatch.setenv(DOWNLOAD_VARIABLE, "1")
    assert download_allowed(modules={})


def test_torchvision_weights_count_as_fetched_where_a_network_exists(offline, monkeypatch):
    need = weights_need("alexnet")
    assert need.status == "MISSING" and "download.pytorch.org" in need.source
    monkeypatch.setenv(DOWNLOAD_VARIABLE, "1")
    assert weights_need("alexnet").status == "downloaded on first use"


def test_localisation_full_lists_data_and_weights_at_once(tmp_path, offline):
    shown = []
    with pytest.raises(FullProfileMissing) as err:
        loc.check_full_data(tmp_path / "nowhere", tmp_path / "model.pth.tar", show=shown.append)
    table = shown[0]
    # the data first, then the weights; every row there, not the first missing one only
    assert table["needed"].iloc[0].startswith("ILSVRC")
    assert [w for w in table["needed"] if "weights" in w] == [
        f"{a} ImageNet weights (torchvision)" for a in loc.ARCHS.values()
    ]
    assert len(err.value.rows) == len(table) == 1 + 3 + 3
    assert (table["status"] == "MISSING").all()
