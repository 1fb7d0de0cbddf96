"""What a chapter's ``full`` run needs, asked all at once before anything runs.

A chapter lists every file and weight of its full run as :class:`Need` rows; :func:`require`
shows them as one table (what, where, present or not, where to get it) and, if any is missing,
raises one :class:`FullProfileMissing` naming all of them, so a reader learns what is missing in
one go, not one error at a time after an hour.

Weights that torchvision downloads by itself (``lib.models.zoo``) count as present where
:func:`download_allowed` (a network: on Colab, or ``GRADCAM_BOOK_ALLOW_DOWNLOAD=1``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd

from ..environment import (
    DOWNLOAD_VARIABLE,
    REHEARSAL_VARIABLE,
    download_allowed,
    random_stand_ins,
)
from ..models.zoo import imagenet_weights_file
from .errors import DataMissingError

__all__ = [
    "Need",
    "FullProfileMissing",
    "require",
    "needs_table",
    "download_allowed",
    "DOWNLOAD_VARIABLE",
    "REHEARSAL_VARIABLE",
    "random_stand_ins",
    "weights_need",
]


@dataclass
class Need:
    """One file, folder or weight of a full run: ``what`` it is, ``path`` where it is looked for,
    ``present``, ``source`` where to get it; ``fetched``: downloaded by itself on first use
    (torchvision's weights where a network exists), so not missing."""

    what: str
    path: str | Path
    present: bool
    source: str = ""
    fetched: bool = False

    @classmethod
    def file(
        cls, what: str, path: str | Path | None, source: str = "", folder: bool = False
    ) -> "Need":
        if path is None:
            return cls(what, "(data_root is None)", False, source)
        p = Path(path)
        return cls(what, p, p.is_dir() if folder else p.is_file(), source)

    @property
    def status(self) -> str:
        if self.present:
            return "present"
        return "downloaded on first use" if self.fetched else "MISSING"


class FullProfileMissing(DataMissingError):
    """Some of what the ``full`` profile needs is missing: every missing row, in one message."""

    def __init__(self, chapter: str, missing: list[Need]):
        self.rows = missing
        where = "; ".join(f"{n.what}: {n.source}" for n in missing if n.source)
        super().__init__(
            f"the full profile of {chapter}",
            [f"{n.what} ({n.path})" for n in missing],
            where,
            note="The table above lists everything the full run needs and "
            "what is present. The 'default' profile needs none of it.",
        )


def needs_table(needs: Iterable[Need]) -> pd.DataFrame:
    """One row per need: what, where, status, where to get it."""
    return pd.DataFrame(
        [
            {
                "needed": n.what,
                "looked for at": str(n.path),
                "status": n.status,
                "where to get it": n.source,
            }
            for n in needs
        ]
    )


def require(chapter: str, needs: Iterable[Need], show=None) -> pd.DataFrame:
    """Show every need of ``chapter``'s full run as one table (``show``: a callable, default
    IPython's ``display`` where there is one, else print) and raise one FullProfileMissing listing
    every missing row; return the table when nothing is missing."""
    needs = list(needs)
    table = needs_table(needs)
    if show is None:
        try:
            from IPython.display import display as show
        except ImportError:  # outside a kernel
            show = print
    show(table)
    missing = [n for n in needs if not n.present and not n.fetched]
    if missing:
        raise FullProfileMissing(chapter, missing)
    return table


def weights_need(arch: str, which: str = "IMAGENET1K_V1") -> Need:
    """torchvision's ImageNet weights of ``arch``: present in the torch hub cache, or downloaded
    by torchvision on first use where a network exists (``download_allowed``); in the rehearsal,
    random stand-ins."""
    path, url = imagenet_weights_file(arch, which)
    need = Need(
        f"{arch} ImageNet weights (torchvision)",
        path,
        path.is_file(),
        f"{url} (torchvision downloads it where a network exists)",
        fetched=download_allowed(),
    )
    if random_stand_ins() and not need.present:
        need.fetched, need.source = True, "rehearsal: randomly initialised stand-in"
    return need
