"""NIH ChestX-ray14 loader on files in the release's exact CSV shapes."""

import numpy as np
import pytest
from PIL import Image

from lib.data import DataFormatError, DataMissingError
from lib.data.nih import FINDINGS, NIHChestXray, read_bbox_list, read_data_entry

ENTRY = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n"
    "00000001_000.png,Cardiomegaly,0,1,58,M,PA,2682,2749,0.143,0.143,\n"
    "00000002_000.png,Infiltration|Effusion,0,2,81,M,PA,2500,2048,0.171,0.171,\n"
    "00000003_000.png,No Finding,0,3,81,F,PA,2500,2048,0.168,0.168,\n"
    "00000004_000.png,Mass,0,4,60,F,AP,3056,2544,0.139,0.139,\n"
)
BBOX = (
    "Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
    "00000001_000.png,Cardiomegaly,20.5,40,60,30,,,\n"
    "00000002_000.png,Infiltrate,0,0,100,200,,,\n"
    "00000004_000.png,Mass,1,1,2,2,,,\n"
)


def make_nih(root):
    (root / "images_001" / "images").mkdir(parents=True)
    for name in ("00000001_000.png", "00000002_000.png", "00000003_000.png"):
        Image.fromarray(np.zeros((200, 200), np.uint8)).save(root / "images_001" / "images" / name)
    (root / "Data_Entry_2017.csv").write_text(ENTRY)
    (root / "BBox_List_2017.csv").write_text(BBOX)


def test_parsers_read_by_position(tmp_path):
    make_nih(tmp_path)
    e = read_data_entry(tmp_path / "Data_Entry_2017.csv")
    assert e["00000001_000.png"]["width"] == 2682 and e["00000001_000.png"]["height"] == 2749
    assert np.flatnonzero(e["00000002_000.png"]["labels"]).tolist() == [
        FINDINGS.index("Effusion"),
        FINDINGS.index("Infiltration"),
    ]
    assert e["00000003_000.png"]["labels"].sum() == 0
    b = read_bbox_list(tmp_path / "BBox_List_2017.csv")
    assert b[0] == ("00000001_000.png", 1, 20.5, 40.0, 60.0, 30.0)
    assert b[1][1] == FINDINGS.index("Infiltration")  # "Infiltrate" in the box list


def test_dataset_rescales_boxes_and_counts(tmp_path):
    make_nih(tmp_path)
    ds = NIHChestXray(tmp_path, size=100)
    assert len(ds) == 2 and ds.report.dropped == {"no image": 1}
    assert str(ds.report) == "NIH ChestX-ray14: kept 2, dropped 1 (no image, e.g. 00000004_000.png)"
    x, labels, boxes = ds[0]
    assert x.shape == (3, 100, 100) and labels[1] == 1
    np.testing.assert_allclose(boxes.numpy(), [[10.25, 20, 40.25, 35, 1]])  # (x, y, x+w, y+h) / 2
    assert len(NIHChestXray(tmp_path, size=100, boxed_only=False)) == 3


@pytest.mark.parametrize(
    "line,msg",
    [
        ("00000001_000.png,Cardiomegaly,a,40,60,30,,,", "line 3: x, y, w, h"),
        ("00000001_000.png,Cardiomegaly,1,40,0,30,,,", "line 3: box of width 0"),
        ("00000001_000.png,Cardiomegaly,1,40,3,30,,,9", "line 3: 9 fields"),
        ("00000001_000.png,Cardio,1,40,3,30,,,", "line 3: unknown finding 'Cardio'"),
    ],
)
def test_bbox_errors_with_line(tmp_path, line, msg):
    p = tmp_path / "BBox_List_2017.csv"
    p.write_text(BBOX.splitlines()[0] + "\n" + BBOX.splitlines()[1] + "\n" + line + "\n")
    with pytest.raises(DataFormatError, match="BBox_List_2017.csv, " + msg):
        read_bbox_list(p)


