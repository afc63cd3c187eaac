"""Problem titles are RFC 9110's reason phrases, the same on every Python."""

from __future__ import annotations

import inspect

import litestar.exceptions
import pytest

from service import problems
from service.api import contract

# What the app answers with (README's table, the middleware's 431, the 404 and 405 of
# routing), by the names of RFC 9110 section 15 and RFC 6585.
RFC_9110_AND_6585 = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@pytest.mark.parametrize(("status", "title"), RFC_9110_AND_6585.items())
def test_a_problems_title_is_the_rfc_name_of_its_status(status: int, title: str) -> None:
    # Python's http.HTTPStatus says "Unprocessable Entity" and "Request Entity Too Large"
    # before 3.13: the title must not depend on it.
    problem = problems.make_problem(status, "detail", "/events")
    assert (problem.status, problem.title, problem.type) == (
        status,
        title,
        f"https://hiring-news.dev/problems/{status}",
    )


def test_every_status_the_contract_or_litestar_names_has_a_title() -> None:
    raised = {
        cls.status_code
        for _, cls in inspect.getmembers(litestar.exceptions, inspect.isclass)
        if issubclass(cls, litestar.exceptions.HTTPException)
    }
    for status in {*contract._PROBLEMS, *raised, *RFC_9110_AND_6585}:
        assert status in problems.TITLES, status


def test_an_unknown_status_still_has_a_title() -> None:
    assert problems.make_problem(499, None, None).title == "Error"
