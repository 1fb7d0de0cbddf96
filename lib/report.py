"""What a chapter shows its reader: formatted tables, computed numbers glued into the prose, and
the paper's claims set against this book's measurements.

The chapters call four things (see README.md, "Editing a chapter"):

- ``table(df, columns={...}, digits={...})``: a table for the page: no row numbers, readable
  column names, integers as integers, floats rounded to the digits that matter, and a table too
  wide for the ~750 px text column split into parts (or transposed).
- ``glue("name", value, fmt=".1f")``: stores the formatted value for the prose, where MyST
  Markdown inserts it with ``{glue:text}`name``` (myst-nb's glue; nothing is displayed).
- ``Claims(chapter, profile)``: ``.add(...)`` one row per claim, with its kind (a paper claim, a
  check of the code, a finding of this book), its evidence tier and the verdict of a rule fixed
  before the run (``lib.verdict``: estimate, 95 % interval, holds / does not hold / undecided);
  ``.save()`` (the chapter's record for the summary page "The papers against this book"),
  ``.show_figure()`` (the verdicts with their intervals) and ``.verdict_box()`` (the box that
  closes the chapter).
- ``summary(profile)``, ``SummaryPage``: every chapter's claim rows; paper claims tallied per
  paper and evidence tier, checks and findings apart.

Papers are named by authors and a short title (``PAPERS``, the same names as the references page),
never by a file number.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import numbers
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
from docutils.nodes import make_id

from . import paths
from .environment import random_stand_ins
from .formatting import auto_digits, format_number, is_integral, is_number
from .results import atomic_write_json
from .verdict import FAILS, HOLDS, NOT_RUN, OUTCOME_COLOURS, UNDECIDED, Verdict

__all__ = [
    "PAPERS",
    "Paper",
    "paper_name",
    "format_number",
    "table",
    "SplitTable",
    "glue",
    "GluedText",
    "Claim",
    "Claims",
    "summary",
    "claims_dir",
    "section_anchor",
    "VerdictBox",
    "SummaryPage",
    "book_chapters",
    "KINDS",
    "TIERS",
    "tally",
    "tally_text",
    "OUTCOME_COLOURS",
    "OUTCOME_MARKS",
    "outcome_word",
    "subtotal_text",
    "HTMLBlock",
]

#: the text column of the book's theme is ~750 px wide at desktop width
TEXT_WIDTH_PX = 750
# Width estimate of a table cell: the tables are drawn at 0.9 em of a 16 px font, where a digit or
# an average letter is ~7.5 px wide; a cell adds ~16 px of padding.
_CHAR_PX = 7.5
_CELL_PAD_PX = 16.0
# Text cells wrap at spaces and hyphens: a long text is drawn on several lines of about this many
# characters, but never narrower than its longest word. Numbers never wrap.
_WRAP_CHARS = 24


# -- the papers, by the names a reader sees ---------------------------------------------------------
@dataclass(frozen=True)
class Paper:
    key: str
    authors: str  # "Taimeskhanov, Sicre, Garreau" or "Santos et al."
    short: str  # a short title
    year: int | None
    ref: str  # anchor on the references page

    @property
    def name(self) -> str:
        """ "Authors, short title": how chapters and the summary page name the paper."""
        return f"{self.authors}, {self.short}"


#: Every paper the chapters state claims of, keyed as chapters name them in ``Claims.add(paper=...)``.
#: The references page (book/references.md) gives the full entries under the same anchors.
PAPERS: dict[str, Paper] = {
    p.key: p
    for p in (
        Paper("santos", "Santos et al.", "large receptive fields", None, "ref-santos"),
        Paper("nagy", "Nagy, Nimara, Qian", "Grad-CAM reproduced", 2020, "ref-nagy"),
        Paper("selvaraju", "Selvaraju et al.", "Grad-CAM", 2017, "ref-selvaraju"),
        Paper(
            "taimeskhanov",
            "Taimeskhanov, Sicre, Garreau",
            "CAM-based methods can see through walls",
            2024,
            "ref-taimeskhanov",
        ),
        Paper(
            "mascolini",
            "Mascolini et al.",
            "high-resolution maps with U-Nets",
            2022,
            "ref-mascolini",
        ),
        Paper("zhou", "Zhou et al.", "CAM", 2016, "ref-zhou"),
        Paper("adebayo", "Adebayo et al.", "Sanity checks for saliency maps", 2018, "ref-adebayo"),
    )
}


def paper_name(key: str) -> str:
    """The reader-facing name of a paper ("Taimeskhanov, Sicre, Garreau, CAM-based methods can
    see through walls") from its key in ``PAPERS``."""
    return _paper(key).name


def _paper(key: str) -> Paper:
    try:
        return PAPERS[key]
    except KeyError:
        raise ValueError(
            f"unknown paper {key!r}: use one of {sorted(PAPERS)} (lib.report.PAPERS; "
            "add a new paper there and on book/references.md)"
        ) from None


# -- numbers: lib.formatting -----------------------------------------------------------------------
# -- tables ----------------------------------------------------------------------------------------
# where a long word (a path, a file name) may break: after these characters (see _soft_breaks)
_BREAK_AFTER = re.compile(r"(?<=[/_,.=\-])")


def _text_px(s: str) -> float:
    pieces = [p for w in s.split() for p in _BREAK_AFTER.split(w) if p]
    longest = max((len(p) for p in pieces), default=0)
    return max(longest, min(len(s), _WRAP_CHARS)) * _CHAR_PX


def _soft_breaks(text: str) -> str:
    """Escaped ``text`` where every word longer than a wrapped line may break after / _ , . = -
    (``<wbr>``), so that a path does not widen its column."""
    words = re.split(r"(\s+)", text)
    return "".join(
        html.escape(w, quote=False)
        if len(w) <= _WRAP_CHARS
        else "<wbr>".join(html.escape(p, quote=False) for p in _BREAK_AFTER.split(w) if p)
        for w in words
    )


_TAG = re.compile(r"<[^>]+>")


def _column_px(header: str, cells: Iterable[str]) -> float:
    """Estimated width (px) of a column: its header and its text wrap at spaces."""
    head = max((len(w) for w in str(header).split()), default=0) * _CHAR_PX
    return max([head] + [_text_px(html.unescape(_TAG.sub("", c))) for c in cells]) + _CELL_PAD_PX


class SplitTable:
    """A table too wide for the text column, drawn as several tables (``parts``, each a pandas
    Styler) that repeat the key column(s)."""

    def __init__(self, parts: list):
        self.parts = parts

    def _repr_html_(self) -> str:
        gap = '<div style="height:0.6em"></div>'
        return gap.join(p.to_html() for p in self.parts)

    def to_html(self) -> str:
        return self._repr_html_()

    def __repr__(self) -> str:
        return f"SplitTable({len(self.parts)} parts)"


def _formatted(
    df: pd.DataFrame,
    digits: Mapping[str, int | None],
    default: int | None = None,
    html_columns: Iterable[str] = (),
) -> pd.DataFrame:
    """Every cell as the page shows it (HTML strings, text escaped), column by column: ``digits``
    per column; a column of integral numbers without its own entry stays integer, any other
    number column gets ``default`` decimals, or three significant figures."""
    out = {}
    html_columns = set(html_columns)
    for col in df.columns:
        values = list(df[col])
        nums = [v for v in values if is_number(v) and not (isinstance(v, float) and math.isnan(v))]
        d = digits.get(col)
        tiny = False
        if d is None and nums and not all(is_integral(v) for v in nums):
            if default is not None:
                d = default
            else:
                mags = [abs(float(v)) for v in nums if math.isfinite(float(v))]
                # all below 1e-3 (e.g. differences between two implementations): 4 decimals would
                # show 0.0000, so the column is written as 6.0e-07
                tiny = bool(mags) and 0 < max(mags) < 1e-3
                d = auto_digits(nums)
        cells = [_scientific(v) if tiny and is_number(v) else format_number(v, d) for v in values]
        out[col] = cells if col in html_columns else [_soft_breaks(c) for c in cells]
    return pd.DataFrame(out, columns=df.columns)


_NUMERIC_TEXT = re.compile(r"^[\s\d.,+\-−±%()e—]*$")


def _numeric_text(cell: str) -> bool:
    """Whether a shown cell is a number (with a sign, ±, %, brackets, an exponent or "—")."""
    return bool(_NUMERIC_TEXT.match(re.sub(r"<[^>]+>", "", str(cell))))


def _scientific(v) -> str:
    """A small number as "6.0e-07" (0 as "0", NaN as "—")."""
    v = float(v)
    if math.isnan(v):
        return "—"
    return "0" if v == 0 else f"{v:.1e}"


def _style(shown: pd.DataFrame, numeric: set, caption: str | None):
    styles = [
        {"selector": "", "props": "border-collapse: collapse; font-size: 0.9em; margin: 0.4em 0;"},
        {
            "selector": "th",
            "props": "text-align: left; white-space: normal; padding: 0.3em 0.5em; "
            "border-bottom: 1px solid currentColor; vertical-align: bottom;",
        },
        {"selector": "td", "props": "padding: 0.25em 0.5em; vertical-align: top;"},
        {"selector": "caption", "props": "caption-side: top; text-align: left; font-weight: 600;"},
    ]
    st = shown.style.hide(axis="index").set_table_styles(styles)
    st = st.set_table_attributes('class="report-table"')
    num_cols = [c for c in shown.columns if c in numeric]
    if num_cols:
        st = st.set_properties(
            subset=num_cols,
            **{
                "text-align": "right",
                "font-variant-numeric": "tabular-nums",
                "white-space": "nowrap",
            },
        )
    if caption:
        st = st.set_caption(caption)
    return st


def table(
    df: pd.DataFrame,
    columns: Mapping[str, str] | None = None,
    digits: int | Mapping[str, int] | None = None,
    *,
    caption: str | None = None,
    index: bool | str = "auto",
    max_width: int = TEXT_WIDTH_PX,
    wide: str = "auto",
    key_columns: int = 1,
    html_columns: Iterable[str] = (),
):
    """A formatted table for the page: a pandas Styler, or a ``SplitTable`` of Stylers.

    - no row numbers; a meaningful index (``index="auto"``: anything but a plain 0..n-1 range)
      becomes the first column, ``index=False`` drops it, ``index=True`` always keeps it;
    - ``columns`` renames columns for the reader (``{"rf_min": "smallest RF (px)"}``);
    - integral columns (1047.0) are shown as integers, other number columns with ``digits``
      decimals: one number for all of them, or per column (by the original or the new name, which
      also applies to an integral column); by default three significant figures of the column's
      largest value (``auto_digits``); NaN shows "—";
    - if the estimated width exceeds ``max_width`` px: ``wide="transpose"`` swaps rows and columns,
      ``"split"`` draws several tables that repeat the first ``key_columns`` columns, ``"auto"``
      transposes a table of at most four rows when that fits, else splits;
    - text is HTML-escaped, except in ``html_columns`` (by their new names), which hold HTML
      (links).
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(
            f"table() takes a pandas DataFrame, got {type(df).__name__}; wrap it: pd.DataFrame(...)"
        )
    if wide not in ("auto", "split", "transpose"):
        raise ValueError(f"wide must be 'auto', 'split' or 'transpose', got {wide!r}")
    d = df.copy()
    keep_index = index is True or (
        index == "auto"
        and not (isinstance(d.index, pd.RangeIndex) and d.index.start == 0 and d.index.step == 1)
    )
    if keep_index:
        names = [n if n is not None else "" for n in d.index.names]
        d.index = d.index.set_names(names)
        d = d.reset_index()
    d = d.reset_index(drop=True)
    columns = dict(columns or {})
    unknown = [c for c in columns if c not in d.columns]
    if unknown:
        raise ValueError(
            f"columns= renames {unknown}, which the table does not have "
            f"(its columns: {list(d.columns)})"
        )
    if isinstance(digits, Mapping):
        per_col = {columns.get(c, c): v for c, v in digits.items()}
        missing = [c for c in per_col if c not in {columns.get(x, x) for x in d.columns}]
        if missing:
            raise ValueError(f"digits= names {missing}, which the table does not have")
    else:
        per_col = {}
    d = d.rename(columns=columns)
    if d.columns.duplicated().any():
        raise ValueError(
            f"two columns have the same name {list(d.columns[d.columns.duplicated()])}"
            "; give them distinct names with columns="
        )
    d.columns = [str(c) for c in d.columns]
    per_col = {str(k): v for k, v in per_col.items()}
    numeric = {
        c
        for c in d.columns
        if pd.api.types.is_numeric_dtype(d[c]) and not pd.api.types.is_bool_dtype(d[c])
    }
    html_columns = [columns.get(c, c) for c in html_columns]
    missing = [c for c in html_columns if c not in d.columns]
    if missing:
        raise ValueError(f"html_columns= names {missing}, which the table does not have")
    shown = _formatted(d, per_col, None if isinstance(digits, Mapping) else digits, html_columns)

    widths = [_column_px(c, shown[c]) for c in shown.columns]
    if sum(widths) <= max_width:
        return _style(shown, numeric, caption)

    if wide in ("auto", "transpose"):
        t = shown.set_index(shown.columns[0]).T.reset_index()
        t.columns = [""] + [str(c) for c in t.columns[1:]]
        repeated = t.columns.duplicated().any()
        if repeated and wide == "transpose":
            raise ValueError(
                f"cannot transpose: the first column has repeated values "
                f"{list(shown.iloc[:, 0])}; use wide='split'"
            )
        t_widths = [_column_px(c, t[c]) for c in t.columns]
        # "auto" splits a table whose first column repeats a value (its transpose would have
        # two columns of the same name)
        if not repeated and (
            wide == "transpose" or (len(shown) <= 4 and sum(t_widths) <= max_width)
        ):
            # a column of the transpose is numeric (right-aligned, unbroken) only if every cell
            # is a number: a text cell (a model's name) must wrap
            return _style(t, {c for c in t.columns[1:] if all(map(_numeric_text, t[c]))}, caption)

    keys = list(shown.columns[:key_columns])
    key_px = sum(widths[:key_columns])
    parts, cur, cur_px = [], [], key_px
    for c, w in zip(shown.columns[key_columns:], widths[key_columns:]):
        if cur and cur_px + w > max_width:
            parts.append(cur)
            cur, cur_px = [], key_px
        cur.append(c)
        cur_px += w
    if cur:
        parts.append(cur)
    styled = []
    for i, cols in enumerate(parts):
        cap = f"{caption} ({i + 1} of {len(parts)})" if caption else None
        styled.append(_style(shown[keys + cols], numeric, cap))
    return styled[0] if len(styled) == 1 else SplitTable(styled)


# -- numbers in the prose --------------------------------------------------------------------------
_GLUE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class GluedText(str):
    """The text ``glue`` stored: a plain ``str`` that shows nothing when it is a cell's value."""

    def _ipython_display_(self) -> None:
        pass


def glue(name: str, value: Any, fmt: str | None = None, digits: int | None = None) -> GluedText:
    """Store ``value``, formatted, under ``name`` for the prose, and return the text (a ``str``
    that displays nothing, so ``glue(...)`` as the last line of a cell adds no output).

    In the chapter's Markdown, ``{glue:text}`name``` inserts the text (myst-nb, Jupyter Book 1).
    ``fmt`` is a format spec (``".1f"``, ``".0%"``, ``","``); without it the number follows
    ``format_number`` (integers as integers, else ``digits`` or three significant figures). Nothing
    is displayed in the page or the notebook's visible output: the value lives in a hidden output
    (``display=False``). A name is unique within a chapter (two cells gluing one name is a build
    warning, so an error in the book); it may hold letters, digits, ``_ . -`` but no ``:``.
    """
    if not isinstance(name, str) or not _GLUE_NAME.match(name):
        raise ValueError(
            f"glue name {name!r}: use letters, digits, '_', '.', '-' (no spaces, no "
            "':' — {glue:text}`name:fmt` reads ':' as the start of a format)"
        )
    if fmt is not None:
        if hasattr(value, "detach") and getattr(value, "ndim", None) == 0:
            value = value.item()
        if is_number(value) and math.isnan(float(value)):
            raise ValueError(
                f"glue {name!r}: the value is NaN; a number in the prose must be "
                "computed, not missing"
            )
        text = format(value, fmt)
    else:
        if is_number(value) and math.isnan(float(value)):
            raise ValueError(
                f"glue {name!r}: the value is NaN; a number in the prose must be "
                "computed, not missing"
            )
        text = format_number(value, digits)
    try:
        from myst_nb import glue as _glue
    except ImportError:  # a reader's Jupyter or Colab without myst-nb: the same hidden output
        _glue = _glue_fallback
    _glue(name, text, display=False)
    return GluedText(text)


def _glue_fallback(name: str, variable: Any, display: bool = False) -> None:
    """myst_nb.glue's output, for kernels without myst-nb (the rendered book always has it)."""
    # lazy: optional: only inside a notebook
    from IPython.display import display as ipy_display

    prefix = "application/papermill.record/"
    ipy_display(
        {prefix + "text/plain": repr(variable)},
        raw=True,
        metadata={"scrapbook": {"name": name, "mime_prefix": prefix}},
    )


# -- claims ----------------------------------------------------------------------------------------
#: what a claim row is. Only paper claims are evidence about a paper and enter the tallies.
KINDS = {
    "paper": "paper claim",  # an empirical statement of the paper, tested on our numbers
    "check": "check",  # an identity or property of the code: holds by construction
    "finding": "finding of this book",  # something this book found (an authors' computation, ...)
}
#: the evidence behind a paper claim, strongest first
TIERS = {
    "paper-data": "the paper's own data and models",
    "pretrained": "a real pretrained model on a few real images",
    "stand-in": "stand-ins trained here",
}


def claims_dir(profile: str | None = None) -> Path:
    """Where claim records live: ``CACHE_DIR/claims/<profile>/<chapter>.json``; in the
    full-profile rehearsal (``GRADCAM_BOOK_REHEARSAL=1``, random stand-ins for the ImageNet
    weights) ``CACHE_DIR/claims/rehearsal/<profile>/``, which no summary page reads."""
    root = Path(paths.CACHE_DIR) / "claims"
    if random_stand_ins():
        root = root / "rehearsal"
    return root / profile if profile else root


def section_anchor(section: str | None) -> str | None:
    """The HTML id Sphinx gives a heading or a MyST label (``"2. STACK-MIX and Table 1"`` ->
    ``"stack-mix-and-table-1"``)."""
    if section is None:
        return None

    anchor = make_id(section)
    if not anchor:
        raise ValueError(f"section {section!r} has no letters to make an anchor from")
    return anchor


@dataclass(frozen=True)
class Claim:
    """One claim: what the paper states, its number, ours, and the verdict of the rule fixed
    before the run (``lib.verdict``): outcome, estimate and 95 % interval.

    ``kind`` is "paper" (evidence about the paper), "check" (an identity of the code, never
    counted as support) or "finding" (of this book); ``tier`` (paper claims) says what the
    evidence rests on: "paper-data", "pretrained" or "stand-in"."""

    chapter: str
    claim_id: str
    paper: str
    where: str
    statement: str
    paper_value: Any
    ours: Any
    kind: str
    tier: str | None
    verdict: Verdict
    profile: str
    section: str | None = None
    digits: int | None = None

    @property
    def outcome(self) -> str:
        return self.verdict.outcome

    @property
    def holds(self) -> bool:
        return self.verdict.outcome == HOLDS

    @property
    def paper_text(self) -> str:
        return format_number(self.paper_value, self.digits)

    @property
    def ours_text(self) -> str:
        """Our number as the page shows it: the chapter's text if it gave one, else the
        verdict's estimate with its interval."""
        if self.ours is None:
            return self.verdict.interval_text(self.digits)
        return format_number(self.ours, self.digits)

    @property
    def interval_text(self) -> str:
        return self.verdict.interval_text(self.digits)

    @property
    def anchor(self) -> str | None:
        return section_anchor(self.section)

    def as_record(self) -> dict:
        rec = {f: getattr(self, f) for f in _FIELDS if f != "verdict"}
        v = self.verdict.as_record()
        rec["verdict"] = {
            k: (None if isinstance(x, float) and math.isnan(x) else x) for k, x in v.items()
        }
        rec.update(
            paper_text=self.paper_text,
            ours_text=self.ours_text,
            interval_text=self.interval_text,
            anchor=self.anchor,
        )
        return rec


def _json_value(v: Any, what: str, allow_none: bool) -> Any:
    """A number, string or None for JSON; NaN, arrays and other objects are refused."""
    if hasattr(v, "detach") and getattr(v, "ndim", None) == 0:
        v = v.item()
    if isinstance(v, np.generic):
        v = v.item()
    if v is None:
        if allow_none:
            return None
        raise ValueError(f"{what} is None: give the number (or a short text such as '0.27 ± 0.04')")
    if isinstance(v, bool):
        raise TypeError(
            f"{what} is a bool; give the number the claim is about (verdict= takes the outcome)"
        )
    if isinstance(v, numbers.Real):
        if math.isnan(float(v)):
            raise ValueError(f"{what} is NaN: a claim needs a computed number, not a missing one")
        return v
    if isinstance(v, str):
        if not v.strip():
            raise ValueError(f"{what} is empty")
        return v
    raise TypeError(
        f"{what} is a {type(v).__name__}; give a number or a short text "
        "(float(x) for a tensor or an array of one element)"
    )


def _as_verdict(v: Any, claim_id: str) -> Verdict:
    if isinstance(v, Verdict):
        return v
    if isinstance(v, Mapping):
        d = {
            k: (math.nan if x is None and k in ("estimate", "low", "high") else x)
            for k, x in v.items()
        }
        try:
            return Verdict(**d)
        except TypeError as e:
            raise ValueError(f"claim {claim_id!r}: not a verdict record ({e})") from None
    raise TypeError(
        f"claim {claim_id!r}: verdict must be a lib.verdict.Verdict (from a rule such "
        f"as verdict.paired_difference(...) fixed before the run), got "
        f"{type(v).__name__} {v!r}"
    )


def _make_claim(
    chapter,
    claim_id,
    paper,
    where,
    statement,
    paper_value,
    ours,
    kind,
    tier,
    verdict,
    profile,
    section=None,
    digits=None,
) -> Claim:
    # lazy: lib.notebook imports torch (~2 s); lib.report stays light
    from .notebook import PROFILES

    for label, v in (
        ("chapter", chapter),
        ("claim_id", claim_id),
        ("where", where),
        ("statement", statement),
    ):
        if not isinstance(v, str) or not v.strip():
            raise ValueError(f"claim {claim_id!r}: {label} must be a non-empty string, got {v!r}")
    if profile not in PROFILES:
        raise ValueError(f"claim {claim_id!r}: profile must be one of {PROFILES}, got {profile!r}")
    if kind not in KINDS:
        raise ValueError(
            f"claim {claim_id!r}: kind must be one of {list(KINDS)} ('paper' for an "
            f"empirical statement of the paper, 'check' for an identity of the code, "
            f"'finding' for a finding of this book), got {kind!r}"
        )
    if kind == "paper" and tier not in TIERS:
        raise ValueError(
            f"claim {claim_id!r}: a paper claim needs tier= one of {list(TIERS)} "
            f"(what its evidence rests on), got {tier!r}"
        )
    if kind == "check" and tier is not None:
        raise ValueError(
            f"claim {claim_id!r}: a check has no evidence tier (it is not evidence); drop tier="
        )
    if tier is not None and tier not in TIERS:
        raise ValueError(f"claim {claim_id!r}: tier must be one of {list(TIERS)}, got {tier!r}")
    verdict = _as_verdict(verdict, claim_id)
    if verdict.outcome == NOT_RUN and kind != "paper":
        raise ValueError(f"claim {claim_id!r}: only a paper claim can be 'not run here'")
    _paper(paper)
    if digits is not None and (not isinstance(digits, int) or digits < 0):
        raise ValueError(f"claim {claim_id!r}: digits must be a non-negative int, got {digits!r}")
    c = Claim(
        chapter,
        claim_id,
        paper,
        where,
        statement,
        _json_value(paper_value, f"claim {claim_id!r}: paper_value", allow_none=True),
        _json_value(ours, f"claim {claim_id!r}: ours", allow_none=True),
        kind,
        tier,
        verdict,
        profile,
        section,
        digits,
    )
    c.anchor  # a section with no anchor fails now, not on the summary page
    return c


_FIELDS = (
    "chapter",
    "claim_id",
    "paper",
    "where",
    "statement",
    "paper_value",
    "ours",
    "kind",
    "tier",
    "verdict",
    "profile",
    "section",
    "digits",
)


def _read_records(path: Path) -> list[dict]:
    """The rows of one claims file; a file or row that is not a claims record raises ValueError
    naming the file and the row."""
    return _read_file(path)["claims"]


def _read_file(path: Path) -> dict:
    """A claims file, every row checked as ``Claims.add`` checks it."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(
            f"{path}: not a valid claims record ({e}); delete it and run its chapter again"
        ) from None
    rows = obj.get("claims") if isinstance(obj, dict) else None
    if not isinstance(rows, list):
        raise ValueError(f"{path}: no 'claims' list; delete it and run its chapter again")
    for i, row in enumerate(rows):
        missing = [f for f in _FIELDS if not isinstance(row, dict) or f not in row]
        if missing:
            raise ValueError(
                f"{path}, claim row {i + 1}: missing {missing} (a record written "
                "before claims had kinds and verdicts); delete the file and run its "
                "chapter again"
            )
        try:
            _make_claim(**{f: row[f] for f in _FIELDS})
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}, claim row {i + 1}: {e}") from None
    return obj


class Claims:
    """The claims of one chapter on one profile: ``add`` rows, ``save`` them (replacing what the
    chapter wrote on its previous run), show ``verdict_box()`` at the end of the chapter."""

    def __init__(self, chapter: str, profile: str):
        # lazy: lib.notebook imports torch (~2 s); lib.report stays light
        from .notebook import PROFILES

        if not isinstance(chapter, str) or not re.match(r"^[A-Za-z0-9_.\-]+$", chapter):
            raise ValueError(
                f"chapter must be the notebook's name (e.g. '05_walls_experiments'), "
                f"got {chapter!r}"
            )
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
        self.chapter, self.profile = chapter, profile
        self.rows: list[Claim] = []

    @property
    def path(self) -> Path:
        return claims_dir(self.profile) / f"{self.chapter}.json"

    def add(
        self,
        claim_id: str,
        paper: str,
        where: str,
        statement: str,
        paper_value: Any = None,
        ours: Any = None,
        *,
        kind: str,
        verdict: Verdict,
        tier: str | None = None,
        section: str | None = None,
        digits: int | None = None,
        **legacy,
    ) -> None:
        """One claim row.

        Args:
            claim_id: unique within the chapter.
            paper: a key of ``PAPERS``.
            where: its table or figure ("Table 1").
            statement: the claim in a sentence, plain text; a stand-in result is worded as one.
            paper_value: the paper's number (None if it gives none).
            ours: our number as text, where the verdict's estimate is not the whole story (None:
                the verdict's estimate and interval).
            kind: "paper", "check" or "finding" (``KINDS``); only paper claims are tallied.
            verdict: the outcome of the rule fixed before the run (``lib.verdict``).
            tier: for a paper claim, what the evidence rests on (``TIERS``).
            section: the heading (or MyST label) of this chapter that shows the evidence.
            digits: decimals of the numbers shown.

        Returns:
            None (the :class:`Claim` is kept in ``rows``), so that a cell ending with ``add``
            shows no object on the page.
        """
        if legacy:
            raise TypeError(
                f"claim {claim_id!r}: unknown argument(s) {sorted(legacy)}; a claim "
                "takes kind= and verdict= (lib.verdict), not holds="
            )
        if any(r.claim_id == claim_id for r in self.rows):
            raise ValueError(f"claim {claim_id!r} was added twice to {self.chapter}")
        c = _make_claim(
            self.chapter,
            claim_id,
            paper,
            where,
            statement,
            paper_value,
            ours,
            kind,
            tier,
            verdict,
            self.profile,
            section,
            digits,
        )
        self.rows.append(c)

    def save(self) -> Path:
        """Write the chapter's record atomically, replacing its previous rows."""
        if not self.rows:
            raise ValueError(f"{self.chapter}: no claims to save; add() them first")
        atomic_write_json(
            self.path,
            {
                "chapter": self.chapter,
                "profile": self.profile,
                "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "claims": [c.as_record() for c in self.rows],
            },
            indent=1,
            ensure_ascii=False,
            allow_nan=False,
        )
        return self.path

    def verdict_box(self) -> "VerdictBox":
        """The box that closes the chapter: the paper claims with their outcomes, then the checks
        and the book's findings, each apart."""
        if not self.rows:
            raise ValueError(f"{self.chapter}: no claims to show; add() them first")
        return VerdictBox(self.rows, self.profile)

    def figure(self, **kw):
        """The chapter's paper claims and findings drawn with their intervals
        (``plot.verdict_figure``); None when none has an interval to draw."""
        # lazy: lib.plot imports matplotlib and torch (~3 s); lib.report stays light
        from .plot import verdict_figure

        return verdict_figure(self.rows, **kw)

    def show_figure(self, name: str | None = None, **kw) -> None:
        """Display :meth:`figure` (PNG) if there is one; returns None, so it shows once. With
        ``name`` ("fig-..."), the figure goes through ``plot.figure`` instead: checked, glued
        under ``name`` for the chapter's ``{glue:figure}`` directive (numbered, captioned). A chapter
        with no claim to draw has no such figure: ``name`` then raises ValueError."""
        # lazy: lib.plot imports matplotlib and torch (~3 s); lib.report stays light
        from . import plot

        fig = self.figure(**kw)
        if name is not None:
            if fig is None:
                raise ValueError(
                    f"{self.chapter}: no claim with an interval to draw for the "
                    f"figure {name!r}; drop its directive and call show_figure()"
                )
            plot.figure(fig, name)
        elif fig is not None:
            plot.show(fig, format="png")


_OUTCOME_ORDER = (HOLDS, FAILS, UNDECIDED, NOT_RUN)


def tally(rows: Iterable[Claim]) -> dict[str, int]:
    """Paper claims counted by outcome (checks and findings never enter the tally)."""
    out = {o: 0 for o in _OUTCOME_ORDER}
    for c in rows:
        if c.kind == "paper":
            out[c.outcome] += 1
    return out


def tally_text(rows: Iterable[Claim]) -> str:
    """ "3 of 5 paper claims hold, 1 does not, 1 is undecided" (and "2 not run here")."""
    t = tally(rows)
    n = sum(t.values())
    if n == 0:
        return "no paper claims"
    parts = [
        f"{t[HOLDS]} of {n} paper claim{'s' if n != 1 else ''} "
        f"hold{'s' if t[HOLDS] == 1 and n == 1 else ''}"
    ]
    if t[FAILS]:
        parts.append(f"{t[FAILS]} {'does' if t[FAILS] == 1 else 'do'} not")
    if t[UNDECIDED]:
        parts.append(f"{t[UNDECIDED]} {'is' if t[UNDECIDED] == 1 else 'are'} undecided")
    if t[NOT_RUN]:
        parts.append(f"{t[NOT_RUN]} not run here")
    return ", ".join(parts)


#: a mark before each outcome's word, so that no outcome is told by its colour alone
OUTCOME_MARKS = {HOLDS: "✓", FAILS: "✗", UNDECIDED: "?", NOT_RUN: "–"}


def outcome_word(outcome: str, kind: str = "paper") -> str:
    """The outcome as a reader reads it: a check "passes" or "fails"; a claim "holds", "does not
    hold", is "undecided" or "not run here"."""
    if outcome not in OUTCOME_COLOURS:
        raise ValueError(f"unknown outcome {outcome!r}; known: {list(OUTCOME_COLOURS)}")
    if kind == "check":
        return {HOLDS: "passes", FAILS: "fails"}.get(outcome, outcome)
    return outcome


def _outcome_html(outcome: str, kind: str = "paper") -> str:
    """The outcome in its colour, with its mark and its word (never the colour alone)."""
    return (
        f'<strong class="outcome outcome-{outcome.replace(" ", "-")}" '
        f'style="color:{OUTCOME_COLOURS[outcome]};white-space:nowrap">'
        f'<span aria-hidden="true">{OUTCOME_MARKS[outcome]}&#8239;</span>'
        f"{html.escape(outcome_word(outcome, kind))}</strong>"
    )


def subtotal_text(outcomes: Iterable[str], kind: str = "paper") -> str:
    """Outcomes counted in words: "5 claims: 2 hold, 1 does not hold, 2 undecided" ("3 checks:
    3 pass" for checks, "2 findings: ..." for findings); outcomes with no row are left out."""
    outcomes = list(outcomes)
    counts = {o: outcomes.count(o) for o in _OUTCOME_ORDER}
    unknown = set(outcomes) - set(counts)
    if unknown:
        raise ValueError(f"unknown outcome(s) {sorted(unknown)}; known: {list(_OUTCOME_ORDER)}")
    noun = {"paper": "claim", "check": "check", "finding": "finding"}[kind]
    n = len(outcomes)
    head = f"{n} {noun}{'s' if n != 1 else ''}"
    if kind == "check":
        words = {HOLDS: ("passes", "pass"), FAILS: ("fails", "fail")}
    else:
        words = {HOLDS: ("holds", "hold"), FAILS: ("does not hold", "do not hold")}
    words.update({UNDECIDED: ("undecided", "undecided"), NOT_RUN: ("not run here", "not run here")})
    parts = [f"{k} {words[o][0] if k == 1 else words[o][1]}" for o, k in counts.items() if k]
    return f"{head}: {', '.join(parts)}" if parts else head


def _verdict_detail(c: Claim) -> str:
    v = c.verdict
    if v.outcome == NOT_RUN:
        return html.escape(v.method)
    parts = [f"rule: {v.rule}", v.method]
    if c.kind != "check" and v.detectable:
        parts.append(f"detects a difference of {format_number(v.detectable, c.digits)}")
    elif c.kind != "check" and v.detectable is None and v.n > 1:
        parts.append("no result at this n could decide")
    return html.escape("; ".join(parts))


class VerdictBox:
    """The chapter's closing box as HTML (the book, Jupyter) or Markdown: paper claims with
    outcome, estimate and interval; then checks (with their measured error) and findings."""

    _SECTIONS = (
        ("paper", "The paper's claims"),
        ("check", "Checks of the code (not evidence)"),
        ("finding", "Findings of this book"),
    )

    def __init__(self, rows: list[Claim], profile: str):
        self.rows, self.profile = list(rows), profile

    def title(self) -> str:
        checks = [c for c in self.rows if c.kind == "check"]
        finds = [c for c in self.rows if c.kind == "finding"]
        t = f"Verdict: {tally_text(self.rows)}"
        if checks:
            n_pass = sum(c.holds for c in checks)
            t += f"; {n_pass} of {len(checks)} check{'s pass' if len(checks) != 1 else ' passes'}"
        if finds:
            t += f"; {len(finds)} finding{'s' if len(finds) != 1 else ''} of this book"
        return t

    def _repr_html_(self) -> str:
        e = html.escape
        body = []
        for kind, heading in self._SECTIONS:
            rows = [c for c in self.rows if c.kind == kind]
            if not rows:
                continue
            body.append(
                f'<tr class="verdict-section"><th colspan="3" style="text-align:left;'
                f'padding:0.5em 0.5em 0.2em 0.5em">{e(heading)}</th></tr>'
            )
            for c in rows:
                tier = f' <span class="verdict-tier">[{e(TIERS[c.tier])}]</span>' if c.tier else ""
                paper = (
                    f" The paper: <strong>{e(c.paper_text)}</strong>."
                    if (c.paper_value is not None)
                    else ""
                )
                measured = e(c.ours_text)
                if c.ours is not None and c.verdict.outcome != NOT_RUN:
                    measured += f"<br>estimate {e(c.interval_text)}"
                body.append(
                    '<tr class="verdict-row" style="border-top:1px solid rgba(128,128,128,0.35)">'
                    f'<td data-label="claim" style="padding:0.3em 0.5em;vertical-align:top">'
                    f"<em>{e(c.where)}</em> ({e(_paper(c.paper).authors)}): {e(c.statement)}"
                    f"{paper}{tier}</td>"
                    f'<td data-label="we measured" style="padding:0.3em 0.5em;vertical-align:top;'
                    f'width:32%"><strong>{measured}</strong><br>'
                    f"<small>{_verdict_detail(c)}</small></td>"
                    f'<td data-label="outcome" style="padding:0.3em 0.5em;vertical-align:top">'
                    f"{_outcome_html(c.outcome, c.kind)}</td></tr>"
                )
        head = (
            '<tr><th style="text-align:left;padding:0.3em 0.5em">the claim</th>'
            '<th style="text-align:left;padding:0.3em 0.5em">we measured (95 % interval)</th>'
            '<th style="text-align:left;padding:0.3em 0.5em">outcome</th></tr>'
        )
        return (
            '<div class="admonition verdict-box" style="border-left:4px solid #0969da;'
            'background:rgba(9,105,218,0.06);padding:0.6em 0.8em;margin:1em 0">'
            '<p class="admonition-title" style="font-weight:600;margin:0 0 0.4em 0">'
            f"{e(self.title())} (profile <code>{e(self.profile)}</code>)</p>"
            '<table style="width:100%;border-collapse:collapse;font-size:0.95em;'
            'table-layout:auto">'
            f"<thead>{head}</thead><tbody>{''.join(body)}</tbody></table></div>"
        )

    def _repr_markdown_(self) -> str:
        lines = [
            f"**{self.title()}** (profile `{self.profile}`)",
            "",
            "| the claim | we measured (95 % interval) | outcome |",
            "|---|---|---|",
        ]
        for c in self.rows:
            claim_txt = (
                f"*{c.where}* ({_paper(c.paper).authors}, {KINDS[c.kind]}"
                f"{', ' + TIERS[c.tier] if c.tier else ''}): {c.statement} "
                f"Paper: **{c.paper_text}**"
            ).replace("|", "\\|")
            measured = (
                f"**{c.ours_text}**" if c.ours is None else f"**{c.ours_text}** ({c.interval_text})"
            )
            lines.append(f"| {claim_txt} | {measured} | {c.outcome} |")
        return "\n".join(lines)


SUMMARY_COLUMNS = [
    "chapter",
    "claim_id",
    "paper",
    "paper_name",
    "where",
    "statement",
    "kind",
    "tier",
    "paper_value",
    "ours",
    "interval",
    "outcome",
    "rule",
    "method",
    "profile",
    "anchor",
    "link",
    "written",
]


def summary(profile: str) -> pd.DataFrame:
    """Every chapter's claim rows on ``profile`` (one row per claim, chapters in name order), with
    the paper's reader-facing name, the numbers as the page shows them, and ``link``: the chapter's
    page and section relative to a page in ``notebooks/`` (``05_walls_experiments.html#table-1``).
    Empty (with these columns) when no chapter has run on the profile yet."""
    # lazy: lib.notebook imports torch (~2 s); lib.report stays light
    from .notebook import PROFILES

    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    rows = []
    for path in sorted(claims_dir(profile).glob("*.json")):
        record = _read_file(path)
        written = record.get("written")
        for r in record["claims"]:
            c = _make_claim(**{f: r[f] for f in _FIELDS})
            if c.profile != profile or c.chapter != path.stem:
                raise ValueError(
                    f"{path}: claim {c.claim_id!r} belongs to chapter {c.chapter!r}, "
                    f"profile {c.profile!r}; delete the file and run its chapter again"
                )
            link = f"{c.chapter}.html" + (f"#{c.anchor}" if c.anchor else "")
            rows.append(
                {
                    "chapter": c.chapter,
                    "claim_id": c.claim_id,
                    "paper": c.paper,
                    "paper_name": paper_name(c.paper),
                    "where": c.where,
                    "statement": c.statement,
                    "kind": c.kind,
                    "tier": c.tier,
                    "paper_value": c.paper_text,
                    "ours": c.ours_text,
                    "interval": c.interval_text,
                    "outcome": c.outcome,
                    "rule": c.verdict.rule,
                    "method": c.verdict.method,
                    "profile": c.profile,
                    "anchor": c.anchor,
                    "link": link,
                    "written": written,
                }
            )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


# -- the summary page ------------------------------------------------------------------------------
def _title_of(stem: Path) -> str:
    """The first ``# `` heading of a notebook's Markdown: from ``stem.ipynb``, else its text form
    ``stem.md`` (code blocks skipped), else the notebook's name."""
    # lazy: optional: only notebook files need nbformat
    import nbformat

    if stem.with_suffix(".ipynb").is_file():
        nb = nbformat.read(stem.with_suffix(".ipynb"), as_version=4)
        lines = [
            line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()
        ]
    elif stem.with_suffix(".md").is_file():
        lines, fenced = [], False
        for line in stem.with_suffix(".md").read_text(encoding="utf-8").splitlines():
            if line.startswith(("```", "~~~")):
                fenced = not fenced
            elif not fenced:
                lines.append(line)
    else:
        return stem.name
    return next((line[2:].strip() for line in lines if line.startswith("# ")), stem.name)


def book_chapters() -> dict[str, str]:
    """The book's chapters in table-of-contents order, ``{notebook name: title}``: every
    ``notebooks/...`` entry of ``_toc.yml`` but the summary page itself, titled by the first
    ``# `` heading of the notebook."""
    # lazy: optional: only the book's table of contents needs PyYAML
    import yaml

    toc = yaml.safe_load((paths.REPO_ROOT / "_toc.yml").read_text(encoding="utf-8"))
    out = {}
    for entry in toc.get("chapters", []):
        f = entry.get("file", "")
        if not f.startswith("notebooks/") or f == f"notebooks/{SUMMARY_PAGE}":
            continue
        name = f.split("/", 1)[1]
        out[name] = _title_of(paths.REPO_ROOT / "notebooks" / name)
    return out


SUMMARY_PAGE = "90_summary"


class SummaryPage:
    """What the page "The papers against this book" shows for ``profile``: every chapter's claim
    rows (``rows``), which chapters have records (``with_records``) and which none yet
    (``without``); paper claims tallied per paper by evidence tier and outcome, checks and the
    book's findings apart and never tallied."""

    def __init__(self, profile: str, chapters: Mapping[str, str] | None = None):
        self.profile = profile
        self.rows = summary(profile)
        self.titles = dict(book_chapters() if chapters is None else chapters)
        have = set(self.rows["chapter"])
        self.with_records = [c for c in self.titles if c in have]
        self.with_records += sorted(have - set(self.titles))  # records of a chapter not in the toc
        self.without = [c for c in self.titles if c not in have]

    def title(self, chapter: str) -> str:
        return self.titles.get(chapter, chapter)

    @property
    def paper_rows(self) -> pd.DataFrame:
        return self.rows[self.rows["kind"] == "paper"]

    def tallies(self) -> pd.DataFrame:
        """Paper claims per paper and evidence tier, counted by outcome (with a total per
        paper); checks and findings are not in it."""
        p = self.paper_rows
        cols = list(_OUTCOME_ORDER)
        if p.empty:
            return pd.DataFrame(columns=["paper", "evidence"] + cols)
        out = []
        order = [k for k in PAPERS if k in set(p["paper"])]
        for key in order:
            sub = p[p["paper"] == key]
            for tier in (t for t in TIERS if t in set(sub["tier"])):
                counts = sub[sub["tier"] == tier]["outcome"].value_counts()
                out.append(
                    {
                        "paper": paper_name(key),
                        "evidence": TIERS[tier],
                        **{o: int(counts.get(o, 0)) for o in cols},
                    }
                )
        return pd.DataFrame(out, columns=["paper", "evidence"] + cols)

    def glue(self) -> None:
        """The numbers and lists of the page's prose: ``summary_profile``, ``summary_n_paper``
        (paper claims), ``summary_n_hold``, ``summary_n_fail``, ``summary_n_undecided``,
        ``summary_n_notrun``, ``summary_n_checks``, ``summary_n_findings``, ``summary_tiers`` (what
        was tested on what), ``summary_with``, ``summary_without``."""
        p = self.paper_rows
        counts = p["outcome"].value_counts()
        glue("summary_profile", self.profile)
        glue("summary_n_paper", len(p))
        glue("summary_n_hold", int(counts.get(HOLDS, 0)))
        glue("summary_n_fail", int(counts.get(FAILS, 0)))
        glue("summary_n_undecided", int(counts.get(UNDECIDED, 0)))
        glue("summary_n_notrun", int(counts.get(NOT_RUN, 0)))
        glue("summary_n_checks", int((self.rows["kind"] == "check").sum()))
        glue("summary_n_findings", int((self.rows["kind"] == "finding").sum()))
        tiers = p["tier"].value_counts()
        glue(
            "summary_tiers",
            "; ".join(f"{int(tiers[t])} on {TIERS[t]}" for t in TIERS if t in tiers.index)
            or "none yet",
        )
        glue("summary_with", "; ".join(self.title(c) for c in self.with_records) or "none yet")
        glue("summary_without", "; ".join(self.title(c) for c in self.without) or "none")

    def _empty(self):
        # lazy: optional: only inside a notebook
        from IPython.display import Markdown

        return Markdown(
            f"No chapter has recorded a claim on the profile `{self.profile}` yet, "
            "so there is no table: run the chapters on this profile first (the "
            "book runs them before this page)."
        )

    def tally_table(self):
        """The tallies as a table for the page: one row per paper and evidence tier, one column
        per outcome (coloured, marked and worded), the last row every paper. On a phone it
        reflows (the book's style sheet, ``table.tally-table``): each row becomes the paper and
        its evidence, then its counts side by side, each after its outcome, so that no column
        hides past the screen's edge."""
        if self.paper_rows.empty:
            return self._empty()
        t = self.tallies()
        cols = list(_OUTCOME_ORDER)
        total = {"paper": "all papers", "evidence": "all", **{o: int(t[o].sum()) for o in cols}}
        t = pd.concat([t, pd.DataFrame([total])], ignore_index=True)
        e = html.escape
        words = {o: f"{OUTCOME_MARKS[o]} {outcome_word(o)}" for o in cols}
        head = "".join(f"<th>{e(h)}</th>" for h in ("paper", "evidence")) + "".join(
            f'<th class="tally-count">{_outcome_html(o)}</th>' for o in cols
        )
        body = []
        for i, r in enumerate(t.to_dict("records")):
            cls = "claim-row tally-total" if i == len(t) - 1 else "claim-row"
            cells = (
                f'<td class="tally-paper" data-label="paper">{e(str(r["paper"]))}</td>'
                f'<td class="tally-evidence" data-label="evidence">'
                f"{e(str(r['evidence']))}</td>"
            )
            cells += "".join(
                f'<td class="tally-count" data-label="{e(words[o])}">{int(r[o])}</td>' for o in cols
            )
            body.append(f'<tr class="{cls}">{cells}</tr>')
        return HTMLBlock(
            '<table class="claim-table tally-table"><caption>Paper claims by '
            "evidence and outcome (the last row: every paper)</caption><thead><tr>"
            f"{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        )

    def table(self, kind: str = "paper"):
        """Every claim of ``kind`` ("paper", "check", "finding"), grouped by paper, then by
        chapter, each group headed by its subtotal in words ("5 claims: 2 hold, 3 undecided");
        a row gives the claim (linked to the section of its chapter that shows the evidence),
        the paper's number, ours with its 95 % interval, and the outcome coloured, marked and
        worded. Paper claims also name their evidence tier. On a phone the rows stack (the book's
        style sheet, ``table.claim-table``). With no rows, a sentence that says so."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
        rows = self.rows[self.rows["kind"] == kind]
        if rows.empty:
            # lazy: optional: only inside a notebook
            from IPython.display import Markdown

            if self.rows.empty:
                return self._empty()
            return Markdown(f"No {KINDS[kind]} is recorded on the profile `{self.profile}`.")
        e = html.escape
        ours = "measured error" if kind == "check" else "ours (95 % interval)"
        labels = ("the claim", "the paper", ours, "outcome")
        head = "".join(f"<th>{e(h)}</th>" for h in labels)
        papers = [k for k in PAPERS if k in set(rows["paper"])]
        chapters = list(self.titles) + sorted(set(rows["chapter"]) - set(self.titles))
        body = []
        for key in papers:
            sub = rows[rows["paper"] == key]
            body.append(
                f'<tr class="claim-group claim-group-paper"><th colspan="4">'
                f'{e(paper_name(key))} <span class="claim-subtotal">('
                f"{e(subtotal_text(sub['outcome'], kind))})</span></th></tr>"
            )
            for chapter in (c for c in chapters if c in set(sub["chapter"])):
                part = sub[sub["chapter"] == chapter]
                body.append(
                    f'<tr class="claim-group claim-group-chapter"><th colspan="4">'
                    f'<a href="{e(chapter)}.html">{e(self.title(chapter))}</a> '
                    f'<span class="claim-subtotal">('
                    f"{e(subtotal_text(part['outcome'], kind))})</span></th></tr>"
                )
                for r in part.itertuples():
                    tier = (
                        f' <span class="claim-tier">[{e(TIERS[r.tier])}]</span>'
                        if kind == "paper" and isinstance(r.tier, str)
                        else ""
                    )
                    cells = (
                        f'<a href="{e(r.link)}">{e(r.where)}</a>: {e(r.statement)}{tier}',
                        e(r.paper_value),
                        e(r.interval),
                        _outcome_html(r.outcome, kind),
                    )
                    body.append(
                        '<tr class="claim-row">'
                        + "".join(
                            f'<td data-label="{e(lab)}">{c}</td>' for lab, c in zip(labels, cells)
                        )
                        + "</tr>"
                    )
        return HTMLBlock(
            f'<table class="claim-table claim-table-{kind}"><thead><tr>{head}</tr>'
            f"</thead><tbody>{''.join(body)}</tbody></table>"
        )


class HTMLBlock:
    """A piece of HTML for the page (shown by Jupyter and the book as it is)."""

    def __init__(self, text: str):
        self.text = text

    def _repr_html_(self) -> str:
        return self.text

    def to_html(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"HTMLBlock({len(self.text)} characters of HTML)"
