"""RFC 9457 problem details: every error the API gives, in one shape.

`errors` lists what was wrong field by field: `field` is the JSONPath msgspec reports
(`$[3].data.on`), `pointer` the same place as an RFC 6901 JSON Pointer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import asyncpg
import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from service.logging import get_logger

# The shapes are declared in service.wire, shared with the client; handlers import them here.
from service.wire import PROBLEM_JSON as PROBLEM_JSON
from service.wire import FieldError as FieldError
from service.wire import Problem as Problem
from service.wire import field_error as field_error
from service.wire import pointer_of as pointer_of

log = get_logger(__name__)


class ProblemError(Exception):
    """Raised by handlers to answer with a problem document."""

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


def problem_response(
    request: Request[Any, Any, Any] | None, problem: Problem, headers: dict[str, str] | None = None
) -> Response[bytes]:
    return Response(
        msgspec.json.encode(problem),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


# A problem's title is the reason phrase of its status, as RFC 9110 (section 15) names it,
# and RFC 6585 for 428, 429 and 431: every error status those define, so any that Litestar
# or a handler raises has its name. Written here, not taken from http.HTTPStatus, whose
# phrases are those of the running Python's release (before 3.13, 413 is "Request Entity
# Too Large" and 422 "Unprocessable Entity"): the answer must not change with it.
TITLES: Final[Mapping[int, str]] = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Content Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    416: "Range Not Satisfiable",
    417: "Expectation Failed",
    421: "Misdirected Request",
    422: "Unprocessable Content",
    426: "Upgrade Required",
    428: "Precondition Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}


def _title(status: int) -> str:
    return TITLES.get(status, "Error")


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


# The database is down, restarting, or refusing connections: the request may succeed in a
# moment, so the answer is a 503 with Retry-After rather than a 500.
UNAVAILABLE: Final[tuple[type[Exception], ...]] = (
    OSError,  # refused or reset connections, and TimeoutError (no pooled connection in time)
    asyncpg.PostgresConnectionError,
    # Terminated backends, a server shutting down, and statement_timeout (QueryCanceledError).
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections
    asyncpg.exceptions.LockNotAvailableError,  # lock_timeout: the log's lock, for an append
    # A session the server has just ended, before its socket's EOF is read: asyncpg cannot
    # place the server's FATAL message and refuses the next query on it with "cannot
    # switch to state N; another operation (2) is in progress" (MagicStack/asyncpg#784,
    # #1069). The connection is gone; the next one is fine.
    asyncpg.exceptions.InternalClientError,
)
RETRY_AFTER_SECONDS: Final = 2


def on_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    detail = _UNAVAILABLE_BECAUSE.get(type(exc), "the database is unavailable")
    log.warning("database unavailable", error=type(exc).__name__, reason=detail)
    return problem_response(
        request,
        make_problem(503, f"{detail}; retry shortly", request.url.path),
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


# What a 503 says when the cause is a bound the service set, not the database going away.
_UNAVAILABLE_BECAUSE: Final[dict[type[Exception], str]] = {
    TimeoutError: "no database connection was free in time (HIRING_NEWS_ACQUIRE_TIMEOUT)",
    asyncpg.exceptions.QueryCanceledError: "a statement ran past its bound (HIRING_NEWS_STATEMENT_TIMEOUT)",
    asyncpg.exceptions.LockNotAvailableError: "the log stayed locked past HIRING_NEWS_LOCK_TIMEOUT",
}


def on_interface_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """asyncpg's InterfaceError: a misuse of the driver (a 500), unless the connection is gone.

    When the server drops a connection inside a transaction (a restart, a terminated
    backend), the statement raises a connection error, and leaving the `async with
    conn.transaction()` block then raises InterfaceError("cannot call
    Transaction.__aexit__(): the underlying connection is closed") in its place; a
    connection that died between two uses says "connection is closed" the same way. The
    database is unavailable, as for the connection error itself: 503 with Retry-After.
    """
    if connection_lost(exc):
        return on_unavailable(request, exc)
    return on_unexpected(request, exc)


def connection_lost(exc: BaseException) -> bool:
    """Whether an error says the database connection is gone: its message, or an error
    it was raised from or while handling."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, UNAVAILABLE) or "connection is closed" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def on_undecodable(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Bodies msgspec cannot read at all: bytes that are not UTF-8, JSON nested too deeply.

    msgspec raises UnicodeDecodeError and RecursionError for these rather than its own
    DecodeError. On a GET they can only be a bug, answered as one. On a POST they come from
    decoding the body (common.screen_body already turns away bodies that are not UTF-8);
    catching them where the body is decoded would make this net unnecessary.
    """
    if request.method != "POST":
        return on_unexpected(request, exc)
    detail = (
        "the body is not valid UTF-8"
        if isinstance(exc, UnicodeDecodeError)
        else "the JSON is nested too deeply (events are at most a few levels deep)"
    )
    return problem_response(request, make_problem(400, f"malformed JSON: {detail}", request.url.path))


def on_data_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """A value PostgreSQL cannot hold: a NUL character in text, a number or date out of its range.

    Bad input, not a fault: 422 for a body, 400 for a query parameter.
    """
    log.warning("value refused by the database", error=type(exc).__name__)
    status = 422 if request.method == "POST" else 400
    reason = (
        "text cannot contain the NUL character (\\u0000)"
        if isinstance(
            exc,
            asyncpg.exceptions.UntranslatableCharacterError
            | asyncpg.exceptions.CharacterNotInRepertoireError,
        )
        else "a value is outside the range the database can store"
    )
    return problem_response(request, make_problem(status, reason, request.url.path))
