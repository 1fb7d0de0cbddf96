"""ImageNet val loader on small files in the ILSVRC formats (XML and LOC_val_solution.csv)."""

import numpy as np
import pytest
import torch
from PIL import Image

from lib.data import DataFormatError, DataMissingError
from lib.data.imagenet import ImageNetVal, collate, load_wnids, parse_loc_solution, parse_voc_xml

XML = """<annotation><folder>val</folder><filename>{name}</filename>
<size><width>{w}</width><height>{h}</height><depth>3</depth></size>
{objects}</annotation>"""
OBJ = (
    "<object><name>{wnid}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"
    "<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
)


def make_val(root, with_csv=False):
    (root / "val").mkdir(parents=True)
    (root / "bbox").mkdir()
    specs = {
        1: ("n01751748", (100, 50, 300, 250)),
        2: ("n02123045", (10, 20, 490, 370)),
        4: ("n01440764", (5, 5, 50, 50)),
    }  # image 4 has a box but no image file
    for i in (1, 2, 3):  # image 3 has no box
        img = np.zeros((375, 500, 3), np.uint8)
        if i in specs:
            x0, y0, x1, y1 = specs[i][1]
            img[y0:y1, x0:x1] = 255
        Image.fromarray(img).save(root / "val" / f"ILSVRC2012_val_{i:08d}.JPEG", quality=95)
    lines = ["ImageId,PredictionString"]
    for i, (wnid, (x0, y0, x1, y1)) in specs.items():
        name = f"ILSVRC2012_val_{i:08d}"
        obj = OBJ.format(wnid=wnid, x0=x0, y0=y0, x1=x1, y1=y1)
        (root / "bbox" / f"{name}.xml").write_text(XML.format(name=name, w=500, h=375, objects=obj))
        lines.append(f"{name},{wnid} {x0} {y0} {x1} {y1} ")
    if with_csv:
        (root / "LOC_val_solution.csv").write_text("\n".join(lines) + "\n")
    return specs


def test_wnids_are_torchvision_order():
    from torchvision.models import VGG16_Weights

    wnids = load_wnids()
    cats = VGG16_Weights.IMAGENET1K_V1.meta["categories"]
    assert len(wnids) == 1000 and wnids == sorted(wnids)
    for wnid, name in [
        ("n01440764", "tench"),
        ("n01443537", "goldfish"),
        ("n01751748", "sea snake"),
        ("n02123045", "tabby"),
        ("n04008634", "projectile"),
    ]:
        assert cats[wnids.index(wnid)] == name


@pytest.mark.parametrize("with_csv", [False, True])
def test_loader_labels_boxes_and_counts(tmp_path, with_csv):
    make_val(tmp_path, with_csv)
    ann = None if with_csv else tmp_path / "bbox"
    ds = ImageNetVal(tmp_path, annotations=ann)
    assert len(ds) == 2 and ds.names == ["ILSVRC2012_val_00000001", "ILSVRC2012_val_00000002"]
    assert ds.report.dropped == {"no image": 1, "no boxes": 1}
    assert str(ds.report).startswith("ImageNet val: kept 2, dropped 1 (no boxes")
    x, label, boxes = ds[0]
    assert x.shape == (3, 224, 224) and label == 65  # n01751748 sea snake
    expect = [
        100 * 256 / 500 - 16,
        50 * 256 / 375 - 16,
        300 * 256 / 500 - 16,
        250 * 256 / 375 - 16,
        65,
    ]
    np.testing.assert_allclose(boxes.numpy(), [expect], rtol=1e-5)
    # the white rectangle in the image lands on the box (unnormalised view)
    raw = ImageNetVal(tmp_path, annotations=ann, normalize=False)[0][0][0]
    ys, xs = torch.nonzero(raw > 0.5, as_tuple=True)
    assert abs(xs.min().item() - expect[0]) <= 1 and abs(ys.max().item() + 1 - expect[3]) <= 1
    xb, yb, bb = collate([ds[0], ds[1]])
    assert xb.shape == (2, 3, 224, 224) and yb.tolist() == [65, 281] and len(bb) == 2


def test_xml_errors_name_the_file(tmp_path):
    p = tmp_path / "a.xml"
    p.write_text(
        XML.format(
            name="a", w=10, h=10, objects=OBJ.format(wnid="n01440764", x0=5, y0=1, x1=2, y1=4)
        )
    )
    with pytest.raises(
        DataFormatError, match=r"a.xml, line 3: box \(5.0, 1.0, 2.0, 4.0\) is empty"
    ):
        parse_voc_xml(p)
    p.write_text("<annotation><object>")
    with pytest.raises(DataFormatError, match="a.xml, line 1: not valid XML"):
        parse_voc_xml(p)
    p.write_text(
        XML.format(
            name="a", w=10, h=10, objects=OBJ.format(wnid="n01440764", x0="x", y0=1, x1=2, y1=4)
        )
    )
    with pytest.raises(DataFormatError, match="not a number"):
        parse_voc_xml(p)


