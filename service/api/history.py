"""GET /orgs/{id}/history: everyone ever in an org, over all valid time, as known at any time.

The read behind the org page's picture (service/ui): each person's stints in the org (and,
with `include=suborgs`, in the orgs under it on `on`), as their timelines give them but
without sources, and the org's versions (names, parents) over time.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Request, Response, get
from litestar.params import QueryParameter

from service import answers, reads
from service.api.reads import AsOf, KnownAt, On, OrgId, _today, answer, reading
from service.openapi import ETAG, PROJECTION_LAG, READ_SECURITY, read


@get(
    "/orgs/{org_id:str}/history",
    summary="Everyone ever in an org, over all valid time",
    description="One entry per person, in the order of their first start, with each stint (the entries "
    "of their timeline in this org, without sources: the roster and the timeline have them), and the "
    "org's versions over valid time: where its name or parent changes, and whether it ended (merged or "
    "dissolved). `on` matters only with `include=suborgs`: the sub-orgs are those under the org that day.",
    tags=["orgs"],
    security=READ_SECURITY,
    response_headers=[ETAG, PROJECTION_LAG],
    responses=read(
        answers.OrgHistory,
        "Everyone ever in the org, as of the position.",
        not_found="No org with this id in the log as of the position asked.",
    ),
)
async def get_org_history(
    request: Request[Any, Any, Any],
    org_id: OrgId,
    on: On = None,
    known_at: KnownAt = None,
    as_of: AsOf = None,
    include: Annotated[
        Literal["suborgs"] | None,
        QueryParameter(description="suborgs: add the stints in the orgs under it on `on`"),
    ] = None,
) -> Response[bytes]:
    async with reading(request, as_of, known_at, ("org", org_id)) as (conn, at):
        found = await reads.org_history(
            conn, org_id, on or _today(), at.stand.position, include_suborgs=include == "suborgs"
        )
    return answer(request, found, at)
