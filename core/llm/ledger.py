"""The batch ledger: which Message Batch already carries a request, by its deterministic ``custom_id``.

A scheduled task that is retried (worker lost, task cleared, deferral resumed on another worker)
prepares the same request again, gets the same ``custom_id`` and finds the batch here instead of
paying for a second one. :class:`JsonFileLedger` keeps one small JSON file per ``custom_id`` in a
directory (written atomically: temp file, then rename); anything with ``get`` / ``put`` / ``discard``
(a table, an object store, an Airflow Variable) can replace it.

Two workers running the same task at once (a task cleared while its first try still runs, a
zombie worker) would both find no entry and both pay for a batch: a ledger may offer
``claim(custom_ids)``, a context manager held across look-up, ``batches.create`` and ``put``.
:class:`JsonFileLedger` takes an exclusive ``flock`` on ``.ledger.lock`` in its directory (processes and
threads on one host, or on a shared file system that honours POSIX locks); :class:`InMemoryLedger` a
thread lock. :func:`claimed` wraps any ledger, a ``claim``-less one without locking.

Known window: a crash after ``batches.create`` returned but before ``put`` finished loses the entry,
and a retry then submits again (the API cannot look a batch up by ``custom_id``).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

try:
    import fcntl
except ImportError:  # Windows: no POSIX locks; the look-up/submit window stays open there
    fcntl = None  # type: ignore[assignment]

from dataeng_agents.core.errors import ConfigError


@dataclass(frozen=True)
class LedgerEntry:
    custom_id: str
    batch_id: str
    submitted_at: str
    model: str
    persona: str
    kind: str
    subject_id: str


class BatchLedger(Protocol):
    def get(self, custom_id: str) -> LedgerEntry | None: ...

    def put(self, entry: LedgerEntry) -> None: ...

    def discard(self, custom_id: str) -> None: ...


@contextlib.contextmanager
def claimed(ledger: BatchLedger, custom_ids: Iterable[str]) -> Iterator[None]:
    """Hold ``ledger``'s claim on ``custom_ids`` (look up, submit and record inside it), if it has one."""
    claim = getattr(ledger, "claim", None)
    if claim is None:
        yield
        return
    with claim(list(custom_ids)):
        yield


class InMemoryLedger:
    """A ledger in a dict (tests, or one process that retries in place)."""

    def __init__(self) -> None:
        self.entries: dict[str, LedgerEntry] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def claim(self, custom_ids: Iterable[str]) -> Iterator[None]:
        with self._lock:
            yield

    def get(self, custom_id: str) -> LedgerEntry | None:
        return self.entries.get(custom_id)

    def put(self, entry: LedgerEntry) -> None:
        self.entries[entry.custom_id] = entry

    def discard(self, custom_id: str) -> None:
        self.entries.pop(custom_id, None)


class JsonFileLedger:
    """One ``<custom_id>.json`` per request in ``directory`` (created when missing)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError("ledger_dir", f"cannot create {self.directory}: {exc}") from exc

    @contextlib.contextmanager
    def claim(self, custom_ids: Iterable[str]) -> Iterator[None]:
        """Exclusive over the whole directory: submissions are rare and short, and one lock cannot deadlock."""
        for custom_id in custom_ids:
            self._path(custom_id)  # reject a bad id before waiting on the lock
        if fcntl is None:
            yield
            return
        with open(self.directory / ".ledger.lock", "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _path(self, custom_id: str) -> Path:
        if not custom_id or any(
            c not in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-" for c in custom_id
        ):
            raise ConfigError("custom_id", f"not a valid custom_id: {custom_id!r}")
        return self.directory / f"{custom_id}.json"

    def get(self, custom_id: str) -> LedgerEntry | None:
        path = self._path(custom_id)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # a torn or unreadable entry counts as absent: resubmitting is the safe side
        try:
            return LedgerEntry(**data)
        except TypeError:
            return None

    def put(self, entry: LedgerEntry) -> None:
        path = self._path(entry.custom_id)
        fd, tmp = tempfile.mkstemp(prefix=".ledger-", dir=self.directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(asdict(entry), fh, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def discard(self, custom_id: str) -> None:
        self._path(custom_id).unlink(missing_ok=True)
