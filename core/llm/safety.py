"""What may be sent to the model: redacted, wrapped as data, capped, aggregates only.

* **Redaction** removes secrets from every string before it leaves the process, through the one
  secret detector :mod:`dataeng_agents.core.security.secrets` (the same one the review rule SEC001
  uses): shaped tokens, URI passwords, ``Authorization`` headers, basic-auth tuples, CLI password
  flags, pgpass lines, private keys, and values bound to secret names in Python/YAML/JSON/env/INI.
  A mapping key that names a secret (``password``, ``api_key``...) has its scalar value replaced
  whatever it looks like. The replacement is ``[REDACTED]``.
* **Untrusted data**: DAG source, SQL, docstrings, context files and data values are data, never
  instructions. Everything the tools return is wrapped in ``<untrusted_data>`` tags (and any tag of
  that name inside the content is neutralised so it cannot close the wrapper); the system prompt
  tells the model that text inside them is data to describe, not instructions to follow.
* **Size caps and paging** (:class:`SafetyLimits`): one string in a result view at most
  ``max_string_chars`` (4,000), one list at most ``max_list_items`` (200), one tool result at most
  ``max_result_chars`` (24,000), one context file at most ``max_context_file_chars`` (20,000).
  A longer string or tool result is not lost: its view ends with a notice naming a ``ref`` and the
  ``read_text`` tool returns it in pages of at most ``max_page_chars`` (8,000), up to
  ``max_pageable_chars`` (200,000) of one text. Anything cut beyond that says so with a
  ``[truncated ...]`` notice.
* **Aggregates only**: keys that hold raw rows (``rows``, ``records``, ``raw_rows``, ``sample_rows``,
  ``raw``) are replaced by a notice with their length.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from dataeng_agents.core.security.secrets import REDACTED, is_placeholder, is_secret_name
from dataeng_agents.core.security.secrets import redact as _detector_redact

_SCALAR = (str, int, float)

_TAG_RE = re.compile(r"(?i)<(/?)(untrusted_data)")
_ROW_KEYS = frozenset({"rows", "records", "raw_rows", "sample_rows", "raw"})


@dataclass(frozen=True)
class SafetyLimits:
    """Size caps of what is sent to the model."""

    max_string_chars: int = 4_000
    max_list_items: int = 200
    max_result_chars: int = 24_000
    max_context_file_chars: int = 20_000
    max_page_chars: int = 8_000
    max_pageable_chars: int = 200_000


def redact(text: str) -> str:
    """``text`` with every secret the detector finds replaced by ``[REDACTED]``."""
    return _detector_redact(text)


_NOTICE = re.compile(r"\n\[truncated \d+ of \d+ characters\]$")


def truncate(text: str, cap: int) -> str:
    """At most ``cap`` characters plus a notice; idempotent (an already-cut text is left alone)."""
    if len(text) <= cap:
        return text
    notice = _NOTICE.search(text)
    if notice is not None and notice.start() <= cap:
        return text
    return text[:cap] + f"\n[truncated {len(text) - cap} of {len(text)} characters]"


def neutralise_tags(text: str) -> str:
    """Make ``<untrusted_data>`` / ``</untrusted_data>`` inside content inert (cannot close the wrapper)."""
    return _TAG_RE.sub(lambda m: f"&lt;{m.group(1)}{m.group(2)}", text)


def wrap_untrusted(text: str, source: str) -> str:
    """Wrap ``text`` as data; ``source`` names where it came from (a tool, a file)."""
    safe_source = re.sub(r"[^\w:./\-]", "_", source)[:120]
    return f'<untrusted_data source="{safe_source}">\n{neutralise_tags(text)}\n</untrusted_data>'


def paged_notice(ref: str, shown: int, total: int) -> str:
    """The end of a cut view: how much is missing and how to read it with ``read_text``."""
    return f"\n[truncated: {total - shown} of {total} characters not shown; read them with read_text(ref='{ref}', offset={shown})]"


def sanitize(
    obj: Any,
    limits: SafetyLimits | None = None,
    *,
    pages: dict[str, str] | None = None,
    _key: str | None = None,
    _path: str = "",
) -> Any:
    """A JSON-able deep copy of ``obj``: secrets redacted, raw rows dropped, strings and lists capped.

    :param pages: when given, a string longer than ``max_string_chars`` is kept whole (redacted, up
        to ``max_pageable_chars``) in ``pages[<its path>]`` and its view names that ref, for the
        ``read_text`` tool; without it the string is simply cut.
    """
    limits = limits or SafetyLimits()
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            key = redact(str(k))
            path = f"{_path}.{key}" if _path else key
            if key.lower() in _ROW_KEYS and isinstance(v, list):
                out[key] = f"[omitted: {len(v)} raw rows; only aggregates are sent to the model]"
            elif (
                is_secret_name(key)
                and isinstance(v, _SCALAR)
                and not isinstance(v, bool)
                and not is_placeholder(str(v))
            ):
                out[key] = REDACTED
            else:
                out[key] = sanitize(v, limits, pages=pages, _key=key, _path=path)
        return out
    if isinstance(obj, list | tuple):
        items = [
            sanitize(v, limits, pages=pages, _path=f"{_path}[{i}]")
            for i, v in enumerate(list(obj)[: limits.max_list_items])
        ]
        if len(obj) > limits.max_list_items:
            items.append(f"[truncated: {len(obj) - limits.max_list_items} more items not shown]")
        return items
    if obj is None or isinstance(obj, bool | int | float):
        return obj
    text = redact(obj if isinstance(obj, str) else str(obj))
    if pages is not None and len(text) > limits.max_string_chars:
        whole = truncate(text, limits.max_pageable_chars)
        ref = _path or "value"
        pages[ref] = whole
        return whole[: limits.max_string_chars] + paged_notice(ref, limits.max_string_chars, len(whole))
    return truncate(text, limits.max_string_chars)


def dump_for_model(
    obj: Any,
    source: str,
    limits: SafetyLimits | None = None,
    *,
    sanitized: bool = False,
    pages: dict[str, str] | None = None,
) -> str:
    """Sanitised JSON of ``obj``, capped and wrapped as untrusted data: what a tool result carries.

    ``sanitized=True`` skips the per-value pass for data that came out of :func:`sanitize` already
    (the serialised text is still capped and wrapped). With ``pages``, a result longer than
    ``max_result_chars`` is kept for ``read_text`` under the ref ``result:<source>``.
    """
    limits = limits or SafetyLimits()
    safe = obj if sanitized else sanitize(obj, limits)
    text = json.dumps(safe, ensure_ascii=False, sort_keys=False, default=str)
    if pages is not None and len(text) > limits.max_result_chars:
        ref = f"result:{source}"
        whole = truncate(text, limits.max_pageable_chars)
        pages[ref] = whole
        cap = limits.max_result_chars
        return wrap_untrusted(whole[:cap] + paged_notice(ref, cap, len(whole)), source)
    return wrap_untrusted(truncate(text, limits.max_result_chars), source)


def read_page(pages: dict[str, str], ref: str, offset: int, limit: int, limits: SafetyLimits) -> str:
    """One page of a long text kept by :func:`sanitize` / :func:`dump_for_model`, wrapped as data.

    :raises KeyError: no such ref (the message lists the known ones).
    """
    if ref not in pages:
        known = ", ".join(sorted(pages)[:20]) or "none (nothing was cut)"
        raise KeyError(f"no long text with ref {ref!r}; refs: {known}")
    text = pages[ref]
    offset = max(0, min(int(offset), len(text)))
    limit = max(1, min(int(limit), limits.max_page_chars))
    end = min(len(text), offset + limit)
    more = f"; next offset {end}" if end < len(text) else "; end of text"
    header = f"[characters {offset}-{end} of {len(text)}{more}]\n"
    return wrap_untrusted(header + text[offset:end], f"tool:read_text:{ref}")


def redact_outgoing(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` with every user-side text (text blocks, tool results) passed through :func:`redact`.

    The last line of defence: whatever a tool handler or a caller put into a user turn, no secret the
    detector knows leaves in a request. Assistant turns are the model's own output and go back
    unchanged (thinking blocks carry signatures). Containers are copied only where text changed.
    """
    out: list[dict[str, Any]] = []
    for msg in messages:
        content = msg.get("content")
        if msg.get("role") != "user":
            out.append(msg)
        elif isinstance(content, str):
            out.append({**msg, "content": redact(content)})
        elif isinstance(content, list):
            out.append({**msg, "content": [_redact_block(b) for b in content]})
        else:
            out.append(msg)
    return out


def _redact_block(block: Any) -> Any:
    if not isinstance(block, dict):
        return block
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        text = redact(block["text"])
        return block if text == block["text"] else {**block, "text": text}
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, str):
            text = redact(content)
            return block if text == content else {**block, "content": text}
        if isinstance(content, list):
            return {**block, "content": [_redact_block(b) for b in content]}
    return block
