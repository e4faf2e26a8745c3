"""The one error wrapper of every ``dataeng`` command.

Exit codes, the same for every command:

* ``0`` success; ``1`` the command's own verdict (review findings at ``--fail-on``, a tracking check
  that found problems, a rollout that says roll back);
* ``2`` bad usage, config or input — one ``error: ...`` line on stderr naming the field
  (:class:`~dataeng_agents.core.errors.InputError` carries it), the same code typer gives an unknown
  option; also a warehouse or file that cannot be read, and a bug (never a traceback at a user);
* ``130`` interrupted (Ctrl-C).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer

P = ParamSpec("P")
R = TypeVar("R")

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``error: message`` as one line on stderr and exit with ``code``."""
    typer.echo(f"error: {message}".replace("\n", " "), err=True)
    raise typer.Exit(code=code)


def run_guarded(fn: Callable[[], R]) -> R:
    """Run ``fn``; turn every error into one stderr line and its exit code (see the module doc)."""
    from dataeng_agents.core.errors import DataengError

    try:
        return fn()
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise  # an exit code chosen by the command, or a usage error typer reports itself
    except DataengError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}")
    except KeyboardInterrupt:
        fail("interrupted", EXIT_INTERRUPTED)
    except Exception as exc:  # a bug must still not print a traceback at a user
        fail(f"unexpected {type(exc).__name__}: {exc}")


def guarded(command: Callable[P, R]) -> Callable[P, R]:
    """Decorator of a command function: its body runs under :func:`run_guarded`.

    ``functools.wraps`` keeps the signature typer reads the parameters from.
    """

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return run_guarded(lambda: command(*args, **kwargs))

    wrapper.__dataeng_guarded__ = True  # type: ignore[attr-defined]
    return wrapper


def is_guarded(callback: Any) -> bool:
    """Whether a (typer-wrapped) command callback runs under :func:`guarded`."""
    return bool(getattr(callback, "__dataeng_guarded__", False))
