"""Typed errors shared by every part of the core.

Every error that comes from bad input names the place it came from (a config path such as
``metrics[2].window``, or a metric/variant/field triple) so a user can fix it without a traceback.
"""

from __future__ import annotations

from typing import Any


class DataengError(Exception):
    """Base class of every error this package raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as (type, args, attributes) whatever the subclass's constructor takes, so Prefect
        # (persisted results, remote task runners) and multiprocessing re-raise the same type with
        # the same fields instead of a TypeError about the constructor's arguments.
        return (_rebuild_error, (type(self), self.args, dict(vars(self))))


def _rebuild_error(cls: type[DataengError], args: tuple[Any, ...], state: dict[str, Any]) -> DataengError:
    error = cls.__new__(cls)
    error.args = args
    vars(error).update(state)
    return error


class InputError(DataengError, ValueError):
    """Bad input. ``field`` is a dotted/indexed path to the offending value."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


class ConfigError(InputError):
    """An experiment config, review config or pipeline spec is invalid at ``field``."""


class WarehouseError(DataengError):
    """The warehouse could not run a query (missing table, connection refused, ...).

    ``transient`` says whether the same query may pass on a retry (a dropped connection, a lock, a
    cancelled statement, a busy server) or fails the same way every time (a missing table, bad SQL,
    a rejected login): orchestrators retry the first kind only. The warehouse runners classify by
    the driver's error (SQLSTATE, DB-API class); without one, by the message.
    """

    def __init__(self, message: str, *, transient: bool | None = None) -> None:
        super().__init__(message)
        self.transient = _transient_message(message) if transient is None else transient


#: permanent failures as drivers word them, for errors that carry no SQLSTATE or error class
_PERMANENT_MARKERS = (
    "does not exist",  # postgres: relation/column/database/role "x" does not exist; duckdb catalog
    "not found",  # duckdb: database file not found; column/table not found
    "catalog error",
    "binder error",
    "parser error",
    "syntax error",
    "no such table",
    "no such file",
    "unknown database",
    "password authentication failed",
    "permission denied",
    "unsupported sqlalchemy dialect",
    "not a warehouse url",
    "needs psycopg",
    "need sqlalchemy",
    "no warehouse url",
)


def _transient_message(message: str) -> bool:
    text = message.lower()
    return not any(marker in text for marker in _PERMANENT_MARKERS)


class BudgetExceededError(DataengError):
    """An LLM run would exceed its token or USD budget; raised *before* the call is made."""
