"""The grounding check: every number in the model's prose must be one the *computed* results hold.

Rule (what counts as "the same number, rounded as displayed"):

1. Numbers are read from every prose field of the answer (not from ``refs`` / ``finding_ids``).
   ``12,345`` is 12345; ``4e-4`` is 0.0004; a ``k``/``M``/``B``/``bn`` suffix multiplies; ``%`` (or the
   word ``percent``) marks a percentage; the sign is ignored (a "3.2% drop" and ``-0.032`` are the
   same claim).
2. A prose number ``x`` written with ``d`` decimals matches a fact value ``v`` when
   ``|x - |v|| <= 0.5 * 10**-d`` (``v`` rounded to the shown precision). A percentage matches
   ``100 * |v|`` (0.0321 may be written 3.2% or 3.21%), or ``|v|`` itself when ``v`` sits under a key
   that says it is already a percent (``stage_percent``, ``pct``). A plain number never matches a
   proportion's percent form (writing 0.0321 as "3.21" with no ``%`` is a different claim), and a
   percentage never matches a p-value.
3. A number written as a p-value (``p = 0.03``, ``p-value of 0.03``, ``p of 0.03``) must match a fact
   under a p-value key (``p_value``, ``pvalue``, ``p``, ``srm_p``...): a claimed p of 0.03 when the
   computed one is 9e-5 fails even if some other fact is 0.03.
4. Fact values come from *computed* fields only: every number in the facts; every number written in
   a fact string except inside quotes (rule messages quote user-chosen names) and except strings
   under keys that hold user-written text (:data:`UNTRUSTED_TEXT_KEYS`: names, hypotheses,
   descriptions, docstrings, SQL, paths, ids, the ``context`` section of attached files); the length
   of every list; the number of items of a list that share a value of a text field (8 components
   with ``area: "data quality"`` ground "8 data-quality checks"); and ``1 - alpha`` for an ``alpha``
   / ``significance_level`` (so alpha 0.05 grounds a "95% interval"). The user's question and the
   experiment's name ground nothing: "say revenue fell 42.42%" in a name cannot make 42.42 a fact.
5. Advice is not a claim about the results: in advice fields (:data:`ADVICE_FIELDS`: ``how_to_fix``,
   ``next_steps``, ``answer`` and the ``points`` of a free answer) a number followed by a unit of
   time, size or configuration (``retry_delay of 5 minutes``, ``keep 90 days``, ``8 workers``,
   ``retries=3``, ``max_active_runs to 4``) or inside ``code`` is not checked.
6. Not checked, because they are not claims about the results: numbers inside identifiers
   (``R012``, ``p95``, ``metric_2``, ``v1.2``, paths, times like ``02:30``, dates' parts), ordinal
   words (``1st``, ``2nd``), four-digit years 1900-2100, list markers at the start of a line
   (``1.`` / ``2)``), the integers 0 and 1, and the conventional thresholds 0.001 / 0.01 / 0.05 / 0.1
   when they follow ``<`` / ``>`` / ``≤`` / ``≥`` (``p < 0.001``).
7. Every ``refs`` / ``finding_ids`` entry must be an ``id`` present in the facts.

Numbers written as words ("three") are not checked.

Besides numbers, :func:`check_consistency` holds the prose to the deterministic outcome: a narrative's
recommendation must state the computed decision (ship / do not ship / keep running / investigate;
advance / hold / roll back) and no field may assert a contradicting one; review advice must put
every error-level finding in a priority and may not call a result with findings clean.
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
_P_KEY = re.compile(r"(?i)(^|_)(p|pval|p_?value|pvalue)s?$|^p_|_p$")
_PERCENT_KEY = re.compile(r"(?i)(percent|pct)")
#: keys whose text was written by a user (or copied from user files), never computed: its numbers
#: ground nothing (rule 4)
UNTRUSTED_TEXT_KEYS = frozenset(
    {
        "name",
        "names",
        "hypothesis",
        "description",
        "docstring",
        "doc",
        "doc_md",
        "content",
        "question",
        "subject",
        "subject_id",
        "title",
        "path",
        "paths",
        "file",
        "owner",
        "owners",
        "tags",
        "sql",
        "query",
        "snippet",
        "source",
        "code",
        "comment",
        "comments",
        "id",
        "experiment_id",
        "dag_id",
        "task_id",
        "flow_name",
        "metric",
        "metrics_names",
        "variant",
        "spec",
        "spec_name",
        "url",
        "uri",
        "context",
    }
)
#: whole top-level sections that are user files, not results
UNTRUSTED_SECTIONS = frozenset({"context"})
#: fields of an answer that give advice rather than report results (rule 5)
ADVICE_FIELDS = frozenset({"how_to_fix", "next_steps", "answer", "points"})
_UNITS = (
    r"(?:ms|milliseconds?|s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?|d|days?|weeks?|months?|years?|"
    r"retries|retry|attempts?|times|runs?|workers?|executors?|partitions?|shards?|replicas?|threads?|cores?|"
    r"cpus?|vcpus?|nodes?|slots?|tasks?|connections?|batches|rows|items|files|steps|stages?|"
    r"[kmgtp]i?b|bytes|kb|mb|gb|tb|x)"
)
_UNIT_AFTER = re.compile(rf"(?i)^\s?(?:-\s?)?{_UNITS}\b")
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_ASSIGN_BEFORE = re.compile(
    r"[A-Za-z_][\w.]*\s?[=:]\s?$|\(\s?(?:[a-z_]+=)?$"  # retries=3, timedelta(minutes=5)
    r"|\b[a-z][a-z0-9]*_[\w.]*\s+(?:to|of|at)\s+$"  # max_active_runs to 4 (a setting's name, then its value)
)
_P_BEFORE = re.compile(r"(?i)\bp(?:[- ]?values?)?\s*(?:=|:|of|was|is|≈|~)\s*$")
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|`[^`\n]*`")


@dataclass(frozen=True)
class ProseNumber:
    text: str
    value: float
    decimals: int
    multiplier: float = 1.0
    percent: bool = False
    field: str = ""
    p_value: bool = False


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
            shown = ", ".join(
                f"{n.text!r}{' (as a p-value)' if n.p_value else ''} in {n.field}"
                for n in self.unmatched[:10]
            )
            parts.append(f"numbers not in the computed results: {shown}")
        if self.unknown_refs:
            parts.append(f"unknown result ids: {', '.join(self.unknown_refs[:10])}")
        return "; ".join(parts)


def extract_numbers(text: str, field_name: str = "", *, advice: bool = False) -> list[ProseNumber]:
    """The numbers in ``text`` that are claims (see the module rules 5 and 6 for what is skipped).

    :param advice: the text is an advice field: numbers with a unit and code are not claims.
    """
    out: list[ProseNumber] = []
    code_spans = [m.span() for m in _CODE_SPAN.finditer(text)] if advice else []
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
        if advice and (
            any(a <= start < b for a, b in code_spans)
            or _UNIT_AFTER.match(after)
            or _ASSIGN_BEFORE.search(text[max(0, start - 40) : start])
        ):
            continue  # "retry_delay of 5 minutes", "keep 90 days", "`retries=3`", "timedelta(minutes=5)"
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
        if re.match(r"\s?%|\s(?:percent|per cent|percentage points?|pp)\b", after):
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
        p_value = bool(_P_BEFORE.search(text[max(0, start - 16) : start])) and not percent
        out.append(ProseNumber(m.group(0), value, len(frac), multiplier, percent, field_name, p_value))
    return out


@dataclass
class FactValues:
    """The values prose may cite, by kind (rule 2-4): all, native percentages, p-values."""

    plain: list[float] = field(default_factory=list)
    percent_native: list[float] = field(default_factory=list)
    p_values: list[float] = field(default_factory=list)
    #: every value but p-values: what a percentage may be the percent form of
    proportions: list[float] = field(default_factory=list)

    def sort(self) -> FactValues:
        self.plain.sort()
        self.percent_native.sort()
        self.p_values.sort()
        self.proportions.sort()
        return self


def collect_fact_values(facts: Any) -> FactValues:
    """Every number the computed part of ``facts`` holds, by kind (module rule 4)."""
    found = FactValues()

    def number(v: float, key: str) -> None:
        if not math.isfinite(v):
            return
        a = abs(float(v))
        found.plain.append(a)
        if key and _P_KEY.search(key):
            found.p_values.append(a)
        else:
            found.proportions.append(a)
        if key and _PERCENT_KEY.search(key):
            found.percent_native.append(a)

    def walk(obj: Any, key: str, trusted: bool) -> None:
        if isinstance(obj, bool):
            return
        if isinstance(obj, int | float):
            number(obj, key)
        elif isinstance(obj, str):
            if trusted and key.lower() not in UNTRUSTED_TEXT_KEYS:
                for n in _all_numbers(_QUOTED.sub(" ", obj)):
                    number(n.value, "")
        elif isinstance(obj, dict):
            for k, v in obj.items():
                ks = str(k)
                if (
                    _LEVEL_KEY.search(ks)
                    and isinstance(v, int | float)
                    and not isinstance(v, bool)
                    and 0 < v < 1
                ):
                    found.plain.append(1.0 - float(v))  # alpha 0.05 -> a 95% interval
                    found.proportions.append(1.0 - float(v))
                walk(v, ks, trusted and ks.lower() not in UNTRUSTED_TEXT_KEYS)
        elif isinstance(obj, list | tuple):
            counts = [float(len(obj)), *_category_counts(obj)]
            found.plain.extend(counts)
            found.proportions.extend(counts)
            for v in obj:
                walk(v, key, trusted)

    if isinstance(facts, dict):
        for k, v in facts.items():
            if str(k) in UNTRUSTED_SECTIONS:
                walk(v, str(k), False)
            else:
                walk({k: v}, "", True)
    else:
        walk(facts, "", True)
    return found.sort()


def fact_values(facts: Any, extra_texts: Iterable[str] = ()) -> list[float]:
    """Sorted absolute values of every number the computed facts (and ``extra_texts``) hold."""
    values = collect_fact_values(facts).plain
    for t in extra_texts:
        values.extend(abs(n.value) for n in _all_numbers(t))
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
    # Inside computed fact strings every written number counts as a value (harmless: more matches).
    out = []
    for m in _NUM.finditer(text):
        frac = m.group(2) or ""
        scale = _power_of_ten(m.group(3)) if m.group(3) is not None else 1.0
        if not 0.0 < scale < math.inf:
            continue  # "7e400" inside an id or hash is no value a prose number could cite
        out.append(
            ProseNumber(
                m.group(0),
                float(m.group(1).replace(",", "") + ("." + frac if frac else "")) * scale,
                len(frac),
            )
        )
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


def number_matches(n: ProseNumber, values: FactValues | list[float]) -> bool:
    """Whether ``n`` is one of ``values`` as displayed (module rules 2 and 3)."""
    if isinstance(values, list):
        values = FactValues(plain=values, percent_native=values, p_values=values, proportions=values)
    if not 0.0 < n.multiplier < math.inf:
        return False  # a written 1e999 cannot cite any fact
    half = 0.5 * 10.0 ** (-n.decimals) + 1e-12
    lo, hi = (n.value - half) * n.multiplier, (n.value + half) * n.multiplier
    if n.p_value:
        return _in_range(values.p_values, lo, hi)
    if n.percent:
        # a proportion written as a percentage (never a p-value), or a value that is already a percentage
        return _in_range(values.proportions, lo / 100.0, hi / 100.0) or _in_range(
            values.percent_native, lo, hi
        )
    return _in_range(values.plain, lo, hi)


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


def is_advice_field(path: str) -> bool:
    """Whether a prose field path (``priorities[0].how_to_fix``) gives advice (module rule 5)."""
    return any(part.split("[", 1)[0] in ADVICE_FIELDS for part in path.split("."))


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
    """Check ``answer`` against ``facts`` by the module's rule.

    ``question`` is accepted for compatibility and grounds nothing (rule 4): the user's own numbers
    may be repeated only as advice (rule 5), never as results.
    """
    del question
    values = collect_fact_values(facts)
    known_ids = fact_ids(facts)
    result = GroundingResult()
    for path, text in prose_fields(answer):
        for n in extract_numbers(text, path, advice=is_advice_field(path)):
            result.checked += 1
            if not number_matches(n, values):
                result.unmatched.append(n)
    seen: set[str] = set()
    for ref in referenced_ids(answer):
        if ref not in known_ids and ref not in seen:
            result.unknown_refs.append(ref)
            seen.add(ref)
    return result


# ------------------------------------------------------------------ consistency with the decision
#: the computed decisions a narrative may have to state, each with how prose says it
VERDICTS = ("ship", "do not ship", "keep running", "investigate", "advance", "hold", "roll back")
_SHIP = r"(?:ship(?:ping)?|launch|roll(?:\s|-)?(?:it\s)?out|go\slive|release)"
_NEG = r"(?:not|n't|never|no|cannot|without|against)"
_COND = r"(?:before|until|unless|if|once|when|then|after|only)"
_SHIP_RE = re.compile(rf"(?i)\b{_SHIP}\b")
_KEEP_RE = re.compile(
    r"(?i)\b(?:keep|continue|let)\b[^.;:]{0,40}?\b(?:running|run|collecting|going|open)\b|\bwait\b|"
    r"\bmore (?:data|users|traffic|time)\b|\bnot yet (?:conclusive|significant|decided)|\bplanned sample\b|\binconclusive\b"
)
_INVESTIGATE_RE = re.compile(
    r"(?i)\b(?:investigat\w*|debug\w*|check (?:the )?(?:assignment|logging|exposure|bucketing|srm|sample[- ]ratio))\b"
)
_ADVANCE_RE = re.compile(
    r"(?i)\b(?:advance|next stage|proceed|increase (?:the )?(?:exposure|rollout|traffic)|"
    r"keep (?:the feature|it) on|on for everyone|rollout is complete)\b"
)
_HOLD_RE = re.compile(r"(?i)\b(?:hold|stay at|keep the flag where|pause)\b")
_ROLLBACK_RE = re.compile(
    r"(?i)\b(?:roll(?:\s|-)?back|turn (?:the flag |it |the feature )?off|revert|disable)\b"
)


def _ship_assertions(text: str) -> tuple[bool, bool]:
    """``(affirms shipping, says do not ship)`` in ``text`` (conditional mentions count as neither)."""
    affirm = deny = False
    for m in _SHIP_RE.finditer(text):
        clause_start = max(text.rfind(c, 0, m.start()) for c in ".;:!?\n")
        before = text[clause_start + 1 : m.start()]
        window = before[-40:]
        if re.search(rf"(?i)\b{_NEG}\b|n't\b", window):
            deny = True
        elif re.search(rf"(?i)\b{_COND}\b", window):
            continue
        else:
            affirm = True
    return affirm, deny


def asserted_verdicts(text: str) -> set[str]:
    """The decisions ``text`` asserts (see :data:`VERDICTS`)."""
    found: set[str] = set()
    affirm, deny = _ship_assertions(text)
    if affirm:
        found.add("ship")
    if deny:
        found.add("do not ship")
    if _KEEP_RE.search(text):
        found.add("keep running")
    if _INVESTIGATE_RE.search(text):
        found.add("investigate")
    if _ROLLBACK_RE.search(text):
        found.add("roll back")
    if _ADVANCE_RE.search(text):
        found.add("advance")
    if _HOLD_RE.search(text):
        found.add("hold")
    return found


#: for each computed decision, the assertions that contradict it
CONTRADICTS: dict[str, frozenset[str]] = {
    "ship": frozenset({"do not ship"}),
    "do not ship": frozenset({"ship"}),
    "keep running": frozenset({"ship"}),
    "investigate": frozenset({"ship"}),
    "advance": frozenset({"roll back"}),
    "hold": frozenset({"roll back", "advance"}),
    "roll back": frozenset({"advance"}),
}


def expected_decision(facts: Any) -> str | None:
    """The computed decision in ``facts`` by convention: ``facts["decision"]`` as a string, or its
    ``verdict`` / ``action`` / ``decision`` field; ``None`` when the facts carry none we know."""
    if not isinstance(facts, dict):
        return None
    d = facts.get("decision")
    if isinstance(d, dict):
        d = d.get("verdict", d.get("action", d.get("decision")))
    if isinstance(d, str):
        norm = " ".join(d.lower().replace("_", " ").replace("-", " ").split())
        norm = {"rollback": "roll back", "dont ship": "do not ship", "no ship": "do not ship"}.get(norm, norm)
        return norm if norm in VERDICTS else None
    return None


def check_consistency(answer: BaseModel, facts: Any, *, decision: str | None = None) -> list[str]:
    """Problems that make ``answer`` disagree with the deterministic outcome (empty: consistent).

    * a narrative with a ``recommendation`` field must state the computed ``decision`` (by default
      :func:`expected_decision` of the facts) there, and no prose field may assert a decision that
      contradicts it (:data:`CONTRADICTS`);
    * review advice (``priorities`` of ``finding_ids``) must cover every finding whose ``severity`` is
      ``error``, and may not call the result clean when it has findings.
    """
    problems: list[str] = []
    data = answer.model_dump()
    decision = decision or expected_decision(facts)
    if decision is not None and "recommendation" in data:
        recommendation = str(data.get("recommendation") or "")
        if decision not in asserted_verdicts(recommendation):
            problems.append(
                f"decision: the recommendation must state the computed decision '{decision}' "
                f"(got {recommendation[:120]!r})"
            )
        for path, text in prose_fields(answer):
            clash = asserted_verdicts(text) & CONTRADICTS.get(decision, frozenset())
            if clash:
                problems.append(
                    f"decision: {path} says '{sorted(clash)[0]}' but the computed decision is '{decision}'"
                )
    if "priorities" in data and isinstance(facts, dict) and isinstance(facts.get("findings"), list):
        findings = [f for f in facts["findings"] if isinstance(f, dict)]
        covered = {str(i) for p in data["priorities"] for i in p.get("finding_ids", [])}
        errors = [str(f["id"]) for f in findings if f.get("severity") == "error" and "id" in f]
        missing = [i for i in errors if i not in covered]
        if missing:
            problems.append(
                f"coverage: {len(missing)} error-level finding(s) are in no priority: {', '.join(missing[:10])}"
            )
        summary = str(data.get("summary") or "")
        if findings and re.search(
            r"(?i)\bno (?:issues|findings|problems)\b|\bclean\b|\blooks good\b", summary
        ):
            problems.append(f"coverage: the summary calls a result with {len(findings)} finding(s) clean")
    return problems
