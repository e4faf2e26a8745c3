"""SQL identifier validation: table and column names typed by a user become plain identifiers or nothing.

Quotes, semicolons, comments and whitespace are rejected before any SQL is built; anything richer
goes through a ``sql:`` source, which is parsed (never pasted) by :mod:`dataeng_agents.core.warehouse.sql`.
"""

from __future__ import annotations

import re

#: One plain (unquoted) SQL identifier.
IDENTIFIER_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def check_identifier(value: str, *, dotted: bool = False) -> str:
    """Accept a plain identifier (``dotted``: ``db.schema.table``); raise ``ValueError`` otherwise."""
    parts = value.split(".") if dotted else [value]
    if not value or len(parts) > 3 or not all(IDENTIFIER_PATTERN.match(p) for p in parts):
        kind = "table name" if dotted else "column name"
        raise ValueError(
            f"{value!r} is not a plain {kind}: use letters, digits, '_' and '$'"
            + (" (dotted schema.table allowed)" if dotted else "")
            + "; quotes, semicolons, comments and spaces are not allowed — use `sql:` for anything else"
        )
    return value
