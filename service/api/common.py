"""What every handler needs: the pool, the caller's key, JSON answers with an ETag.

Also the two app-wide hooks that keep handlers thin: `access`, the guard that checks
keys and spends rate-limit tokens before a handler runs, and `screen_body`, which turns
away POST bodies PostgreSQL could not store before they are decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler

from service import auth
from service.appender import Appender
from service.database import Connections
from service.problems import FieldError, ProblemError, pointer_of
from service.ratelimit import STATE_KEY, Limiter
from service.settings import Settings

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Limits:
    keyed: Limiter
    anonymous: Limiter

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        anonymous = settings.anonymous_rate_limit_per_minute
        return cls(
            Limiter(settings.rate_limit_per_minute),
            Limiter(settings.rate_limit_per_minute if anonymous is None else anonymous),
        )


def pool(request: ASGIConnection[Any, Any, Any, Any]) -> Connections:
    """The primary's connections, each waited for at most HIRING_NEWS_ACQUIRE_TIMEOUT."""
    return request.app.state.connections  # type: ignore[no-any-return]


def appender(request: Request[Any, Any, Any]) -> Appender:
    return request.app.state.appender  # type: ignore[no-any-return]


def read_pool(request: Request[Any, Any, Any]) -> Connections:
    """The connections reads use: a replica's with DATABASE_READ_URL, else the primary's."""
    return request.app.state.read_connections  # type: ignore[no-any-return]


def settings(request: ASGIConnection[Any, Any, Any, Any]) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


_NO_KEY: Final = (
    "an API key is required: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY' "
    "(create one with `hiring-news keys create NAME --scope write`)"
)


def _no_key() -> ProblemError:
    return ProblemError(401, _NO_KEY, headers={"WWW-Authenticate": 'Bearer realm="hiring-news"'})


def _bad_key() -> ProblemError:
    return ProblemError(
        401, "unknown or revoked API key", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
    )


def _key(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    return auth.key_from_headers(connection.headers.get("authorization"), connection.headers.get("x-api-key"))


async def access(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """The guard of every operation, driven by the security its decorator declares.

    No declared security (probes, metrics, the contract): open, and never rate-limited,
    so an orchestrator's probes are never refused. Declared without `{}`: a key is
    required. Declared with `{}`: a key is optional unless HIRING_NEWS_READ_KEY_REQUIRED.
    A key that is presented is checked even where none is needed, so a revoked key stops
    working everywhere at once.
    """
    security = handler.resolve_security() if isinstance(handler, HTTPRouteHandler) else None
    if not security:
        return
    config = settings(connection)
    limits: Limits = connection.app.state.limits
    key = _key(connection)
    if key is None:
        if {} not in security or config.read_key_required:
            raise _no_key()
        _spend(connection, limits.anonymous, _address(connection))
        return
    # Spent before the database lookup, so a flood with one key costs no queries.
    _spend(connection, limits.keyed, "key:" + auth.digest(key).hex())
    caller = auth.bootstrap(key, config.bootstrap_key)
    if caller is None:
        async with pool(connection).acquire() as conn:
            caller = await auth.identify(conn, key, config.bootstrap_key)
    if caller is None:
        # Each made-up key gets a fresh bucket; charging the address too stops a spray.
        _spend(connection, limits.anonymous, _address(connection))
        raise _bad_key()
    connection.state.caller = caller


def _address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    # uvicorn puts the proxy's X-Forwarded-For here when the proxy is trusted
    # (FORWARDED_ALLOW_IPS), so behind a load balancer this is still the client.
    return "ip:" + (connection.client.host if connection.client else "unknown")


def _spend(connection: ASGIConnection[Any, Any, Any, Any], limiter: Limiter, who: str) -> None:
    if not limiter.enabled:
        return
    verdict = limiter.take(who)
    if not verdict.allowed:
        raise ProblemError(
            429,
            f"over the limit of {verdict.limit} requests a minute; retry in {verdict.retry_after} s",
            headers=verdict.headers(),
        )
    connection.scope["state"][STATE_KEY] = verdict.headers()


async def require(request: Request[Any, Any, Any], scope: auth.Scope) -> auth.Caller:
    """The caller holding a valid key with the scope, or a 401/403 problem."""
    caller: auth.Caller | None = getattr(request.state, "caller", None)
    if caller is None:
        # Normally the guard has identified the caller already; this serves a handler
        # mounted without it.
        key = _key(request)
        if key is None:
            raise _no_key()
        async with pool(request).acquire() as conn:
            caller = await auth.identify(conn, key, settings(request).bootstrap_key)
        if caller is None:
            raise _bad_key()
    if not caller.may(scope):
        raise ProblemError(
            403, f"this operation needs the {scope} scope; key {caller.name!r} has {caller.scope}"
        )
    request.state.caller = caller
    return caller


# A JSON string escape for U+0000 that is not itself an escaped backslash followed by "u0000".
_ESCAPED_NUL: Final = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


async def screen_body(request: Request[Any, Any, Any]) -> None:
    """Refuse, before decoding, POST bodies that are not UTF-8 or hold a NUL character.

    msgspec would raise UnicodeDecodeError for the first, and PostgreSQL refuses the
    second (text and jsonb cannot hold U+0000) only once the transaction is under way;
    both are bad input, answered here as such. Runs after the guard, so only callers
    with a key get this far on a write.
    """
    if request.method != "POST":
        return
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in {"application/json", ""} and not media.endswith("+json"):
        return  # the handler answers 415
    body = await request.body()
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ProblemError(400, f"malformed JSON: the body is not valid UTF-8 (byte {error.start})") from None
    # The literal is found at C speed; the regex (a look-behind over a megabyte) runs only
    # on the rare body that holds it, to tell a NUL from an escaped backslash before "u0000".
    if b"\\u0000" not in body or _ESCAPED_NUL.search(body) is None:
        return
    path = _nul_path(body)
    if path is not None:
        raise ProblemError(
            422,
            "invalid event: text cannot contain the NUL character (\\u0000)",
            errors=[FieldError(path, pointer_of(path), "text cannot contain the NUL character (\\u0000)")],
        )


def _nul_path(body: bytes) -> str | None:
    """The JSON path of the first string holding U+0000, if the body is JSON at all."""
    try:
        value = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None  # the handler answers 400
    stack: list[tuple[str, Any]] = [("$", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str) and "\x00" in item:
            return path
        if isinstance(item, dict):
            for name, child in reversed(item.items()):
                if "\x00" in name:
                    return path
                stack.append((f"{path}.{name}", child))
        elif isinstance(item, list):
            stack += [(f"{path}[{i}]", child) for i, child in reversed(list(enumerate(item)))]
    return None


def json_answer(body: Any, *, status: int = 200, as_of: int | None = None) -> Response[bytes]:
    headers = {} if as_of is None else {"ETag": f'W/"{as_of}"'}
    return Response(_encoder.encode(body), status_code=status, media_type="application/json", headers=headers)
