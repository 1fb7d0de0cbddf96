"""Errors and drop accounting shared by the data loaders."""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

log = logging.getLogger("lib.data")

__all__ = ["DataMissingError", "DataFormatError", "LoadReport"]

OFFLINE_NOTE = ("The `default` profile runs offline on data installed from package registries "
                "(Fashion-MNIST from Debian's `dataset-fashion-mnist`, scikit-image photographs); "
                "run the notebook with profile='default' if you do not have these files.")


class DataMissingError(FileNotFoundError):
    """A data set (or some of its files) is not on this machine.

    The message names the missing files, where to get them, and that the ``default`` profile runs
    offline.
    """

    def __init__(self, dataset: str, missing: Iterable[str | Path], where: str,
                 searched: Iterable[str | Path] = ()):
        self.dataset = dataset
        self.missing = [str(m) for m in missing]
        self.where = where
        self.searched = [str(s) for s in searched]
        lines = [f"{dataset}: missing " + ", ".join(self.missing) + "."]
        if self.searched:
            lines.append("Looked in: " + ", ".join(self.searched) + ".")
        lines.append("Where to get it: " + where)
        lines.append(OFFLINE_NOTE)
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


@dataclass
class LoadReport:
    """What a loader kept and what it dropped, by reason (never drop silently)."""

    dataset: str
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)

    def drop(self, reason: str, name: str | None = None, n: int = 1) -> None:
        self.dropped[reason] += n
        if name is not None:
            self.examples.setdefault(reason, [])
            if len(self.examples[reason]) < 5:
                self.examples[reason].append(str(name))

    @property
    def n_dropped(self) -> int:
        return sum(self.dropped.values())

    def __str__(self) -> str:
        s = f"{self.dataset}: kept {self.kept}"
        if self.dropped:
            parts = []
            for reason, n in sorted(self.dropped.items()):
                ex = self.examples.get(reason)
                parts.append(f"{n} ({reason}" + (f", e.g. {', '.join(ex)}" if ex else "") + ")")
            s += ", dropped " + ", ".join(parts)
        else:
            s += ", dropped 0"
        return s

    def log(self) -> "LoadReport":
        (log.warning if self.dropped else log.info)(str(self))
        return self
