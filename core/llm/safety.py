"""What may be sent to the model: redacted, wrapped as data, capped, aggregates only.

* **Redaction** removes secrets from every string before it leaves the process: API keys and tokens
  of the common providers, JWTs, bearer tokens, private-key blocks, the password of any
  ``scheme://user:password@host`` URI, and the value of any ``password=`` / ``token:`` / ``api_key``
  style assignment or mapping key. The replacement is ``[REDACTED]``.
* **Untrusted data**: DAG source, SQL, docstrings, context files and data values are data, never
  instructions. Everything the tools return is wrapped in ``<untrusted_data>`` tags (and any tag of
  that name inside the content is neutralised so it cannot close the wrapper); the system prompt
  tells the model that text inside them is data to describe, not instructions to follow.
* **Size caps**: one string at most ``max_string_chars``, one list at most ``max_list_items``, one
  tool result at most ``max_result_chars``; anything cut says so with a ``[truncated ...]`` notice.
* **Aggregates only**: keys that hold raw rows (``rows``, ``records``, ``raw_rows``, ``sample_rows``,
  ``raw``) are replaced by a notice with their length.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

REDACTED = "[REDACTED]"

_SECRET_NAME = (
    r"(?:password|passwd|pwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key|"
    r"private[_-]?key|client[_-]?secret|auth[_-]?token|credentials?|session[_-]?key|signing[_-]?key)"
)
SECRET_KEY_RE = re.compile(rf"(?i)^[\w.\-]*{_SECRET_NAME}[\w.\-]*$")

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S),
        "[REDACTED PRIVATE KEY]",
    ),
    # scheme://user:password@host -> keep scheme, user and host, drop the password
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@'\"]*):[^\s@/'\"]+@"), r"\1:" + REDACTED + "@"),
    (re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{8,}"), REDACTED),
    (re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_\-]{20,}"), REDACTED),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), REDACTED),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}\b"), REDACTED),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}\b"), REDACTED),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"), REDACTED),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"), REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}"), REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/\-]{12,}=*"), r"\1 " + REDACTED),
    # SQL: CREATE USER x IDENTIFIED BY 'pw' / CREATE ROLE x PASSWORD 'pw'
    (re.compile(r"(?i)\b(identified\s+by|password)(\s+)(['\"])[^'\"\n]{1,200}\3"), r"\1\2\3" + REDACTED + r"\3"),
    # name = "literal" / name: 'literal' / "name": "literal"
    (
        re.compile(rf"(?i)((?<![\w.\-])[\w.\-]{{0,40}}?{_SECRET_NAME}[\w.\-]{{0,40}}[\"']?[ \t]*(?:=|:|=>)[ \t]*)([\"'])[^\"'\n]{{1,500}}\2"),
        r"\1\2" + REDACTED + r"\2",
    ),
    # name=bare_value (env files, CLI flags, URLs' query strings); not a call like Variable.get(
    (
        re.compile(rf"(?i)((?<![\w.\-])[\w.\-]{{0,40}}?{_SECRET_NAME}[\w.\-]{{0,40}}[ \t]*(?:=|:)[ \t]*)(?![\"'\s])([^\s\"'(),;{{}}\[\]&]{{4,500}})(?![\w(.])"),
        r"\1" + REDACTED,
    ),
]

_TAG_RE = re.compile(r"(?i)<(/?)(untrusted_data)")
_ROW_KEYS = frozenset({"rows", "records", "raw_rows", "sample_rows", "raw"})


@dataclass(frozen=True)
class SafetyLimits:
    """Size caps of what is sent to the model."""

    max_string_chars: int = 4_000
    max_list_items: int = 200
    max_result_chars: int = 24_000
    max_context_file_chars: int = 20_000


def redact(text: str) -> str:
    """``text`` with every secret pattern replaced by ``[REDACTED]``."""
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


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


def sanitize(obj: Any, limits: SafetyLimits | None = None, *, _key: str | None = None) -> Any:
    """A JSON-able deep copy of ``obj``: secrets redacted, raw rows dropped, strings and lists capped."""
    limits = limits or SafetyLimits()
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            key = str(k)
            if key.lower() in _ROW_KEYS and isinstance(v, list):
                out[key] = f"[omitted: {len(v)} raw rows; only aggregates are sent to the model]"
            elif SECRET_KEY_RE.match(key) and isinstance(v, str) and v:
                out[key] = REDACTED
            else:
                out[key] = sanitize(v, limits, _key=key)
        return out
    if isinstance(obj, list | tuple):
        items = [sanitize(v, limits) for v in list(obj)[: limits.max_list_items]]
        if len(obj) > limits.max_list_items:
            items.append(f"[truncated: {len(obj) - limits.max_list_items} more items not shown]")
        return items
    if isinstance(obj, str):
        return truncate(redact(obj), limits.max_string_chars)
    if obj is None or isinstance(obj, bool | int | float):
        return obj
    return truncate(redact(str(obj)), limits.max_string_chars)


def dump_for_model(obj: Any, source: str, limits: SafetyLimits | None = None, *, sanitized: bool = False) -> str:
    """Sanitised JSON of ``obj``, capped and wrapped as untrusted data: what a tool result carries.

    ``sanitized=True`` skips the per-value pass for data that came out of :func:`sanitize` already
    (the serialised text is still capped and wrapped).
    """
    limits = limits or SafetyLimits()
    safe = obj if sanitized else sanitize(obj, limits)
    text = json.dumps(safe, ensure_ascii=False, sort_keys=False, default=str)
    return wrap_untrusted(truncate(text, limits.max_result_chars), source)
