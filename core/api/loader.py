"""Loading contract files into parsed documents: OpenAPI (YAML/JSON), GraphQL SDL and protobuf.

Every format is parsed by a maintained parser: PyYAML's node tree (kept for line numbers) plus
``openapi-spec-validator`` for OpenAPI, ``graphql-core`` for SDL, ``proto-schema-parser`` (an ANTLR
grammar of the protobuf language) for ``.proto``. Nothing here matches regular expressions over the
text. A file that cannot be parsed raises :class:`ApiParseError` naming the line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from dataeng_agents.core.api.models import ApiKind
from dataeng_agents.core.errors import InputError

OPENAPI_SUFFIXES = (".yaml", ".yml", ".json")
GRAPHQL_SUFFIXES = (".graphql", ".graphqls", ".gql", ".sdl")
PROTO_SUFFIXES = (".proto",)
ALL_SUFFIXES = OPENAPI_SUFFIXES + GRAPHQL_SUFFIXES + PROTO_SUFFIXES

Pointer = tuple[str, ...]


class ApiParseError(InputError):
    """A contract file could not be parsed; ``field`` is the file and line."""


class NotOpenApiError(ApiParseError):
    """A YAML/JSON file that is not an OpenAPI 3 document at all (no top-level ``openapi`` key)."""


# libyaml's parser when PyYAML was built with it (10x faster on large specs); same node tree and marks
_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _SpecLoader(_YamlLoader):  # type: ignore[misc]
    """SafeLoader that keeps dates as strings (JSON has none; ``example: 2024-01-01`` stays text) and
    turns every mapping key into a string (``200:`` response codes are keys like ``"200"``)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        return {
            k if isinstance(k, str) else str(k).lower() if isinstance(k, bool) else str(k): v
            for k, v in mapping.items()
        }


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _YamlLoader.yaml_implicit_resolvers.items()
}


#: reads one file of a multi-file spec by its path; ``None`` when it cannot be read
FileReader = Callable[[Path], str | None]


@dataclass
class OpenApiDocument:
    """A parsed OpenAPI document with a JSON-pointer -> line index.

    ``$ref`` into other files of a multi-file spec (``$ref: resources/account/account_get.yml``, a
    file path relative to the document, with an optional ``#/pointer``) are followed when the document
    knows how to read its neighbours (``read_file``: the file system for a document on disk, git for
    an old version read with ``--base``); URLs and files that cannot be read stay opaque."""

    path: str
    text: str
    data: dict[str, Any]
    lines: dict[Pointer, int] = field(default_factory=dict)

    kind: ApiKind = "openapi"
    read_file: FileReader | None = field(default=None, repr=False, compare=False)
    #: the folder relative file references start from (default: the folder of ``path``)
    folder: Path | None = field(default=None, repr=False, compare=False)
    _files: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def version(self) -> str:
        return str(self.data.get("openapi", ""))

    def line(self, pointer: Pointer) -> int:
        """The line of ``pointer``, else of its nearest parent that has one (1 for the root)."""
        p = tuple(pointer)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return 1

    def resolve(self, node: Any, _seen: frozenset[str] = frozenset()) -> Any:
        """Follow ``$ref`` until a non-reference: local ones (``#/components/...``) and, where the
        document can read them, other files of the spec (``schemas/order.yaml#/Order``). A reference
        that cannot be followed (a URL, a missing file or pointer, a cycle) is returned as it is."""
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in _seen:
                return node
            _seen = _seen | {ref}
            file_part, _, fragment = ref.partition("#")
            target: Any = self._file(file_part) if file_part else self.data
            if target is None or (fragment and not fragment.startswith("/")):
                return node
            for part in fragment[1:].split("/") if fragment else ():
                part = part.replace("~1", "/").replace("~0", "~")
                if isinstance(target, dict) and part in target:
                    target = target[part]
                elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
                    target = target[int(part)]
                else:
                    return node
            node = target
        return node

    def external_refs(self, node: Any) -> list[str]:
        """The ``$ref`` under ``node`` into other files that cannot be followed (sorted); extensions
        (``x-codeSamples``), descriptions and examples are not part of the contract and are skipped."""
        out: list[str] = []
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, dict):
                ref = n.get("$ref")
                if isinstance(ref, str) and not ref.startswith("#") and self.resolve(n) is n:
                    out.append(ref)
                stack.extend(
                    v for k, v in n.items() if not str(k).startswith("x-") and k not in _NOT_CONTRACT
                )
            elif isinstance(n, list):
                stack.extend(n)
        return sorted(out)

    def ref_pointer(self, node: Any) -> Pointer | None:
        """The pointer a local ``$ref`` names, or ``None``."""
        if isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            return tuple(p.replace("~1", "/").replace("~0", "~") for p in node["$ref"][2:].split("/"))
        return None

    def _file(self, ref_path: str) -> Any:
        """The parsed content of another file of the spec (cached), its own references made absolute so
        that they resolve from any document; ``None`` when it cannot be read or parsed."""
        if self.read_file is None or "://" in ref_path or not ref_path.lower().endswith(OPENAPI_SUFFIXES):
            return None
        folder = self.folder if self.folder is not None else Path(self.path).parent
        # absolute: the references inside that file are rewritten against it and must not depend on cwd
        key = os.path.abspath(os.path.join(folder, ref_path))
        if key in self._files:
            return self._files[key]
        data: Any = None
        text = self.read_file(Path(key))
        if text is not None:
            loader = _SpecLoader(text)
            try:
                data = loader.get_single_data()
            except yaml.YAMLError:
                data = None
            finally:
                loader.dispose()
            _absolute_refs(data, key)
        self._files[key] = data
        return data


