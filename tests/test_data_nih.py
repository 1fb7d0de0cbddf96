"""NIH ChestX-ray14 loader on files in the release's exact CSV shapes."""
import numpy as np
import pytest
from PIL import Image

from lib.data import DataFormatError, DataMissingError
from lib.data.nih import FINDINGS, NIHChestXray, read_bbox_list, read_data_entry

ENTRY = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
         "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n"
         "00000001_000.png,Cardiomegaly,0,1,58,M,PA,2682,2749,0.143,0.143,\n"
         "00000002_000.png,Infiltration|Effusion,0,2,81,M,PA,2500,2048,0.171,0.171,\n"
         "00000003_000.png,No Finding,0,3,81,F,PA,2500,2048,0.168,0.168,\n"
         "00000004_000.png,Mass,0,4,60,F,AP,3056,2544,0.139,0.139,\n")
BBOX = ("Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
        "00000001_000.png,Cardiomegaly,20.5,40,60,30,,,\n"
        "00000002_000.png,Infiltrate,0,0,100,200,,,\n"
        "00000004_000.png,Mass,1,1,2,2,,,\n")


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
    assert np.flatnonzero(e["00000002_000.png"]["labels"]).tolist() == [FINDINGS.index("Effusion"), FINDINGS.index("Infiltration")]
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


@pytest.mark.parametrize("line,msg", [
    ("00000001_000.png,Cardiomegaly,a,40,60,30,,,", "line 3: x, y, w, h"),
    ("00000001_000.png,Cardiomegaly,1,40,0,30,,,", "line 3: box of width 0"),
    ("00000001_000.png,Cardiomegaly,1,40,3,30,,,9", "line 3: 9 fields"),
    ("00000001_000.png,Cardio,1,40,3,30,,,", "line 3: unknown finding 'Cardio'"),
])
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