def test_csv_errors_give_line(tmp_path):
    p = tmp_path / "LOC_val_solution.csv"
    p.write_text("ImageId,PredictionString\nA,n01440764 1 2 3 4\nB,n01440764 1 2 3\n")
    with pytest.raises(
        DataFormatError, match="LOC_val_solution.csv, line 3: PredictionString has 4 fields"
    ):
        parse_loc_solution(p)
    p.write_text("ImageId,PredictionString\nA,n01440764 1 2 3 4 n01440764 5 6 7 8\n")
    assert [b[1:] for b in parse_loc_solution(p)["A"].boxes] == [(1, 2, 3, 4), (5, 6, 7, 8)]


def test_unknown_wnid_and_missing_data(tmp_path):
    make_val(tmp_path, with_csv=True)
    text = (tmp_path / "LOC_val_solution.csv").read_text().replace("n02123045", "n99999999")
    (tmp_path / "LOC_val_solution.csv").write_text(text)
    with pytest.raises(DataFormatError, match="unknown wnid 'n99999999'"):
        ImageNetVal(tmp_path)
    with pytest.raises(
        DataMissingError, match=r"(?s)LOC_val_solution.csv.*image-net.org.*`default` profile"
    ):
        ImageNetVal(tmp_path / "empty")


# -- issue #9, item 14 -----------------------------------------------------------------------------
def test_unknown_wnid_names_file_and_line(tmp_path):
    make_val(tmp_path, with_csv=True)
    text = (tmp_path / "LOC_val_solution.csv").read_text().replace("n02123045", "n99999999")
    (tmp_path / "LOC_val_solution.csv").write_text(text)
    with pytest.raises(
        DataFormatError, match="LOC_val_solution.csv, line 3: unknown wnid 'n99999999'"
    ):
        ImageNetVal(tmp_path)
    (tmp_path / "LOC_val_solution.csv").unlink()
    xml = tmp_path / "bbox" / "ILSVRC2012_val_00000002.xml"
    xml.write_text(xml.read_text().replace("n02123045", "n99999999"))
    with pytest.raises(
        DataFormatError, match="ILSVRC2012_val_00000002.xml, line 3: unknown wnid 'n99999999'"
    ):
        ImageNetVal(tmp_path, annotations=tmp_path / "bbox")


@pytest.mark.parametrize("with_csv", [False, True])
def test_box_far_outside_the_image_is_an_error(tmp_path, with_csv):
    make_val(tmp_path, with_csv)
    name = "ILSVRC2012_val_00000001"
    if with_csv:
        p = tmp_path / "LOC_val_solution.csv"
        p.write_text(p.read_text().replace("n01751748 100 50 300 250", "n01751748 100 50 5000 250"))
        msg = r"LOC_val_solution.csv, line 2: box .*xmax=5000.*500x375 image"
    else:
        p = tmp_path / "bbox" / f"{name}.xml"
        p.write_text(p.read_text().replace("<xmax>300</xmax>", "<xmax>5000</xmax>"))
        msg = rf"{name}.xml, line 3: box .*xmax=5000.*500x375 image"
    with pytest.raises(DataFormatError, match=msg):
        ImageNetVal(tmp_path, annotations=None if with_csv else tmp_path / "bbox")


def test_box_a_pixel_past_the_edge_is_clipped_and_counted(tmp_path):
    make_val(tmp_path, with_csv=True)
    p = tmp_path / "LOC_val_solution.csv"
    p.write_text(p.read_text().replace("n02123045 10 20 490 370", "n02123045 10 20 501 376"))
    ds = ImageNetVal(tmp_path)
    assert ds.report.warned == {"box up to 2 px past the image edge, clipped": 1}
    assert (
        "warned 1 (box up to 2 px past the image edge, clipped, e.g. ILSVRC2012_val_00000002)"
        in str(ds.report)
    )
    assert ds[1][2][0, 2].item() == 224  # clipped to the crop


def test_csv_bom_and_blank_lines(tmp_path):
    make_val(tmp_path, with_csv=True)
    p = tmp_path / "LOC_val_solution.csv"
    p.write_text(
        "\ufeff"
        + p.read_text().replace("\nILSVRC2012_val_00000002", "\n\nILSVRC2012_val_00000002")
        + "  \n\n",
        encoding="utf-8",
    )
    assert len(parse_loc_solution(p)) == 3
    assert len(ImageNetVal(tmp_path)) == 2
