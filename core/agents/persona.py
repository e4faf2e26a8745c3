"""Personas: a Markdown system prompt with YAML front matter, packaged or user-supplied.

A persona file looks like::

    ---
    name: data-engineer
    description: One line for `dataeng agent personas`.
    model: default            # or a model id such as claude-sonnet-5-5
    tools: [list_results, get_result, get_review_findings]   # omit: every tool; []: none
    max_output_tokens: 2048   # optional
    max_iterations: 6         # optional
    ---
    You are a senior data engineer...

The packaged personas live in ``dataeng_agents/core/agents/personas``. Users add their own in a
directory named by ``$DATAENG_PERSONAS_DIR`` (several directories separated by ``os.pathsep``) or by
the ``search_path`` argument; a user file with the same ``name`` as a packaged one replaces it.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any

import yaml
from dataeng_agents.core.errors import ConfigError
from dataeng_agents.core.llm.models import default_model
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

PERSONAS_ENV = "DATAENG_PERSONAS_DIR"
PACKAGED_DIR = Path(__file__).with_name("personas")
_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n(.*)\Z", re.S)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,62}$")


class Persona(BaseModel):
    """One persona: who the model is asked to be, on which model, with which read-only tools."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str
    model: str = "default"
    #: the read-only tools it may call; ``None`` (key omitted): every tool; ``()``: none (all the
    #: facts are then put in the first message). An unknown name is an error.
    tools: tuple[str, ...] | None = None
    max_output_tokens: int = Field(default=2048, gt=0, le=128_000)
    max_iterations: int = Field(default=6, gt=0, le=50)
    system_prompt: str
    source: str = "packaged"

    @field_validator("name")
    @classmethod
    def _valid_name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("lower-case letters, digits, '-' or '_' (at most 63 characters)")
        return v

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        from dataeng_agents.core.agents.tools import TOOL_NAMES

        if v is None:
            return v
        unknown = [t for t in v if t not in TOOL_NAMES]
        if unknown:
            raise ValueError(
                f"unknown tool(s) {', '.join(map(repr, unknown))}; known: {', '.join(TOOL_NAMES)}"
            )
        return v

    @property
    def resolved_model(self) -> str:
        """``model`` with ``default`` replaced by the newest Sonnet the installed SDK lists."""
        return default_model() if self.model in ("", "default") else self.model


def parse_persona(text: str, source: str) -> Persona:
    """Parse a persona file's text; errors name the file and the field."""
    m = _FRONT.match(text.replace("\r\n", "\n"))
    if not m:
        raise ConfigError(source, "a persona file starts with YAML front matter between '---' lines")
    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(source, f"front matter is not valid YAML: {exc}") from exc
    if not isinstance(meta, dict):
        raise ConfigError(source, "front matter must be a mapping")
    body = m.group(2).strip()
    if not body:
        raise ConfigError(
            f"{source}: system_prompt", "the persona has no system prompt after the front matter"
        )
    data: dict[str, Any] = {**meta, "system_prompt": body, "source": source}
    if "tools" in data and data["tools"] is None:
        data["tools"] = ()  # "tools:" with nothing after it: no tools, as written
    if isinstance(data.get("tools"), list):
        data["tools"] = tuple(str(t) for t in data["tools"])
    try:
        return Persona.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{source}: {loc}", err["msg"]) from exc


@functools.lru_cache(maxsize=256)
def _parse_file(path: str, mtime_ns: int, source: str) -> Persona:
    return parse_persona(Path(path).read_text(encoding="utf-8"), source)


def _load_file(path: Path, source: str) -> Persona:
    """Parse a persona file once per (path, modification time)."""
    return _parse_file(str(path), path.stat().st_mtime_ns, source)


def _search_dirs(search_path: str | os.PathLike[str] | list[str | os.PathLike[str]] | None) -> list[Path]:
    dirs: list[Path] = []
    if search_path is not None:
        items = search_path if isinstance(search_path, list) else [search_path]
        dirs.extend(Path(p) for p in items)
    env = os.environ.get(PERSONAS_ENV)
    if env:
        dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    return dirs


def list_personas(
    search_path: str | os.PathLike[str] | list[str | os.PathLike[str]] | None = None,
) -> list[Persona]:
    """Packaged personas, then user ones (a user persona replaces a packaged one of the same name)."""
    found: dict[str, Persona] = {}
    for path in sorted(PACKAGED_DIR.glob("*.md")):
        p = _load_file(path, "packaged:" + path.name)
        found[p.name] = p
    for d in _search_dirs(search_path):
        if not d.is_dir():
            raise ConfigError(PERSONAS_ENV, f"persona directory {d} does not exist")
        for path in sorted(d.glob("*.md")):
            p = _load_file(path, str(path))
            found[p.name] = p
    return sorted(found.values(), key=lambda p: p.name)


def load_persona(
    name: str,
    search_path: str | os.PathLike[str] | list[str | os.PathLike[str]] | None = None,
) -> Persona:
    """The persona called ``name``. A path to a ``.md`` file also works.

    :raises ConfigError: naming ``persona`` and listing the known names when there is none.
    """
    if name.endswith(".md") and Path(name).is_file():
        return parse_persona(Path(name).read_text(encoding="utf-8"), name)
    personas = {p.name: p for p in list_personas(search_path)}
    if name not in personas:
        raise ConfigError("persona", f"unknown persona {name!r}; known: {', '.join(sorted(personas))}")
    return personas[name]
