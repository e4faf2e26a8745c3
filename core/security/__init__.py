"""Security primitives shared by the reviewer and the LLM layer.

:mod:`.secrets` is the one secret detector of the package: the review rule SEC001 asks it whether a
literal is a hard-coded secret, and everything that can reach a model request is redacted by it.
"""

from __future__ import annotations

from dataeng_agents.core.security.secrets import (
    REDACTED,
    SecretSpan,
    find_secrets,
    is_placeholder,
    is_secret_name,
    literal_secret,
    name_words,
    redact,
)

__all__ = [
    "REDACTED",
    "SecretSpan",
    "find_secrets",
    "is_placeholder",
    "is_secret_name",
    "literal_secret",
    "name_words",
    "redact",
]