#: keys whose values describe or illustrate the contract without being part of it
_NOT_CONTRACT = frozenset({"$ref", "description", "example", "examples"})


def _absolute_refs(data: Any, file: str) -> None:
    """Rewrite the references inside another file of the spec to absolute paths: ``#/x`` to
    ``<file>#/x``, ``other.yaml#/x`` to ``<file's folder>/other.yaml#/x``."""
    folder = os.path.dirname(file)
    stack = [data]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            ref = n.get("$ref")
            if isinstance(ref, str) and "://" not in ref:
                file_part, sep, fragment = ref.partition("#")
                target = os.path.normpath(os.path.join(folder, file_part)) if file_part else file
                n["$ref"] = f"{target}{sep}{fragment}"
            stack.extend(n.values())
        elif isinstance(n, list):
            stack.extend(n)


def read_if_file(path: Path) -> str | None:
    """The :data:`FileReader` of a document on disk."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None


@dataclass
class GraphQLDocument:
    """A parsed SDL document; ``schema`` is ``None`` when it does not build (``schema_error`` says why)."""

    path: str
    text: str
    document: Any  # graphql.language.DocumentNode
    schema: Any  # graphql.GraphQLSchema | None
    schema_error: str | None = None

    kind: ApiKind = "graphql"

    @staticmethod
    def node_line(node: Any) -> int:
        loc = getattr(node, "loc", None)
        if loc is None:
            return 1
        from graphql.language import get_location

        return int(get_location(loc.source, loc.start).line)


@dataclass
class ProtoDocument:
    """A parsed ``.proto`` file; ``lines`` maps ``message:Outer.Inner``, ``field:Outer.name``,
    ``enum:...``, ``value:Enum.NAME``, ``service:...``, ``rpc:Service.Method`` and ``package`` to lines."""

    path: str
    text: str
    file: Any  # proto_schema_parser.ast.File
    lines: dict[str, int] = field(default_factory=dict)

    kind: ApiKind = "proto"

    def line(self, key: str) -> int:
        return self.lines.get(key, 1)


ApiDocument = OpenApiDocument | GraphQLDocument | ProtoDocument


def kind_of(path: str) -> ApiKind | None:
    low = path.lower()
    if low.endswith(PROTO_SUFFIXES):
        return "proto"
    if low.endswith(GRAPHQL_SUFFIXES):
        return "graphql"
    if low.endswith(OPENAPI_SUFFIXES):
        return "openapi"
    return None


def parse_document(path: str, text: str, kind: ApiKind | None = None) -> ApiDocument:
    """Parse ``text`` as the contract kind given or implied by ``path``'s suffix."""
    kind = kind or kind_of(path)
    if kind == "openapi":
        return parse_openapi(path, text)
    if kind == "graphql":
        return parse_graphql(path, text)
    if kind == "proto":
        return parse_proto(path, text)
    raise ApiParseError(path, f"unknown contract type: expected one of {', '.join(ALL_SUFFIXES)}")


