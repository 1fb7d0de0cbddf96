"""A results store that survives crashes: per-item records written atomically, resumable runs.

``ResultsStore(notebook, profile, config)`` keeps one folder per (notebook, profile, hash of the
configuration) under ``CACHE_DIR/results``. Records are saved by writing a temporary file in the
same folder, fsync, then ``os.replace``: a crash leaves the previous file whole. ``run`` skips the
keys already done, so a killed run resumes where it stopped; a finished run is not recomputed.
Reading an incomplete run as if it were whole raises ``IncompleteResultsError``.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd
from tqdm import tqdm

from .paths import CACHE_DIR

__all__ = ["ResultsStore", "IncompleteResultsError", "config_hash"]

RECORDS = "records.json"
META = "meta.json"


class IncompleteResultsError(RuntimeError):
    """The run behind a results store has not finished; its records are partial."""


def _jsonable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if hasattr(v, "detach"):  # torch tensor
        v = v.detach().cpu().numpy()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, Path):
        return str(v)
    return v


def config_hash(config: Mapping[str, Any]) -> str:
    """12 hex digits of the SHA-256 of the configuration as canonical JSON."""
    text = json.dumps(_jsonable(dict(config)), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _atomic_write_json(path: Path, obj: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, allow_nan=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


class ResultsStore:
    """Per-item results of one notebook run, keyed by notebook, profile and configuration hash.

    Keys are stored as strings (``str(key)``). Records are dicts of JSON-able values (numpy and
    torch scalars/arrays are converted).
    """

    def __init__(self, notebook: str, profile: str, config: Mapping[str, Any] | None = None,
                 root: str | Path | None = None):
        self.notebook, self.profile = notebook, profile
        self.config = _jsonable(dict(config or {}))
        self.hash = config_hash(self.config)
        self.path = Path(root or CACHE_DIR / "results") / notebook / profile / self.hash
        self.path.mkdir(parents=True, exist_ok=True)
        self._records: dict[str, dict] = {}
        self._meta = {"notebook": notebook, "profile": profile, "config": self.config,
                      "config_hash": self.hash, "complete": False, "expected": None,
                      "created": _dt.datetime.now(_dt.timezone.utc).isoformat()}
        if (self.path / RECORDS).exists():
            with open(self.path / RECORDS) as f:
                self._records = json.load(f)
        if (self.path / META).exists():
            with open(self.path / META) as f:
                self._meta.update(json.load(f))
        else:
            _atomic_write_json(self.path / META, self._meta)

    def __repr__(self) -> str:
        state = "complete" if self.complete else "incomplete"
        return f"ResultsStore({self.notebook!r}, {self.profile!r}, {self.hash}: {len(self)} records, {state})"

    def __len__(self) -> int:
        return len(self._records)

    # -- items -----------------------------------------------------------------------------------
    def done(self, key: Any) -> bool:
        """Whether ``key`` already has a record."""
        return str(key) in self._records

    def get(self, key: Any) -> dict:
        return self._records[str(key)]

    def put(self, key: Any, record: Mapping[str, Any], save: bool = True) -> None:
        """Store the record of ``key`` (and write it to disk now unless ``save=False``)."""
        if not isinstance(record, Mapping):
            raise TypeError(f"a record must be a dict, got {type(record).__name__} for key {key!r}")
        self._records[str(key)] = _jsonable(dict(record))
        if self._meta["complete"] and self._meta["expected"] and str(key) not in self._meta["expected"]:
            self._meta["complete"] = False
        if save:
            self.save()

    def save(self) -> None:
        """Write records and state atomically."""
        _atomic_write_json(self.path / RECORDS, self._records)
        _atomic_write_json(self.path / META, self._meta)

    # -- completeness ------------------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        """True once a run marked every expected key done."""
        exp = self._meta.get("expected")
        return bool(self._meta["complete"]) and exp is not None and all(k in self._records for k in exp)

    def mark_complete(self, expected_keys: Iterable[Any]) -> None:
        expected = [str(k) for k in expected_keys]
        missing = [k for k in expected if k not in self._records]
        if missing:
            raise IncompleteResultsError(f"{self}: {len(missing)} of {len(expected)} keys have no "
                                         f"record (e.g. {missing[:3]}); cannot mark complete")
        self._meta.update(complete=True, expected=expected,
                          finished=_dt.datetime.now(_dt.timezone.utc).isoformat())
        self.save()

    def reset(self) -> None:
        """Forget every record of this configuration (on disk too)."""
        self._records = {}
        self._meta.update(complete=False, expected=None)
        self.save()

    def records(self, allow_incomplete: bool = False) -> pd.DataFrame:
        """All records as a DataFrame (a ``key`` column plus the record's fields).

        Raises IncompleteResultsError if the run is not complete, unless ``allow_incomplete``.
        """
        if not self.complete and not allow_incomplete:
            n_exp = len(self._meta["expected"]) if self._meta.get("expected") else "?"
            raise IncompleteResultsError(
                f"{self}: the run has not finished ({len(self)} records of {n_exp} expected). "
                "Call store.run(...) again to resume it, or records(allow_incomplete=True) to "
                "look at the partial results knowingly.")
        keys = self._meta["expected"] if self.complete else list(self._records)
        rows = [{"key": k, **self._records[k]} for k in keys]
        return pd.DataFrame(rows)

    # -- running -----------------------------------------------------------------------------------
    def run(self, items: Iterable[Any], fn: Callable[[Any], Mapping[str, Any]],
            key: Callable[[Any], Any] | None = None, desc: str | None = None,
            save_every: int = 10) -> pd.DataFrame:
        """Compute ``fn(item)`` for every item whose key is not done yet; return all records.

        ``key(item)`` (default: the item itself) names each record. Saves every ``save_every`` new
        records and, whatever happens (an exception, Ctrl-C), what was computed before stopping.
        Marks the run complete at the end.
        """
        items = list(items)
        keys = [str(key(it) if key is not None else it) for it in items]
        if len(set(keys)) != len(keys):
            raise ValueError("run(): two items have the same key; give key= that names each item")
        todo = [(k, it) for k, it in zip(keys, items) if k not in self._records]
        if set(keys) != set(self._meta.get("expected") or []):
            self._meta["complete"] = False
        pending = 0
        try:
            for k, it in tqdm(todo, desc=desc or self.notebook, initial=len(items) - len(todo),
                              total=len(items), disable=not todo):
                self.put(k, fn(it), save=False)
                pending += 1
                if pending >= save_every:
                    self.save()
                    pending = 0
        finally:
            if pending:
                self.save()
        self.mark_complete(keys)
        return self.records()
