"""Review configuration: severity profiles, ``[tool.dataeng.review]`` in pyproject.toml, exceptions file.

Precedence (last wins): rule default severity -> profile -> pyproject ``severity`` table / ``disable``
list -> explicit arguments. Inline ``# dataeng: ignore[RULE]`` comments and the exceptions file remove
findings after the checks ran (they are counted as suppressed).
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar

from dataeng_agents.core.errors import ConfigError
from dataeng_agents.core.review.models import Severity
from dataeng_agents.core.review.rules import RULES
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

Profile = Literal["strict", "default", "examples"]
PROFILES: tuple[str, ...] = ("strict", "default", "examples")

DEFAULT_EXPENSIVE_IMPORTS = (
    "pandas",
    "numpy",
    "torch",
    "tensorflow",
    "sklearn",
    "scipy",
    "pyspark",
    "polars",
    "matplotlib",
    "transformers",
    "keras",
    "xgboost",
    "lightgbm",
    "great_expectations",
    "dask",
    "ray",
)


class ExceptionEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str
    rules: tuple[str, ...]  # ("*",) = every rule

    def matches(self, path: str, rule_id: str) -> bool:
        if "*" not in self.rules and rule_id not in self.rules:
            return False
        posix = Path(path).as_posix()
        return fnmatch.fnmatch(posix, self.pattern) or fnmatch.fnmatch(posix, f"*/{self.pattern}")


class _RuleDefaults(Protocol):
    """What the severity precedence reads from a rule (the pipeline ``Rule`` and the ``ApiRule``)."""

    @property
    def severity(self) -> Severity: ...

    @property
    def production_only(self) -> bool: ...


S = TypeVar("S", bound="RuleSettings")


class RuleSettings(BaseModel):
    """The settings every rule-based review shares (the pipeline review's :class:`ReviewConfig`, the
    API review's ``ApiReviewConfig``): profile, per-rule severities, disabled rules, path excludes and
    exceptions, one precedence, one loader. A subclass names its rule table and TOML section."""

    model_config = ConfigDict(extra="forbid")

    #: the review's rules by id (validates ``severity``, ``disable`` and the exceptions file)
    rule_table: ClassVar[Mapping[str, _RuleDefaults]]
    #: how an error names an id that is not in ``rule_table``
    rule_noun: ClassVar[str] = "rule id"
    #: ``[tool.dataeng.<section>]``
    toml_section: ClassVar[str]

    profile: Profile = "default"
    severity: dict[str, Severity] = Field(
        default_factory=dict, description="Per-rule override; 'off' disables."
    )
    disable: list[str] = Field(default_factory=list)
    exceptions_file: str | None = None
    exclude: list[str] = Field(default_factory=list, description="Path globs not to review.")

    def severity_of(self, rule_id: str) -> Severity:
        if rule_id in self.disable:
            return Severity.off
        if rule_id in self.severity:
            return self.severity[rule_id]
        rule = self.rule_table[rule_id]
        if self.profile == "examples" and rule.production_only:
            return Severity.off
        if self.profile == "strict" and rule.severity is Severity.info:
            return Severity.warn
        return rule.severity

    def enabled(self, rule_id: str) -> bool:
        return self.severity_of(rule_id) is not Severity.off

    def excepted(self, path: str, rule_id: str) -> bool:
        return any(e.matches(path, rule_id) for e in self.exceptions)

    def excluded(self, path: str) -> bool:
        if not self.exclude:
            return False
        posix = Path(path).as_posix()
        return any(fnmatch.fnmatch(posix, g) or fnmatch.fnmatch(posix, f"*/{g}") for g in self.exclude)

    if TYPE_CHECKING:
        # a field of every subclass, declared there to keep each model's field order
        exceptions: list[ExceptionEntry]

    @classmethod
    def load(
        cls: type[S],
        *,
        profile: str | None = None,
        pyproject: str | Path | None = None,
        search_from: str | Path | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> S:
        """Build the config from ``[tool.dataeng.<section>]`` (an explicit file, or found upwards from
        ``search_from``), then apply ``overrides`` and ``profile``. Errors name the offending key."""
        data: dict[str, Any] = {}
        base_dir = Path.cwd()
        src = Path(pyproject) if pyproject else (find_pyproject(Path(search_from)) if search_from else None)
        if src is not None:
            try:
                doc = tomllib.loads(src.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(str(src), f"cannot read {src.name}: {exc}") from exc
            section = doc.get("tool", {}).get("dataeng", {}).get(cls.toml_section)
            # a standalone file (e.g. dataeng-review.toml) may keep the keys at the top level
            data = dict(
                section if section is not None else ({} if "tool" in doc or "project" in doc else doc)
            )
            base_dir = src.parent
        if overrides:
            data.update({k: v for k, v in overrides.items() if v is not None})
        if profile is not None:
            data["profile"] = profile
        return cls.from_dict(data, base_dir=base_dir, where=f"tool.dataeng.{cls.toml_section}")

    @classmethod
    def from_dict(
        cls: type[S], data: dict[str, Any], *, base_dir: Path | None = None, where: str = "config"
    ) -> S:
        """Validate ``data`` (rule ids checked against the rule table) and read its exceptions file
        (relative to ``base_dir``). Errors name the offending key under ``where``."""
        for rule_id in dict(data.get("severity") or {}):
            if rule_id not in cls.rule_table:
                raise ConfigError(f"{where}.severity.{rule_id}", f"unknown {cls.rule_noun}")
        for i, rule_id in enumerate(data.get("disable") or []):
            if rule_id not in cls.rule_table:
                raise ConfigError(f"{where}.disable[{i}]", f"unknown {cls.rule_noun} {rule_id!r}")
        try:
            cfg = cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"{where}.{loc}" if loc else where, err["msg"]) from exc
        if cfg.exceptions_file:
            p = Path(cfg.exceptions_file)
            if not p.is_absolute() and base_dir is not None:
                p = base_dir / p
            try:
                text = p.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"{where}.exceptions_file", f"cannot read {p}: {exc}") from exc
            cfg.exceptions = [*cfg.exceptions, *parse_exceptions(text, str(p), known=cls.rule_table)]
        return cfg


class ReviewConfig(RuleSettings):
    """Settings of one review run (validated; unknown keys are rejected)."""

    rule_table: ClassVar[Mapping[str, _RuleDefaults]] = RULES
    toml_section: ClassVar[str] = "review"

    expensive_imports: list[str] = Field(default_factory=lambda: list(DEFAULT_EXPENSIVE_IMPORTS))
    approved_tags: list[str] | None = None
    max_dags_per_file: int = Field(default=10, ge=1)
    max_tasks_per_dag: int = Field(default=200, ge=1)
    parse_time_budget_seconds: float = Field(default=2.0, gt=0)
    same_conn_task_threshold: int = Field(default=5, ge=2)
    max_file_bytes: int = Field(default=10_000_000, ge=1)
    exceptions: list[ExceptionEntry] = Field(default_factory=list)
    #: (settings the severities depend on, the enabled rule ids): rebuilt when those settings change
    _enabled_cache: tuple[object, frozenset[str]] | None = PrivateAttr(default=None)

    def enabled_rules(self) -> frozenset[str]:
        """The ids of every rule not switched off (memoised; checks ask this thousands of times a run)."""
        key = (self.profile, tuple(self.disable), tuple(self.severity.items()))
        cached = self._enabled_cache
        if cached is None or cached[0] != key:
            cached = self._enabled_cache = (key, frozenset(r for r in RULES if self.enabled(r)))
        return cached[1]


_EXC_LINE = re.compile(r"^\s*(?P<pattern>\S+)\s+(?P<rules>[A-Za-z0-9_*,\s]+?)\s*(#.*)?$")


def parse_exceptions(
    text: str, source: str = "exceptions file", known: Collection[str] | None = None
) -> list[ExceptionEntry]:
    """``<path glob> RULE[,RULE...]`` per line (``*`` = every rule); ``#`` starts a comment.

    :param known: the valid rule ids (default: the pipeline review's; the API review passes its own)."""
    out: list[ExceptionEntry] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = _EXC_LINE.match(line)
        if not m:
            raise ConfigError(f"{source}:{n}", f"expected '<path glob> RULE[,RULE]', got {raw!r}")
        rules = tuple(r.strip() for r in re.split(r"[,\s]+", m.group("rules")) if r.strip())
        for r in rules:
            if r != "*" and r not in (RULES if known is None else known):
                raise ConfigError(f"{source}:{n}", f"unknown rule id {r!r}")
        out.append(ExceptionEntry(pattern=m.group("pattern"), rules=rules))
    return out


def find_pyproject(start: Path) -> Path | None:
    cur = start.resolve()
    if cur.is_file():
        cur = cur.parent
    for d in (cur, *cur.parents):
        cand = d / "pyproject.toml"
        if cand.is_file():
            return cand
    return None


#: ``[tool.dataeng.review]`` (see :meth:`RuleSettings.load`)
load_config = ReviewConfig.load


def resolve_config(
    config: ReviewConfig | str | Path | dict[str, Any] | None = None,
    *,
    profile: str | None = None,
    search_from: str | Path | None = None,
) -> ReviewConfig:
    """The one way every entry point (CLI, Airflow operator, Prefect task, ``review_paths``) turns its
    review settings into a :class:`ReviewConfig`.

    :param config: a :class:`ReviewConfig` (used as given), a path to a TOML file (its
        ``[tool.dataeng.review]`` table, or top-level keys), a dict of settings, or ``None``: the
        ``pyproject.toml`` found upwards from ``search_from`` (no file: the defaults).
    :param profile: ``None`` keeps the profile the config sets (``default`` when it sets none); a
        profile given here wins over the file.
    :param search_from: where to start looking for ``pyproject.toml`` when ``config`` is ``None``.
    """
    if profile is not None and profile not in PROFILES:
        raise ConfigError("profile", f"expected one of {', '.join(PROFILES)}, got {profile!r}")
    if isinstance(config, ReviewConfig):
        return (
            config
            if profile is None or profile == config.profile
            else config.model_copy(update={"profile": profile})
        )
    if isinstance(config, dict):
        return load_config(profile=profile, overrides=config)
    if config is not None:
        return load_config(profile=profile, pyproject=config)
    return load_config(profile=profile, search_from=search_from)


#: see :meth:`RuleSettings.from_dict`
config_from_dict = ReviewConfig.from_dict