def load_document(path: str | Path, kind: ApiKind | None = None) -> ApiDocument:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise ApiParseError(str(p), "file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ApiParseError(str(p), f"cannot read: {exc}") from exc
    return parse_document(str(p), text, kind)


# ------------------------------------------------------------------------------------------ OpenAPI
def _yaml_lines(node: Any, pointer: Pointer, out: dict[Pointer, int]) -> None:
    stack: list[tuple[Any, Pointer]] = [(node, pointer)]
    while stack:
        n, ptr = stack.pop()
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                child = (*ptr, str(k.value))
                out[child] = k.start_mark.line + 1
                stack.append((v, child))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                child = (*ptr, str(i))
                out[child] = v.start_mark.line + 1
                stack.append((v, child))


def parse_openapi(path: str, text: str) -> OpenApiDocument:
    loader = _SpecLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        raise ApiParseError(where, f"invalid YAML/JSON: {getattr(exc, 'problem', None) or exc}") from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise NotOpenApiError(path, "an OpenAPI document must be a mapping")
    if "swagger" in data and "openapi" not in data:
        raise ApiParseError(f"{path}:swagger", "Swagger 2.0 is not supported: convert it to OpenAPI 3")
    if "openapi" not in data:
        raise NotOpenApiError(path, "no top-level `openapi` key: not an OpenAPI 3 document")
    version = data.get("openapi")
    if not isinstance(version, str) or not version.startswith("3."):
        raise ApiParseError(
            f"{path}:openapi", f"expected `openapi: 3.0.x`, `3.1.x` or `3.2.x`, got {version!r}"
        )
    lines: dict[Pointer, int] = {}
    _yaml_lines(node, (), lines)
    # a document read from disk can read the other files of a multi-file spec beside it
    reader = read_if_file if os.path.isfile(path) else None
    return OpenApiDocument(path=path, text=text, data=data, lines=lines, read_file=reader)


def openapi_validation_errors(doc: OpenApiDocument, limit: int = 20) -> Iterator[tuple[Pointer, str]]:
    """Schema errors from openapi-spec-validator: ``(pointer, message)``, at most ``limit``.

    References are read from local spec files only. The validator's default handlers fetch any
    ``http(s)://`` in a ``$ref``, which would let a contract under review make the CI runner send
    requests (a cloud metadata address, an internal service); a reference that cannot be read ends
    the validation with one error naming it, instead of an exception that stops the whole review."""
    from openapi_spec_validator import (
        OpenAPIV30SpecValidator,
        OpenAPIV31SpecValidator,
        OpenAPIV32SpecValidator,
    )

    cls: Any = (
        OpenAPIV30SpecValidator
        if doc.version.startswith("3.0")
        else OpenAPIV32SpecValidator
        if doc.version.startswith("3.2")
        else OpenAPIV31SpecValidator
    )
    # every scheme the retriever would otherwise open itself (requests for http(s), urlopen else)
    handlers = {"file": _local_spec_file, **dict.fromkeys(("http", "https", "ftp", "data"), _no_network)}
    offline: Any = type(cls.__name__, (cls,), {"resolver_handlers": handlers})
    base = Path(doc.path).resolve().as_uri() if Path(doc.path).exists() else ""
    validator = offline(doc.data, base_uri=base)
    errors = validator.iter_errors()
    n = 0
    while n < limit:
        try:
            err = next(errors)
        except StopIteration:
            return
        except Exception as exc:  # referencing's Unresolvable and the handler's refusal, whatever wraps them
            ref = str(getattr(exc, "ref", "") or exc)
            yield (), f"cannot resolve $ref {ref}: references are read from local spec files only"
            return
        n += 1
        pointer = tuple(
            str(p) for p in getattr(err, "absolute_path", None) or getattr(err, "path", None) or ()
        )
        yield pointer, str(getattr(err, "message", err))


def _no_network(uri: str) -> Any:
    raise ValueError(f"{uri}: not a local file")


def _local_spec_file(uri: str) -> Any:
    """The validator's only reference handler: a local ``.yaml``/``.yml``/``.json`` file."""
    from jsonschema_path.handlers.file import FilePathHandler

    if not urlparse(uri).path.lower().endswith(OPENAPI_SUFFIXES):
        raise ValueError(f"{uri}: not a .yaml, .yml or .json file")
    return FilePathHandler("file")(uri)


# ------------------------------------------------------------------------------------------ GraphQL
def parse_graphql(path: str, text: str) -> GraphQLDocument:
    from graphql import GraphQLError, build_ast_schema, parse

    try:
        document = parse(text, no_location=False)
    except GraphQLError as exc:
        line = exc.locations[0].line if exc.locations else 1
        raise ApiParseError(f"{path}:{line}", f"invalid GraphQL SDL: {exc.message}") from exc
    try:
        schema = build_ast_schema(document)
        error = None
    except (GraphQLError, TypeError) as exc:
        schema, error = None, str(getattr(exc, "message", exc))
    return GraphQLDocument(path=path, text=text, document=document, schema=schema, schema_error=error)


# ------------------------------------------------------------------------------------------ protobuf
def parse_proto(path: str, text: str) -> ProtoDocument:
    from antlr4.error.ErrorListener import ErrorListener
    from proto_schema_parser.parser import Parser

    class _Raise(ErrorListener):  # type: ignore[misc]
        def syntaxError(
            self, recognizer: Any, offending: Any, line: int, column: int, msg: str, e: Any
        ) -> None:
            raise ApiParseError(f"{path}:{line}", f"invalid protobuf: {msg}")

    trees: list[Any] = []

    def setup_lexer(lexer: Any) -> None:
        lexer.removeErrorListeners()
        lexer.addErrorListener(_Raise())
        # The grammar parses comments as declarations, so a comment inside compact options
        # (`string id = 1 [ // why \n (opt) = true ];`, valid protobuf) is a syntax error to it. The
        # checks never read comments (suppression markers are read from the text): hide them.
        hidden = {getattr(lexer, "LINE_COMMENT", -1), getattr(lexer, "BLOCK_COMMENT", -1)}
        next_token = lexer.nextToken

        def next_visible_token() -> Any:
            token = next_token()
            if token.type in hidden:
                token.channel = 1  # Token.HIDDEN_CHANNEL
            return token

        lexer.nextToken = next_visible_token

    def setup_parser(parser: Any) -> None:
        parser.removeErrorListeners()
        parser.addErrorListener(_Raise())
        # keep the ANTLR parse tree (the AST has no line numbers): wrap this parser's entry rule
        entry = parser.file_

        def file_and_keep() -> Any:
            tree = entry()
            trees.append(tree)
            return tree

        parser.file_ = file_and_keep

    proto = Parser(setup_lexer=setup_lexer, setup_parser=setup_parser).parse(text)
    lines: dict[str, int] = {}
    if trees:
        _proto_lines(trees[0], [], lines)
    return ProtoDocument(path=path, text=text, file=proto, lines=lines)


_FIELD_CONTEXTS: tuple[type[Any], ...] = ()


def _name(ctx: Any, rule: str) -> str:
    """The text of the name sub-rule ``rule`` (``messageName``, ...) of an ANTLR context."""
    return str(getattr(ctx, rule)().getText())


def _proto_lines(ctx: Any, scope: list[str], out: dict[str, int]) -> None:
    from proto_schema_parser.antlr.ProtobufParser import ProtobufParser as P

    global _FIELD_CONTEXTS
    if not _FIELD_CONTEXTS:
        _FIELD_CONTEXTS = (
            P.MessageFieldDeclContext,
            P.FieldDeclWithCardinalityContext,
            P.MapFieldDeclContext,
            P.OneofFieldDeclContext,
            P.GroupDeclContext,
        )
    name: str | None = None
    key: str | None = None
    if isinstance(ctx, P.PackageDeclContext):
        out["package"] = ctx.start.line
    elif isinstance(ctx, P.MessageDeclContext):
        name = _name(ctx, "messageName")
        key = "message"
    elif isinstance(ctx, P.EnumDeclContext):
        name = _name(ctx, "enumName")
        key = "enum"
    elif isinstance(ctx, P.ServiceDeclContext):
        name = _name(ctx, "serviceName")
        key = "service"
    elif isinstance(ctx, P.MethodDeclContext):
        out["rpc:" + ".".join([*scope, _name(ctx, "methodName")])] = ctx.start.line
    elif isinstance(ctx, P.EnumValueDeclContext):
        out["value:" + ".".join([*scope, _name(ctx, "enumValueName")])] = ctx.start.line
    elif isinstance(ctx, P.MessageReservedDeclContext):
        out.setdefault(f"reserved:{'.'.join(scope)}", ctx.start.line)
    elif isinstance(ctx, _FIELD_CONTEXTS) and ctx.fieldName() is not None:
        out.setdefault(f"field:{'.'.join([*scope, ctx.fieldName().getText()])}", ctx.start.line)
    if name is not None and key is not None:
        scope = [*scope, name]
        out[f"{key}:{'.'.join(scope)}"] = ctx.start.line
    for child in getattr(ctx, "children", None) or ():
        if hasattr(child, "children"):
            _proto_lines(child, scope, out)
