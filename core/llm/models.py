"""Which Claude model to use when nobody said: the newest Sonnet the installed SDK knows.

The SDK's ``anthropic.types.Model`` is a ``Literal`` of the model ids of its release, so reading it
at run time keeps the default current with ``pip install -U anthropic`` and never names a model the
installed SDK has not heard of.
"""

from __future__ import annotations

import re
import typing
from functools import lru_cache

# Used only when the SDK's model list cannot be read (a much older or newer SDK layout).
FALLBACK_SONNET = "claude-sonnet-4-5"

_SONNET = re.compile(r"^claude-sonnet-(\d+)(?:-(\d{1,2}))?(?:-(\d{8}))?$")


def sdk_model_ids() -> list[str]:
    """Every model id literal that ``anthropic.types.Model`` lists, in the SDK's order."""
    try:
        from anthropic.types import Model
    except ImportError:  # pragma: no cover - anthropic is a hard dependency
        return []
    ids: list[str] = []
    stack: list[object] = [Model]
    while stack:
        tp = stack.pop(0)
        for arg in typing.get_args(tp):
            if isinstance(arg, str):
                ids.append(arg)
            else:
                stack.append(arg)
    return ids


def sonnet_version(model_id: str) -> tuple[int, int, int] | None:
    """``(major, minor, snapshot_date)`` of a Sonnet id, ``None`` for other families.

    ``claude-sonnet-5-5`` -> (5, 5, 0); ``claude-sonnet-4-5-20250929`` -> (4, 5, 20250929). Aliases
    (no date) sort *after* dated snapshots of the same version via :func:`newest_sonnet`.
    """
    m = _SONNET.match(model_id)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)


def newest_sonnet(model_ids: list[str]) -> str | None:
    """The highest Sonnet version in ``model_ids``; the undated alias wins over its snapshots."""
    best: tuple[tuple[int, int, int], str] | None = None
    for mid in model_ids:
        v = sonnet_version(mid)
        if v is None:
            continue
        # alias (date 0) should win over a dated snapshot of the same version
        key = (v[0], v[1], 1 if v[2] == 0 else 0)
        if best is None or key > best[0]:
            best = (key, mid)
    return best[1] if best else None


@lru_cache(maxsize=1)
def default_model() -> str:
    """The newest Sonnet listed by the installed ``anthropic`` SDK (``claude-sonnet-5-5`` for 2.14.0)."""
    return newest_sonnet(sdk_model_ids()) or FALLBACK_SONNET
