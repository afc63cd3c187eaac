"""The vocabulary of the handlers' decorators: security, answers, problems, shared headers.

What every operation says about itself in its decorator (or on the Router that carries
what several share) is written here once, so that the handlers, the guard that enforces
security (`service.api.common.access`) and the contract all read the same words. The
contract itself, openapi.yaml, is made from the app by `service.api.document`; the
generator, `python -m service.openapi`, depends on the app, never the other way round.
"""

from __future__ import annotations

from typing import Any, Final

from litestar.datastructures import ResponseHeader
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme

from service.problems import PROBLEM_JSON, Problem

BEARER: Final = "bearerAuth"
API_KEY: Final = "apiKeyAuth"
# Writes need a key; reads take one (`{}`: or none) unless HIRING_NEWS_READ_KEY_REQUIRED
# is set. The guard in service/api/common.py enforces what these declare.
WRITE_SECURITY: Final[list[dict[str, list[str]]]] = [{BEARER: []}, {API_KEY: []}]
READ_SECURITY: Final[list[dict[str, list[str]]]] = [{}, {BEARER: []}, {API_KEY: []}]

SECURITY_SCHEMES: Final = Components(
    security_schemes={
        BEARER: SecurityScheme(
            type="http",
            scheme="bearer",
            description="`Authorization: Bearer KEY`, a key from `hiring-news keys create NAME --scope write|admin`.",
        ),
        API_KEY: SecurityScheme(
            type="apiKey",
            name="X-API-Key",
            security_scheme_in="header",
            description="The same key in an `X-API-Key` header.",
        ),
    }
)

ETAG: Final = ResponseHeader(
    name="ETag",
    description='The log position the answer reflects, as a weak tag (`W/"42"`); send it back in '
    "If-None-Match to get a 304 while the log has not moved.",
    documentation_only=True,
)

PROJECTION_LAG: Final = ResponseHeader(
    name="Projection-Lag",
    description="Only on an answer given without `as_of` or `known_at` while the projector was more "
    "than HIRING_NEWS_READ_WAIT seconds behind the log: how many events of the log the answer, at the "
    "projection's position (`as_of`), does not reflect yet.",
    documentation_only=True,
    required=False,
)

_PROBLEMS: Final = {
    400: "Malformed JSON, or a bad query or path parameter; `errors` names each.",
    401: "No API key where one is needed, or an unknown or revoked one.",
    403: "The key's scope does not allow this: `claim.*` events need an admin key.",
    404: "No such id in the log (as of the position asked), or no such route.",
    409: "The idempotency key was used before for another claim; nothing was stored.",
    413: "More than 1000 events, or a body over 1 MiB; nothing was stored.",
    415: "The body is not `application/json`.",
    422: "An invalid event: `errors` gives the JSON path of the field and the reason; nothing was stored.",
    429: "Over the rate limit of this key, or of this address without a key; see Retry-After.",
    500: "A fault of the server (never bad input); the log has the details under the request id.",
    503: "The database is unreachable; retry after Retry-After seconds.",
}


def answer(container: Any, description: str) -> ResponseSpec:
    """A successful answer: the Struct (or other type) msgspec encodes its body from."""
    return ResponseSpec(container, description=description, generate_examples=False)


def problem(status: int, description: str | None = None) -> ResponseSpec:
    return ResponseSpec(
        Problem,
        description=description or _PROBLEMS[status],
        media_type=PROBLEM_JSON,
        generate_examples=False,
    )


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    return {status: problem(status) for status in statuses}


NOT_MODIFIED: Final = ResponseSpec(
    None, description="The log has not moved since the ETag sent in If-None-Match.", generate_examples=False
)


READ_UNAVAILABLE: Final = (
    "The database is unreachable, or the read asked (by `as_of` or `known_at`) for a position the "
    "projector has not reached within HIRING_NEWS_READ_WAIT seconds; retry after Retry-After seconds."
)


def read(container: Any, description: str, *, not_found: str | None = None) -> dict[int, ResponseSpec]:
    """The answers of a read: the body, 304 for a matching If-None-Match, and the problems."""
    found = {
        200: answer(container, description),
        304: NOT_MODIFIED,
        **problems(400, 401, 429, 500),
        503: problem(503, READ_UNAVAILABLE),
    }
    if not_found is not None:
        found[404] = problem(404, not_found)
    return found
