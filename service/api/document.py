"""The contract, openapi.yaml, made from the app, and served by it.

Litestar gives the paths, parameters, summaries, tags and security requirements from the
route decorators (and the Routers above them). The shapes of bodies come from msgspec
instead, as JSON Schema components: the request body is the very schema of
`schemas/event.schema.json`, and each answer is the Struct its decorator names in
`responses=` (through `contract.answer()` and `contract.problem()`), encoded exactly as
msgspec encodes it on the wire. Litestar's own rendering of Structs loses patterns,
`additionalProperties: false` and renamed fields, which a client generator needs.

`python -m service.openapi` writes it to openapi.yaml; tests/e2e/test_openapi.py fails
when it drifts, and the app serves the same document at /schema/openapi.yaml and .json.
Every description is prose (`service.schemas.prose`) and the YAML is never folded at a
width, so the file is the same whichever msgspec or PyYAML release, or Python, writes it.
"""

from __future__ import annotations

import copy
import typing
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Final

import msgspec
import yaml
from litestar.enums import OpenAPIMediaType
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.routes import HTTPRoute

from service import events as ev
from service.schemas import tidy

if TYPE_CHECKING:
    from litestar import Litestar, Request

REF: Final = "#/components/schemas/{name}"

Batch = Annotated[list[ev.Event], msgspec.Meta(min_length=1, max_length=ev.MAX_BATCH)]
RequestBody = ev.Event | Batch

# Headers shared by many answers, written once under components/headers.
HEADERS: Final[dict[str, dict[str, Any]]] = {
    "X-Request-ID": {
        "description": "The request's id: the client's X-Request-ID if it is a plain token, else a new one. "
        "Every log line of the request carries it.",
        "required": True,
        "schema": {"type": "string"},
    },
    "RateLimit-Limit": {
        "description": "Requests a minute allowed to this key (or address, without a key); only when "
        "rate limiting is on.",
        "schema": {"type": "integer"},
    },
    "RateLimit-Remaining": {"description": "Requests left before the limit.", "schema": {"type": "integer"}},
    "RateLimit-Reset": {
        "description": "Seconds until the full allowance is back.",
        "schema": {"type": "integer"},
    },
    "RateLimit-Policy": {
        "description": "The policy, `LIMIT;w=60` (draft-ietf-httpapi-ratelimit-headers-07).",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": True,
        "schema": {"type": "integer"},
    },
    "WWW-Authenticate": {"description": "How to authenticate: `Bearer`.", "schema": {"type": "string"}},
}
_RATE_LIMIT: Final = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy")