def test_data_entry_errors(tmp_path):
    p = tmp_path / "Data_Entry_2017.csv"
    p.write_text(ENTRY.splitlines()[0] + "\n00000001_000.png,Cardiomegaly,0,1\n")
    with pytest.raises(DataFormatError, match="line 2: 4 fields, expected 11"):
        read_data_entry(p)
    with pytest.raises(DataMissingError, match=r"(?s)Data_Entry_2017.csv.*nihcc"):
        NIHChestXray(tmp_path / "none")


# -- issue #9, item 14 -----------------------------------------------------------------------------
def test_duplicate_row_with_leading_space_names_both_lines(tmp_path):
    p = tmp_path / "Data_Entry_2017.csv"
    p.write_text(ENTRY + " 00000001_000.png,Mass,0,1,58,M,PA,2682,2749,0.143,0.143,\n")
    with pytest.raises(
        DataFormatError,
        match=r"Data_Entry_2017.csv, line 6: image '00000001_000.png' "
        r"appears twice \(first on line 2\)",
    ):
        read_data_entry(p)


@pytest.mark.parametrize(
    "line",
    [
        "00000001_000.png,Cardiomegaly,1,40,inf,30,,,",
        "00000001_000.png,Cardiomegaly,-inf,40,3,30,,,",
        "00000001_000.png,Cardiomegaly,1,nan,3,30,,,",
    ],
)
def test_bbox_not_finite_is_an_error(tmp_path, line):
    p = tmp_path / "BBox_List_2017.csv"
    p.write_text(BBOX.splitlines()[0] + "\n" + BBOX.splitlines()[1] + "\n" + line + "\n")
    with pytest.raises(DataFormatError, match=r"BBox_List_2017.csv, line 3: .*not finite"):
        read_bbox_list(p)


def test_box_outside_the_image_is_an_error_with_its_line(tmp_path):
    make_nih(tmp_path)  # 200 x 200 images
    bbox = BBOX.replace(
        "00000002_000.png,Infiltrate,0,0,100,200", "00000002_000.png,Infiltrate,150,0,100,200"
    )
    (tmp_path / "BBox_List_2017.csv").write_text(bbox)
    with pytest.raises(
        DataFormatError, match=r"BBox_List_2017.csv, line 3: box .*x=250.*200x200 image"
    ):
        NIHChestXray(tmp_path, size=100)
    bbox = BBOX.replace(
        "00000002_000.png,Infiltrate,0,0,100,200", "00000002_000.png,Infiltrate,-900,0,100,200"
    )
    (tmp_path / "BBox_List_2017.csv").write_text(bbox)
    with pytest.raises(DataFormatError, match=r"BBox_List_2017.csv, line 3: box .*x=-900"):
        NIHChestXray(tmp_path, size=100)


def test_box_a_pixel_past_the_edge_is_clipped_and_counted(tmp_path):
    make_nih(tmp_path)
    bbox = BBOX.replace(
        "00000002_000.png,Infiltrate,0,0,100,200", "00000002_000.png,Infiltrate,100,0,101.5,200"
    )
    (tmp_path / "BBox_List_2017.csv").write_text(bbox)
    ds = NIHChestXray(tmp_path, size=100)
    assert ds.report.warned == {"box up to 2 px past the image edge, clipped": 1}
    assert str(ds.report).endswith(
        "; warned 1 (box up to 2 px past the image edge, clipped, e.g. 00000002_000.png)"
    )
    np.testing.assert_allclose(ds[1][2].numpy(), [[50, 0, 100, 100, 3]])


def test_bom_and_blank_lines_are_read(tmp_path):
    make_nih(tmp_path)
    (tmp_path / "Data_Entry_2017.csv").write_text("\ufeff" + ENTRY + "\n   \n\n", encoding="utf-8")
    (tmp_path / "BBox_List_2017.csv").write_text(
        "\ufeff" + BBOX.replace("\n0000000", "\n\n0000000", 1) + " \n\n", encoding="utf-8"
    )
    assert len(read_data_entry(tmp_path / "Data_Entry_2017.csv")) == 4
    assert len(read_bbox_list(tmp_path / "BBox_List_2017.csv")) == 3
    assert len(NIHChestXray(tmp_path, size=100)) == 2
