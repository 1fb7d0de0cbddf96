"""lib.report: the tables, glued numbers, claim records and verdict boxes the chapters show."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from lib import paths, report
from lib import verdict as V


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path)
    return tmp_path


# -- numbers -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, digits, text",
    [
        (1047.0, None, "1047"),  # an integral float is an integer
        (np.float32(427.0), None, "427"),
        (0.142948, None, "0.143"),  # three significant figures
        (0.142948, 2, "0.14"),
        (22.71, None, "22.7"),
        (1047.3, None, "1047"),
        (0.00041, None, "0.0004"),  # at most four decimals
        (-0.0001, 2, "0.00"),  # no "-0.00"
        (float("nan"), None, "—"),
        (None, None, "—"),
        (float("inf"), None, "∞"),
        (True, None, "yes"),
        ("0.27 ± 0.04", None, "0.27 ± 0.04"),
    ],
)
def test_format_number(value, digits, text):
    assert report.format_number(value, digits) == text


def test_auto_digits_by_hand():
    assert report.auto_digits([0.142948, 0.2]) == 3  # log10(0.2) = -0.7 -> floor -1 -> 2 + 1
    assert report.auto_digits([22.7, 3.1]) == 1
    assert report.auto_digits([0.0, 0.0]) == 0
    assert report.auto_digits([float("nan"), 5.5]) == 2


# -- tables ------------------------------------------------------------------------------------------
def _df():
    return pd.DataFrame(
        {
            "model": ["resnet50", "densenet121"],
            "rf_min": [427.0, 1047.0],
            "iou": [0.142948, 0.271234],
            "n": [3, 12],
        }
    )


def test_table_integers_digits_names_and_no_index():
    st = report.table(_df(), columns={"rf_min": "smallest RF (px)", "iou": "IoU"})
    shown = st.data
    assert list(shown.columns) == ["model", "smallest RF (px)", "IoU", "n"]
    assert list(shown["smallest RF (px)"]) == ["427", "1047"]
    assert list(shown["IoU"]) == ["0.143", "0.271"]
    html = st.to_html()
    assert "1047.0" not in html and "0.142948" not in html and "rf_min" not in html
    assert "row_heading" not in html  # no pandas row numbers


def test_table_per_column_digits_by_either_name():
    st = report.table(_df(), columns={"iou": "IoU"}, digits={"IoU": 2})
    assert list(st.data["IoU"]) == ["0.14", "0.27"]
    st = report.table(_df(), digits={"iou": 1})
    assert list(st.data["iou"]) == ["0.1", "0.3"]
    st = report.table(_df(), digits=2)  # one number for all: integral columns stay integers
    assert list(st.data["iou"]) == ["0.14", "0.27"] and list(st.data["rf_min"]) == ["427", "1047"]
    assert list(st.data["n"]) == ["3", "12"]
    st = report.table(_df(), digits={"n": 1})  # named explicitly: as asked
    assert list(st.data["n"]) == ["3.0", "12.0"]
    with pytest.raises(ValueError, match="does not have"):
        report.table(_df(), digits={"nope": 1})
    with pytest.raises(ValueError, match="renames"):
        report.table(_df(), columns={"nope": "x"})


def test_table_meaningful_index_becomes_a_column():
    df = pd.DataFrame(
        {"top-1 (%)": [66.5, 71.5]}, index=pd.Index(["masked", "unmasked"], name="model")
    )
    st = report.table(df)
    assert list(st.data.columns) == ["model", "top-1 (%)"]
    assert list(st.data["model"]) == ["masked", "unmasked"]


def test_table_nan_is_shown_as_a_dash_not_nan():
    df = pd.DataFrame({"a": [1.5, float("nan")]})
    assert list(report.table(df).data["a"]) == ["1.50", "—"]  # three significant figures


def test_column_width_estimate_by_hand():
    # longest word of the header (3) vs longest cell (5 chars): 5 * 7.5 px + 16 px padding
    assert report._column_px("abc", ["12345", "1"]) == 53.5
    # a 60-character sentence wraps: counted as 24 characters; a long path breaks after / _ - .
    assert report._column_px("x", ["word " * 12]) == 24 * 7.5 + 16
    assert report._column_px("x", ["in /usr/share/datasets/fashion-mnist"]) == 24 * 7.5 + 16
    assert report._column_px("x", ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]) == 30 * 7.5 + 16
    # a header by its longest word
    assert report._column_px("the paper's number", ["1"]) == 7 * 7.5 + 16


def _wide(n_rows):
    cols = {"method": [f"method {i}" for i in range(n_rows)]}
    for j in range(12):
        cols[f"deviation_from_paper_{j}"] = np.linspace(0.1, 0.9, n_rows) + j
    return pd.DataFrame(cols)


def test_wide_table_is_split_into_parts_that_fit_and_repeat_the_key():
    df = _wide(6)
    out = report.table(df, max_width=750)
    assert isinstance(out, report.SplitTable) and len(out.parts) > 1
    seen = []
    for part in out.parts:
        shown = part.data
        assert shown.columns[0] == "method"
        assert sum(report._column_px(c, shown[c]) for c in shown.columns) <= 750
        seen += list(shown.columns[1:])
    assert seen == list(df.columns[1:])  # every column once, in order
    assert "deviation_from_paper_11" in out._repr_html_()


def test_wide_table_with_few_rows_is_transposed():
    df = _wide(2)
    st = report.table(df)
    assert not isinstance(st, report.SplitTable)
    assert list(st.data.columns) == ["", "method 0", "method 1"]
    assert list(st.data[""])[:2] == ["deviation_from_paper_0", "deviation_from_paper_1"]
    assert list(st.data["method 1"])[:1] == ["0.900"]


def test_wide_table_whose_key_repeats_is_split_not_transposed():
    df = _wide(2)
    df["method"] = ["same", "same"]  # its transpose would have two columns named "same"
    out = report.table(df, max_width=750)
    assert isinstance(out, report.SplitTable)
    assert all(list(p.data["method"]) == ["same", "same"] for p in out.parts)
    with pytest.raises(ValueError, match="cannot transpose.*wide='split'"):
        report.table(df, wide="transpose")


def test_tiny_numbers_are_written_in_scientific_notation():
    # max |diff| between two implementations: 4 decimals would show 0.0000 for all of them
    df = pd.DataFrame(
        {
            "method": ["a", "b", "c"],
            "max |diff|": [6.0e-07, 0.0, 2.44e-06],
            "ratio": [1.46, 9.1, 0.98],
        }
    )
    st = report.table(df)
    assert list(st.data["max |diff|"]) == ["6.0e-07", "0", "2.4e-06"]
    assert list(st.data["ratio"]) == ["1.46", "9.10", "0.98"]
    # a column with one value of 0.001 or more keeps fixed decimals
    st = report.table(pd.DataFrame({"x": [0.0012, 0.0004]}))
    assert list(st.data["x"]) == ["0.0012", "0.0004"]


def test_transposed_text_wraps_and_numbers_do_not():
    # Table 1 of the localisation chapter: a row of long model names above rows of numbers; its
    # transpose must let the names wrap (a 1433 px table in a 809 px column otherwise)
    df = pd.DataFrame(
        {
            "network": ["AlexNet", "VGG16"],
            "ours": [
                "AlexNet-style (batch norm), 64 px, trained here on scenes",
                "VGG16-BN-style, 64 px, trained here on scenes",
            ],
            "loc top-1 ours": ["96.9 ± 1.6", "98.1 ± 0.1"],
            "loc top-1 paper": ["68.04 (68.3)", "55.82 (56.51)"],
        }
    ).set_index("network")
    st = report.table(df, wide="transpose", max_width=300)
    st._compute()
    nowrap = {c for (r, c), props in st.ctx.items() if ("white-space", "nowrap") in props}
    assert list(st.data.columns) == ["", "AlexNet", "VGG16"] and not nowrap
    num = report.table(df.drop(columns="ours"), wide="transpose", max_width=200)
    num._compute()
    assert {c for (r, c), p in num.ctx.items() if ("white-space", "nowrap") in p} == {1, 2}
    assert report._numeric_text("−0.31 ± 0.02 (12 %)") and not report._numeric_text("64 px")


def test_table_rejects_a_non_dataframe():
    with pytest.raises(TypeError, match="DataFrame"):
        report.table([[1, 2]])


# -- glue --------------------------------------------------------------------------------------------
def test_glue_stores_the_formatted_text_hidden(monkeypatch):
    calls = []
    import myst_nb

    monkeypatch.setattr(
        myst_nb, "glue", lambda name, v, display=True: calls.append((name, v, display))
    )
    assert report.glue("best_iou", 0.142948) == "0.143"
    assert report.glue("n_images", 1047.0) == "1047"
    assert report.glue("share", 0.2712, fmt=".0%") == "27%"
    assert calls == [
        ("best_iou", "0.143", False),
        ("n_images", "1047", False),
        ("share", "27%", False),
    ]


def test_glue_as_a_cells_last_line_displays_nothing(monkeypatch):
    import myst_nb
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setattr(myst_nb, "glue", lambda *a, **k: None)
    text = report.glue("best_iou", 0.142948)
    assert text == "0.143" and f"IoU {text}" == "IoU 0.143"
    shell = InteractiveShell.instance()
    assert shell.display_formatter.format(text) == ({}, {})  # no execute_result
    assert shell.display_formatter.format("0.143")[0]  # a plain str would show


def test_glue_refuses_names_the_role_cannot_read_and_nan(monkeypatch):
    import myst_nb

    monkeypatch.setattr(myst_nb, "glue", lambda *a, **k: None)
    with pytest.raises(ValueError, match="':'"):
        report.glue("mu:pgc", 1.0)
    with pytest.raises(ValueError, match="NaN"):
        report.glue("mu", float("nan"))


def test_glue_fallback_writes_what_myst_nb_writes(monkeypatch):
    """Without myst-nb (Colab), the hidden output has the same mime bundle and metadata."""
    import IPython.display
    import myst_nb.ext.glue as mg

    got = {}
    monkeypatch.setattr(
        mg, "ipy_display", lambda obj, raw, metadata: got.setdefault("myst", (obj, metadata))
    )
    monkeypatch.setattr(
        IPython.display,
        "display",
        lambda obj, raw, metadata: got.setdefault("ours", (obj, metadata)),
    )
    mg.glue("x", "0.143", display=False)
    report._glue_fallback("x", "0.143", display=False)
    assert got["ours"] == got["myst"]


# -- claims ------------------------------------------------------------------------------------------
def _v(outcome=V.HOLDS, est=21.93, lo=20.0, hi=23.0):
    return V.Verdict(
        outcome, est, lo, hi, 0.0, "mean mu > 0", "bootstrap over 40 images, BCa", 40, 1.5
    )


def _add_two(c):
    c.add(
        "table1-gradcam",
        "taimeskhanov",
        "Table 1",
        "Grad-CAM puts saliency in the dead zone.",
        22.7,
        kind="paper",
        tier="stand-in",
        verdict=_v(),
        section="2. STACK-MIX and Table 1",
        digits=1,
    )
    c.add(
        "table1-hirescam",
        "taimeskhanov",
        "Table 1",
        "HiResCAM puts none there.",
        0.0,
        kind="check",
        verdict=V.check(0.0, 1e-6, rule="HiResCAM's mass in the dead zone = 0"),
    )


def test_claims_save_and_summary(cache):
    c = report.Claims("05_walls_experiments", "smoke")
    _add_two(c)
    path = c.save()
    assert path == cache / "claims" / "smoke" / "05_walls_experiments.json"
    rec = json.loads(path.read_text())
    assert [r["claim_id"] for r in rec["claims"]] == ["table1-gradcam", "table1-hirescam"]
    assert rec["claims"][0]["verdict"]["low"] == 20.0 and rec["claims"][0]["kind"] == "paper"
    other = report.Claims("03_receptive_fields", "smoke")
    other.add(
        "table1-resnet",
        "santos",
        "Table 1",
        "ResNet50's RF is 427 px.",
        427,
        kind="paper",
        tier="paper-data",
        verdict=V.exact(427, 427, rule="RF = 427 px"),
        section="Table 1",
    )
    other.save()
    s = report.summary("smoke")
    assert list(s["chapter"]) == [
        "03_receptive_fields",
        "05_walls_experiments",
        "05_walls_experiments",
    ]
    assert list(s["ours"]) == ["427", "21.9 [20.0, 23.0]", "0"]
    assert list(s["paper_value"]) == ["427", "22.7", "0"]
    assert list(s["kind"]) == ["paper", "paper", "check"]
    assert list(s["outcome"]) == ["holds", "holds", "holds"]
    assert s["link"].iloc[1] == "05_walls_experiments.html#stack-mix-and-table-1"
    assert s["link"].iloc[2] == "05_walls_experiments.html"
    assert s["paper_name"].iloc[0] == "Santos et al., large receptive fields"
    assert report.summary("default").empty
    assert list(report.summary("default").columns) == report.SUMMARY_COLUMNS


def test_a_chapter_run_again_replaces_its_rows(cache):
    c = report.Claims("05_walls_experiments", "smoke")
    _add_two(c)
    c.save()
    again = report.Claims("05_walls_experiments", "smoke")
    again.add(
        "figure7",
        "taimeskhanov",
        "Figure 7",
        "Maps leak below the wall.",
        None,
        kind="paper",
        tier="stand-in",
        verdict=_v(),
    )
    again.save()
    assert list(report.summary("smoke")["claim_id"]) == ["figure7"]


@pytest.mark.parametrize("verdict", [True, "holds", None, 0.0])
def test_a_verdict_must_come_from_a_rule(verdict):
    c = report.Claims("05_walls_experiments", "smoke")
    with pytest.raises(TypeError, match="lib.verdict.Verdict"):
        c.add(
            "x", "taimeskhanov", "Table 1", "s", 1.0, kind="paper", tier="stand-in", verdict=verdict
        )


def test_holds_is_refused_with_the_fix():
    c = report.Claims("05_walls_experiments", "smoke")
    with pytest.raises(TypeError, match="takes kind= and verdict="):
        c.add(
            "x",
            "taimeskhanov",
            "Table 1",
            "s",
            1.0,
            1.0,
            holds=True,
            kind="paper",
            tier="stand-in",
            verdict=_v(),
        )


def test_kinds_and_tiers_are_checked():
    c = report.Claims("05_walls_experiments", "smoke")
    with pytest.raises(ValueError, match="kind must be one of"):
        c.add("x", "taimeskhanov", "Table 1", "s", kind="claim", verdict=_v())
    with pytest.raises(ValueError, match="a paper claim needs tier="):
        c.add("x", "taimeskhanov", "Table 1", "s", kind="paper", verdict=_v())
    with pytest.raises(ValueError, match="a check has no evidence tier"):
        c.add("x", "taimeskhanov", "Table 1", "s", kind="check", tier="stand-in", verdict=_v())
    with pytest.raises(ValueError, match="only a paper claim can be 'not run here'"):
        c.add(
            "x",
            "taimeskhanov",
            "Table 1",
            "s",
            kind="finding",
            verdict=V.not_run("r", "profile full"),
        )


def test_bad_claims_are_refused_with_the_reason():
    c = report.Claims("05_walls_experiments", "smoke")
    kw = dict(kind="paper", tier="stand-in", verdict=_v())
    with pytest.raises(ValueError, match="NaN"):
        c.add("x", "taimeskhanov", "Table 1", "s", 1.0, float("nan"), **kw)
    with pytest.raises(ValueError, match="unknown paper 'Taimeskhanov et al.'"):
        c.add("x", "Taimeskhanov et al.", "Table 1", "s", 1.0, **kw)
    with pytest.raises(TypeError, match="ndarray"):
        c.add("x", "taimeskhanov", "Table 1", "s", 1.0, np.array([1.0, 2.0]), **kw)
    c.add("x", "taimeskhanov", "Table 1", "s", 1.0, **kw)
    with pytest.raises(ValueError, match="added twice"):
        c.add("x", "taimeskhanov", "Table 1", "s", 1.0, **kw)
    with pytest.raises(ValueError, match="profile"):
        report.Claims("05_walls_experiments", "fast")
    with pytest.raises(ValueError, match="no claims"):
        report.Claims("05_walls_experiments", "smoke").save()


def test_corrupt_and_malformed_records_name_file_and_row(cache):
    d = cache / "claims" / "smoke"
    d.mkdir(parents=True)
    (d / "01_methods_tour.json").write_text("{not json")
    with pytest.raises(ValueError, match="01_methods_tour.json: not a valid claims record"):
        report.summary("smoke")
    c = report.Claims("01_methods_tour", "smoke")
    c.add("a", "selvaraju", "Eq. 2", "s", 1.0, kind="paper", tier="pretrained", verdict=_v())
    c.add("b", "selvaraju", "Eq. 2", "s", 1.0, kind="paper", tier="pretrained", verdict=_v())
    c.save()
    rec = json.loads(c.path.read_text())
    rec["claims"][1]["verdict"]["outcome"] = "yes"
    c.path.write_text(json.dumps(rec))
    with pytest.raises(ValueError, match=r"01_methods_tour.json, claim row 2: .*outcome must be"):
        report.summary("smoke")
    del rec["claims"][1]["kind"]
    c.path.write_text(json.dumps(rec))
    with pytest.raises(ValueError, match=r"claim row 2: missing \['kind'\]"):
        report.summary("smoke")


def test_save_is_atomic(cache, monkeypatch):
    c = report.Claims("05_walls_experiments", "smoke")
    _add_two(c)
    c.save()
    before = c.path.read_text()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(report.json, "dump", boom)
    again = report.Claims("05_walls_experiments", "smoke")
    again.add("other", "taimeskhanov", "Figure 7", "s", 1.0, kind="finding", verdict=_v())
    with pytest.raises(OSError):
        again.save()
    assert c.path.read_text() == before
    assert [p.name for p in c.path.parent.iterdir()] == [c.path.name]  # no temporary left


def test_verdict_box_html_and_markdown():
    c = report.Claims("05_walls_experiments", "default")
    _add_two(c)
    c.add(
        "x",
        "taimeskhanov",
        "Figure 7",
        "a <b> tag & co",
        0.5,
        kind="paper",
        tier="stand-in",
        verdict=_v(V.FAILS, 0.1, 0.05, 0.15),
    )
    c.add(
        "y",
        "taimeskhanov",
        "Figure 8",
        "undecided one",
        None,
        kind="paper",
        tier="pretrained",
        verdict=_v(V.UNDECIDED, 0.1, -0.05, 0.25),
    )
    c.add(
        "z",
        "taimeskhanov",
        "Code",
        "the authors sort, not rank",
        None,
        kind="finding",
        verdict=_v(),
    )
    box = c.verdict_box()
    # the identity is not counted among the paper's claims, nor is the finding
    assert box.title() == (
        "Verdict: 1 of 3 paper claims hold, 1 does not, 1 is undecided; "
        "1 of 1 check passes; 1 finding of this book"
    )
    html = box._repr_html_()
    for text in (
        "the claim",
        "we measured (95 % interval)",
        "outcome",
        "21.9 [20.0, 23.0]",
        "22.7",
        "Taimeskhanov, Sicre, Garreau",
        "a &lt;b&gt; tag &amp; co",
        ">does not hold<",
        ">holds<",
        ">undecided<",
        ">passes<",
        "Checks of the code (not evidence)",
        "Findings of this book",
        "stand-ins trained here",
        "rule: mean mu &gt; 0",
        "detects a difference of 1.5",
    ):
        assert text in html, text
    md = box._repr_markdown_()
    assert (
        "| *Table 1* (Taimeskhanov, Sicre, Garreau, paper claim, stand-ins trained here): Grad-CAM"
        in md
        and "| **21.9 [20.0, 23.0]** | holds |" in md
    )


def test_tally_never_counts_checks_or_findings():
    c = report.Claims("02_gradcam_fundamentals", "smoke")
    c.add(
        "a",
        "selvaraju",
        "Eq. 3",
        "CAM = Z Grad-CAM",
        kind="check",
        verdict=V.check(2e-7, 1e-5, rule="r"),
    )
    c.add(
        "b",
        "selvaraju",
        "Eq. 12",
        "counterfactual = -gradients",
        kind="check",
        verdict=V.check(5.0, 1e-5, rule="r"),
    )
    c.add("c", "selvaraju", "Code", "found", kind="finding", verdict=_v())
    assert report.tally(c.rows) == {
        "holds": 0,
        "does not hold": 0,
        "undecided": 0,
        "not run here": 0,
    }
    assert report.tally_text(c.rows) == "no paper claims"
    c.add(
        "d",
        "selvaraju",
        "Sec. 4",
        "localises",
        kind="paper",
        tier="pretrained",
        verdict=_v(V.UNDECIDED, 0.1, -0.1, 0.3),
    )
    assert report.tally(c.rows)["undecided"] == 1 and sum(report.tally(c.rows).values()) == 1
    assert c.figure() is not None  # the paper claim and the finding have intervals to draw
    only_checks = report.Claims("02_gradcam_fundamentals", "smoke")
    only_checks.add(
        "a",
        "selvaraju",
        "Eq. 3",
        "CAM = Z Grad-CAM",
        kind="check",
        verdict=V.check(2e-7, 1e-5, rule="r"),
    )
    assert only_checks.figure() is None


def test_section_anchor_matches_sphinx_ids():
    assert report.section_anchor("2. STACK-MIX and Table 1") == "stack-mix-and-table-1"
    assert (
        report.section_anchor("Accuracy and training curves (Figure 5)")
        == "accuracy-and-training-curves-figure-5"
    )
    with pytest.raises(ValueError):
        report.section_anchor("1.")


def test_every_paper_key_is_on_the_references_page():
    text = (paths.REPO_ROOT / "book" / "references.md").read_text()
    for p in report.PAPERS.values():
        assert f"({p.ref})=" in text, p.key
        assert p.name.startswith(p.authors)


def test_long_words_get_break_opportunities():
    st = report.table(pd.DataFrame({"where": ["DATA_ROOT/stack/{stackmix,stackgen}/", "present"]}))
    assert list(st.data["where"]) == [
        "DATA_<wbr>ROOT/<wbr>stack/<wbr>{stackmix,<wbr>stackgen}/",
        "present",
    ]


def test_table_escapes_text_but_not_html_columns():
    df = pd.DataFrame({"claim": ["a < b & c"], "link": ['<a href="x.html#t">Table 1</a>']})
    st = report.table(df, html_columns=["link"])
    assert list(st.data["claim"]) == ["a &lt; b &amp; c"]
    assert '<a href="x.html#t">Table 1</a>' in st.to_html()
    # the width of a link is the width of its text, not of its markup
    assert report._column_px("link", list(st.data["link"])) == 7 * 7.5 + 16


def test_summary_page_names_chapters_with_and_without_records(cache, monkeypatch):
    import myst_nb

    glued = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, v, display=True: glued.__setitem__(name, v))
    chapters = {
        "01_methods_tour": "A tour of the methods",
        "05_walls_experiments": "Walls: experiments",
    }
    empty = report.SummaryPage("smoke", chapters)
    empty.glue()
    assert glued["summary_with"] == "none yet"
    assert glued["summary_without"] == "A tour of the methods; Walls: experiments"
    assert "no table" in empty.table().data  # a sentence, never an empty table
    c = report.Claims("05_walls_experiments", "smoke")
    _add_two(c)
    c.add(
        "full-only",
        "taimeskhanov",
        "Table 1",
        "on ImageNet",
        22.7,
        kind="paper",
        tier="paper-data",
        verdict=V.not_run("within 1 point", "needs ILSVRC (profile full)"),
    )
    c.add(
        "undecided",
        "taimeskhanov",
        "Table 2",
        "u",
        None,
        kind="paper",
        tier="stand-in",
        verdict=_v(V.UNDECIDED, 0.1, -0.1, 0.3),
    )
    c.save()
    page = report.SummaryPage("smoke", chapters)
    page.glue()
    # the check is never counted: 3 paper claims, 1 holds, 1 undecided, 1 not run here
    assert (
        glued["summary_n_paper"],
        glued["summary_n_hold"],
        glued["summary_n_undecided"],
        glued["summary_n_notrun"],
        glued["summary_n_checks"],
    ) == ("3", "1", "1", "1", "1")
    assert glued["summary_tiers"] == (
        "1 on the paper's own data and models; 2 on stand-ins trained here"
    )
    assert glued["summary_with"] == "Walls: experiments"
    assert glued["summary_without"] == "A tour of the methods"
    t = page.tallies()
    assert t.to_dict("records") == [
        {
            "paper": "Taimeskhanov, Sicre, Garreau, CAM-based methods can see through walls",
            "evidence": "the paper's own data and models",
            "holds": 0,
            "does not hold": 0,
            "undecided": 0,
            "not run here": 1,
        },
        {
            "paper": "Taimeskhanov, Sicre, Garreau, CAM-based methods can see through walls",
            "evidence": "stand-ins trained here",
            "holds": 1,
            "does not hold": 0,
            "undecided": 1,
            "not run here": 0,
        },
    ]
    html = page.table().to_html()
    # the claim links to its section; the paper and the chapter head their groups with subtotals
    assert (
        '<a href="05_walls_experiments.html#stack-mix-and-table-1">Table 1</a>: Grad-CAM '
        "puts saliency in the dead zone."
    ) in html
    assert (
        "Taimeskhanov, Sicre, Garreau, CAM-based methods can see through walls "
        '<span class="claim-subtotal">(3 claims: 1 holds, 1 undecided, 1 not run here)'
    ) in html
    assert (
        '<a href="05_walls_experiments.html">Walls: experiments</a> <span class="claim-subtotal">'
        "(3 claims: 1 holds, 1 undecided, 1 not run here)"
    ) in html
    assert "HiResCAM puts none there" not in html  # the check is in its own table
    checks = page.table("check").to_html()
    assert "HiResCAM puts none there" in checks and "(1 check: 1 passes)" in checks
    assert ">passes<" in checks and "measured error" in checks
    assert "21.9 [20.0, 23.0]" in html and "[stand-ins trained here]" in html
    # every outcome is worded and marked, not told by its colour alone
    for word, mark in (("holds", "✓"), ("undecided", "?"), ("not run here", "–")):
        assert f"{mark}&#8239;</span>{word}</strong>" in html, word
    # the profile is said once, in the prose, not in every row
    assert "smoke" not in html
    assert "No finding of this book is recorded" in page.table("finding").data
    tally = page.tally_table().to_html()
    assert "all papers" in tally and "✗ does not hold" in tally
    # on a phone the table reflows (book.css, table.tally-table): every count carries its
    # outcome as a label, so none depends on a column header hidden past the screen's edge
    total = re.search(r'<tr class="claim-row tally-total">(.*?)</tr>', tally).group(1)
    counts = re.findall(r'<td class="tally-count" data-label="([^"]+)">(\d+)</td>', total)
    assert counts == [
        ("✓ holds", "1"),
        ("✗ does not hold", "0"),
        ("? undecided", "1"),
        ("– not run here", "1"),
    ]
    assert 'class="claim-table tally-table"' in tally and "<caption>" in tally


def test_summary_groups_papers_in_reference_order_and_chapters_in_book_order(cache):
    chapters = {"02_a": "Chapter A", "07_b": "Chapter B"}
    for chapter, rows in (
        ("07_b", [("nagy", V.FAILS), ("selvaraju", V.HOLDS)]),
        ("02_a", [("selvaraju", V.UNDECIDED), ("selvaraju", V.HOLDS)]),
    ):
        c = report.Claims(chapter, "smoke")
        for i, (paper, outcome) in enumerate(rows):
            c.add(
                f"c{i}",
                paper,
                "Table 1",
                f"{chapter} claim {i}",
                kind="paper",
                tier="stand-in",
                verdict=_v(outcome, 0.1, -0.1, 0.3),
            )
        c.save()
    html = report.SummaryPage("smoke", chapters).table().to_html()
    heads = [
        re.sub(r"<[^>]+>", "", h.split(" <span")[0]) for h in html.split('<th colspan="4">')[1:]
    ]
    # papers in the order of the references (Nagy before Selvaraju); chapters in book order
    assert heads == [
        "Nagy, Nimara, Qian, Grad-CAM reproduced",
        "Chapter B",
        "Selvaraju et al., Grad-CAM",
        "Chapter A",
        "Chapter B",
    ]
    assert "(3 claims: 2 hold, 1 undecided)" in html  # Selvaraju's subtotal over both chapters
    assert "(1 claim: 1 does not hold)" in html


@pytest.mark.parametrize(
    "outcomes, kind, text",
    [
        ([V.HOLDS, V.HOLDS, V.FAILS], "paper", "3 claims: 2 hold, 1 does not hold"),
        ([V.FAILS, V.FAILS], "paper", "2 claims: 2 do not hold"),
        ([V.HOLDS], "paper", "1 claim: 1 holds"),
        ([V.HOLDS, V.FAILS], "check", "2 checks: 1 passes, 1 fails"),
        ([V.UNDECIDED, V.NOT_RUN, V.UNDECIDED], "paper", "3 claims: 2 undecided, 1 not run here"),
        ([], "finding", "0 findings"),
    ],
)
def test_subtotals_in_words(outcomes, kind, text):
    assert report.subtotal_text(outcomes, kind) == text


def test_an_unknown_outcome_is_refused():
    with pytest.raises(ValueError, match="unknown outcome"):
        report.subtotal_text(["maybe"])
    with pytest.raises(ValueError, match="unknown outcome"):
        report.outcome_word("maybe")


def test_chapter_titles_from_notebook_or_text_form(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("# not a title"),
            nbformat.v4.new_markdown_cell("# Walls: theory\n\ntext"),
        ]
    )
    nbformat.write(nb, tmp_path / "a.ipynb")
    (tmp_path / "b.md").write_text(
        "---\njupytext: {}\n---\n\n```{code-cell}\n# comment\n```\n# Localization\n"
    )
    assert report._title_of(tmp_path / "a") == "Walls: theory"
    assert report._title_of(tmp_path / "b") == "Localization"
    assert report._title_of(tmp_path / "c") == "c"


def test_book_chapters_follow_the_table_of_contents():
    chapters = report.book_chapters()
    assert report.SUMMARY_PAGE not in chapters
    assert list(chapters)[:1] == ["01_methods_tour"]
    assert all(title and not title.startswith("#") for title in chapters.values())


def test_the_references_list_every_chapter_that_tests_a_paper():
    """The references page's 'chapters' column names exactly the chapters whose notebook or
    chapter module records a claim of the paper (its key as a string: paper="zhou")."""
    root = paths.REPO_ROOT
    chapters = report.book_chapters()
    names = {}
    for nb, title in chapters.items():
        text = (root / "notebooks" / f"{nb}.md").read_text(encoding="utf-8")
        m = re.search(r"from lib\.chapters import (\w+) as chapter", text)
        if m:
            text += (root / "lib" / "chapters" / f"{m.group(1)}.py").read_text(encoding="utf-8")
        names[nb] = (title, text)
    page = (root / "book" / "references.md").read_text(encoding="utf-8")
    for p in report.PAPERS.values():
        row = re.search(rf"^\| \[{re.escape(p.name)}\]\({p.ref}\) \| ([^|]*) \|", page, re.M)
        assert row, f"no row for {p.name} in the references' table"
        listed = [c.strip() for c in row.group(1).split(";")]
        testing = [t for t, text in names.values() if re.search(rf"[\"']{p.key}[\"']", text)]
        # a short name on the page ("A tour of the methods") stands for the chapter's full title
        found = sorted(t for t in testing if any(t.startswith(c) for c in listed))
        assert found == sorted(testing) and len(listed) == len(testing), (
            f"{p.key}: the references list {listed}, the chapters testing it are {testing}"
        )
