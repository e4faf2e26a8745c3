"""Breaking-change detection between two versions of a contract (OpenAPI, GraphQL SDL, protobuf).

Classification follows what a client that works against OLD experiences against NEW:

* ``breaking``: the client's requests are rejected, or it cannot read the responses (removed
  path/operation/field/success status, new required request field or parameter, type change,
  narrowed enum or bound on input, changed or added auth, removed proto field without
  ``reserved``, GraphQL field removal or nullability change).
* ``warning``: usually safe, but some clients break (new enum value in a response, a renamed
  proto field with the same number, a server URL change).
* ``info``: additive changes.

GraphQL uses graphql-core's ``find_breaking_changes`` / ``find_dangerous_changes``. The anchors
are oasdiff, buf breaking (FILE category) and graphql-inspector.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any, Literal

from dataeng_agents.core.api.loader import (
    ApiDocument,
    ApiParseError,
    FileReader,
    GraphQLDocument,
    OpenApiDocument,
    ProtoDocument,
    kind_of,
    parse_document,
)
from dataeng_agents.core.api.models import ApiKind
from dataeng_agents.core.api.openapi_model import (
    Operation,
    effective_security,
    merged_properties,
    merged_required,
    operations,
    responses,
    schema_media,
    schema_types,
)
from dataeng_agents.core.errors import InputError
from pydantic import BaseModel, ConfigDict, Field

ChangeLevel = Literal["breaking", "warning", "info"]
DiffFailOn = Literal["breaking", "warning", "never"]
_RANK = {"breaking": 3, "warning": 2, "info": 1}


class ApiChange(BaseModel):
    """One difference between OLD and NEW; ``id`` is stable for the same change."""

    model_config = ConfigDict(extra="forbid")

    id: str
    level: ChangeLevel
    kind: str = Field(description="Change type, e.g. operation-removed, response-property-removed.")
    subject: str
    message: str
    line: int = Field(default=1, description="Line in NEW (OLD for removals).")
    side: Literal["old", "new"] = "new"


class ApiDiffResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api: ApiKind
    old: str
    new: str
    changes: list[ApiChange] = Field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {"breaking": 0, "warning": 0, "info": 0}
        for c in self.changes:
            out[c.level] += 1
        return out

    @property
    def breaking(self) -> list[ApiChange]:
        return [c for c in self.changes if c.level == "breaking"]

    def exit_code(self, fail_on: DiffFailOn = "breaking") -> int:
        """1 when a change at or above ``fail_on`` exists, else 0 (``never``: always 0)."""
        if fail_on == "never":
            return 0
        return 1 if any(_RANK[c.level] >= _RANK[fail_on] for c in self.changes) else 0

    def summary(self) -> dict[str, Any]:
        kinds: dict[str, int] = {}
        for c in self.changes:
            kinds[c.kind] = kinds.get(c.kind, 0) + 1
        return {
            "api": self.api,
            "old": self.old,
            "new": self.new,
            "changes": self.counts(),
            "kinds": dict(sorted(kinds.items())),
        }

    def to_markdown(self) -> str:
        from dataeng_agents.core.api.render import render_diff_markdown

        return render_diff_markdown(self)


class _Changes:
    def __init__(self, old: str, new: str) -> None:
        self.items: list[ApiChange] = []
        self.old, self.new = old, new
        self._seen: set[tuple[str, str, str]] = set()

    def add(
        self,
        level: ChangeLevel,
        kind: str,
        subject: str,
        message: str,
        line: int = 1,
        side: Literal["old", "new"] = "new",
    ) -> None:
        key = (kind, subject, message)
        if key in self._seen:
            return
        self._seen.add(key)
        digest = hashlib.sha1(f"{kind}|{subject}|{message}".encode()).hexdigest()[:10]
        self.items.append(
            ApiChange(
                id=f"{kind}-{digest}",
                level=level,
                kind=kind,
                subject=subject,
                message=message,
                line=max(line, 1),
                side=side,
            )
        )


# ------------------------------------------------------------------------------------------ entry points
def _git_toplevel(cwd: Path) -> Path:
    out = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return Path(out.stdout.strip()).resolve()


def _git_show(top: Path, ref: str, path: Path) -> str:
    """``git show REF:PATH`` with ``path`` made relative to the repository root ``top`` (``ValueError``
    when it is outside it)."""
    rel = path.relative_to(top).as_posix()
    return subprocess.run(
        ["git", "show", f"{ref}:{rel}"], cwd=top, capture_output=True, text=True, check=True, timeout=60
    ).stdout


def read_git_file(ref: str, path: str | Path, cwd: str | Path | None = None) -> str:
    """The content of ``path`` at git ``ref`` (``git show REF:PATH`` relative to the repository root)."""
    p = Path(path).resolve()
    try:
        return _git_show(_git_toplevel(Path(cwd) if cwd else p.parent), ref, p)
    except FileNotFoundError as exc:
        raise InputError("--base", "git is not installed") from exc
    except subprocess.CalledProcessError as exc:
        raise InputError("--base", f"cannot read {path} at {ref!r}: {exc.stderr.strip() or exc}") from exc
    except ValueError as exc:
        raise InputError("--base", f"{path} is not inside the git repository") from exc


def diff_paths(old: str | Path, new: str | Path, *, base_ref: str | None = None) -> ApiDiffResult:
    """Compare two contract files (or NEW against itself at git ``base_ref`` when ``base_ref`` is set)."""
    new_path = str(new)
    try:
        new_text = Path(new_path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(new_path, f"cannot read: {exc}") from exc
    if base_ref:
        old_label, old_text = f"{base_ref}:{new_path}", read_git_file(base_ref, new_path)
        folder: Path | None = Path(new_path).resolve().parent
    else:
        old_label, folder = str(old), None
        try:
            old_text = Path(old_label).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise InputError(old_label, f"cannot read: {exc}") from exc
    kind = kind_of(new_path) or kind_of(old_label)
    if kind is None:
        raise InputError(new_path, "unknown contract type (use .yaml/.json, .graphql or .proto)")
    old_doc = parse_document(old_label, old_text, kind)
    if isinstance(old_doc, OpenApiDocument) and base_ref:
        # the other files of a multi-file spec, as they were at the same ref
        old_doc.folder = folder
        old_doc.read_file = _git_reader(base_ref, Path(new_path).resolve())
    return diff_documents(old_doc, parse_document(new_path, new_text, kind))


def _git_reader(ref: str, anchor: Path) -> FileReader:
    """Reads the files of the repository that holds ``anchor`` as they were at ``ref``; ``None`` for
    a file that is not in that commit (its reference then stays opaque and is reported)."""
    top: Path | None = None

    def read(path: Path) -> str | None:
        nonlocal top
        try:
            if top is None:
                top = _git_toplevel(anchor.parent)  # once: a multi-file spec reads hundreds of files
            return _git_show(top, ref, Path(path))
        except (OSError, ValueError, subprocess.SubprocessError):
            return None

    return read


def diff_documents(old: ApiDocument, new: ApiDocument) -> ApiDiffResult:
    if old.kind != new.kind:
        raise InputError(new.path, f"cannot compare a {old.kind} contract with a {new.kind} contract")
    ch = _Changes(old.path, new.path)
    if isinstance(old, OpenApiDocument) and isinstance(new, OpenApiDocument):
        _diff_openapi(ch, old, new)
    elif isinstance(old, GraphQLDocument) and isinstance(new, GraphQLDocument):
        _diff_graphql(ch, old, new)
    elif isinstance(old, ProtoDocument) and isinstance(new, ProtoDocument):
        _diff_proto(ch, old, new)
    changes = sorted(ch.items, key=lambda c: (-_RANK[c.level], c.subject, c.kind, c.id))
    return ApiDiffResult(api=new.kind, old=old.path, new=new.path, changes=changes)


# ------------------------------------------------------------------------------------------ OpenAPI
def _diff_openapi(ch: _Changes, old: OpenApiDocument, new: OpenApiDocument) -> None:
    old_ops = {(o.method, _norm_path(o.path)): o for o in operations(old)}
    new_ops = {(o.method, _norm_path(o.path)): o for o in operations(new)}
    old_paths = {_norm_path(p) for p in (old.data.get("paths") or {})}
    new_paths = {_norm_path(p) for p in (new.data.get("paths") or {})}
    for key, o in old_ops.items():
        if key not in new_ops:
            if key[1] not in new_paths:
                ch.add(
                    "breaking",
                    "path-removed",
                    o.path,
                    f"path {o.path} was removed ({o.subject})",
                    old.line(("paths", o.path)),
                    "old",
                )
            else:
                ch.add(
                    "breaking",
                    "operation-removed",
                    o.subject,
                    f"operation {o.subject} was removed",
                    old.line(o.pointer),
                    "old",
                )
    for key, n in new_ops.items():
        if key not in old_ops:
            kind = "path-added" if key[1] not in old_paths else "operation-added"
            ch.add("info", kind, n.subject, f"operation {n.subject} was added", new.line(n.pointer))
            continue
        _diff_operation(ch, old, new, old_ops[key], n)
    sides: tuple[tuple[OpenApiDocument, Literal["old", "new"]], ...] = ((old, "old"), (new, "new"))
    for doc, side in sides:
        refs = doc.external_refs(doc.data.get("paths")) + doc.external_refs(doc.data.get("components"))
        if refs:
            # a reference into a file that cannot be read (a URL, a missing file) would otherwise compare
            # as "nothing changed" while what it names may have changed
            ch.add(
                "warning",
                "external-refs-not-compared",
                doc.path,
                f"{len(refs)} $ref(s) in {doc.path} point into files that cannot be read (e.g. "
                f"{refs[0]}); what they reference is not compared: bundle the document into one file "
                "first (redocly bundle)",
                1,
                side,
            )
    old_servers = {s.get("url") for s in old.data.get("servers") or [] if isinstance(s, dict)}
    new_servers = {s.get("url") for s in new.data.get("servers") or [] if isinstance(s, dict)}
    for url in sorted(u for u in old_servers - new_servers if isinstance(u, str)):
        ch.add("warning", "server-removed", url, f"server {url} is no longer listed", new.line(("servers",)))


def _norm_path(path: str) -> str:
    """``/users/{userId}`` and ``/users/{id}`` are the same path to a client."""
    return "/".join("{}" if s.startswith("{") and s.endswith("}") else s for s in str(path).split("/"))


#: one security requirement: its schemes, each with the scopes it asks for (empty for non-OAuth schemes)
_Requirement = frozenset[tuple[str, frozenset[str]]]


def _security_alternatives(doc: OpenApiDocument, op: Operation) -> set[_Requirement] | None:
    sec = effective_security(doc, op)
    if sec is None:
        return None
    return {
        frozenset(
            (str(scheme), frozenset(str(s) for s in scopes) if isinstance(scopes, list) else frozenset())
            for scheme, scopes in req.items()
        )
        for req in sec
    }


def _still_accepted(old_req: _Requirement, new_sec: set[_Requirement]) -> bool:
    """Whether a client that meets ``old_req`` meets one of the new alternatives: the alternative asks
    for no scheme the client lacks and, per scheme, no scope its token lacks (a scope added to a
    requirement breaks clients whose tokens were issued without it)."""
    have = dict(old_req)
    return any(all(s in have and scopes <= have[s] for s, scopes in req) for req in new_sec)


def _requirement_text(req: _Requirement) -> str:
    return "+".join(sorted(f"{s}[{' '.join(sorted(sc))}]" if sc else s for s, sc in req))


def _diff_operation(
    ch: _Changes, old: OpenApiDocument, new: OpenApiDocument, o: Operation, n: Operation
) -> None:
    subj = n.subject
    line = new.line(n.pointer)
    # auth
    old_sec, new_sec = _security_alternatives(old, o), _security_alternatives(new, n)
    old_open = old_sec is None or not old_sec or frozenset() in old_sec
    new_open = new_sec is None or not new_sec or frozenset() in new_sec
    if old_open and not new_open:
        ch.add("breaking", "security-added", subj, f"{subj} now requires authentication", line)
    elif not old_open and not new_open and old_sec != new_sec:
        dropped = sorted(
            _requirement_text(a) for a in old_sec or set() if not _still_accepted(a, new_sec or set())
        )
        if dropped:
            ch.add(
                "breaking",
                "security-changed",
                subj,
                f"{subj} no longer accepts the security requirement(s) {', '.join(dropped)}",
                line,
            )
        else:
            ch.add(
                "info",
                "security-alternative-added",
                subj,
                f"{subj} accepts additional or narrower security requirements",
                line,
            )
    elif not old_open and new_open:
        ch.add("warning", "security-removed", subj, f"{subj} no longer requires authentication", line)
    # parameters
    old_params = {
        (loc, name.lower() if loc == "header" else name): p for (loc, name), (p, _) in o.parameters.items()
    }
    for (loc, name), (param, ptr) in n.parameters.items():
        key = (loc, name.lower() if loc == "header" else name)
        required = bool(param.get("required")) or loc == "path"
        before = old_params.get(key)
        if before is None:
            if required and loc != "path":
                ch.add(
                    "breaking",
                    "new-required-request-parameter",
                    subj,
                    f"{subj} has the new required {loc} parameter '{name}'",
                    new.line(ptr),
                )
            elif loc != "path":
                ch.add(
                    "info",
                    "new-optional-request-parameter",
                    subj,
                    f"{subj} has the new optional {loc} parameter '{name}'",
                    new.line(ptr),
                )
            continue
        if required and not (bool(before.get("required")) or loc == "path"):
            ch.add(
                "breaking",
                "request-parameter-became-required",
                subj,
                f"{subj}: {loc} parameter '{name}' became required",
                new.line(ptr),
            )
        _diff_schema(
            ch,
            old,
            new,
            before.get("schema"),
            param.get("schema"),
            "request",
            f"{subj} {loc} parameter '{name}'",
            new.line(ptr),
            set(),
        )
    new_keys = {(loc, name.lower() if loc == "header" else name) for (loc, name) in n.parameters}
    for key in old_params:
        if key not in new_keys and key[0] != "path":
            ch.add(
                "warning",
                "request-parameter-removed",
                subj,
                f"{subj}: {key[0]} parameter '{key[1]}' was removed (clients still sending it may be rejected)",
                line,
            )
    # request body
    ob, nb = old.resolve(o.op.get("requestBody")), new.resolve(n.op.get("requestBody"))
    if isinstance(nb, dict):
        if nb.get("required") and not (isinstance(ob, dict) and ob.get("required")):
            ch.add(
                "breaking",
                "request-body-became-required",
                subj,
                f"{subj}: the request body became required",
                line,
            )
        old_media = dict(schema_media(old, ob)) if isinstance(ob, dict) else {}
        for mt, media in schema_media(new, nb):
            if mt in old_media:
                _diff_schema(
                    ch,
                    old,
                    new,
                    old_media[mt].get("schema"),
                    media.get("schema"),
                    "request",
                    f"{subj} request body",
                    line,
                    set(),
                )
        if old_media and not any(mt in old_media for mt, _ in schema_media(new, nb)):
            ch.add(
                "breaking",
                "request-media-type-removed",
                subj,
                f"{subj}: request media type(s) {', '.join(sorted(old_media))} no longer accepted",
                line,
            )
    # responses
    old_resps, new_resps = responses(old, o), responses(new, n)
    for code in old_resps:
        if code.startswith("2") and code not in new_resps:
            ch.add(
                "breaking",
                "response-success-status-removed",
                subj,
                f"{subj}: success status {code} is no longer returned",
                line,
            )
    for code, (resp, rptr) in new_resps.items():
        if code not in old_resps:
            level: ChangeLevel = "warning" if code.startswith("2") else "info"
            ch.add(
                level, "response-status-added", subj, f"{subj}: new response status {code}", new.line(rptr)
            )
            continue
        old_media = dict(schema_media(old, old_resps[code][0]))
        for mt, media in schema_media(new, resp):
            if mt in old_media:
                _diff_schema(
                    ch,
                    old,
                    new,
                    old_media[mt].get("schema"),
                    media.get("schema"),
                    "response",
                    f"{subj} {code} response",
                    new.line(rptr),
                    set(),
                )
            elif old_media and code.startswith("2"):
                ch.add(
                    "info",
                    "response-media-type-added",
                    subj,
                    f"{subj} {code}: new media type {mt}",
                    new.line(rptr),
                )
        new_media = {mt for mt, _ in schema_media(new, resp)}
        for mt in old_media:
            if mt not in new_media and code.startswith("2"):
                ch.add(
                    "breaking",
                    "response-media-type-removed",
                    subj,
                    f"{subj} {code}: media type {mt} is no longer returned",
                    new.line(rptr),
                )


def _nullable(doc: OpenApiDocument, schema: dict[str, Any]) -> bool:
    """3.1 spells null as a type (``type: [string, "null"]``, an ``anyOf`` branch ``{type: "null"}``);
    3.0 has no null type and says ``nullable: true`` (Dropbox Sign's and Stripe's specs are 3.0)."""
    if schema.get("nullable") is True or "null" in schema_types(schema):
        return True
    branches = [b for key in ("anyOf", "oneOf") if isinstance(schema.get(key), list) for b in schema[key]]
    return any(schema_types(doc.resolve(b)) == {"null"} for b in branches)


def _single_branch(doc: OpenApiDocument, schema: dict[str, Any]) -> dict[str, Any]:
    """The one schema an ``anyOf``/``oneOf`` of a single non-null branch stands for. Stripe wraps every
    nullable or expandable reference so (``anyOf: [{$ref: ...}], nullable: true``) and 3.1 specs write
    ``anyOf: [{$ref: ...}, {type: "null"}]``; without unwrapping, changes behind them went unreported.
    A real choice between several schemas is left alone (matching branches is guesswork)."""
    if schema.get("type") is not None or "properties" in schema or "allOf" in schema:
        return schema
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list):
            real = [b for b in branches if schema_types(doc.resolve(b)) != {"null"}]
            if len(real) == 1:
                target = doc.resolve(real[0])
                return target if isinstance(target, dict) else schema
    return schema


def _diff_schema(
    ch: _Changes,
    old: OpenApiDocument,
    new: OpenApiDocument,
    os_: Any,
    ns_: Any,
    direction: str,
    where: str,
    line: int,
    seen: set[tuple[int, int]],
    depth: int = 0,
) -> None:
    os_, ns_ = old.resolve(os_), new.resolve(ns_)
    if not isinstance(os_, dict) or not isinstance(ns_, dict) or depth > 24:
        return
    # nullability is read before unwrapping: `anyOf: [{$ref: X}], nullable: true` is a nullable X
    old_null, new_null = _nullable(old, os_), _nullable(new, ns_)
    os_, ns_ = _single_branch(old, os_), _single_branch(new, ns_)
    key = (id(os_), id(ns_))
    if key in seen:
        return
    seen = seen | {key}
    ot, nt = schema_types(os_) - {"null"}, schema_types(ns_) - {"null"}
    if ot and nt and ot != nt:
        ch.add(
            "breaking",
            f"{direction}-type-changed",
            where,
            f"{where}: type changed from {'/'.join(sorted(ot))} to {'/'.join(sorted(nt))}",
            line,
        )
        return
    if direction == "response" and new_null and not old_null and ot:
        ch.add("breaking", "response-became-nullable", where, f"{where}: may now be null", line)
    if os_.get("format") and ns_.get("format") and os_["format"] != ns_["format"]:
        ch.add(
            "breaking",
            f"{direction}-format-changed",
            where,
            f"{where}: format changed from {os_['format']} to {ns_['format']}",
            line,
        )
    oe, ne = os_.get("enum"), ns_.get("enum")
    if isinstance(oe, list) and isinstance(ne, list):
        removed = [v for v in oe if v not in ne]
        added = [v for v in ne if v not in oe]
        if direction == "request" and removed:
            ch.add(
                "breaking",
                "request-enum-narrowed",
                where,
                f"{where}: enum value(s) {removed} no longer accepted",
                line,
            )
        if direction == "response" and added:
            ch.add(
                "warning",
                "response-enum-value-added",
                where,
                f"{where}: may now return enum value(s) {added}",
                line,
            )
        if direction == "response" and removed:
            ch.add(
                "info", "response-enum-value-removed", where, f"{where}: no longer returns {removed}", line
            )
        if direction == "request" and added:
            ch.add("info", "request-enum-value-added", where, f"{where}: also accepts {added}", line)
    elif direction == "request" and isinstance(ne, list) and oe is None:
        ch.add("breaking", "request-enum-narrowed", where, f"{where}: now restricted to the enum {ne}", line)
    if direction == "request":
        for bound in ("maxLength", "maxItems", "maximum"):
            ob, nb = os_.get(bound), ns_.get(bound)
            if isinstance(nb, int | float) and (ob is None or (isinstance(ob, int | float) and nb < ob)):
                ch.add(
                    "breaking",
                    "request-bound-narrowed",
                    where,
                    f"{where}: {bound} narrowed to {nb} (was {ob})",
                    line,
                )
        for bound in ("minLength", "minItems", "minimum"):
            ob, nb = os_.get(bound), ns_.get(bound)
            if isinstance(nb, int | float) and (
                (isinstance(ob, int | float) and nb > ob) or (ob is None and nb > 0)
            ):
                ch.add(
                    "breaking",
                    "request-bound-narrowed",
                    where,
                    f"{where}: {bound} raised to {nb} (was {ob})",
                    line,
                )
    # object properties
    op, np_ = merged_properties(old, os_), merged_properties(new, ns_)
    orq, nrq = merged_required(old, os_), merged_required(new, ns_)
    for name in sorted(set(op) | set(np_)):
        sub = f"{where}.{name}"
        if name in op and name not in np_:
            if direction == "response":
                ch.add(
                    "breaking",
                    "response-property-removed",
                    sub,
                    f"{where}: property '{name}' was removed",
                    line,
                )
            else:
                ch.add(
                    "warning",
                    "request-property-removed",
                    sub,
                    f"{where}: property '{name}' was removed",
                    line,
                )
        elif name not in op and name in np_:
            if direction == "request" and name in nrq:
                ch.add(
                    "breaking",
                    "new-required-request-property",
                    sub,
                    f"{where}: new required property '{name}'",
                    line,
                )
            else:
                ch.add("info", f"{direction}-property-added", sub, f"{where}: new property '{name}'", line)
        else:
            if direction == "request" and name in nrq and name not in orq:
                ch.add(
                    "breaking",
                    "request-property-became-required",
                    sub,
                    f"{where}: property '{name}' became required",
                    line,
                )
            if direction == "response" and name in orq and name not in nrq:
                ch.add(
                    "breaking",
                    "response-property-became-optional",
                    sub,
                    f"{where}: property '{name}' is no longer required (may be missing)",
                    line,
                )
            _diff_schema(ch, old, new, op[name], np_[name], direction, sub, line, seen, depth + 1)
    if "items" in os_ or "items" in ns_:
        _diff_schema(
            ch, old, new, os_.get("items"), ns_.get("items"), direction, f"{where}[]", line, seen, depth + 1
        )


# ------------------------------------------------------------------------------------------ GraphQL
def _diff_graphql(ch: _Changes, old: GraphQLDocument, new: GraphQLDocument) -> None:
    from graphql import find_breaking_changes, find_dangerous_changes

    if old.schema is None or new.schema is None:
        bad = old if old.schema is None else new
        raise ApiParseError(bad.path, f"the SDL does not build a schema: {bad.schema_error}")
    for breaking in find_breaking_changes(old.schema, new.schema):
        kind = breaking.type.name.lower().replace("_", "-")
        ch.add("breaking", kind, breaking.description.split(" ")[0].rstrip("."), breaking.description)
    for dangerous in find_dangerous_changes(old.schema, new.schema):
        kind = dangerous.type.name.lower().replace("_", "-")
        ch.add("warning", kind, dangerous.description.split(" ")[0].rstrip("."), dangerous.description)
    # additions, for the changelog
    for name, t in new.schema.type_map.items():
        if name.startswith("__"):
            continue
        before = old.schema.type_map.get(name)
        if before is None:
            ch.add(
                "info", "type-added", name, f"type {name} was added", GraphQLDocument.node_line(t.ast_node)
            )
        elif hasattr(t, "fields") and hasattr(before, "fields"):
            for fname, f in t.fields.items():
                if fname not in before.fields:
                    ch.add(
                        "info",
                        "field-added",
                        f"{name}.{fname}",
                        f"{name}.{fname} was added",
                        GraphQLDocument.node_line(getattr(f, "ast_node", None)),
                    )


# ------------------------------------------------------------------------------------------ protobuf
def _proto_index(doc: ProtoDocument) -> tuple[str | None, dict[str, Any], dict[str, Any], dict[str, Any]]:
    from dataeng_agents.core.api.proto_checks import collect

    package, messages, enums, rpcs = collect(doc.file)
    return (
        package,
        {m.name: m for m in messages},
        {e.name: e for e in enums},
        {f"{s}.{m.name}": m for s, m in rpcs},
    )


def _diff_proto(ch: _Changes, old: ProtoDocument, new: ProtoDocument) -> None:
    opkg, omsg, oenum, orpc = _proto_index(old)
    npkg, nmsg, nenum, nrpc = _proto_index(new)
    if opkg != npkg:
        ch.add(
            "breaking",
            "package-changed",
            str(npkg),
            f"package changed from {opkg} to {npkg}",
            new.line("package"),
        )
    for name, m in omsg.items():
        n = nmsg.get(name)
        if n is None:
            ch.add(
                "breaking",
                "message-removed",
                name,
                f"message {name} was removed",
                old.line(f"message:{name}"),
                "old",
            )
            continue
        by_number = {num: (fname, ftype) for fname, num, ftype in n.fields}
        by_name = {fname: (num, ftype) for fname, num, ftype in n.fields}
        for fname, num, ftype in m.fields:
            subject = f"{name}.{fname}"
            if num not in by_number:
                if n.reserved(num) and (fname in n.reserved_names or fname in by_name):
                    ch.add(
                        "info",
                        "field-removed-reserved",
                        subject,
                        f"field {subject} = {num} was removed and its number reserved",
                        new.line(f"message:{name}"),
                    )
                elif n.reserved(num):
                    ch.add(
                        "warning",
                        "field-removed-name-not-reserved",
                        subject,
                        f"field {subject} = {num} was removed; its number is reserved but not its name "
                        "(JSON/text format clients)",
                        new.line(f"message:{name}"),
                    )
                else:
                    ch.add(
                        "breaking",
                        "field-removed-without-reserve",
                        subject,
                        f"field {subject} = {num} was removed without `reserved {num};`",
                        new.line(f"message:{name}"),
                    )
                continue
            new_name, new_type = by_number[num]
            line = new.line(f"field:{name}.{new_name}")
            if new_type != ftype:
                ch.add(
                    "breaking",
                    "field-type-changed",
                    subject,
                    f"field {subject} = {num} changed type from {ftype} to {new_type}",
                    line,
                )
            if new_name != fname:
                ch.add(
                    "warning",
                    "field-renamed",
                    subject,
                    f"field {num} of {name} was renamed from {fname} to {new_name} (breaks JSON clients)",
                    line,
                )
        old_numbers = {num for _, num, _ in m.fields}
        for fname, num, _ftype in n.fields:
            if num not in old_numbers:
                ch.add(
                    "info",
                    "field-added",
                    f"{name}.{fname}",
                    f"field {name}.{fname} = {num} was added",
                    new.line(f"field:{name}.{fname}"),
                )
    for name in nmsg:
        if name not in omsg:
            ch.add("info", "message-added", name, f"message {name} was added", new.line(f"message:{name}"))
    for name, e in oenum.items():
        ne = nenum.get(name)
        if ne is None:
            ch.add(
                "breaking", "enum-removed", name, f"enum {name} was removed", old.line(f"enum:{name}"), "old"
            )
            continue
        new_values = dict(ne.values)
        for vname, num in e.values:
            if vname not in new_values:
                ch.add(
                    "breaking",
                    "enum-value-removed",
                    f"{name}.{vname}",
                    f"enum value {name}.{vname} = {num} was removed",
                    new.line(f"enum:{name}"),
                )
            elif new_values[vname] != num:
                ch.add(
                    "breaking",
                    "enum-value-number-changed",
                    f"{name}.{vname}",
                    f"enum value {name}.{vname} changed number from {num} to {new_values[vname]}",
                    new.line(f"value:{name}.{vname}"),
                )
    for key, m in orpc.items():
        n = nrpc.get(key)
        if n is None:
            ch.add("breaking", "rpc-removed", key, f"rpc {key} was removed", old.line(f"rpc:{key}"), "old")
            continue
        for side in ("input_type", "output_type"):
            ot, nt = getattr(m, side), getattr(n, side)
            if ot.type != nt.type:
                ch.add(
                    "breaking",
                    "rpc-type-changed",
                    key,
                    f"rpc {key} {side.split('_')[0]} changed from {ot.type} to {nt.type}",
                    new.line(f"rpc:{key}"),
                )
            if ot.stream != nt.stream:
                ch.add(
                    "breaking",
                    "rpc-streaming-changed",
                    key,
                    f"rpc {key} {side.split('_')[0]} streaming changed",
                    new.line(f"rpc:{key}"),
                )
    for key in nrpc:
        if key not in orpc:
            ch.add("info", "rpc-added", key, f"rpc {key} was added", new.line(f"rpc:{key}"))
