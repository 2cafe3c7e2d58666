"""A browser-like client of the operators' console, and readers of its HTML."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.harness.env import ADMIN_TOKEN

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    """The CSRF token rendered into a page's forms."""
    match = _CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


class _Tables(HTMLParser):
    def __init__(self, table_id: str):
        super().__init__()
        self.table_id, self.depth, self.rows = table_id, 0, []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and (self.depth or dict(attrs).get("id") == self.table_id):
            self.depth += 1
        elif self.depth and tag == "tr":
            self.rows.append([])
        elif self.depth and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.depth:
            self.depth -= 1
        elif self.depth and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def table(html: str, table_id: str) -> list[list[str]]:
    """The text of each body row of the table ``table_id`` (the header row dropped)."""
    parser = _Tables(table_id)
    parser.feed(html)
    return [row for row in parser.rows if row][1:]


class Ops:
    """A browser-like client of the console."""

    def __init__(self, client: FlaskClient):
        self.client = client

    def login(self, token: str = ADMIN_TOKEN, next_: str = "/ops/") -> TestResponse:
        """Fill in and send the login form."""
        page = self.client.get("/ops/login")
        return self.client.post(
            "/ops/login", data={"csrf_token": csrf_from(page.text), "token": token, "next": next_}
        )

    def page(self, path: str) -> TestResponse:
        """GET a console page that must render."""
        r = self.client.get(path)
        assert r.status_code == 200, (r.status_code, r.text[:500])
        return r

    def submit(self, form_page: str, action: str, **data: str) -> TestResponse:
        """POST a form the way a browser would: with the CSRF token of the page it is on."""
        token = csrf_from(self.page(form_page).text)
        return self.client.post(action, data={"csrf_token": token, **data})