def _header(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def document(app: Litestar) -> dict[str, Any]:
    """The OpenAPI document of the app, as plain data."""
    spec: dict[str, Any] = msgspec.to_builtins(app.openapi_schema.to_schema())
    operations = _operations(app)
    containers = list(
        dict.fromkeys(
            r.data_container
            for _, _, handler in operations
            for r in (handler.responses or {}).values()
            if r.data_container is not None
        )
    )
    schemas, components = msgspec.json.schema_components([RequestBody, *containers], ref_template=REF)
    body_schema, by_container = schemas[0], dict(zip(containers, schemas[1:], strict=True))

    for path, method, handler in operations:
        operation = spec["paths"][path][method]
        security = handler.resolve_security()
        operation["responses"] = _responses(handler, by_container, secured=bool(security))
        if {} in security:
            # Public (a key is taken, not needed, unless HIRING_NEWS_READ_KEY_REQUIRED):
            # typed as needing none, since generators read any requirement listed, `{}`
            # among others, as "authenticate" (openapi-python-client does).
            del operation["security"]
        for parameter in operation.get("parameters", []):
            parameter["schema"] = _given(_as_parsed(parameter["schema"]))

    spec["paths"]["/events"]["post"]["requestBody"] = {
        "required": True,
        "description": f"One event, or an array of 1 to {ev.MAX_BATCH} applied in order, all or none; "
        f"at most {ev.MAX_BODY_BYTES // 1024 // 1024} MiB. The same schemas as schemas/*.schema.json.",
        "content": {"application/json": {"schema": body_schema}},
    }
    spec["components"]["schemas"] = _refined(components)
    spec["components"]["headers"] = HEADERS
    order = ("openapi", "info", "servers", "tags", "security", "paths", "components")
    ordered = {
        key: spec[key] for key in sorted(spec, key=lambda k: order.index(k) if k in order else len(order))
    }
    tidied: dict[str, Any] = tidy(ordered)
    return tidied


def _operations(app: Litestar) -> list[tuple[str, str, Any]]:
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if handler.resolve_include_in_schema():
                found += [(route.path_format, m.lower(), handler) for m in sorted(handler.http_methods)]
    return found


def _responses(handler: Any, by_container: dict[Any, Any], *, secured: bool) -> dict[str, Any]:
    names = ["X-Request-ID", *(_RATE_LIMIT if secured else ())]
    success_headers = {
        h.name: {"description": h.description, "schema": {"type": "string"}}
        # A frozenset: sorted, so the file does not change with the hash seed.
        for h in sorted(handler.resolve_response_headers(), key=lambda h: h.name)
    }
    out: dict[str, Any] = {}
    for status, spec in sorted(handler.responses.items()):
        headers: dict[str, Any] = {name: _header(name) for name in names}
        if status < 300 or status == 304:
            headers |= success_headers
        if status in (429, 503) and secured:
            headers["Retry-After"] = _header("Retry-After")
        if status == 401:
            headers["WWW-Authenticate"] = _header("WWW-Authenticate")
        response: dict[str, Any] = {"description": spec.description, "headers": headers}
        if spec.data_container is not None:
            media = spec.media_type.value if isinstance(spec.media_type, Enum) else spec.media_type
            response["content"] = {media: {"schema": by_container[spec.data_container]}}
        out[str(status)] = response
    return out


def _as_parsed(schema: dict[str, Any]) -> dict[str, Any]:
    """Say what a timestamp parameter really accepts: Litestar converts query values leniently
    (msgspec's lax mode), so a number is taken as Unix time, and `null` as absent."""
    branches = schema.get("oneOf", [])
    if {"type": "string", "format": "date-time"} not in branches:
        return schema
    return {**schema, "oneOf": [*branches, {"type": "number", "description": "Unix time, in seconds"}]}


def _given(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is given or left out, never JSON null: say what it is when given.

    Litestar writes an optional parameter as "X or null" (`oneOf`, or a type list with
    null in its enum), which generators turn into several types: `include` became three.
    Only text parameters (`str | None`): Litestar reads `null` as absent for the others
    (`as_of=null`), so theirs stays; a text one takes it as the text "null".
    """
    branches = schema.get("oneOf")
    if branches is not None and {"type": "null"} in branches:
        kept = [b for b in branches if b != {"type": "null"}]
        if len(kept) > 1 or kept[0].get("type") != "string":
            return schema
        rest = {k: v for k, v in schema.items() if k != "oneOf"}
        return {**kept[0], **rest}
    return schema


def _refined(components: dict[str, Any]) -> dict[str, Any]:
    """Say what msgspec cannot see: a stored event's `data` has the shape of its `type`.

    StoredEvent carries `data` and `source` as raw JSON (it passes the stored bytes
    through), so msgspec can only say "any"; the log holds exactly what the event types
    accepted, upcast to the current version, which this states with if/then per type.
    """
    refined = copy.deepcopy(components)
    stored = refined["StoredEvent"]
    properties = stored["properties"]
    properties["type"] = {"enum": list(ev.TYPE_NAMES)}
    properties["status"] = {"enum": list(typing.get_args(ev.Status))}
    properties["source"] = {"anyOf": [{"$ref": REF.format(name="Source")}, {"type": "null"}]}
    # Timestamps the server writes are always RFC 3339 with an offset.
    properties["recorded_at"] = refined["Accepted"]["properties"]["recorded_at"] = {
        "type": "string",
        "format": "date-time",
    }
    stored["allOf"] = [
        {
            "if": {"properties": {"type": {"const": name}}},
            "then": {"properties": {"data": {"$ref": REF.format(name=_data_type(envelope).__name__)}}},
        }
        for name, envelope in zip(ev.TYPE_NAMES, ev.EVENT_TYPES, strict=True)
    ]
    return dict(sorted(refined.items()))


def _data_type(envelope: type[ev.Envelope]) -> type:
    data: type = typing.get_type_hints(envelope)["data"]
    return data


class _Dumper(yaml.SafeDumper):
    """Writes shared parts (the same header under many responses) out in full: no anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    # Several lines as a literal block, the lines as they are; one line as PyYAML picks.
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_Dumper.add_representer(str, _text)


def render(app: Litestar) -> str:
    """openapi.yaml: the document in its own key order, each string on one line (no folding
    at a width) or, when it has several, as a literal block, so that the file changes when
    the contract does and only then."""
    return yaml.dump(
        document(app),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=float("inf"),
    )


# ---- serving it --------------------------------------------------------------------------


class ContractPlugin(OpenAPIRenderPlugin):
    """Serves the contract itself (not Litestar's rendering of it) at /schema/openapi.{yaml,json}."""

    def __init__(self, *, as_yaml: bool) -> None:
        self.as_yaml = as_yaml
        self._rendered: bytes | None = None
        if as_yaml:
            super().__init__(path="/openapi.yaml", media_type=OpenAPIMediaType.OPENAPI_YAML)
        else:
            super().__init__(path="/openapi.json", media_type=OpenAPIMediaType.OPENAPI_JSON)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._rendered is None:
            app = request.app
            self._rendered = render(app).encode() if self.as_yaml else msgspec.json.encode(document(app))
        return self._rendered
