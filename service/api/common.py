"""What every handler needs: the pool, the caller's key, JSON answers with an ETag."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
from litestar import Request, Response

from service import auth
from service.problems import ProblemError
from service.settings import Settings

_encoder = msgspec.json.Encoder()


def pool(request: Request[Any, Any, Any]) -> asyncpg.Pool:
    return request.app.state.pool  # type: ignore[no-any-return]


def read_pool(request: Request[Any, Any, Any]) -> asyncpg.Pool:
    return request.app.state.read_pool  # type: ignore[no-any-return]


def settings(request: Request[Any, Any, Any]) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def require(request: Request[Any, Any, Any], scope: auth.Scope) -> auth.Caller:
    """The caller holding a valid key with the scope, or a 401/403 problem."""
    key = auth.key_from_headers(request.headers.get("authorization"), request.headers.get("x-api-key"))
    if key is None:
        raise ProblemError(
            401,
            "an API key is required: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY' "
            "(create one with `hiring-news keys create NAME --scope write`)",
            headers={"WWW-Authenticate": 'Bearer realm="hiring-news"'},
        )
    async with pool(request).acquire() as conn:
        caller = await auth.identify(conn, key, settings(request).bootstrap_key)
    if caller is None:
        raise ProblemError(
            401, "unknown or revoked API key", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )
    if not caller.may(scope):
        raise ProblemError(
            403, f"this operation needs the {scope} scope; key {caller.name!r} has {caller.scope}"
        )
    request.state.caller = caller
    return caller


def json_answer(body: Any, *, status: int = 200, as_of: int | None = None) -> Response[bytes]:
    headers = {} if as_of is None else {"ETag": f'W/"{as_of}"'}
    return Response(_encoder.encode(body), status_code=status, media_type="application/json", headers=headers)
