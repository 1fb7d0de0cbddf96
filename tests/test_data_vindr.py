"""VinDr-CXR loader: majority vote, box fusion and DICOM/PNG images, on files written here."""

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from lib.data import DataFormatError, DataMissingError
from lib.data.vindr import VinDrCXR, fuse_annotations, read_dicom, read_vindr_csv

HEADER = "image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max"
ROWS = [
    "aaa,Cardiomegaly,3,R1,10.0,20.0,50.0,60.0",
    "aaa,Cardiomegaly,3,R2,12.0,22.0,54.0,58.0",
    "aaa,Aortic enlargement,0,R1,30,10,40,20",  # one reader of three: not a label
    "aaa,No finding,14,R3,,,,",
    "bbb,No finding,14,R1,,,,",
    "bbb,No finding,14,R2,,,,",
    "bbb,No finding,14,R3,,,,",
    "ccc,No finding,14,R1,,,,",  # no image file for ccc
]


def write_dicom(path, arr, photometric="MONOCHROME2"):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.set_pixel_data(arr.astype(np.uint16), photometric, 12)
    ds.save_as(path, enforce_file_format=True)


def make_vindr(root, rows=ROWS):
    (root / "train").mkdir(parents=True)
    (root / "train.csv").write_text("\n".join([HEADER] + rows) + "\n")
    img = np.zeros((80, 100), np.uint16)
    img[20:60, 10:50] = 4000
    write_dicom(root / "train" / "aaa.dicom", img)
    Image.fromarray(np.full((80, 100), 128, np.uint8)).save(root / "train" / "bbb.png")


def test_majority_vote_and_mean_fusion(tmp_path):
    make_vindr(tmp_path)
    ann = fuse_annotations(read_vindr_csv(tmp_path / "train.csv"))
    a = ann["aaa"]
    assert a.n_readers == 3 and a.votes[3] == 2 and a.votes[0] == 1
    assert np.flatnonzero(a.labels).tolist() == [3]
    np.testing.assert_allclose(a.boxes, [[11, 21, 52, 59, 3]])  # mean of R1 and R2
    assert not ann["bbb"].labels.any() and ann["bbb"].boxes.shape == (0, 5)
    u = fuse_annotations(read_vindr_csv(tmp_path / "train.csv"), fusion="union")["aaa"]
    np.testing.assert_allclose(u.boxes, [[10, 20, 54, 60, 3]])
    n = fuse_annotations(read_vindr_csv(tmp_path / "train.csv"), fusion="none")["aaa"]
    assert n.boxes.shape == (2, 5)


def test_non_overlapping_boxes_are_separate_clusters(tmp_path):
    rows = [
        "d,Nodule/Mass,8,R1,0,0,10,10",
        "d,Nodule/Mass,8,R2,1,1,11,11",
        "d,Nodule/Mass,8,R2,50,50,60,60",
        "d,No finding,14,R3,,,,",
    ]
    (tmp_path / "t.csv").write_text("\n".join([HEADER] + rows))
    a = fuse_annotations(read_vindr_csv(tmp_path / "t.csv"))["d"]
    # the lone box of R2 at (50,50) has one vote of three and is dropped; the pair is averaged
    np.testing.assert_allclose(a.boxes, [[0.5, 0.5, 10.5, 10.5, 8]])


def test_dataset_images_boxes_and_report(tmp_path):
    make_vindr(tmp_path)
    ds = VinDrCXR(tmp_path, size=50)
    assert len(ds) == 2 and ds.report.dropped == {"no image": 1}
    assert "kept 2, dropped 1 (no image, e.g. ccc)" in str(ds.report)
    x, labels, boxes = ds[0]
    assert x.shape == (3, 50, 50) and labels[3] == 1 and labels.sum() == 1
    np.testing.assert_allclose(
        boxes.numpy(), [[5.5, 13.125, 26, 36.875, 3]], rtol=1e-6
    )  # x/2, y*50/80
    # the bright DICOM region lands on the R1 box rescaled (10,20,50,60) -> (5,12.5,25,37.5)
    ys, xs = np.nonzero(x[0].numpy() > 0.5)
    assert abs(xs.min() - 5) <= 1 and abs(xs.max() + 1 - 25) <= 1 and abs(ys.min() - 12.5) <= 1
    x1, l1, b1 = ds[1]
    assert b1.shape == (0, 5) and l1.sum() == 0


def test_monochrome1_is_inverted(tmp_path):
    arr = np.array([[0, 100], [200, 400]])
    write_dicom(tmp_path / "m1.dcm", arr, "MONOCHROME1")
    np.testing.assert_allclose(read_dicom(tmp_path / "m1.dcm"), [[1, 0.75], [0.5, 0]])


