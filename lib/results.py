"""A results store that survives crashes: per-item records written atomically, resumable runs.

``ResultsStore(notebook, profile, config, weights=..., data=...)`` keeps one folder per
(notebook, profile, key) under ``CACHE_DIR/results``; the key hashes the configuration together
with a fingerprint of what produced the records: the source of the ``lib`` package, the content of
the weights files and the identity of the data the caller names. Editing the library, retraining a
model or changing the data therefore starts a new folder instead of reusing stale records.

Records are saved by writing a temporary file in the same folder, fsync, then ``os.replace``: a
crash leaves the previous file whole. Saves take an exclusive ``flock`` on ``.lock`` in the folder
and merge with what is on disk, so two stores (or processes) on one configuration keep each
other's records. A corrupt ``records.json`` / ``meta.json`` is moved aside with a warning and the
run recomputes. ``run`` skips the keys already done, so a killed run resumes where it stopped; a
finished run is not recomputed. Reading an incomplete run as if it were whole raises
``IncompleteResultsError``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import enum
import functools
import hashlib
import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import pandas as pd
from tqdm import tqdm

from .paths import CACHE_DIR

try:  # POSIX; elsewhere saves merge without a lock
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

__all__ = [
    "ResultsStore",
    "IncompleteResultsError",
    "CorruptResultsWarning",
    "config_hash",
    "code_fingerprint",
    "file_digest",
]

RECORDS = "records.json"
META = "meta.json"
LOCK = ".lock"
LIB_DIR = Path(__file__).resolve().parent
#: data identities longer than this (as JSON) are written in meta.json as their hash only
_META_DATA_MAX = 4096


class IncompleteResultsError(RuntimeError):
    """The run behind a results store has not finished; its records are partial."""


class CorruptResultsWarning(UserWarning):
    """A store file was not valid JSON; it was moved aside and the store starts over."""


def _sort_key(v: Any) -> str:
    return json.dumps(v, sort_keys=True, default=str)


def _jsonable(v: Any) -> Any:
    """Plain JSON types for ``v``: numpy/torch to lists and numbers, sets sorted, tuples as lists.

    Sets are sorted (by their canonical JSON) so that a set hashes the same in every process,
    whatever PYTHONHASHSEED. Values with no JSON form are returned as they are (see ``_check``).
    """
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (set, frozenset)):
        return sorted((_jsonable(x) for x in v), key=_sort_key)
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
    if isinstance(v, enum.Enum):
        return _jsonable(v.value)
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return _jsonable(dataclasses.asdict(v))
    return v


def _bad_field(v: Any, where: str = "") -> tuple[str, type] | None:
    """(path, type) of the first value in ``v`` (after ``_jsonable``) that JSON cannot hold."""
    if v is None or isinstance(v, (str, bool, int, float)):
        return None
    if isinstance(v, dict):
        for k, x in v.items():
            bad = _bad_field(x, f"{where}.{k}" if where else str(k))
            if bad:
                return bad
        return None
    if isinstance(v, list):
        for i, x in enumerate(v):
            bad = _bad_field(x, f"{where}[{i}]")
            if bad:
                return bad
        return None
    return where, type(v)


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def config_hash(config: Mapping[str, Any]) -> str:
    """12 hex digits of the SHA-256 of the configuration as canonical JSON.

    Canonical: keys sorted, sets sorted, numpy/torch values as numbers and lists. Other objects
    count by ``str()``; one whose ``str()`` holds a memory address (it differs in every process)
    raises TypeError.
    """
    cfg = _jsonable(dict(config))

    def check(v, where):
        if isinstance(v, dict):
            for k, x in v.items():
                check(x, f"{where}[{k!r}]")
        elif isinstance(v, list):
            for i, x in enumerate(v):
                check(x, f"{where}[{i}]")
        elif not (v is None or isinstance(v, (str, bool, int, float))) and _ADDRESS.search(str(v)):
            raise TypeError(
                f"{where} is a {type(v).__name__} whose str() {str(v)!r} changes in "
                "every process; put a JSON-able description of it in the config "
                "(a name, a number, a list)"
            )

    check(cfg, "config")
    text = json.dumps(cfg, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@functools.lru_cache(maxsize=None)
def code_fingerprint(package: str | Path = LIB_DIR) -> str:
    """SHA-256 of every ``*.py`` under ``package`` (default: ``lib``), with their relative paths.

    Read once per process (``code_fingerprint.cache_clear()`` to re-read). Deliberately coarse:
    any edit of the library, even a comment, gives new results folders.
    """
    root = Path(package)
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        if "__pycache__" in p.parts:
            continue
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        h.update(p.read_bytes() + b"\0")
    return h.hexdigest()


_DIGESTS: dict[tuple, str] = {}


def file_digest(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, cached per process by (path, size, mtime, inode, ctime).

    A file rewritten with the same size within the file system's timestamp resolution (a few ms)
    would keep its cached digest; any later write or a new process re-hashes it.
    """
    p = Path(path).resolve()
    try:
        st = p.stat()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"weights file {path} does not exist (needed for the results "
            "fingerprint); train or download the model first"
        ) from None
    key = (str(p), st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def atomic_write_json(path: Path, obj: Any, **dump_kwargs) -> None:
    """Write ``obj`` as JSON to ``path`` so that a crash leaves the previous file whole: a
    temporary file in the same folder, fsync, ``os.replace``, then fsync of the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, **{"allow_nan": True, **dump_kwargs})
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


def _read_json_or_set_aside(path: Path, what: str) -> dict | None:
    """The dict in ``path``; None if absent. A corrupt file is renamed with a warning -> None."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return None
    try:
        obj = json.loads(raw.decode("utf-8"))
        if not isinstance(obj, dict):
            raise ValueError(f"a JSON {type(obj).__name__}, not an object")
        return obj
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S.%f")
        aside = path.with_name(f"{path.name}.corrupt-{stamp}")
        os.replace(path, aside)
        warnings.warn(
            f"{path} is not a valid results file ({e}); moved it to {aside} and "
            f"started over without its {what}: the run will recompute them. Delete "
            f"{aside.name} once you no longer need it.",
            CorruptResultsWarning,
            stacklevel=3,
        )
        return None


class ResultsStore:
    """Per-item results of one notebook run, keyed by notebook, profile, configuration and
    the fingerprint of the code, weights and data that produced them.

    ``weights``: paths of the model files the records depend on (their content is hashed,
    ``file_digest``). ``data``: any JSON-able identity of the data (file digests, a scenes spec,
    a data set version). ``code``: include ``code_fingerprint()`` of the ``lib`` package.
    Keys are stored as strings (``str(key)``). Records are dicts of JSON-able values (numpy and
    torch scalars/arrays are converted; anything else is refused by ``put``).
    """

    def __init__(
        self,
        notebook: str,
        profile: str,
        config: Mapping[str, Any] | None = None,
        root: str | Path | None = None,
        *,
        weights: Iterable[str | Path] | str | Path = (),
        data: Any = None,
        code: bool = True,
    ):
        self.notebook, self.profile = notebook, profile
        self.config = _jsonable(dict(config or {}))
        self.config_hash = config_hash(self.config)
        if isinstance(weights, (str, Path)):
            weights = [weights]
        data = _jsonable(data)
        bad = _bad_field(data, "data")
        if bad:
            raise TypeError(
                f"ResultsStore(data=...): {bad[0]} is a {bad[1].__name__}, which has "
                "no JSON form; pass file digests, names or numbers"
            )
        self.fingerprint = {
            "code": code_fingerprint() if code else None,
            "weights": [{"file": Path(w).name, "sha256": file_digest(w)} for w in weights],
            "data": data,
        }
        self.hash = config_hash({"config": self.config, "fingerprint": self.fingerprint})
        self.path = Path(root or CACHE_DIR / "results") / notebook / profile / self.hash
        self.path.mkdir(parents=True, exist_ok=True)
        self._dirty: set[str] = set()
        self._reset_pending = False
        meta_fp = dict(self.fingerprint)
        data_json = json.dumps(data, sort_keys=True)
        if len(data_json) > _META_DATA_MAX:
            meta_fp["data"] = {
                "sha256": hashlib.sha256(data_json.encode()).hexdigest(),
                "note": f"{len(data_json)} characters of JSON, not written here",
            }
        self._meta = {
            "notebook": notebook,
            "profile": profile,
            "config": self.config,
            "config_hash": self.config_hash,
            "fingerprint": meta_fp,
            "key": self.hash,
            "complete": False,
            "expected": None,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        }
        with self._lock():
            self._records: dict[str, dict] = (
                _read_json_or_set_aside(self.path / RECORDS, "records") or {}
            )
            meta = _read_json_or_set_aside(self.path / META, "completion state")
            if meta is None:
                atomic_write_json(self.path / META, self._meta)
            else:
                self._meta.update(meta)

    def __repr__(self) -> str:
        state = "complete" if self.complete else "incomplete"
        return f"ResultsStore({self.notebook!r}, {self.profile!r}, {self.hash}: {len(self)} records, {state})"

    def __len__(self) -> int:
        return len(self._records)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Exclusive lock on the folder across processes (flock), for read-merge-write."""
        if fcntl is None:  # pragma: no cover
            yield
            return
        with open(self.path / LOCK, "a") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    # -- items -----------------------------------------------------------------------------------
    def done(self, key: Any) -> bool:
        """Whether ``key`` already has a record."""
        return str(key) in self._records

    def get(self, key: Any) -> dict:
        return self._records[str(key)]

    def put(self, key: Any, record: Mapping[str, Any], save: bool = True) -> None:
        """Store the record of ``key`` (and write it to disk now unless ``save=False``).

        A record with a value JSON cannot hold raises TypeError naming the key and the field, and
        changes nothing.
        """
        if not isinstance(record, Mapping):
            raise TypeError(f"a record must be a dict, got {type(record).__name__} for key {key!r}")
        rec = _jsonable(dict(record))
        bad = _bad_field(rec)
        if bad:
            raise TypeError(
                f"record for key {str(key)!r}: field {bad[0]!r} is a {bad[1].__module__}."
                f"{bad[1].__qualname__}, which JSON cannot hold; convert it (float(x), "
                "x.tolist(), str(x)) or leave it out. Nothing was stored for this key."
            )
        self._records[str(key)] = rec
        self._dirty.add(str(key))
        if (
            self._meta["complete"]
            and self._meta["expected"]
            and str(key) not in self._meta["expected"]
        ):
            self._meta["complete"] = False
        if save:
            self.save()

    def save(self) -> None:
        """Write records and state atomically, merged with records other stores saved meanwhile."""
        with self._lock():
            on_disk = (
                {}
                if self._reset_pending
                else (_read_json_or_set_aside(self.path / RECORDS, "records") or {})
            )
            on_disk.update(
                {k: v for k, v in self._records.items() if k in self._dirty}
            )  # put order
            atomic_write_json(self.path / RECORDS, on_disk)
            atomic_write_json(self.path / META, self._meta)
            self._records = on_disk
            self._dirty.clear()
            self._reset_pending = False

    # -- completeness ------------------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        """True once a run marked every expected key done."""
        exp = self._meta.get("expected")
        return (
            bool(self._meta["complete"])
            and exp is not None
            and all(k in self._records for k in exp)
        )

    def mark_complete(self, expected_keys: Iterable[Any]) -> None:
        expected = [str(k) for k in expected_keys]
        missing = [k for k in expected if k not in self._records]
        if missing:
            raise IncompleteResultsError(
                f"{self}: {len(missing)} of {len(expected)} keys have no "
                f"record (e.g. {missing[:3]}); cannot mark complete"
            )
        self._meta.update(
            complete=True,
            expected=expected,
            finished=_dt.datetime.now(_dt.timezone.utc).isoformat(),
        )
        self.save()

    def reset(self) -> None:
        """Forget every record of this configuration (on disk too)."""
        self._records = {}
        self._dirty.clear()
        self._reset_pending = True
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
                "look at the partial results knowingly."
            )
        keys = self._meta["expected"] if self.complete else list(self._records)
        rows = [{"key": k, **self._records[k]} for k in keys]
        return pd.DataFrame(rows)

    # -- running -----------------------------------------------------------------------------------
    def run(
        self,
        items: Iterable[Any],
        fn: Callable[[Any], Mapping[str, Any]],
        key: Callable[[Any], Any] | None = None,
        desc: str | None = None,
        save_every: int = 10,
    ) -> pd.DataFrame:
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
            for k, it in tqdm(
                todo,
                desc=desc or self.notebook,
                initial=len(items) - len(todo),
                total=len(items),
                disable=not todo,
            ):
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
