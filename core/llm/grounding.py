"""The grounding check: every number in the model's prose must be one the results already hold.

Rule (what counts as "the same number, rounded as displayed"):

1. Numbers are read from every prose field of the answer (not from ``refs`` / ``finding_ids``).
   ``12,345`` is 12345; ``4e-4`` is 0.0004; a ``k``/``M``/``B``/``bn`` suffix multiplies; ``%`` marks a percentage;
   the sign is ignored (a "3.2% drop" and ``-0.032`` are the same claim).
2. A prose number ``x`` written with ``d`` decimals matches a fact value ``v`` when
   ``|x - |v|| <= 0.5 * 10**-d`` (``v`` rounded to the shown precision), or the same holds for the
   percent form ``100 * |v|`` (0.0321 may be written 3.2% or 3.21), or, when written with ``%``, for
   ``|v|`` itself (a fact already in percent).
3. Fact values are every number in the facts and the question, every number written inside a fact
   string, the length of every list in the facts (so "5 findings" is grounded by a list of 5), the
   number of items of a list that share a value of a text field (8 components with
   ``area: "data quality"`` ground "8 data-quality checks"), and ``1 - alpha`` for an ``alpha`` /
   ``significance_level`` (so alpha 0.05 grounds a "95% interval").
4. Not checked, because they are not claims about the results: numbers inside identifiers
   (``R012``, ``p95``, ``metric_2``, ``v1.2``, paths, times like ``02:30``, dates' parts), ordinal
   words (``1st``, ``2nd``), four-digit years 1900-2100, list markers at the start of a line
   (``1.`` / ``2)``), the integers 0 and 1, and the conventional thresholds 0.001 / 0.01 / 0.05 / 0.1
   when they follow ``<`` / ``>`` / ``≤`` / ``≥`` (``p < 0.001``).
5. Every ``refs`` / ``finding_ids`` entry must be an ``id`` present in the facts.

Numbers written as words ("three") are not checked.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

_NUM = re.compile(r"(\d{1,3}(?:,\d{3})+(?!\d|,\d)|\d+)(?:\.(\d+))?(?:[eE]([-+]?\d{1,3})(?!\w|\.\d))?")
_MULT = {"k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "bn": 1e9}
_ORDINAL = ("st", "nd", "rd", "th")
_ID_BEFORE = set("_.:/#@\\")
THRESHOLDS = (0.001, 0.01, 0.05, 0.1)
SAFE_INTEGERS = frozenset({0, 1})
REF_FIELDS = frozenset({"refs", "finding_ids"})
_LEVEL_KEY = re.compile(r"(?i)^(alpha|significance(_level)?|type_i_error)$")


@dataclass(frozen=True)
class ProseNumber:
    text: str
    value: float
    decimals: int
    multiplier: float = 1.0
    percent: bool = False
    field: str = ""


@dataclass
class GroundingResult:
    unmatched: list[ProseNumber] = field(default_factory=list)
    unknown_refs: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.unmatched and not self.unknown_refs

    def describe(self) -> str:
        parts = []
        if self.unmatched:
            shown = ", ".join(f"{n.text!r} in {n.field}" for n in self.unmatched[:10])
            parts.append(f"numbers not in the results: {shown}")
        if self.unknown_refs:
            parts.append(f"unknown result ids: {', '.join(self.unknown_refs[:10])}")
        return "; ".join(parts)


def extract_numbers(text: str, field_name: str = "") -> list[ProseNumber]:
    """The numbers in ``text`` that are claims (see the module rule 4 for what is skipped)."""
    out: list[ProseNumber] = []
    for m in _NUM.finditer(text):
        start, end = m.span()
        prev = text[start - 1] if start else " "
        if prev.isalnum() or prev in _ID_BEFORE:
            continue
        if prev == "-" and start >= 2 and (text[start - 2].isalnum() or text[start - 2] == "_"):
            continue
        after = text[end:]
        if after[:1] in ("_",) or (after[:1] == "." and after[1:2].isalnum()):
            continue
        if after[:1] == ":" and after[1:2].isdigit():  # a time such as 02:30
            continue
        whole, frac = m.group(1), m.group(2) or ""
        value = float(whole.replace(",", "") + ("." + frac if frac else ""))
        word = re.match(r"[A-Za-z]+", after)
        multiplier, percent = 1.0, False
        if m.group(3) is not None:  # scientific notation: 4e-4
            multiplier = _power_of_ten(m.group(3))
        elif word:
            w = word.group(0)
            if w.lower() in _ORDINAL:
                continue
            if w in _MULT:
                multiplier = _MULT[w]
        elif re.match(r"\s?%", after):
            percent = True
        line_start = text.rfind("\n", 0, start) + 1
        if not frac and text[line_start:start].strip() == "" and re.match(r"[.)]\s", after):
            continue  # a list marker "1. " / "2) "
        plain_integer = not frac and multiplier == 1.0 and not percent
        if plain_integer and (1900 <= value <= 2100 or value in SAFE_INTEGERS):
            continue
        before = text[max(0, start - 3) : start].rstrip()
        after_comparison = before[-1:] in ("<", ">", "≤", "≥")
        if after_comparison and any(math.isclose(value, t) for t in THRESHOLDS):
            continue
        out.append(ProseNumber(m.group(0), value, len(frac), multiplier, percent, field_name))
    return out


def fact_values(facts: Any, extra_texts: Iterable[str] = ()) -> list[float]:
    """Sorted absolute values of every number the facts (and ``extra_texts``) hold; see rule 3."""
    values: list[float] = []

    def walk(obj: Any) -> None:
        if isinstance(obj, bool):
            return
        if isinstance(obj, int | float):
            if math.isfinite(obj):
                values.append(abs(float(obj)))
        elif isinstance(obj, str):
            values.extend(abs(n.value * n.multiplier) for n in _all_numbers(obj))
        elif isinstance(obj, dict):
            for k, v in obj.items():
                if _LEVEL_KEY.search(str(k)) and isinstance(v, int | float) and 0 < v < 1:
                    values.append(1.0 - float(v))  # alpha 0.05 -> a 95% interval
                walk(v)
        elif isinstance(obj, list | tuple):
            values.append(float(len(obj)))
            values.extend(_category_counts(obj))
            for v in obj:
                walk(v)

    walk(facts)
    for t in extra_texts:
        walk(t)
    return sorted(values)


def _category_counts(items: list[Any] | tuple[Any, ...]) -> list[float]:
    """How many items of a list of objects share each value of a text field (8 "data quality" checks)."""
    counts: dict[tuple[str, str], int] = {}
    for item in items:
        if isinstance(item, dict):
            for k, v in item.items():
                if isinstance(v, str) and k != "id" and len(v) <= 80:
                    counts[(k, v)] = counts.get((k, v), 0) + 1
    return [float(c) for c in counts.values()]


def _all_numbers(text: str) -> list[ProseNumber]:
    # Inside facts every written number counts as a value, ids included (harmless: more matches).
    out = []
    for m in _NUM.finditer(text):
        frac = m.group(2) or ""
        scale = _power_of_ten(m.group(3)) if m.group(3) is not None else 1.0
        if not 0.0 < scale < math.inf:
            continue  # "7e400" inside an id or hash is no value a prose number could cite
        out.append(ProseNumber(m.group(0), float(m.group(1).replace(",", "") + ("." + frac if frac else "")) * scale, len(frac)))
    return out


def fact_ids(facts: Any) -> set[str]:
    """Every ``id`` string anywhere in the facts."""
    ids: set[str] = set()

    def walk(obj: Any) -> None:
        if isinstance(obj, dict):
            v = obj.get("id")
            if isinstance(v, str):
                ids.add(v)
            for x in obj.values():
                walk(x)
        elif isinstance(obj, list | tuple):
            for x in obj:
                walk(x)

    walk(facts)
    return ids


def _in_range(sorted_values: list[float], lo: float, hi: float) -> bool:
    i = bisect.bisect_left(sorted_values, lo)
    return i < len(sorted_values) and sorted_values[i] <= hi


def _power_of_ten(exponent: str) -> float:
    # float("1e400") is inf where 10.0 ** 400 raises OverflowError: ids and hashes hold such text.
    return float(f"1e{int(exponent)}")


def number_matches(n: ProseNumber, sorted_values: list[float]) -> bool:
    if not 0.0 < n.multiplier < math.inf:
        return False  # a written 1e999 cannot cite any fact
    half = 0.5 * 10.0 ** (-n.decimals) + 1e-9
    lo, hi = (n.value - half) * n.multiplier, (n.value + half) * n.multiplier
    if _in_range(sorted_values, lo, hi):
        return True
    # percent form of a proportion: 0.0321 shown as 3.2 / 3.21 (with or without %)
    return _in_range(sorted_values, lo / 100.0, hi / 100.0)


def prose_fields(model: BaseModel) -> list[tuple[str, str]]:
    """``(path, text)`` of every prose string of an output model (provenance and id lists excluded)."""
    out: list[tuple[str, str]] = []

    def walk(obj: Any, path: str) -> None:
        if isinstance(obj, str):
            out.append((path, obj))
        elif isinstance(obj, dict):
            for k, v in obj.items():
                if k in REF_FIELDS or k == "provenance":
                    continue
                walk(v, f"{path}.{k}" if path else k)
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                walk(v, f"{path}[{i}]")

    walk(model.model_dump(), "")
    return out


def referenced_ids(model: BaseModel) -> list[str]:
    refs: list[str] = []

    def walk(obj: Any) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                if k in REF_FIELDS and isinstance(v, list):
                    refs.extend(str(x) for x in v)
                elif k != "provenance":
                    walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)

    walk(model.model_dump())
    return refs


def check_grounding(answer: BaseModel, facts: Any, *, question: str | None = None) -> GroundingResult:
    """Check ``answer`` against ``facts`` (and the user's ``question``) by the module's rule."""
    values = fact_values(facts, [question] if question else [])
    known_ids = fact_ids(facts)
    result = GroundingResult()
    for path, text in prose_fields(answer):
        for n in extract_numbers(text, path):
            result.checked += 1
            if not number_matches(n, values):
                result.unmatched.append(n)
    seen: set[str] = set()
    for ref in referenced_ids(answer):
        if ref not in known_ids and ref not in seen:
            result.unknown_refs.append(ref)
            seen.add(ref)
    return result
