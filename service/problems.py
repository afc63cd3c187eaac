"""RFC 9457 problem details: every error the API gives, in one shape.

`errors` lists what was wrong field by field: `field` is the JSONPath msgspec reports
(`$[3].data.on`), `pointer` the same place as an RFC 6901 JSON Pointer.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any, Final

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from service.logging import get_logger

log = get_logger(__name__)

PROBLEM_JSON: Final = "application/problem+json"


class FieldError(msgspec.Struct, frozen=True, omit_defaults=True):
    field: str
    pointer: str
    reason: str


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] = []


class ProblemError(Exception):
    """Raised by handlers and the store to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}


_AT: Final = re.compile(r"^(?P<reason>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.DOTALL)
_FIELD_PREFIX: Final = re.compile(r"^(?P<field>[a-z_]+): (?P<reason>.*)$", re.DOTALL)
_STEP: Final = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[\.\.\.\]")


def pointer_of(path: str) -> str:
    """`$[0].data.on` -> `/0/data/on`."""
    return "".join("/" + (m.group(1) or m.group(2) or "") for m in _STEP.finditer(path[1:]))


def field_error(message: str, *, base: str = "$") -> FieldError:
    """Turn a msgspec validation message into a field-level error."""
    match = _AT.match(message)
    assert match is not None
    reason, path = match.group("reason"), match.group("path") or base
    # Checks in __post_init__ can only report the struct's path; they prefix the
    # field's name ("on: ...") so the answer can point at the field itself.
    prefixed = _FIELD_PREFIX.match(reason)
    if prefixed and not path.endswith("." + prefixed.group("field")):
        path, reason = f"{path}.{prefixed.group('field')}", prefixed.group("reason")
    elif prefixed:
        reason = prefixed.group("reason")
    return FieldError(field=path, pointer=pointer_of(path), reason=reason)


def problem_response(
    request: Request[Any, Any, Any] | None, problem: Problem, headers: dict[str, str] | None = None
) -> Response[bytes]:
    return Response(
        msgspec.json.encode(problem),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def make_problem(
    status: int, detail: str | None, path: str | None, errors: list[FieldError] | None = None
) -> Problem:
    return Problem(
        type=f"https://hiring-news.dev/problems/{status}",
        title=_title(status),
        status=status,
        detail=detail,
        instance=path,
        errors=errors or [],
    )


def on_problem(request: Request[Any, Any, Any], exc: ProblemError) -> Response[bytes]:
    return problem_response(
        request, make_problem(exc.status, exc.detail, request.url.path, exc.errors), exc.headers
    )


def on_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    errors: list[FieldError] = []
    status = exc.status_code
    if isinstance(exc, ValidationException):
        # Query and path parameters: litestar reports {"key": name, "message": ...}.
        status = 400
        for item in exc.extra if isinstance(exc.extra, list) else []:
            if isinstance(item, dict):
                key = str(item.get("key", ""))
                errors.append(FieldError(field=key, pointer="", reason=str(item.get("message", ""))))
    detail = exc.detail if status < 500 else "internal error"
    return problem_response(
        request, make_problem(status, detail, request.url.path, errors), exc.headers or None
    )


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    # Never a stack trace on the wire; the log has it, with the request id.
    log.exception("unhandled error", error=type(exc).__name__)
    return problem_response(request, make_problem(500, "internal error", request.url.path))
