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
    """The warehouse could not run a query (missing table, connection refused, ...)."""


class BudgetExceededError(DataengError):
    """An LLM run would exceed its token or USD budget; raised *before* the call is made."""
