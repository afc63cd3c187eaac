"""The log over HTTP: POST /events, GET /events, GET /events/{event_id}."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import PathParameter, QueryParameter

from service import events as ev
from service import store
from service.api.common import appender, json_answer, pool, require
from service.api.contract import ETAG, READ_SECURITY, WRITE_SECURITY, answer, problem, problems
from service.logging import get_logger
from service.problems import FieldError, ProblemError, field_error, pointer_of
from service.wire import Accepted, AppendAnswer, EventPage, StoredEvent

log = get_logger(__name__)


def _names_a_claim(body: bytes) -> bool:
    """Whether a body (valid or not) holds a claim.* event, read before it is validated."""
    if b"claim." not in body:  # at C speed: the usual body is done here
        return False
    try:
        value = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return False  # not JSON at all: decode_batch says so
    items = value if isinstance(value, list) else [value]
    return any(isinstance(item, dict) and item.get("type") in ev.CLAIM_TYPES for item in items)


def decode_batch(body: bytes) -> list[ev.Event]:
    """The events of a POST body, or the 4xx problem that says what is wrong with it."""
    if len(body) > ev.MAX_BODY_BYTES:
        raise ProblemError(413, f"the body is larger than {ev.MAX_BODY_BYTES} bytes; split the batch")
    try:
        batch = ev.decode(body)
    except msgspec.ValidationError as error:
        problem = field_error(str(error))
        raise ProblemError(422, f"invalid event: {problem.reason}", errors=[problem]) from None
    except msgspec.DecodeError as error:
        raise ProblemError(400, f"malformed JSON: {error}") from None
    if not batch:
        raise ProblemError(
            422, "the batch is empty", errors=[FieldError("$", "", "at least one event is required")]
        )
    if len(batch) > ev.MAX_BATCH:
        raise ProblemError(413, f"{len(batch)} events in one batch; at most {ev.MAX_BATCH} are accepted")
    seen: dict[str, int] = {}
    for i, event in enumerate(batch):
        key = event.idempotency_key
        if key is not None and key in seen:
            path = f"$[{i}].idempotency_key"
            raise ProblemError(
                422,
                f"idempotency key {key!r} appears twice in one batch (events {seen[key]} and {i})",
                errors=[FieldError(path, pointer_of(path), "duplicate idempotency key in the batch")],
            )
        if key is not None:
            seen[key] = i
    return batch


def parse_types(type_: str | None) -> list[str] | None:
    """The event types of a comma-separated `type` parameter (None: every type), or a 400."""
    types = None if type_ is None else [t.strip() for t in type_.split(",") if t.strip()]
    unknown = [t for t in types or [] if t not in ev.TYPE_NAMES]
    if unknown:
        raise ProblemError(
            400,
            f"unknown event type {unknown[0]!r}",
            errors=[FieldError("type", "", f"one of {', '.join(ev.TYPE_NAMES)}")],
        )
    return types


@post(
    "/events",
    status_code=201,
    summary="Append one event or a batch",
    description="A batch is one transaction: every event is stored, in order, or none is. An event may "
    "introduce a person or org by giving its name beside an unknown id, also for later events of the "
    "same batch. `claim.*` events need an admin key.",
    tags=["events"],
    security=WRITE_SECURITY,
    responses={
        200: answer(
            AppendAnswer, "Every event was a replay of a stored one (same idempotency key and claim)."
        ),
        201: answer(AppendAnswer, "At least one event was stored; `replayed` tells which were not."),
        **problems(400, 401, 403, 409, 413, 415, 422, 429, 500, 503),
    },
)
async def post_events(request: Request[Any, Any, Any]) -> Response[bytes]:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in {"application/json", ""} and not media.endswith("+json"):
        raise ProblemError(415, f"send the events as application/json, not {media!r}")
    body = await request.body()
    # The key's scope first: a write key posting claim.* events is refused for what it
    # may do, however invalid the events are.
    caller = await require(request, "write")
    if not caller.may("admin") and _names_a_claim(body):
        await require(request, "admin")
    batch = decode_batch(body)
    is_array = body.lstrip()[:1] == b"["
    if any(ev.type_name(e) in ev.CLAIM_TYPES for e in batch):
        await require(request, "admin")
    try:
        appended = await appender(request).append(batch, caller.name)
    except store.AppendError as error:
        path = ("$" + (f"[{error.index}]" if is_array else "")) + error.pointer.replace("/", ".")
        status = 409 if isinstance(error, store.IdempotencyConflict) else 422
        raise ProblemError(
            status, error.reason, errors=[FieldError(path, pointer_of(path), error.reason)]
        ) from None
    stored = [a for a in appended if not a.replayed]
    request.app.state.metrics.appended(len(stored), len(batch))
    log.info(
        "appended",
        key=caller.name,
        stored=len(stored),
        replayed=len(appended) - len(stored),
        positions=[stored[0].position, stored[-1].position] if stored else None,
    )
    answer = AppendAnswer(
        [Accepted(a.event_id, a.position, a.recorded_at, a.idempotency_key, a.replayed) for a in appended]
    )
    return json_answer(answer, status=200 if all(a.replayed for a in appended) else 201)


@get(
    "/events",
    summary="The log in position order, cursor-paged",
    description="Pass `next` back as `after` for the next page; `next` is null on the last page. A page "
    "never skips an event that commits later with a smaller position.",
    tags=["events"],
    security=READ_SECURITY,
    response_headers=[ETAG],
    responses={
        200: answer(EventPage, "A page of stored events."),
        **problems(400, 401, 429, 500, 503),
    },
)
async def list_events(
    request: Request[Any, Any, Any],
    after: Annotated[int, QueryParameter(ge=0, description="return events with a position above this")] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    type_: Annotated[
        str | None, QueryParameter(name="type", description="comma-separated event types", max_length=1000)
    ] = None,
) -> Response[bytes]:
    types = parse_types(type_)
    async with pool(request).acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        head = await store.head(conn)
        rows = await store.page(conn, after, limit, types, upto=head)
    page = [store.stored_event(r) for r in rows]
    next_after = page[-1].position if len(page) == limit else None
    return json_answer(EventPage(page, next_after), as_of=head)


@get(
    "/events/{event_id:uuid}",
    summary="One stored event",
    tags=["events"],
    security=READ_SECURITY,
    responses={
        200: answer(StoredEvent, "The event as accepted, with the fields the server assigned."),
        404: problem(404, "No event has this id (or the id is not a UUID)."),
        **problems(401, 429, 500, 503),
    },
)
async def get_event(
    request: Request[Any, Any, Any], event_id: Annotated[uuid.UUID, PathParameter()]
) -> Response[bytes]:
    async with pool(request).acquire() as conn:
        row = await store.by_id(conn, event_id)
    if row is None:
        raise ProblemError(404, f"no event has id {event_id}")
    return json_answer(store.stored_event(row))
