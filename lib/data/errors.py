"""Errors, drop/warning accounting and CSV conventions shared by the data loaders.

Conventions of every CSV loader in ``lib.data``: files are read as UTF-8 with an optional byte-order
mark (``utf-8-sig``, as Excel writes them); blank lines (empty or only spaces) are skipped wherever
they are; a malformed row raises ``DataFormatError`` naming the file and its line.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

log = logging.getLogger("lib.data")

__all__ = [
    "DataMissingError",
    "DataFormatError",
    "LoadReport",
    "is_blank",
    "named_rows",
    "CSV_ENCODING",
]

#: every CSV is read with this: UTF-8, a leading byte-order mark dropped
CSV_ENCODING = "utf-8-sig"

OFFLINE_NOTE = (
    "The `default` profile runs offline on data installed from package registries "
    "(Fashion-MNIST from Debian's `dataset-fashion-mnist`, scikit-image photographs); "
    "run the notebook with profile='default' if you do not have these files."
)


class DataMissingError(FileNotFoundError):
    """A data set (or some of its files) is not on this machine.

    The message names the missing files, where to get them, and ``note``: by default that the
    ``default`` profile runs offline (the advice for the papers' own data, which only ``full``
    needs); a data set that every profile needs gives its own.
    """

    def __init__(
        self,
        dataset: str,
        missing: Iterable[str | Path],
        where: str,
        searched: Iterable[str | Path] = (),
        note: str | None = OFFLINE_NOTE,
    ):
        self.dataset = dataset
        self.missing = [str(m) for m in missing]
        self.where = where
        self.searched = [str(s) for s in searched]
        lines = [f"{dataset}: missing " + ", ".join(self.missing) + "."]
        if self.searched:
            lines.append("Looked in: " + ", ".join(self.searched) + ".")
        lines.append("Where to get it: " + where)
        if note:
            lines.append(note)
        super().__init__("\n".join(lines))

    def __str__(self) -> str:  # FileNotFoundError would otherwise print "[Errno None]"
        return self.args[0] if self.args else ""


class DataFormatError(ValueError):
    """A file that is there but malformed; the message names the file and, for text, the line."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        where = f"{path}, line {line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}")


def is_blank(row: list[str]) -> bool:
    """Whether a ``csv.reader`` row is a blank line (empty, or only spaces)."""
    return not row or (len(row) == 1 and not row[0].strip())


@dataclass
class LoadReport:
    """What a loader kept, what it dropped and what it fixed up with a warning, by reason (never
    drop or clip silently)."""

    dataset: str
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)
    warned: Counter = field(default_factory=Counter)

    def drop(self, reason: str, name: str | None = None, n: int = 1) -> None:
        self.dropped[reason] += n
        self._example(reason, name)

    def warn(self, reason: str, name: str | None = None, n: int = 1) -> None:
        """Count an item kept after a fix-up the data set's convention allows (e.g. a clip)."""
        self.warned[reason] += n
        self._example(reason, name)

    def _example(self, reason: str, name: str | None) -> None:
        if name is not None:
            self.examples.setdefault(reason, [])
            if len(self.examples[reason]) < 5:
                self.examples[reason].append(str(name))

    def _parts(self, counts: Counter) -> str:
        parts = []
        for reason, n in sorted(counts.items()):
            ex = self.examples.get(reason)
            parts.append(f"{n} ({reason}" + (f", e.g. {', '.join(ex)}" if ex else "") + ")")
        return ", ".join(parts)

    @property
    def n_dropped(self) -> int:
        return sum(self.dropped.values())

    def __str__(self) -> str:
        s = f"{self.dataset}: kept {self.kept}"
        s += ", dropped " + (self._parts(self.dropped) if self.dropped else "0")
        if self.warned:
            s += "; warned " + self._parts(self.warned)
        return s

    def log(self) -> "LoadReport":
        (log.warning if self.dropped or self.warned else log.info)(str(self))
        return self


def named_rows(
    path: str | Path, required: Sequence[str], optional: Sequence[str] = ()
) -> Iterator[tuple[int, list[str], dict[str, int]]]:
    """(line, row, col) for each non-blank row of the CSV at ``path``, whose first line names
    its columns; ``col`` maps each name of ``required`` and of the ``optional`` present to its
    index. A missing required column (line 1) or a row with another count of fields than the
    header raises DataFormatError naming the file and the line."""
    with open(path, newline="", encoding=CSV_ENCODING) as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise DataFormatError(path, f"missing columns {missing}; header is {header}", 1)
        col = {c: header.index(c) for c in (*required, *optional) if c in header}
        for r in reader:
            if is_blank(r):
                continue
            if len(r) != len(header):
                raise DataFormatError(
                    path, f"{len(r)} fields, the header has {len(header)}", reader.line_num
                )
            yield reader.line_num, r, col