@pytest.mark.parametrize(
    "row,msg",
    [
        ("aaa,Cardiomegaly,3,R1,10,20,,", "line 3: box .* missing or not numeric"),
        ("aaa,Cardiomegaly,3,R1,50,20,10,60", "line 3: box .* is empty"),
        (
            "aaa,Cardiomegaly,2,R1,10,20,50,60",
            "line 3: class_name 'Cardiomegaly' does not match class_id 2",
        ),
        ("aaa,No finding,14,R1,1,2,3,4", "line 3: a 'No finding' row with a box"),
        ("aaa,Cardiomegaly,3,R1,10,20,50", "line 3: 7 fields"),
    ],
)
def test_malformed_rows(tmp_path, row, msg):
    (tmp_path / "train.csv").write_text("\n".join([HEADER, ROWS[0], row]) + "\n")
    with pytest.raises(DataFormatError, match="train.csv, " + msg):
        read_vindr_csv(tmp_path / "train.csv")


def test_resized_png_needs_original_size(tmp_path):
    rows = ["e,Cardiomegaly,3,R1,100,100,300,300", "e,Cardiomegaly,3,R2,100,100,300,300"]
    (tmp_path / "train").mkdir()
    (tmp_path / "train.csv").write_text("\n".join([HEADER] + rows))
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "train" / "e.png")
    with pytest.raises(DataFormatError, match="meta="):
        VinDrCXR(tmp_path, size=32)[0]
    (tmp_path / "train_meta.csv").write_text("image_id,dim0,dim1\ne,400,400\n")
    _, _, b = VinDrCXR(tmp_path, size=32)[0]
    np.testing.assert_allclose(b.numpy(), [[8, 8, 24, 24, 3]])


def test_missing(tmp_path):
    with pytest.raises(DataMissingError, match=r"(?s)train.csv.*physionet.*`default` profile"):
        VinDrCXR(tmp_path)


# -- issue #9, item 14 -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "row,msg",
    [
        (
            "aaa,Cardiomegaly,3,R1,-500,20,50,60",
            r"line 3: box .*x_min=-500.*left of or above the image",
        ),
        ("aaa,Cardiomegaly,3,R1,10,20,inf,60", r"line 3: box .* not finite"),
        ("aaa,Cardiomegaly,3,R1,10,-inf,50,60", r"line 3: box .* not finite"),
    ],
)
def test_box_outside_or_not_finite_blames_the_row(tmp_path, row, msg):
    (tmp_path / "train.csv").write_text("\n".join([HEADER, ROWS[0], row]) + "\n")
    with pytest.raises(DataFormatError, match="train.csv, " + msg):
        read_vindr_csv(tmp_path / "train.csv")


def test_box_past_the_right_edge_blames_the_csv_row_not_the_image(tmp_path):
    rows = list(ROWS)
    rows[1] = "aaa,Cardiomegaly,3,R2,12.0,22.0,5000,58.0"  # line 3; the DICOM is 100 x 80
    make_vindr(tmp_path, rows)
    ds = VinDrCXR(tmp_path, size=50)
    with pytest.raises(DataFormatError, match=r"train.csv, line 3: box .*x_max=5000.*100x80 image"):
        ds[0]


def test_box_touching_the_border_is_clipped_and_counted(tmp_path):
    rows = list(ROWS)
    rows[0] = "aaa,Cardiomegaly,3,R1,-1,20,101,60"  # 1 px past both sides of the 100 px image
    rows[1] = "aaa,Cardiomegaly,3,R2,-1,20,101,60"
    make_vindr(tmp_path, rows)
    ds = VinDrCXR(tmp_path, size=50)
    _, _, boxes = ds[0]
    np.testing.assert_allclose(boxes.numpy(), [[0, 12.5, 50, 37.5, 3]])
    ds[0]  # each reader's box counted once, however often the image is loaded
    assert ds.report.warned == {"box up to 2 px past the image edge, clipped": 2}
    assert "warned 2 (box up to 2 px past the image edge, clipped, e.g. aaa)" in str(ds.report)


def test_bom_and_blank_lines(tmp_path):
    make_vindr(tmp_path)
    text = (tmp_path / "train.csv").read_text()
    (tmp_path / "train.csv").write_text(
        "\ufeff" + text.replace("\nbbb", "\n\nbbb", 1) + "\n \n\n", encoding="utf-8"
    )
    assert len(read_vindr_csv(tmp_path / "train.csv")) == len(ROWS)
    (tmp_path / "train_meta.csv").write_text(
        "\ufeffimage_id,dim0,dim1\naaa,80,100\n \n\n", encoding="utf-8"
    )
    assert VinDrCXR(tmp_path, size=50).original_size == {"aaa": (100, 80)}
